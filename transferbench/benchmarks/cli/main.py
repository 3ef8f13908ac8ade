"""The ``transferbench`` command line.

Every user mistake ends as one line on stderr and exit status 2 (see errors.py); results already
written are never touched by a failing run.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import re
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import transferbench
from transferbench.adapters import ADAPTERS
from transferbench.adapters.families import family_of
from transferbench.benchmarks.execution.matrix import (
    EXECUTORS,
    Executor,
    ExecutorOptions,
    LaunchedExecutor,
    Shard,
    run_all,
)
from transferbench.benchmarks.execution.ray_executor import RayExecutor
from transferbench.benchmarks.execution.runner import INPUT_OPTIONS, STRATEGY_OPTIONS, RunSpec
from transferbench.benchmarks.execution.throughput import BenchConfig, bench, compare_bare, compare_merged
from transferbench.benchmarks.plan.suites import SUITES, Suite, read_matrix
from transferbench.benchmarks.plan.validate import validate
from transferbench.benchmarks.reporting.report import report, write_index
from transferbench.benchmarks.results import provenance
from transferbench.benchmarks.results.store import (
    FAILED,
    RESULTS_FILE,
    append_record,
    prepare_out_dir,
    write_table,
)
from transferbench.benchmarks.runtime import distributed
from transferbench.benchmarks.strategies.base import STRATEGIES
from transferbench.benchmarks.training.loop import Budget
from transferbench.errors import UserError
from transferbench.options import SEEDS
from transferbench.plugins import load_plugins
from transferbench.registry import Registry, slug, suggest
from transferbench.tasks import TASKS, hub, include_path, register_task_file
from transferbench.tasks.files import is_task_file
from transferbench.tasks.protocols import PROTOCOLS

LISTABLE = ("tasks", "adapters", "strategies", "suites")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="transferbench", description="What does transfer learning buy?")
    parser.add_argument("--version", action="version", version=f"transferbench {transferbench.__version__}")
    sub = parser.add_subparsers(dest="command")

    p_list = sub.add_parser("list", help="list tasks, adapters, strategies or suites")
    p_list.add_argument("what", nargs="?", default="all", help=f"one of {', '.join(LISTABLE)} (default: all)")

    _add_run_parser(sub)
    _add_report_parser(sub)
    _add_bench_parser(sub)
    _add_validate_parser(sub)
    return parser


def _add_run_parser(sub: Any) -> None:
    p_run = sub.add_parser("run", help="run a comparison (no arguments: the offline quick suite)")
    p_run.add_argument("--suite", help="a named suite (see `transferbench list suites`)")
    p_run.add_argument("--config", help="a run-matrix file (YAML; the built-in suites are examples); flags override it")
    p_run.add_argument("--show-config", action="store_true", help="print the resolved runs as YAML and stop")
    p_run.add_argument("--task", help="a task name, or a task file (YAML)")
    p_run.add_argument(
        "--include-path", action="append", metavar="DIR", help="register every task file (*.yaml) in DIR"
    )
    p_run.add_argument("--adapter")
    p_run.add_argument(
        "--strategy",
        default="linear-probe,finetune,scratch",
        help="comma-separated strategies (default: linear-probe,finetune,scratch)",
    )
    p_run.add_argument("--data-dir", help="local copy of the task's data instead of the hub")
    p_run.add_argument("--weights", help="local pretrained weights file (.safetensors or .pth state dict)")
    _add_budget_args(p_run)
    _add_input_args(p_run)
    _add_device_args(p_run)
    _add_executor_args(p_run)
    p_run.add_argument("--out", help="output directory (default: runs/<suite or task-adapter>)")
    p_run.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="skip runs with a finished record in the output (default: on for suites)",
    )
    p_run.add_argument("--no-progress", action="store_true")


def _add_budget_args(p_run: argparse.ArgumentParser) -> None:
    """The shared budget and the strategy recipe overrides."""
    p_run.add_argument("--epochs", type=int)
    p_run.add_argument("--batch-size", type=int)
    p_run.add_argument(
        "--min-steps",
        type=int,
        help="optimizer steps every run gets at least, by adding epochs on small training sets (default 100; "
        "0: epochs alone); runs still validate --epochs times",
    )
    p_run.add_argument("--optimizer", choices=("adamw", "adam", "sgd"))
    p_run.add_argument("--lr", type=float, help="head learning rate (backbone: lr x the strategy's scale)")
    p_run.add_argument("--backbone-lr-scale", type=float)
    p_run.add_argument("--weight-decay", type=float)
    p_run.add_argument("--warmup-fraction", type=float)
    p_run.add_argument("--freeze", help="override the strategy's freeze policy: none, backbone or last-K")
    p_run.add_argument(
        "--bn-policy",
        choices=("train", "frozen-stats"),
        help="BatchNorm statistics: update in training, or keep the backbone's (frozen-stats)",
    )
    p_run.add_argument("--head", choices=("linear", "mlp"))
    p_run.add_argument("--seeds", default=None, help="e.g. 0,1,2 or 0-4 (default: 0)")
    p_run.add_argument("--target-accuracy", type=float, help="validation accuracy for time-to-accuracy")
    p_run.add_argument(
        "--target-modules",
        help="lora/ia3: modules that get adapters, comma-separated names or a regex (default: per family)",
    )
    p_run.add_argument("--lora-rank", type=int, help="lora: rank r (default 8)")
    p_run.add_argument("--lora-alpha", type=float, help="lora: scaling alpha (default 16)")
    p_run.add_argument("--lora-dropout", type=float, help="lora: dropout on the adapter input (default 0)")


def _add_input_args(p_run: argparse.ArgumentParser) -> None:
    """Options of the model, its inputs and the data budget."""
    p_run.add_argument("--image-size", type=int, help="input size (default: the task's, else the adapter's native)")
    p_run.add_argument("--model-path", help="text: a local save_pretrained() directory (or another hub id)")
    p_run.add_argument("--pooling", choices=("mean", "cls"), help="text: how token states are pooled (default mean)")
    p_run.add_argument("--max-length", type=int, help="text: truncate to this many tokens (default 128)")
    p_run.add_argument(
        "--trust-remote-code", action="store_true", help="allow a hub model's own Python code to run (off by default)"
    )
    p_run.add_argument(
        "--duration",
        dest="duration",
        type=float,
        help="audio: clip length in seconds that clips are cropped/padded to (default: the task's, else the 99th "
        "percentile of the training clips' lengths, rounded up to 0.1 s, at most 10 s)",
    )
    p_run.add_argument("--text-column", help="text: the CSV column holding the text")
    p_run.add_argument("--label-column", help="the column holding the label")
    p_run.add_argument("--max-train-examples", type=int, help="use at most N training examples (class-balanced)")
    p_run.add_argument(
        "--train-examples",
        help="data-budget sweep, e.g. 10,100,1000,all (total, or per class "
        "with --per-class) or a protocol (vtab-1k: 800 train + 200 validation); every strategy runs at every budget",
    )
    p_run.add_argument(
        "--test-fold",
        help="fold-based tasks (esc50): the held-out fold, or a list/all for "
        "cross-validation, e.g. 1,2,3,4,5 (default 5)",
    )
    p_run.add_argument("--per-class", action="store_true", help="--train-examples counts examples per class")


def _add_device_args(p_run: argparse.ArgumentParser) -> None:
    p_run.add_argument("--device", default="auto")
    p_run.add_argument("--amp", default="auto", help="auto (bf16 on capable GPUs), off, bf16, fp16")
    p_run.add_argument("--channels-last", action="store_true")
    p_run.add_argument("--compile", action="store_true", help="torch.compile the model (recorded with the result)")
    p_run.add_argument(
        "--sync-bn",
        action="store_true",
        help="under torchrun on CUDA: BatchNorm statistics over the global batch (SyncBatchNorm) where they "
        "train (scratch); recorded, and part of the run's identity",
    )
    p_run.add_argument(
        "--pipeline-efficiency",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time synthetic-input training steps to report real/synthetic throughput "
        "(default: on for CUDA, off on CPU)",
    )


def _add_executor_args(p_run: argparse.ArgumentParser) -> None:
    """Where the matrix runs (docs/distributed.md): here one cell at a time, on Ray, or one shard of it."""
    p_run.add_argument(
        "--executor",
        choices=EXECUTORS.names(),
        default="serial",
        help=f"serial: one cell after another here (default); {RayExecutor.name}: each cell a Ray task, on a "
        "local instance or the cluster at --ray-address / $RAY_ADDRESS (needs the ray extra)",
    )
    p_run.add_argument(
        "--ray-address", help="ray: the cluster to run on (default: $RAY_ADDRESS, else a local instance)"
    )
    p_run.add_argument(
        "--gpus-per-run", type=float, help="ray: GPUs each cell reserves (default 0; 0.5 puts two cells on one GPU)"
    )
    p_run.add_argument(
        "--cpus-per-run", type=float, help="ray: CPUs each cell reserves, and its torch threads (default 1)"
    )
    p_run.add_argument("--max-retries", type=int, help="ray: restarts of a cell whose worker process died (default 2)")
    p_run.add_argument(
        "--shard",
        metavar="I/N",
        help="run shard I of N of the matrix (1 <= I <= N; for SLURM arrays and Kubernetes Indexed Jobs), "
        "appending to results.shard-I-of-N.jsonl in --out",
    )


EXECUTOR_FLAGS = ("ray_address", "gpus_per_run", "cpus_per_run", "max_retries")


def parse_shard(text: str) -> Shard:
    """``2/4`` -> Shard(2, 4)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise UserError(f"--shard {text!r} is not valid: expected I/N with 1 <= I <= N, e.g. --shard 2/4")
    return Shard(int(match.group(1)), int(match.group(2)))


