"""A matrix of cells: resolve every cell once on the driver (``plan.resolve``), keep one --shard,
load each task once, bind each cell to its data, skip what --resume finds done, run the rest through
an executor (serial, a launcher's processes, Ray), and append every record on the driver alone, so
the append-only results file has one writer. ``runner`` runs one cell; this module trains nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferbench.benchmarks.execution.executors import (
    EXECUTORS,
    CellResult,
    Executor,
    ExecutorOptions,
    Job,
)
from transferbench.benchmarks.execution.records import failed_record, summary_line
from transferbench.benchmarks.execution.runner import checkpoint_file, execute
from transferbench.benchmarks.plan.resolve import Plan, bind, resolve
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.results import (
    RESULTS_FILE,
    SETTLED,
    append_or_keep,
    check_results_file,
    flush_pending,
    provenance,
    read_records,
    shard_file,
)
from transferbench.benchmarks.runtime import distributed
from transferbench.errors import UserError
from transferbench.tasks import TaskData, load_task


def finished_ids(out_dir: Path) -> set[str]:
    """Run ids --resume skips: records in the folder's set (results.jsonl and any shard files) whose
    status is SETTLED. A ``failed`` or ``oom`` record does not count: that run is tried again."""
    return {r["run_id"] for r in read_records(out_dir) if "run_id" in r and r.get("status") in SETTLED}


def load(plan: Plan, log: Any) -> TaskData:
    """The plan's task, loaded and decoded (once per load key: ``plan_jobs`` keeps it)."""
    started = time.perf_counter()
    data = load_task(plan.task, plan.spec.data_dir, **plan.load_settings)
    data.load_s = time.perf_counter() - started
    log(
        f"loaded {plan.task.name} from {data.source}: {len(data.train)} train / {len(data.test)} "
        f"{data.test_split} examples ({time.perf_counter() - started:.1f}s)"
    )
    for note in data.notes:
        log(f"  note: {note}")
    return data


def plan_jobs(plans: list[Plan], *, out_dir: Path, resume: bool, executor: Executor, log: Any = print) -> list[Job]:
    """Each resolved cell bound to its task's data (loaded once per load key), its identity made
    with ``amp`` as the executor resolves it; with ``resume``, finished runs are left out."""
    cache: dict[tuple, TaskData] = {}
    done = finished_ids(out_dir) if resume else set()
    jobs = []
    for plan in plans:
        amp = executor.resolve_amp(plan.spec)  # first: a device the workers lack is refused before data loads
        if plan.load_key not in cache:
            cache[plan.load_key] = load(plan, log)
        run = bind(plan, cache[plan.load_key], amp)
        if run.run_id in done:
            log(f"skip {run.label}: finished record {run.run_id} exists")
            continue
        jobs.append(Job(run, cache[plan.load_key]))
    for plan in plans:
        if plan.recipe_note:
            log(f"note: {plan.label}: {plan.recipe_note}")
    return jobs


def _append(job: Job, result: CellResult, target: Path, out_dir: Path, log: Any) -> dict[str, Any]:
    """The driver's one write per cell: the record (or a failed one), then the checkpoint goes."""
    if result.record is not None:
        record = result.record
    else:
        record = failed_record(job.run, job.data, result.error, result.trace, result.hardware)
    append_or_keep(target, record)
    if result.record is not None:
        checkpoint_file(out_dir, record["run_id"]).unlink(missing_ok=True)
    log(summary_line(record))
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
        ranked = sorted(range(len(specs)), key=lambda i: provenance.config_hash(specs[i].matrix_cell()))
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
    """Run a matrix: resolve every spec (a cell that cannot work stops the matrix before anything
    loads), keep this shard's cells, plan them (``plan_jobs``), let the executor run them, and append
    each record here, to results.jsonl or the shard's file. Returns the records in the order they
    were appended. An executor given by name (``EXECUTORS``) is made from ``options`` and closed at
    the end; an Executor instance is the caller's to close."""
    plans = [resolve(spec) for spec in specs]
    if shard is not None:
        mine = {id(spec) for spec in shard.select(specs)}
        plans = [plan for plan in plans if id(plan.spec) in mine]
    target = out_dir / (shard.file if shard is not None else RESULTS_FILE)
    check_results_file(target)
    kept = flush_pending(target) if distributed.is_main() else 0  # one writer, also under a launcher
    if kept:
        log(f"added {kept} finished records that an earlier run could not write to {target}")
    owned = not isinstance(executor, Executor)
    runner = EXECUTORS.get(executor)(options or ExecutorOptions()) if isinstance(executor, str) else executor
    records: list[dict[str, Any]] = []
    try:
        jobs = plan_jobs(plans, out_dir=out_dir, resume=resume, executor=runner, log=log)
        runner.run(
            jobs, out_dir, lambda job, result: records.append(_append(job, result, target, out_dir, log)), progress
        )
    finally:
        if owned:
            runner.close()
    return records


def run_one(
    spec: RunSpec, data: TaskData | None = None, *, out_dir: Path | None = None, progress: bool = False
) -> dict[str, Any]:
    """One spec resolved, bound and executed in this process, its record returned and not written
    (for notebooks and tests; a matrix goes through ``run_all``). ``data``: the task's data if loaded."""
    plan = resolve(spec)
    data = data if data is not None else load(plan, lambda _: None)
    run = bind(plan, data, EXECUTORS.get("serial")(ExecutorOptions()).resolve_amp(spec))
    return execute(run, data, out_dir=out_dir, progress=progress)
