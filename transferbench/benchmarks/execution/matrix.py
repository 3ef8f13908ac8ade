"""A matrix of cells: plan on the driver (validate, load each task once, skip what --resume finds
done, keep one --shard), run the cells through an executor (serial, a launcher's processes, Ray),
and append every record on the driver alone, so the append-only results file has one writer.
``runner`` runs one cell; this module never trains anything itself.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transferbench.adapters import ADAPTERS
from transferbench.benchmarks.execution.runner import (
    RunSpec,
    checkpoint_file,
    execute,
    make_splits,
    public_spec,
    resolved_strategy,
    run_identity,
    run_options,
    task_config,
    validate_spec,
)
from transferbench.benchmarks.plan.local_paths import public_location
from transferbench.benchmarks.results import provenance
from transferbench.benchmarks.results.store import (
    FAILED,
    RESULTS_FILE,
    SETTLED,
    append_or_keep,
    check_results_file,
    flush_pending,
    read_records,
    shard_file,
)
from transferbench.benchmarks.runtime import distributed
from transferbench.benchmarks.runtime.device import resolve_amp, resolve_device
from transferbench.errors import UserError
from transferbench.registry import Registry
from transferbench.tasks import DOMAINS, TaskData, load_task
from transferbench.tasks.base import Split, TaskConfig


def finished_ids(out_dir: Path) -> set[str]:
    """Run ids --resume skips: records in the folder's set (results.jsonl and any shard files) whose
    status is SETTLED. A ``failed`` or ``oom`` record does not count: that run is tried again."""
    return {r["run_id"] for r in read_records(out_dir) if "run_id" in r and r.get("status") in SETTLED}


def _load_key(spec: RunSpec, config: TaskConfig) -> tuple:
    """Runs whose decoded data is the same share one load."""
    settings = DOMAINS.get(config.domain).load_settings(run_options(spec), config, ADAPTERS.get(spec.adapter))
    return (config.name, spec.data_dir, spec.test_fold, tuple(sorted(settings.items())))


def _load(spec: RunSpec, config: TaskConfig, log: Any) -> TaskData:
    settings = DOMAINS.get(config.domain).load_settings(run_options(spec), config, ADAPTERS.get(spec.adapter))
    started = time.perf_counter()
    data = load_task(config, spec.data_dir, **settings)
    log(
        f"loaded {config.name} from {data.source}: {len(data.train)} train / {len(data.test)} "
        f"{data.test_split} examples ({time.perf_counter() - started:.1f}s)"
    )
    for note in data.notes:
        log(f"  note: {note}")
    return data


# --- the matrix: plan on the driver, run through an executor, append on the driver ---------------


@dataclass(frozen=True)
class ExecutorOptions:
    """Where and how an executor places cells. The serial executor runs them here, one at a time, and
    takes none of these; the Ray executor reads them all."""

    ray_address: str | None = None  # None: $RAY_ADDRESS if set, else a fresh local instance
    gpus_per_run: float = 0
    cpus_per_run: float = 1
    max_retries: int = 2  # how often a cell whose worker process died is started again
    local_cpus: int | None = None  # CPUs of a local Ray instance this starts (None: all); no effect on a cluster

    def check(self) -> None:
        """Refuse what no scheduler can place, before any data loads."""
        if not (math.isfinite(self.cpus_per_run) and self.cpus_per_run > 0):
            raise UserError(f"--cpus-per-run must be a number above 0, got {self.cpus_per_run}")
        if not (math.isfinite(self.gpus_per_run) and self.gpus_per_run >= 0):
            raise UserError(f"--gpus-per-run must be 0 or more, got {self.gpus_per_run}")
        if self.max_retries < 0:
            raise UserError(f"--max-retries must be 0 or more, got {self.max_retries}")


@dataclass
class PlannedCell:
    """A cell as the driver planned it: spec, resolved task, its data, identity and split sizes."""

    spec: RunSpec
    config: TaskConfig
    data: TaskData
    identity: dict[str, Any]
    n_train: int = 0
    n_val: int = 0

    @property
    def run_id(self) -> str:
        return provenance.config_hash(self.identity)

    @property
    def label(self) -> str:
        return f"{self.config.name}/{self.spec.adapter}/{self.spec.strategy}/seed{self.spec.seed}"


@dataclass
class CellResult:
    """What an executor hands the driver for one cell: the record, or why there is none."""

    record: dict[str, Any] | None = None
    error: str = ""  # one line: the exception, or that the worker process died
    trace: str = ""  # the traceback, kept in the failed record's details
    hardware: dict[str, Any] | None = None  # where it failed, if known


Finish = Callable[[PlannedCell, CellResult], None]


class Executor(ABC):
    """Runs planned cells and hands each result to the driver's ``finish``, which alone appends."""

    name = ""

    def __init__(self, options: ExecutorOptions) -> None:
        options.check()
        self.options = options

    @abstractmethod
    def resolve_amp(self, spec: RunSpec) -> str:
        """What ``--amp`` resolves to where the cells run: it is part of each run's identity, so the
        driver's --resume check must compute it as the worker will."""

    @abstractmethod
    def run(self, cells: list[PlannedCell], out_dir: Path, finish: Finish, progress: bool) -> None:
        """Run every cell, calling ``finish`` once per cell from this (the driver's) thread."""

    def close(self) -> None:
        """Release what the executor started (the Ray executor: its local instance)."""
        return None


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])(?:/[^\s/\"':]+)+/([^\s/\"':]+)")


def describe_error(exc: BaseException) -> str:
    """One line for a failed record's status_detail: the type and the message's first line."""
    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def without_paths(text: str) -> str:
    """Absolute paths cut to their last part: records get published, a machine's folders do not."""
    return _ABSOLUTE_PATH.sub(r"\1", text)


def _hardware(device: str) -> dict[str, Any]:
    try:
        return provenance.device_info(str(resolve_device(device)))
    except UserError:
        return provenance.device_info(device)


def run_here(spec: RunSpec, data: TaskData, out_dir: Path | None, progress: bool, *, stop_on: tuple) -> CellResult:
    """Run one cell in this process without writing. An exception of the types in ``stop_on``
    propagates; any other becomes a failed result with its traceback (BaseException, such as
    KeyboardInterrupt, always propagates)."""
    try:
        return CellResult(record=execute(spec, data, out_dir=out_dir, progress=progress, write=False))
    except stop_on:
        raise
    except Exception as exc:
        return CellResult(error=describe_error(exc), trace=traceback.format_exc(), hardware=_hardware(spec.device))


class SerialExecutor(Executor):
    """The cells one after another in this process (the default). A UserError raised by a cell
    stops the matrix as it always did: it is bad input that the next cells would mostly meet too, and
    the plan already refused what it could see before training. Any other exception (a bug, a
    library's crash) is recorded as ``failed`` and the remaining cells run."""

    name = "serial"

    def resolve_amp(self, spec: RunSpec) -> str:
        return resolve_amp(spec.amp, resolve_device(spec.device))

    def run(self, cells: list[PlannedCell], out_dir: Path, finish: Finish, progress: bool) -> None:
        for cell in cells:
            finish(cell, run_here(cell.spec, cell.data, out_dir, progress, stop_on=(UserError,)))


class LaunchedExecutor(SerialExecutor):
    """The serial executor in each process of one run across processes (torchrun, accelerate
    launch; docs/distributed.md), which every rank's driver uses: all ranks run each cell together.
    Any exception ends the process (the launcher then stops the others): a rank that recorded a
    failure and went on to the next cell would meet its peers' collectives of the failed one. Only
    rank 0's driver appends and logs."""

    name = "launched"

    def run(self, cells: list[PlannedCell], out_dir: Path, finish: Finish, progress: bool) -> None:
        for cell in cells:
            result = run_here(cell.spec, cell.data, out_dir, progress, stop_on=(Exception,))
            if distributed.is_main():
                finish(cell, result)


EXECUTORS: Registry[Callable[[ExecutorOptions], Executor]] = Registry("executor")
EXECUTORS.add("serial", SerialExecutor)


def split_sizes(spec: RunSpec, data: TaskData) -> tuple[int, int]:
    """Training and validation sizes of the run, as ``make_splits`` gives them, from the labels alone
    (no inputs copied): the plan checks every cell's budget against its data before anything trains."""
    indices = Split(np.arange(len(data.train)), data.train.labels)
    train_split, val_split = make_splits(spec, dataclasses.replace(data, train=indices))
    return len(train_split), len(val_split)


def plan(
    specs: list[RunSpec], *, out_dir: Path, resume: bool, executor: Executor, log: Any = print
) -> list[PlannedCell]:
    """Each cell resolved once, on the driver: its task's data (loaded once per load key), its
    identity (``amp`` as the executor resolves it) and split sizes; with ``resume``, finished runs
    are left out."""
    cache: dict[tuple, TaskData] = {}
    done = finished_ids(out_dir) if resume else set()
    cells = []
    for spec in specs:
        config = task_config(spec)
        amp = executor.resolve_amp(spec)  # first: a device the workers lack is refused before data loads
        key = _load_key(spec, config)
        if key not in cache:
            cache[key] = _load(spec, config, log)
        data = cache[key]
        cell = PlannedCell(spec, config, data, run_identity(spec, data, config, resolved_strategy(spec), amp))
        if cell.run_id in done:
            log(f"skip {cell.label}: finished record {cell.run_id} exists")
            continue
        cell.n_train, cell.n_val = split_sizes(spec, data)
        cells.append(cell)
    return cells


def failed_record(cell: PlannedCell, result: CellResult) -> dict[str, Any]:
    """The record of a cell that raised or whose worker died: identity and the error, no measurements
    (``results.validate_record`` accepts it, ``aggregate`` leaves it out, --resume reruns it)."""
    spec, data = cell.spec, cell.data
    strategy = resolved_strategy(spec)
    return {
        "run_id": cell.run_id,
        "config_hash": cell.run_id,
        "status": FAILED,
        "status_detail": without_paths(result.error),
        "task": data.task,
        "domain": data.domain,
        "adapter": cell.identity["adapter"],
        "strategy": strategy.name,
        "pretrained": strategy.pretrained and not ADAPTERS.get(spec.adapter).classical,
        "seed": spec.seed,
        "epochs": spec.budget.epochs,
        "train_examples": cell.n_train,
        "val_examples": cell.n_val,
        "test_examples": len(data.test),
        "test_split": data.test_split,
        "data_source": public_location(data.source),
        "details": {"traceback": without_paths(result.trace)[-4000:]} if result.trace else {},
        "config": cell.identity,
        "run_spec": public_spec(spec),
        "versions": provenance.versions(),
        "git_commit": provenance.git_commit(),
        "hardware": result.hardware or {"device": spec.device, "cpu": "unknown (the worker process died)"},
        "finished_at": provenance.now_utc(),
    }


def _append(cell: PlannedCell, result: CellResult, target: Path, out_dir: Path, log: Any) -> dict[str, Any]:
    """The driver's one write per cell: the record (or a failed one), then the checkpoint goes."""
    record = result.record if result.record is not None else failed_record(cell, result)
    append_or_keep(target, record)
    if result.record is not None:
        checkpoint_file(out_dir, record["run_id"]).unlink(missing_ok=True)
        if record["run_id"] != cell.run_id:
            log(
                f"note: {cell.label}: recorded as run {record['run_id']}, planned as {cell.run_id} (the worker's "
                "device or code differs from the driver's): --resume from this driver will not recognise it"
            )
    log(_summary_line(record))
    return record


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based) of a matrix, for job arrays (SLURM, Kubernetes Indexed
    Jobs). Cells are ordered by the hash of their public spec (data-free: a shard loads only the data
    it trains on; no paths or Python ``hash()``: the same on every machine and process) and dealt
    round-robin, so shard sizes differ by at most one cell. Every shard must get the same matrix."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise UserError(
                f"--shard {self.index}/{self.count} is not valid: expected I/N with 1 <= I <= N "
                "(I counts from 1; a 0-based index such as JOB_COMPLETION_INDEX needs +1)"
            )

    @property
    def file(self) -> str:
        return shard_file(self.index, self.count)

    def select(self, specs: list[RunSpec]) -> list[RunSpec]:
        """This shard's cells, in matrix order."""
        ranked = sorted(range(len(specs)), key=lambda i: provenance.config_hash(public_spec(specs[i])))
        mine = set(ranked[self.index - 1 :: self.count])
        return [spec for i, spec in enumerate(specs) if i in mine]


