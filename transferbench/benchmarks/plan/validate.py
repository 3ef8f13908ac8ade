"""``transferbench validate FILE|NAME``: check a task file, a run-matrix file, or an adapter (the
contract validator, on its tiny config) without training anything. Problems are one-line
``UserError``s (``file:line: key: what was expected`` for files)."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from transferbench.adapters import ADAPTERS
from transferbench.adapters.contract import ContractError, applicable_checks
from transferbench.benchmarks.plan.resolve import resolve
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.plan.suites import SUITES, Suite, read_matrix
from transferbench.benchmarks.training.budget import Budget
from transferbench.configfile import read_mapping
from transferbench.errors import UserError
from transferbench.registry import suggest
from transferbench.tasks import TASKS
from transferbench.tasks.files import read_task_file


def suite_specs(suite: Suite) -> list[RunSpec]:
    """The specs of a matrix as it stands (its seeds and data budgets, no flags over it)."""
    specs = []
    for template, seed, n in itertools.product(suite.runs, suite.seeds, suite.train_examples):
        core = {k: v for k, v in template.items() if k not in ("budget", "options")}
        data = {"data_protocol": n} if isinstance(n, str) else {"max_train_examples": n, "per_class": suite.per_class}
        if n is None:
            data = {}
        kw = {"data_dir": "DATA_DIR", **core, **data}  # a local folder's contents are not read here
        specs.append(RunSpec(**kw, seed=seed, budget=Budget(**template["budget"]), options=template["options"]))
    return specs


def check_suite(suite: Suite, where: str) -> int:
    """Every run of a matrix resolves (names, options, numbers), as the planner resolves it."""
    specs = suite_specs(suite)
    per_template = len(suite.seeds) * len(suite.train_examples)
    for i, spec in enumerate(specs):
        try:
            resolve(spec)
        except UserError as exc:
            raise UserError(f"{where}: run {i // per_template + 1}: {exc}") from None
    return len(specs)


def check_adapter_contract(name: str) -> list[str]:
    spec = ADAPTERS.get(name)
    checks = applicable_checks(spec.name)
    with tempfile.TemporaryDirectory(prefix="transferbench-validate-") as workdir:
        for check, run in checks.items():
            try:
                run(spec, Path(workdir))
            except ContractError as exc:
                raise UserError(f"adapter {spec.name!r}: contract check {check!r} failed: {exc}") from None
    return list(checks)


def validate(target: str) -> str:
    """What was checked, in one line; a UserError for the first problem."""
    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if "domain" in read_mapping(path, "config file").data:
            config, _, _ = read_task_file(path)
            return f"{path}: task file OK: task {config.name!r} ({config.domain}, {config.loader})"
        suite, _ = read_matrix(path)
        return f"{path}: run-matrix file OK: {check_suite(suite, str(path))} runs"
    if target in ADAPTERS:
        checks = check_adapter_contract(target)
        return f"adapter {ADAPTERS.canonical(target)!r}: contract OK ({', '.join(checks)})"
    if target in SUITES:
        return f"suite {SUITES.canonical(target)!r}: OK: {check_suite(SUITES.get(target), target)} runs"
    if target in TASKS:
        config = TASKS.get(target)
        return f"task {config.name!r}: OK ({config.domain}, {config.loader})"
    hint = suggest(target, ADAPTERS.names() + TASKS.names() + SUITES.names())
    raise UserError(
        f"validate {target!r}: not a file, adapter, task or suite" + (f"; did you mean {hint[0]!r}?" if hint else "")
    )
