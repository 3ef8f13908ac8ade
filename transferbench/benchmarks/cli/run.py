"""``transferbench run``: the runs a command line asks for (a suite, a matrix file, or one task and
adapter with its strategies), the flags laid over them, and the matrix run through an executor.

Flags override the matrix: the run's own options and the budget for every run; a component's
option for every run whose component declares it (``--lora-rank`` reaches the LoRA runs of a
matrix that also fine-tunes), and an option that none of the runs takes is refused in one line.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import re
import sys
from pathlib import Path
from typing import Any

from transferbench.adapters import ADAPTERS
from transferbench.benchmarks.cli.parser import SPELLED_APART
from transferbench.benchmarks.execution import ray_executor  # noqa: F401  (registers --executor ray)
from transferbench.benchmarks.execution.executors import Executor, ExecutorOptions, LaunchedExecutor
from transferbench.benchmarks.execution.matrix import Shard, run_all
from transferbench.benchmarks.plan import data_root, sweeps
from transferbench.benchmarks.plan.catalog import Declared, catalog
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.plan.suites import SUITES, Suite, read_matrix
from transferbench.benchmarks.results import FAILED, RESULTS_FILE, prepare_out_dir, provenance, write_table
from transferbench.benchmarks.runtime import distributed
from transferbench.benchmarks.strategies import STRATEGIES
from transferbench.benchmarks.training.budget import Budget
from transferbench.errors import UserError
from transferbench.options import SEEDS
from transferbench.registry import slug, suggest
from transferbench.tasks import TASKS, hub, include_path, register_task_file
from transferbench.tasks.files import is_task_file
from transferbench.tasks.protocols import PROTOCOLS

EXECUTOR_FLAGS = ("ray_address", "gpus_per_run", "cpus_per_run", "max_retries")


def parse_shard(text: str) -> Shard:
    """``2/4`` -> Shard(2, 4)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise UserError(f"--shard {text!r} is not valid: expected I/N with 1 <= I <= N, e.g. --shard 2/4")
    return Shard(int(match.group(1)), int(match.group(2)))