def run_all(
    specs: list[RunSpec],
    *,
    out_dir: Path,
    resume: bool = False,
    progress: bool = True,
    log: Any = print,
    executor: str | Executor = "serial",
    options: ExecutorOptions | None = None,
    shard: Shard | None = None,
) -> list[dict[str, Any]]:
    """Run a matrix: validate every spec, then (``shard``) keep this shard's cells; plan them
    (``plan``); let the executor run them; append each record here, to results.jsonl or the shard's
    file (one writer keeps the append-only file whole). Returns the records in the order they were
    appended. An executor given by name (``EXECUTORS``: "serial"; "ray" once
    ``transferbench.benchmarks.execution.ray_executor`` is imported, as the CLI does) is made from ``options``
    and closed at the end; an Executor instance is the caller's to close."""
    for spec in specs:
        validate_spec(spec)
    specs = shard.select(specs) if shard is not None else specs
    target = out_dir / (shard.file if shard is not None else RESULTS_FILE)
    check_results_file(target)
    kept = flush_pending(target) if distributed.is_main() else 0  # one writer, also under a launcher
    if kept:
        log(f"added {kept} finished records that an earlier run could not write to {target}")
    owned = not isinstance(executor, Executor)
    runner = EXECUTORS.get(executor)(options or ExecutorOptions()) if isinstance(executor, str) else executor
    records: list[dict[str, Any]] = []
    try:
        cells = plan(specs, out_dir=out_dir, resume=resume, executor=runner, log=log)

        def finish(cell: PlannedCell, result: CellResult) -> None:
            records.append(_append(cell, result, target, out_dir, log))

        runner.run(cells, out_dir, finish, progress)
    finally:
        if owned:
            runner.close()
    return records


def _summary_line(r: dict[str, Any]) -> str:
    name = f"{r['task']}/{r['adapter']}/{r['strategy']}/seed{r['seed']}"
    if r["status"] == FAILED:
        return f"{name}: {r['status_detail']} [FAILED]"
    acc = r["metrics"].get("accuracy")
    score = f"accuracy {acc:.3f}, macro-F1 {r['metrics']['macro_f1']:.3f}" if acc is not None else r["status_detail"]
    flag = "" if r["status"] == "ok" else f" [{r['status'].upper()}]"
    return f"{name}: {score}; train {r['time']['train_s']:.1f}s{flag}"