def _executor_options(args: argparse.Namespace) -> ExecutorOptions:
    """The executor flags given; one that the chosen executor does not read is an error, not a no-op."""
    given = {name: getattr(args, name) for name in EXECUTOR_FLAGS if getattr(args, name) is not None}
    if args.executor == "serial" and given:
        flag = "--" + next(iter(given)).replace("_", "-")
        raise UserError(f"{flag} applies to --executor ray (the serial executor runs each cell here, in turn)")
    options = ExecutorOptions(**given)
    options.check()
    return options


def _add_report_parser(sub: Any) -> None:
    p_report = sub.add_parser("report", help="tables, CSV and plots from results.jsonl files")
    p_report.add_argument(
        "paths",
        nargs="*",
        help="results.jsonl files, or folders (a folder's results.jsonl and --shard files are read as one set)",
    )
    p_report.add_argument("--out", help="output directory (default: the first path's directory)")
    p_report.add_argument("--skip-invalid", action="store_true", help="skip malformed lines instead of stopping")
    p_report.add_argument("--no-plots", action="store_true")
    p_report.add_argument(
        "--index", metavar="RESULTS_DIR", help="regenerate RESULTS_DIR/README.md, the index of published result sets"
    )


def _add_validate_parser(sub: Any) -> None:
    p_validate = sub.add_parser(
        "validate", help="check a task file, a run-matrix file, an adapter (its contract), a task or a suite"
    )
    p_validate.add_argument("targets", nargs="+", metavar="FILE|NAME")


