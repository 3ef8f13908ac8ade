"""Tasks as YAML files: one file is one ``TaskConfig`` (the built-in tasks are such files, in
``transferbench/tasks/configs/``, so users read them as examples). ``--task FILE`` registers one,
``--include-path DIR`` every ``*.yaml``/``*.yml`` in a folder, like lm-evaluation-harness's.

Every problem is one line ``file:line: key: what was expected``, found when the file is read (keys,
types, domain, loader, builtin data set) or, for columns that the data does not have, when the
task's data loads (``domain.load_task`` looks the key up in ``TASK_FILES``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from transferbench.configfile import Located, read_mapping, to_dataclass
from transferbench.errors import UserError
from transferbench.options import declared
from transferbench.registry import name_problem, suggest
from transferbench.tasks.base import BUILTIN_DATA, TASK_FILES, TASKS, NoTaskKeys, TaskConfig
from transferbench.tasks.domain import DOMAINS

LOADERS = ("hub-or-dir", "dir", "builtin")
REQUIRED = ("name", "domain", "description", "loader")
PACKAGE_TASKS = Path(__file__).parent / "configs"


def read_task_file(path: str | Path) -> tuple[TaskConfig, tuple[str, ...], dict[str, int]]:
    """A task file as a TaskConfig (with the task's aliases and the line of each key), checked
    against the registries it names."""
    located = read_mapping(path, "task file")
    aliases = located.data.pop("aliases", [])
    if not (isinstance(aliases, list) and all(isinstance(a, str) for a in aliases)):
        raise located.error("aliases", f"expected a list of names, got {aliases!r}")
    domain = located.data.get("domain")
    if "domain" in located.data and (not isinstance(domain, str) or domain not in DOMAINS):
        raise located.error("domain", f"unknown domain {domain!r}; valid: {', '.join(DOMAINS.names())}")
    common, own = _split_keys(located, DOMAINS.get(domain).task_keys if domain else NoTaskKeys)
    config: TaskConfig = to_dataclass(common, TaskConfig, required=REQUIRED)
    keys = to_dataclass(own, DOMAINS.get(config.domain).task_keys)
    for declared_key in declared(type(keys)):  # ranges too, as the same flags are checked (image_size >= 8)
        declared_key.check(getattr(keys, declared_key.name), f"{own.where(declared_key.name)}: {declared_key.name}")
    config = dataclasses.replace(config, keys=keys)
    if name_problem(config.name):
        raise located.error("name", name_problem(config.name))
    if config.version < 1:
        raise located.error("version", f"expected a positive integer, got {config.version}")
    if config.loader not in LOADERS:
        raise located.error("loader", f"expected one of {', '.join(LOADERS)}, got {config.loader!r}")
    if config.loader == "builtin" and (config.builtin or config.name) not in BUILTIN_DATA:
        raise located.error("builtin", f"no builtin data set {config.builtin!r}; valid: {', '.join(BUILTIN_DATA)}")
    if config.loader == "hub-or-dir" and not config.hub_path:
        raise located.error("hub_path", "a hub-or-dir task needs the hub dataset id (or loader: dir)")
    return config, tuple(aliases), dict(located.lines)


def _split_keys(located: Located, keys_type: type) -> tuple[Located, Located]:
    """The file's common keys (TaskConfig's) and its domain's own keys (``keys_type``'s), as two
    views of the file; a key neither knows is refused with the closest of all of them."""
    common = {f.name for f in dataclasses.fields(TaskConfig) if f.name != "keys"}
    own = {f.name for f in dataclasses.fields(keys_type)}
    for key in located.data:
        if key not in common | own:
            hint = suggest(str(key), sorted(common | own))
            raise located.error(str(key), "unknown key" + (f"; did you mean {hint[0]!r}?" if hint else ""))

    def view(names: set[str]) -> Located:
        return Located(
            located.path,
            {k: v for k, v in located.data.items() if k in names},
            located.lines,
            {k: v for k, v in located.children.items() if k in names},
            located.line,
            {k: v for k, v in located.items.items() if k in names},
        )

    return view(common), view(own)


def is_task_file(name: str) -> bool:
    """Whether a task reference names a file (``./news.yaml``) rather than a registered task."""
    return Path(name).suffix in (".yaml", ".yml")


def register_task_file(path: str | Path) -> TaskConfig:
    """Register the task a file defines. The same file read again (a matrix and ``--include-path``
    naming it both, ``validate`` then ``run``) gives the task it registered the first time."""
    config, aliases, lines = read_task_file(path)
    if config.name in TASKS:
        where, _ = TASK_FILES.get(config.name, ("", {}))
        if where and Path(where).resolve() == Path(path).resolve() and TASKS.get(config.name) == config:
            return config
        raise UserError(f"{path}:{lines.get('name', 1)}: name: task {config.name!r} is already registered")
    TASKS.add(config.name, config, aliases=aliases)
    TASK_FILES[config.name] = (str(Path(path)), lines)
    return config


def include_path(directory: str | Path) -> list[str]:
    """Register every task file in ``directory``; the names registered."""
    root = Path(directory)
    if not root.is_dir():
        raise UserError(f"--include-path {root}: not a directory")
    files = sorted([*root.glob("*.yaml"), *root.glob("*.yml")])
    if not files:
        raise UserError(f"--include-path {root}: no task files (*.yaml, *.yml)")
    return [register_task_file(f).name for f in files]


def register_package_tasks() -> None:
    """The built-in tasks: the files in transferbench/tasks/configs/."""
    for path in sorted(PACKAGE_TASKS.glob("*.yaml")):
        config = register_task_file(path)
        TASK_FILES.pop(config.name)  # errors about built-in tasks name the data, not our file
