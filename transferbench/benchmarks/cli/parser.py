"""The command line's parser. ``run``'s option flags are generated from the declared options
(``plan.catalog``): one per option of every run, budget, strategy, domain, adapter and task kind,
so an option declared by a new strategy or domain is a flag with no edit here. Generated flags have
no argparse default: a flag that was not given is absent, so a matrix file's value stands."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

import transferbench
from transferbench.benchmarks.execution.executors import EXECUTORS
from transferbench.benchmarks.plan.catalog import Declared, catalog
from transferbench.errors import UserError
from transferbench.registry import suggest

# declared options the run command spells its own way: seeds (SEEDS: lists and ranges), the
# held-out fold (a list or ``all``: one run per fold)
SPELLED_APART = ("seed", "test_fold")
LISTABLE = ("tasks", "adapters", "strategies", "suites", "domains", "options")


class Parser(argparse.ArgumentParser):
    """argparse, whose mistakes are the suite's one line (exit status 2) and whose unknown flags
    suggest the closest ones (``--frozen-blokcs`` -> ``--frozen-blocks``)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments: "):
            unknown = message.removeprefix("unrecognized arguments: ").split()[0]
            known = [o for action in self._all_actions() for o in action.option_strings if o.startswith("--")]
            hint = suggest(unknown.split("=")[0], known)
            message = f"{unknown}: unknown option" + (f"; did you mean {hint[0]}?" if hint else "")
        raise UserError(message)

    def _all_actions(self) -> list[argparse.Action]:
        subparsers = [a for a in self._actions if isinstance(a, argparse._SubParsersAction)]
        return [*self._actions, *(x for s in subparsers for p in s.choices.values() for x in p._actions)]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="transferbench", description="What does transfer learning buy?")
    parser.add_argument("--version", action="version", version=f"transferbench {transferbench.__version__}")
    sub = parser.add_subparsers(dest="command")
    p_list = sub.add_parser("list", help="list tasks, adapters, strategies, suites, domains or options")
    p_list.add_argument("what", nargs="?", default="all", help=f"one of {', '.join(LISTABLE)} (default: all)")
    _add_run_parser(sub)
    _add_report_parser(sub)
    _add_bench_parser(sub)
    _add_export_parser(sub)
    p_validate = sub.add_parser(
        "validate", help="check a task file, a run-matrix file, an adapter (its contract), a task or a suite"
    )
    p_validate.add_argument("targets", nargs="+", metavar="FILE|NAME")
    return parser


def _add_data_args(p_run: argparse.ArgumentParser) -> None:
    """Which cells of a matrix run and where their local copies are."""
    p_run.add_argument(
        "--data-root",
        metavar="DIR",
        help="every task of the matrix from its local copy DIR/<task> (or the folder --data-map names); "
        "tasks without one are skipped and listed",
    )
    p_run.add_argument(
        "--data-map",
        metavar="FILE|NAME",
        help="task -> folder under --data-root (YAML), or a built-in map's name (shared-data)",
    )
    p_run.add_argument(
        "--select",
        action="append",
        metavar="KEY=V1,V2",
        help="run only the matrix's cells with these values: task, adapter, strategy or domain "
        "(several --select: all must hold), e.g. --select domain=text --select strategy=linear-probe",
    )


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
    p_run.add_argument("--seeds", default=None, help="e.g. 0,1,2 or 0-4 (default: 0)")
    p_run.add_argument(
        "--train-examples",
        help="data-budget sweep, e.g. 10,100,1000,all (total, or per class with --per-class) or a protocol "
        "(vtab-1k: 800 train + 200 validation); every strategy runs at every budget",
    )
    p_run.add_argument(
        "--test-fold",
        help="fold-based tasks (esc50): the held-out fold, or a list/all for cross-validation, e.g. 1,2,3,4,5 "
        "(default 5)",
    )
    p_run.add_argument(
        "--sweep",
        action="append",
        metavar="OPTION=V1,V2|default",
        help="tune on validation: train every value (several --sweep: a grid), test the winner only; default: "
        "each strategy's own sweep (learning rate x1/3, x1, x3); see --sweep-seeds and --sweep-widen",
    )
    p_run.add_argument(
        "--scratch-budget",
        metavar="Kx[,Kx]",
        help="also train every from-scratch row at K times the budget's epochs and step floor, e.g. 4x "
        "(none: not even a matrix file's)",
    )
    p_run.add_argument(
        "--match-compute",
        choices=("flops", "seconds"),
        help="also train every from-scratch row with the train FLOPs (or seconds) of each pretrained strategy it "
        "is compared to, at its own measured cost per step",
    )
    _add_data_args(p_run)
    options = p_run.add_argument_group("options (declared by the run, its budget and its components)")
    for declared in catalog().values():
        if declared.option.name not in SPELLED_APART:
            add_option_flag(options, declared)
    _add_executor_args(p_run)
    p_run.add_argument("--out", help="output directory (default: runs/<suite or task-adapter>)")
    p_run.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="skip runs with a finished record in the output (default: on for suites)",
    )
    p_run.add_argument("--no-progress", action="store_true")


def add_option_flag(group: Any, declared: Declared) -> None:
    """The flag of one declared option: text that ``Option.from_text`` reads (booleans: --x/--no-x)."""
    opt = declared.option
    text = f"{opt.help} ({opt.expected()}; default {opt.default_text or opt.default}) [{declared.applies_to()}]"
    text = text.replace("%", "%%")
    if opt.kind is bool:
        group.add_argument(opt.flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text)
    else:
        group.add_argument(opt.flag, default=argparse.SUPPRESS, metavar=opt.name.upper(), help=text)


def _add_executor_args(p_run: argparse.ArgumentParser) -> None:
    """Where the matrix runs (docs/distributed.md): here one cell at a time, on Ray, or one shard of it."""
    p_run.add_argument(
        "--executor",
        choices=EXECUTORS.names(),
        default="serial",
        help="serial: one cell after another here (default); ray: each cell a Ray task, on a local instance or "
        "the cluster at --ray-address / $RAY_ADDRESS (needs the ray extra)",
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
    p_report.add_argument(
        "--sets",
        action="store_true",
        help="with --index: first rewrite the report of every set under RESULTS_DIR (folders holding "
        "results files, one or two levels down), in this one process",
    )
    p_report.add_argument(
        "--html",
        action="store_true",
        help="also write report.html (with --index: RESULTS_DIR/index.html), a self-contained interactive page",
    )


def _add_export_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export", help="a result set as a Hugging Face hub dataset repo: parquet, dataset card, per-model eval results"
    )
    p.add_argument("paths", nargs="+", metavar="RESULTS", help="results.jsonl files or result folders, read as one set")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write (a new one, or an earlier export)")
    p.add_argument("--push", metavar="REPO_ID", help="upload DIR to this hub dataset repo (needs network and a token)")
    p.add_argument("--license", default="apache-2.0", help="the dataset card's license (default: apache-2.0)")
    p.add_argument("--skip-invalid", action="store_true", help="skip malformed lines instead of stopping")


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