def _add_bench_parser(sub: Any) -> None:
    p_bench = sub.add_parser("bench", help="throughput on synthetic inputs (train and/or inference)")
    p_bench.add_argument("--adapter", required=True)
    p_bench.add_argument("--batch-size", type=int, default=32)
    p_bench.add_argument("--image-size", type=int, help="vision input size (default: the adapter's native)")
    p_bench.add_argument("--seq-len", type=int, default=128, help="text sequence length")
    p_bench.add_argument("--amp", default="auto", help="auto (bf16 on capable GPUs), off, bf16, fp16")
    p_bench.add_argument("--channels-last", action="store_true")
    p_bench.add_argument("--compile", action="store_true", help="torch.compile the model")
    p_bench.add_argument("--mode", default="both", choices=("train", "infer", "both"))
    p_bench.add_argument("--steps", type=int, default=20, help="timed steps")
    p_bench.add_argument("--warmup", type=int, default=5, help="untimed warm-up steps")
    p_bench.add_argument("--device", default="auto")
    p_bench.add_argument("--model-path", help="text: a local save_pretrained() directory")
    p_bench.add_argument(
        "--compare-bare",
        action="store_true",
        help="compare our train step with a bare PyTorch loop (interleaved, same process)",
    )
    p_bench.add_argument(
        "--merged",
        action="store_true",
        help="LoRA inference: adapters merged into the weights vs kept separate (interleaved, same process)",
    )
    p_bench.add_argument("--out", help="append the record as one JSON line to OUT/bench.jsonl")


