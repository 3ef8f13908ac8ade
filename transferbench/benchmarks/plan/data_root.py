"""A whole suite offline with one flag: ``--data-root DIR`` gives each task the local copy at
``DIR/<task>`` (any layout ``--data-dir`` reads), or at the folder a data map names (``--data-map
FILE``: task -> folder, for trees where two tasks share one folder, as FSDD's digits and speakers do).
A task with no local copy there is skipped and said so, never dropped silently; a task whose data
ships with a package (``loader: builtin``) needs none. Built-in maps live in ``data_maps/`` and are
named without their ``.yaml`` (``--data-map shared-data``). An entry is a folder, or a mapping of
``folder`` and the run options that copy needs (``text_column: text`` where its columns are named
other than the hub's), checked as the same flags are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferbench.benchmarks.plan.catalog import catalog
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.configfile import Located, read_mapping
from transferbench.errors import UserError
from transferbench.registry import suggest
from transferbench.tasks import TASKS

PACKAGE_MAPS = Path(__file__).parent / "data_maps"


@dataclass(frozen=True)
class Skipped:
    """A task of the matrix that has no local copy under the data root."""

    task: str
    looked_in: str

    def line(self) -> str:
        return f"skipped {self.task}: no local copy at {self.looked_in}"


def builtin_maps() -> list[str]:
    return sorted(p.stem for p in PACKAGE_MAPS.glob("*.yaml"))


@dataclass(frozen=True)
class Copy:
    """Where a task's local copy is, relative to the data root, and the options reading it needs."""

    folder: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


def _entry(located: Located, task: str, value: Any) -> Copy:
    fields = dict(value) if isinstance(value, dict) else {"folder": value}
    folder = fields.pop("folder", None)
    if not isinstance(folder, str) or not folder.strip() or Path(folder).is_absolute():
        raise located.error(task, f"expected a folder relative to the data root, got {folder!r}")
    known = catalog()
    for key, option_value in fields.items():
        if key not in known or known[key].kind in ("run", "budget", "strategy"):
            raise located.error(task, f"{key}: not an option a local copy can set (e.g. text_column, label_column)")
        fields[key] = known[key].option.check(option_value, f"{located.where(task)}: {key}")
    return Copy(folder, fields)


def read_data_map(value: str) -> tuple[Path, dict[str, Copy]]:
    """The map file (a path, or a built-in map's name) and its task -> copy entries, every task
    name checked against the registry, every folder a relative path and every option its value."""
    path = Path(value)
    if not path.is_file() and (PACKAGE_MAPS / f"{value}.yaml").is_file():
        path = PACKAGE_MAPS / f"{value}.yaml"
    if not path.is_file():
        raise UserError(f"--data-map {value}: no such file, nor a built-in map ({', '.join(builtin_maps())})")
    located = read_mapping(path, "data map")
    entries = {}
    for task, folder in located.data.items():
        if task not in TASKS:
            hint = suggest(str(task), TASKS.names())
            raise located.error(str(task), "unknown task" + (f"; did you mean {hint[0]!r}?" if hint else ""))
        entries[TASKS.canonical(task)] = _entry(located, str(task), folder)
    return path, entries


def locate(specs: list[RunSpec], root: str | None, data_map: str | None) -> tuple[list[RunSpec], list[Skipped]]:
    """Each spec's local copy under the data root (a spec that names its own data_dir keeps it);
    the specs that have one (or need none) and the tasks skipped for want of one."""
    if root is None and data_map is None:
        return specs, []
    map_path, entries = read_data_map(data_map) if data_map else (None, {})
    base = Path(root) if root is not None else map_path.parent  # type: ignore[union-attr]
    if not base.is_dir():
        raise UserError(f"--data-root {root}: {'is not a folder' if base.exists() else 'does not exist'}")
    kept, skipped = [], {}
    for spec in specs:
        config = TASKS.get(spec.task)
        if spec.data_dir is not None or config.loader == "builtin":
            kept.append(spec)
            continue
        copy = entries.get(config.name, Copy(config.name))
        folder = base / copy.folder
        if folder.is_dir():
            options = {**copy.options, **spec.options}  # a matrix's or flag's own value wins
            kept.append(dataclasses.replace(spec, data_dir=str(folder), options=options))
        else:
            skipped.setdefault(config.name, Skipped(config.name, str(folder)))
    return kept, list(skipped.values())
