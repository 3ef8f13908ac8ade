"""Run matrices: a named list of runs that belong in one table, read from a YAML file.

The built-in suites are such files (``transferbench/benchmarks/plan/suites/*.yaml``); ``run --config
FILE`` reads a user's. A file holds a shared ``budget``, run ``defaults``, an optional ``grid``
(tasks x adapters x strategies) and explicit ``runs``; ``grids`` is a list of such grids, each with
its own run keys (``image_size: 96`` for a vision grid); ``seeds``, ``train_examples`` (with
``per_class``) sweep every cell. A ``version`` makes the file a versioned benchmark: every run's
record carries ``name@version``, and the headline table refuses to average across versions. Command-
line flags override the file. Every key is checked: an unknown one is an error naming ``file:line``
with the closest valid key.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferbench.benchmarks.plan import sweeps
from transferbench.benchmarks.plan.catalog import catalog
from transferbench.benchmarks.training.budget import Budget
from transferbench.configfile import Located, read_mapping, to_dataclass
from transferbench.options import SEEDS, declared
from transferbench.registry import Registry, name_problem, suggest
from transferbench.tasks.files import include_path, is_task_file, register_task_file
from transferbench.tasks.protocols import PROTOCOLS

PACKAGE_SUITES = Path(__file__).parent / "suites"


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    data_note: str  # what data the suite uses, printed with its results
    runs: list[dict[str, Any]] = field(default_factory=list)  # per run: names, run options, budget, options
    seeds: tuple[int, ...] = (0,)
    train_examples: tuple[int | str | None, ...] = (None,)  # data budgets (None: all; a str: a data protocol)
    per_class: bool = False
    scratch_budgets: tuple[float, ...] = ()  # from-scratch rows also at these multiples of the budget
    version: int | None = None  # a versioned benchmark's (its records carry ``name@version``)

    @property
    def label(self) -> str | None:
        """``name@version`` for a versioned benchmark (what its records carry), else None."""
        return None if self.version is None else f"{self.name}@{self.version}"


@dataclass
class Grid:
    """Every combination of these is one cell."""

    tasks: tuple[str, ...] = ()
    adapters: tuple[str, ...] = ()
    strategies: tuple[str, ...] = ("linear-probe", "finetune", "scratch")


@dataclass
class MatrixFile:
    """The keys of a run-matrix file (``runs`` and ``defaults`` hold RunSpec keys, checked apart)."""

    name: str = ""
    version: int | None = None  # a versioned benchmark: records carry name@version
    description: str = ""
    data_note: str = ""
    seeds: tuple[int, ...] = (0,)
    train_examples: tuple[int | str, ...] = ("all",)
    per_class: bool = False
    budget: Budget | None = None
    grid: Grid | None = None
    include_path: tuple[str, ...] = ()  # folders of task files, relative to the matrix file
    scratch_budget: tuple[float, ...] = ()  # as --scratch-budget: from-scratch rows also at K times the budget


def _task_reference(item: Located, key: str, value: Any) -> Any:
    """A task named by file (``task: ./news.yaml``) is read relative to the matrix file and
    registered; the run then names the task it defines."""
    if not isinstance(value, str) or not is_task_file(value):
        return value
    path = item.path.parent / value
    if not path.is_file():
        raise item.error(key, f"task file {value!r} not found (read relative to the matrix file: {path})")
    return register_task_file(path).name


def _include_paths(located: Located, folders: tuple[str, ...]) -> None:
    """The matrix's ``include_path`` folders, relative to the file, register their task files."""
    for folder in folders:
        root = located.path.parent / folder
        if not root.is_dir():
            raise located.error("include_path", f"{folder!r} is not a folder (read relative to the matrix file)")
        include_path(root)


NAMES = ("task", "adapter", "strategy")
GRID_AXES = {"tasks": "task", "adapters": "adapter", "strategies": "strategy"}


def checked_options(item: Located, data: dict[str, Any]) -> dict[str, Any]:
    """A run's keys as a template: names, the run's own options, ``budget`` and component
    ``options``, every value checked by its declaration (one line naming file:line and key)."""
    known = catalog()
    template: dict[str, Any] = {"budget": {}, "options": {}}
    for key, value in data.items():
        if key in NAMES:
            template[key] = value
        elif key == "budget":
            template["budget"] = checked_budget(item.children.get("budget", item), value or {})
        elif key == "sweep":
            template["sweep"] = sweeps.checked(value, f"{item.where(key)}: sweep")
        elif key in known and key != "seed":
            option = known[key]
            section = {"budget": template["budget"], "run": template}.get(option.kind, template["options"])
            section[key] = option.option.check(value, f"{item.where(key)}: {key}")
        else:
            hint = suggest(str(key), [*NAMES, "budget", "sweep", *(k for k in known if k != "seed")])
            raise item.error(str(key), "unknown key" + (f"; did you mean {hint[0]!r}?" if hint else ""))
    return template


def checked_budget(item: Located, values: dict[str, Any]) -> dict[str, Any]:
    """A ``budget:`` mapping, each value checked by the budget's declarations."""
    own = {o.name: o for o in declared(Budget)}
    if not isinstance(values, dict):
        raise item.error("budget", f"expected a mapping of budget keys ({', '.join(own)}), got {values!r}")
    for key, value in values.items():
        if key not in own:
            hint = suggest(str(key), list(own))
            raise item.error(str(key), "unknown budget key" + (f"; did you mean {hint[0]!r}?" if hint else ""))
        own[key].check(value, item.where(key) + f": {key}")
    return dict(values)