def parse_budgets(text: str) -> list[int | None]:
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
    """``5``, ``1,3`` or ``all`` (1-5)."""
    if text.strip().lower() == "all":
        return [1, 2, 3, 4, 5]
    try:
        folds = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--test-fold {text!r} is not valid: expected fold numbers 1-5, a list, or all") from None
    if not all(1 <= f <= 5 for f in folds):
        raise UserError(f"--test-fold {text!r} is not valid: folds are numbered 1-5")
    return folds


def cmd_report(args: argparse.Namespace) -> None:
    if args.index:
        print(f"wrote {write_index(args.index)}")
        if not args.paths:
            return
    if not args.paths:
        raise UserError("report needs at least one results.jsonl (or directory), or --index RESULTS_DIR")
    first = Path(args.paths[0])
    out = args.out or (first if first.is_dir() else first.parent)
    summary = report(args.paths, out, skip_invalid=args.skip_invalid, plots=not args.no_plots)
    print(f"{summary['records']} records -> " + ", ".join(str(f) for f in summary["files"]))
    if summary["skipped"]:
        print(f"skipped {len(summary['skipped'])} lines: " + "; ".join(summary["skipped"][:5]))


def cmd_bench(args: argparse.Namespace) -> None:
    provenance.git_commit()  # read at start, as `run` does
    cfg = BenchConfig(**{f.name: getattr(args, f.name) for f in fields(BenchConfig) if hasattr(args, f.name)})
    out = prepare_out_dir(args.out) if args.out else None
    if args.compare_bare:
        record = compare_bare(cfg)
        print(
            f"{record['adapter']} train step, batch {cfg.batch_size}, {record['setup']['input']}, "
            f"amp {record['setup']['amp']} on {record['hardware'].get('gpu') or record['hardware']['cpu']}:"
        )
        print(
            f"  transferbench {record['ours']['samples_per_s']:.1f} samples/s, "
            f"bare loop {record['bare']['samples_per_s']:.1f} samples/s, ratio {record['ratio']:.3f}"
        )
    elif args.merged:
        record = compare_merged(cfg)
        print(
            f"{record['adapter']} inference with LoRA on {record['wrapped_modules']} layers, batch {cfg.batch_size}, "
            f"{record['setup']['input']}, amp {record['setup']['amp']} on "
            f"{record['hardware'].get('gpu') or record['hardware']['cpu']}:"
        )
        print(
            f"  merged {record['merged']['samples_per_s']:.1f} samples/s, unmerged "
            f"{record['unmerged']['samples_per_s']:.1f} samples/s, ratio {record['ratio']:.3f}"
        )
    else:
        record = bench(cfg)
        print("| adapter | mode | batch | input | amp | samples/s | step ms (median, p10-p90) | peak GiB |")
        print("|---|---|---:|---|---|---:|---|---:|")
        for mode, r in record["results"].items():
            peak = "—" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.2f}"
            print(
                f"| {record['adapter']} | {mode} | {r['batch_size']} | {record['setup']['input']} "
                f"| {record['setup']['amp']} | {r['samples_per_s']:.1f} | {r['step_ms_median']:.1f} "
                f"({r['step_ms_p10']:.1f}-{r['step_ms_p90']:.1f}) | {peak} |"
            )
            if r["oom_halvings"]:
                print(f"  note: out of memory at batch {cfg.batch_size}; halved {r['oom_halvings']}x")
    if out is not None:
        append_record(out / "bench.jsonl", record)
        print(f"-> {out / 'bench.jsonl'}")