def parse_budgets(text: str) -> list[int | str | None]:
    """``10,100,vtab-1k,all`` -> [10, 100, "vtab-1k", None]."""
    budgets: list[int | str | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == "all":
            budgets.append(None)
        elif part.isdigit() and int(part) > 0:
            budgets.append(int(part))
        elif part in PROTOCOLS:
            budgets.append(PROTOCOLS.canonical(part))
        else:
            raise UserError(
                f"--train-examples {text!r} is not valid: expected positive integers, 'all' or a data protocol "
                f"({', '.join(PROTOCOLS.names())}), e.g. 10,100,1000,all"
            )
    return budgets


def parse_folds(text: str) -> list[int]:
    """``5``, ``1,3`` or ``all`` (1-5): one run per fold, each checked by the task's own folds."""
    if text.strip().lower() == "all":
        return [1, 2, 3, 4, 5]
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--test-fold {text!r} is not valid: expected fold numbers, a list, or all") from None


def parse_scratch_budget(text: str) -> tuple[float, ...]:
    """``4x`` or ``2x,4x`` -> (4.0,) or (2.0, 4.0): multiples of the budget above 1; ``none``: no
    rows beyond the comparison's own budget (over a matrix file's ``scratch_budget``)."""
    if text.strip().lower() == "none":
        return ()
    out = []
    for part in text.split(","):
        try:
            value = float(part.strip().lower().removesuffix("x"))
        except ValueError:
            value = 0.0
        if not (value > 1 and value < 1e4):
            raise UserError(
                f"--scratch-budget {text!r} is not valid: expected multiples above 1, e.g. 4x or 2x,4x, or none"
            )
        out.append(value)
    return tuple(out)


def _classical(adapter: str) -> bool:
    """A registered classical model (family names, ``hf:DIR``, are networks and resolve later)."""
    return ":" not in adapter and adapter in ADAPTERS and ADAPTERS.get(adapter).classical


def with_scratch_budgets(specs: list[RunSpec], multiples: tuple[float, ...]) -> list[RunSpec]:
    """Beside every from-scratch spec, one at each multiple of its budget (``--scratch-budget``); a
    classical model (fitted in closed form, with no steps to multiply) has none."""
    out = []
    for spec in specs:
        out.append(spec)
        trains = not STRATEGIES.get(spec.strategy).pretrained and not _classical(spec.adapter)
        if trains and spec.budget_multiple == 1:
            out += [dataclasses.replace(spec, budget=spec.budget.scaled(k), budget_multiple=k) for k in multiples]
    return out


def executor_options(args: argparse.Namespace) -> ExecutorOptions:
    """The executor flags given; one that the chosen executor does not read is an error, not a no-op."""
    given = {name: getattr(args, name) for name in EXECUTOR_FLAGS if getattr(args, name) is not None}
    if args.executor == "serial" and given:
        flag = "--" + next(iter(given)).replace("_", "-")
        raise UserError(f"{flag} applies to --executor ray (the serial executor runs each cell here, in turn)")
    options = ExecutorOptions(**given)
    options.check()
    return options


def given_options(args: argparse.Namespace) -> dict[str, tuple[Declared, Any]]:
    """The declared options the command line set, read and checked by their declarations."""
    out = {}
    for name, declared in catalog().items():
        if name in vars(args) and name not in SPELLED_APART:
            value = getattr(args, name)
            out[name] = (declared, value if declared.option.kind is bool else declared.option.from_text(value))
    return out


def with_model(suite: Suite, adapter: str) -> Suite:
    """A matrix's runs for one model: the cells of its domain whose network is not a classical model,
    that network replaced by ``adapter`` (``--suite transferbench-1k --adapter hf:org/model``: the
    model's own rows, under the benchmark's protocol and label)."""
    domain = ADAPTERS.get(adapter).domain
    runs = [
        {**run, "adapter": adapter}
        for run in suite.runs
        if TASKS.get(run["task"]).domain == domain and not _classical(run["adapter"])
    ]
    if not runs:
        raise UserError(f"--adapter {adapter}: suite {suite.name!r} has no {domain} runs of a network to replace")
    unique = list({json.dumps(run, sort_keys=True, default=str): run for run in runs}.values())
    return dataclasses.replace(suite, runs=unique)


def _suite(args: argparse.Namespace) -> Suite:
    """The runs asked for before overrides: a matrix file's or a named suite's (with ``--adapter``, for
    that model), or one per --strategy."""
    if args.suite or args.config or not (args.task or args.adapter):
        if args.task:
            raise UserError("--suite/--config cannot be combined with --task (--select task=NAME picks tasks)")
        if args.suite and args.config:
            raise UserError("--suite and --config both name a run matrix: give one")
        suite = read_matrix(args.config)[0] if args.config else SUITES.get(args.suite or "quick")
        return with_model(suite, args.adapter) if args.adapter else suite
    if not (args.task and args.adapter):
        raise UserError("run needs both --task and --adapter (or --suite NAME, or no arguments for the quick suite)")
    names = [s for s in args.strategy.split(",") if s.strip()]
    if not names:
        raise UserError("--strategy is empty: expected e.g. linear-probe,finetune,scratch")
    templates = [
        {"task": args.task, "adapter": args.adapter, "strategy": STRATEGIES.canonical(s), "budget": {}, "options": {}}
        for s in names
    ]
    return Suite(slug(f"{args.task}-{args.adapter}"), "", "", templates)


SELECTABLE = ("task", "adapter", "strategy", "domain")


def _selected(suite: Suite, selections: list[str] | None) -> Suite:
    """The suite's runs that every ``--select KEY=V1,V2`` holds for; a value that no run has is an
    error naming the values it has (a typo must not select nothing and print an empty table)."""
    runs = suite.runs
    for text in selections or ():
        key, _, values = text.partition("=")
        if key not in SELECTABLE or not values:
            raise UserError(f"--select {text}: expected KEY=V1,V2 with KEY one of {', '.join(SELECTABLE)}")

        def value_of(run: dict[str, Any], key: str = key) -> str:
            name = run["task"] if key in ("task", "domain") else run[key]
            return TASKS.get(name).domain if key == "domain" else name

        present = sorted({value_of(run) for run in suite.runs})
        for value in (v.strip() for v in values.split(",")):
            if value not in present:
                hint = suggest(value, present)
                raise UserError(
                    f"--select {key}={value}: no run of suite {suite.name!r} has it"
                    + (f"; did you mean {hint[0]!r}?" if hint else f" (its {key}s: {', '.join(present)})")
                )
        wanted = {v.strip() for v in values.split(",")}
        runs = [run for run in runs if value_of(run) in wanted]
    return dataclasses.replace(suite, runs=runs)


def _register_task_sources(args: argparse.Namespace) -> None:
    """--include-path folders and a --task that is a file register their tasks first."""
    for folder in args.include_path or ():
        include_path(folder)
    if args.task and is_task_file(args.task):
        args.task = register_task_file(args.task).name


def _strategy_takes(template: dict[str, Any], name: str) -> bool:
    return any(o.name == name for o in STRATEGIES.get(template["strategy"]).options())


def _check_strategy_flags(given: dict[str, tuple[Declared, Any]], suite: Suite) -> None:
    """A strategy option that none of the run's strategies has is an error, not a no-op."""
    for name, (declared, _) in given.items():
        if declared.kind == "strategy" and not any(_strategy_takes(t, name) for t in suite.runs):
            names = ", ".join(sorted({t["strategy"] for t in suite.runs}))
            raise UserError(
                f"{declared.option.flag} applies to strategies that have it ({', '.join(declared.owners)}); "
                f"this run: {names}"
            )


def _cell(
    template: dict[str, Any],
    given: dict[str, tuple[Declared, Any]],
    sweep: dict[str, Any],
    seed: int,
    given_sweep: Any = None,
) -> RunSpec:
    """One spec: the template's values, the flags over them (``given_sweep``: --sweep's), then what
    this cell of the matrix's expansion sets (fold, data budget)."""
    by_kind: dict[str, dict[str, Any]] = {"run": {}, "budget": {}, "options": {}}
    for name, (declared, value) in given.items():
        if declared.kind == "strategy" and not _strategy_takes(template, name):
            continue  # --lora-rank reaches the LoRA runs of the matrix only
        by_kind[declared.kind if declared.kind in ("run", "budget") else "options"][name] = value
    core = {k: v for k, v in template.items() if k not in ("budget", "options")}
    if given_sweep is not None:
        core["sweep"] = given_sweep
    budget = Budget(**{**template["budget"], **by_kind["budget"]})
    options = {**template["options"], **by_kind["options"], **sweep.pop("options", {})}
    return RunSpec(**{**core, **by_kind["run"], **sweep, "seed": seed, "budget": budget, "options": options})


def specs_from_args(args: argparse.Namespace) -> tuple[list[RunSpec], str, str]:
    """The specs a ``run`` command line asks for, the suite's data note and the output folder's name."""
    _register_task_sources(args)
    suite = _selected(_suite(args), args.select)
    given = given_options(args)
    _check_strategy_flags(given, suite)
    seeds = SEEDS.from_text(args.seeds) if args.seeds is not None else suite.seeds
    sweep_budgets = bool(args.train_examples) or suite.train_examples != (None,)
    if sweep_budgets and "max_train_examples" in given:
        raise UserError(
            "--max-train-examples and --train-examples (or the matrix's train_examples) both set the "
            f"training-set size: use one (--train-examples {given['max_train_examples'][1]} for that size alone)"
        )
    data_budgets = parse_budgets(args.train_examples) if args.train_examples else list(suite.train_examples)
    per_class = given["per_class"][1] if "per_class" in given else suite.per_class
    folds = parse_folds(args.test_fold) if args.test_fold else [None]
    given_sweep = sweeps.parse_flag(args.sweep) if args.sweep else None
    specs = []
    for fold, n_examples, template, seed in itertools.product(folds, data_budgets, suite.runs, seeds):
        sweep: dict[str, Any] = {"options": {"test_fold": fold}} if fold is not None else {}
        if sweep_budgets and isinstance(n_examples, str):  # a data protocol fixes the selection itself
            sweep.update(data_protocol=n_examples, max_train_examples=None, per_class=False)
        elif sweep_budgets:
            sweep.update(max_train_examples=n_examples, per_class=per_class)
        if suite.label:
            sweep["suite"] = suite.label
        specs.append(_cell(template, given, sweep, seed, given_sweep))
    multiples = parse_scratch_budget(args.scratch_budget) if args.scratch_budget else suite.scratch_budgets
    if (args.data_root or args.data_map) and "data_dir" in given:
        raise UserError("--data-dir gives every run one folder, --data-root/--data-map one per task: use one")
    specs, skipped = data_root.locate(specs, args.data_root, args.data_map)
    for item in skipped:
        print(f"transferbench: {item.line()}", file=sys.stderr)
    return with_scratch_budgets(specs, multiples), suite.data_note, suite.name


def show_config(specs: list[RunSpec]) -> str:
    """The resolved runs as YAML: what `run` would do, every default filled in."""
    import yaml  # lazy: only --show-config prints YAML

    return yaml.safe_dump([spec.public() for spec in specs], sort_keys=False)


def _executor(args: argparse.Namespace, options: ExecutorOptions) -> str | Executor:
    """The executor named by --executor; under a launcher (torchrun) every rank's LaunchedExecutor."""
    if not distributed.is_distributed():
        return args.executor
    if args.executor != "serial":
        raise UserError(
            f"--executor {args.executor} places whole runs; under torchrun this process is one of "
            f"{distributed.world_size()} that run each cell together: use one or the other"
        )
    return LaunchedExecutor(options)


def cmd_run(args: argparse.Namespace) -> int:
    specs, note, label = specs_from_args(args)
    shard = parse_shard(args.shard) if args.shard else None
    options = executor_options(args)
    if args.show_config:
        print(show_config(shard.select(specs) if shard else specs), end="")
        return 0
    provenance.git_commit()  # read now: the code that runs is the code at start, whatever is committed meanwhile
    out = prepare_out_dir(args.out or Path("runs") / label)
    resume = args.resume if args.resume is not None else bool(args.suite or args.config or not args.task)
    if note:
        print(f"data: {note}")
    count = f"{len(specs)} runs" if shard is None else f"shard {shard.index}/{shard.count}: "
    if shard is not None:
        count += f"{len(shard.select(specs))} of {len(specs)} runs"
    target = out / (shard.file if shard else RESULTS_FILE)
    print(f"{count} -> {target}" + (" (resuming: finished runs are skipped)" if resume else ""))
    progress = not args.no_progress and sys.stderr.isatty()
    hub.set_progress(progress)
    records = run_all(
        specs,
        out_dir=out,
        resume=resume,
        progress=progress,
        executor=_executor(args, options),
        options=options,
        shard=shard,
        match_compute=args.match_compute,
    )
    distributed.shutdown()
    return _finish(records, out) if distributed.is_main() else 0  # rank 0 writes the table


def _finish(records: list[dict[str, Any]], out: Path) -> int:
    """The table of the output folder, and exit status 1 when a run failed."""
    print()
    print(write_table(out))
    failed = sum(r["status"] == FAILED for r in records)
    if failed:
        print(
            f"transferbench: {failed} of {len(records)} runs failed (recorded with their error, listed in "
            f"{out / 'results.md'}); --resume runs them again",
            file=sys.stderr,
        )
        return 1
    return 0