def _run_template(item: Located, base: dict[str, Any], budget: dict[str, Any]) -> dict[str, Any]:
    """One run's template: the file's budget, then ``defaults``, then the run's own keys (budgets and
    options merged key by key); errors name the run's line."""
    own = checked_options(item, item.data)
    template = {
        **base,
        **{k: v for k, v in own.items() if k not in ("budget", "options")},
        "budget": {**budget, **base.get("budget", {}), **own["budget"]},
        "options": {**base.get("options", {}), **own["options"]},
    }
    for key in NAMES:
        if key not in template:
            raise item.error(None, f"a run needs {key!r} (in the run, in defaults, or from a grid)")
    template["task"] = _task_reference(item, "task", template["task"])
    return template


def _data_budgets(located: Located, values: tuple[int | str, ...]) -> tuple[int | str | None, ...]:
    out: list[int | str | None] = []
    for value in values:
        if value == "all":
            out.append(None)
        elif isinstance(value, int) and not isinstance(value, bool) and value > 0:
            out.append(value)
        elif isinstance(value, str) and value in PROTOCOLS:
            out.append(PROTOCOLS.canonical(value))
        else:
            raise located.error(
                "train_examples",
                f"expected positive integers, 'all' or a data protocol ({', '.join(PROTOCOLS.names())}), got {value!r}",
            )
    return tuple(out)


def _scratch_budgets(located: Located, values: tuple[float, ...]) -> tuple[float, ...]:
    if any(not 1 < v < 1e4 for v in values):
        why = f"expected multiples of the budget above 1, e.g. [4]; got {list(values)}"
        raise located.error("scratch_budget", why)
    return tuple(float(v) for v in values)


def _grid_cells(located: Located, grids: Any, items: list[Located]) -> list[Located]:
    """``grids``: each entry's tasks x adapters x strategies, every cell with the entry's other keys
    (run keys, checked like a run's) and the entry's line for errors."""
    if not isinstance(grids, list) or len(items) != len(grids):
        raise located.error("grids", "expected a list of grids, each a mapping with tasks, adapters, strategies")
    cells = []
    for item in items:
        axes = []
        for key in GRID_AXES:
            names = item.data.get(key)
            if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
                raise item.error(key, f"expected a non-empty list of {key}, got {names!r}")
            axes.append(names)
        rest = {k: v for k, v in item.data.items() if k not in GRID_AXES}
        for combo in itertools.product(*axes):
            data = {**dict(zip(GRID_AXES.values(), combo, strict=True)), **rest}
            cells.append(Located(item.path, data, item.lines, item.children, item.line, item.items))
    return cells


def read_matrix(path: str | Path) -> tuple[Suite, tuple[str, ...]]:
    """A run-matrix file as a Suite (and its aliases)."""
    located = read_mapping(path, "run-matrix file")
    aliases = tuple(located.data.pop("aliases", ()))
    runs = located.data.pop("runs", [])
    run_items = located.items.pop("runs", [])
    grid_cells = _grid_cells(located, located.data.pop("grids", []), located.items.pop("grids", []))
    defaults = located.children.pop("defaults", None)
    located.data.pop("defaults", None)
    head: MatrixFile = to_dataclass(located, MatrixFile)
    _include_paths(located, head.include_path)
    if not isinstance(runs, list) or len(run_items) != len(runs):
        raise located.error("runs", "expected a list of runs, each a mapping of run keys")
    budget = checked_budget(located.children["budget"], located.data["budget"]) if head.budget else {}
    base = checked_options(defaults, defaults.data) if defaults else {}
    cells = [
        Located(located.path, {"task": t, "adapter": a, "strategy": s}, {}, {}, located.lines.get("grid", 1))
        for t, a, s in itertools.product(*(dataclasses.astuple(head.grid) if head.grid else ((), (), ())))
    ]
    templates = [_run_template(item, base, budget) for item in [*cells, *grid_cells, *run_items]]
    if not templates:
        raise located.error(None, "no runs: give a grid (tasks, adapters, strategies) or a list of runs")
    SEEDS.check(head.seeds, f"{located.where('seeds')}: seeds")
    name = head.name or Path(path).stem
    if name_problem(name):
        raise located.error("name" if head.name else None, f"suite {name_problem(name)}")
    suite = Suite(
        name,
        head.description,
        head.data_note,
        templates,
        head.seeds,
        _data_budgets(located, head.train_examples),
        head.per_class,
        _scratch_budgets(located, head.scratch_budget),
        head.version,
    )
    if head.version is not None and head.version < 1:
        raise located.error("version", f"expected a positive integer, got {head.version}")
    return suite, aliases


SUITES: Registry[Suite] = Registry("suite")


def register_matrix(path: str | Path) -> Suite:
    suite, aliases = read_matrix(path)
    SUITES.add(suite.name, suite, aliases=aliases)
    return suite


for _path in sorted(PACKAGE_SUITES.glob("*.yaml")):
    register_matrix(_path)