def cmd_list(what: str) -> None:
    registries: dict[str, tuple[Registry, Any]] = {
        "tasks": (TASKS, lambda t: f"[{t.domain}] {t.description}"),
        "adapters": (ADAPTERS, _describe_adapter),
        "strategies": (STRATEGIES, lambda s: f"{s.description}\n      applies to: {s.scope()}"),
        "suites": (SUITES, lambda s: s.description),
    }
    if what != "all" and what not in registries:
        hint = suggest(what, list(registries))
        raise UserError(
            f"cannot list {what!r}"
            + (f"; did you mean {hint[0]}?" if hint else "")
            + f" Expected one of: {', '.join(LISTABLE)}"
        )
    for kind in LISTABLE if what == "all" else (what,):
        registry, describe = registries[kind]
        print(f"{kind}:")
        for name in registry.names():
            aliases = registry.aliases_of(name)
            alias_text = f" (aliases: {', '.join(aliases)})" if aliases else ""
            print(f"  {name}{alias_text}\n      {describe(registry.get(name))}")
        for prefix, description in registry.families().items():
            print(f"  {prefix}:<name>\n      {description}")


def _describe_adapter(spec: Any) -> str:
    family = family_of(spec)
    text = f"[{spec.domain}] {spec.description}; pretrained: {spec.pretrained_source}"
    text += f"; family: {family}" if family else ""
    if spec.recipes:
        recipes = "; ".join(
            f"{strategy} " + ", ".join(f"{k}={v:g}" for k, v in values.items())
            for strategy, values in spec.recipes.items()
        )
        text += f"\n      recipe overrides: {recipes}"
    return text


BUDGET_FLAGS = ("epochs", "batch_size", "optimizer", "warmup_fraction", "min_steps")
RUN_FLAGS = (
    "data_dir",
    "weights",
    "lr",
    "backbone_lr_scale",
    "weight_decay",
    "freeze",
    "bn_policy",
    "head",
    "max_train_examples",
    "target_accuracy",
    "device",
    "amp",
    "channels_last",
    "pipeline_efficiency",
    "compile",
    "sync_bn",
    *INPUT_OPTIONS,
    *STRATEGY_OPTIONS,
)


STORE_TRUE = ("channels_last", "compile", "trust_remote_code", "sync_bn")


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    """The flags the user set (a store_true flag left off is not an override; --no-X is)."""
    values = {name: getattr(args, name) for name in names}
    return {k: v for k, v in values.items() if v is not None and not (k in STORE_TRUE and v is False)}


def _suite(args: argparse.Namespace) -> Suite:
    """The runs asked for before overrides: a matrix file's, a named suite's, or one per --strategy."""
    if args.suite or args.config or not (args.task or args.adapter):
        if args.task or args.adapter:
            raise UserError("--suite/--config cannot be combined with --task/--adapter")
        if args.suite and args.config:
            raise UserError("--suite and --config both name a run matrix: give one")
        return read_matrix(args.config)[0] if args.config else SUITES.get(args.suite or "quick")
    if not (args.task and args.adapter):
        raise UserError("run needs both --task and --adapter (or --suite NAME, or no arguments for the quick suite)")
    names = [s for s in args.strategy.split(",") if s.strip()]
    if not names:
        raise UserError("--strategy is empty: expected e.g. linear-probe,finetune,scratch")
    templates = [{"task": args.task, "adapter": args.adapter, "strategy": STRATEGIES.canonical(s)} for s in names]
    return Suite(slug(f"{args.task}-{args.adapter}"), "", "", templates)


def _register_task_sources(args: argparse.Namespace) -> None:
    """--include-path folders and a --task that is a file register their tasks first."""
    for folder in args.include_path or ():
        include_path(folder)
    if args.task and is_task_file(args.task):
        args.task = register_task_file(args.task).name


def _check_strategy_options(overrides: dict[str, Any], suite: Suite) -> None:
    """A strategy option (--lora-rank, ...) that none of the run's strategies has is an error, not a no-op."""
    strategies = {STRATEGIES.get(t["strategy"]) for t in suite.runs}
    for option in STRATEGY_OPTIONS:
        if option in overrides and not any(option in {f.name for f in dataclasses.fields(s)} for s in strategies):
            names = ", ".join(sorted(s.name for s in strategies))
            raise UserError(
                f"--{option.replace('_', '-')} applies to strategies that have it (lora, ia3); this run: {names}"
            )


