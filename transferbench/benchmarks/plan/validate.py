"""``transferbench validate FILE|NAME``: check a task file, a run-matrix file, or an adapter (the
contract validator, on its tiny config) without training anything. Problems are one-line
``UserError``s (``file:line: key: what was expected`` for files)."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from transferbench.adapters import ADAPTERS
from transferbench.adapters.contract import ContractError, applicable_checks
from transferbench.benchmarks.execution.runner import RunSpec, validate_spec
from transferbench.benchmarks.plan.suites import SUITES, Suite, read_matrix
from transferbench.benchmarks.training.loop import Budget
from transferbench.configfile import read_mapping
from transferbench.errors import UserError
from transferbench.registry import suggest
from transferbench.tasks import TASKS
from transferbench.tasks.files import read_task_file


def check_suite(suite: Suite, where: str) -> int:
    """Every run of a matrix passes the runner's own validation (names, options, numbers)."""
    count = 0
    for i, (template, seed, n) in enumerate(itertools.product(suite.runs, suite.seeds, suite.train_examples)):
        kw = {"data_dir": "DATA_DIR", **{k: v for k, v in template.items() if k != "budget"}}  # not read here
        spec = RunSpec(**kw, seed=seed, budget=Budget(**template.get("budget", {})), max_train_examples=n)
        try:
            validate_spec(spec)
        except UserError as exc:
            raise UserError(f"{where}: run {i // (len(suite.seeds) * len(suite.train_examples)) + 1}: {exc}") from None
        count += 1
    return count


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