def _specs_from_args(args: argparse.Namespace) -> tuple[list[RunSpec], str, str]:
    _register_task_sources(args)
    suite = _suite(args)
    seeds = SEEDS.from_text(args.seeds) if args.seeds is not None else suite.seeds
    budget_overrides, run_overrides = _given(args, BUDGET_FLAGS), _given(args, RUN_FLAGS)
    _check_strategy_options(run_overrides, suite)
    if (args.train_examples or suite.train_examples != (None,)) and args.max_train_examples is not None:
        raise UserError(
            "--max-train-examples and --train-examples (or the matrix's train_examples) both set the "
            "training-set size: use one "
            f"(--train-examples {args.max_train_examples} for that size alone)"
        )
    sweep_budgets = bool(args.train_examples) or suite.train_examples != (None,)
    data_budgets = parse_budgets(args.train_examples) if args.train_examples else list(suite.train_examples)
    per_class = args.per_class or suite.per_class
    folds = parse_folds(args.test_fold) if args.test_fold else [None]
    specs = []
    for fold, n_examples, template, seed in itertools.product(folds, data_budgets, suite.runs, seeds):
        budget = Budget(**{**template.get("budget", {}), **budget_overrides})
        sweep: dict[str, Any] = {"test_fold": fold}
        if sweep_budgets:
            if isinstance(n_examples, str):  # a data protocol fixes the selection itself
                sweep.update(data_protocol=n_examples, max_train_examples=None, per_class=False)
            else:
                sweep.update(max_train_examples=n_examples, per_class=per_class)
        kw = {k: v for k, v in template.items() if k != "budget"}
        specs.append(RunSpec(**{**kw, **run_overrides, **sweep, "seed": seed, "budget": budget}))
    return specs, suite.data_note, suite.name


def show_config(specs: list[RunSpec]) -> str:
    """The resolved runs as YAML: what `run` would do, every default filled in."""
    import yaml  # lazy: only --show-config prints YAML

    return yaml.safe_dump([dataclasses.asdict(spec) for spec in specs], sort_keys=False)


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
    specs, note, label = _specs_from_args(args)
    shard = parse_shard(args.shard) if args.shard else None
    options = _executor_options(args)
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
    executor = _executor(args, options)
    records = run_all(
        specs, out_dir=out, resume=resume, progress=progress, executor=executor, options=options, shard=shard
    )
    distributed.shutdown()
    if not distributed.is_main():  # rank 0 writes the table
        return 0
    table = write_table(out)
    print()
    print(table)
    failed = sum(r["status"] == FAILED for r in records)
    if failed:
        print(
            f"transferbench: {failed} of {len(records)} runs failed (recorded with their error, listed in "
            f"{out / 'results.md'}); --resume runs them again",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not distributed.is_main():  # one copy of the output: rank 0's (errors still reach stderr)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the process's lifetime)
    if args.command is None:  # bare `transferbench`: the quick suite, like `transferbench run`
        args = parser.parse_args(["run", *(argv or [])])
    try:
        load_plugins()
        if args.command == "list":
            cmd_list(args.what)
        elif args.command == "bench":
            cmd_bench(args)
        elif args.command == "report":
            cmd_report(args)
        elif args.command == "validate":
            for target in args.targets:
                print(validate(target))
        else:
            return cmd_run(args)
    except UserError as exc:
        distributed.before_error_line(exc, user_error=True)
        print(f"transferbench: error{_where()}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("transferbench: interrupted; finished runs are in results.jsonl", file=sys.stderr)
        return 130
    except Exception as exc:  # one rank of a run across processes: one line, not N interleaved tracebacks
        if not distributed.is_distributed():
            raise
        distributed.before_error_line(exc, user_error=False)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"transferbench: error{_where()}: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    return 0


def _where() -> str:
    """`` (rank 1/2)`` in a run across processes, so the line says which process failed."""
    return f" ({distributed.label()})" if distributed.is_distributed() else ""


if __name__ == "__main__":
    sys.exit(main())
