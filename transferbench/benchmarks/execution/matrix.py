"""A matrix of cells: resolve every cell once on the driver (``plan.resolve``), keep one --shard,
load each task once, bind each cell to its data, skip what --resume finds done, run the rest through
an executor (serial, a launcher's processes, Ray), and append every record on the driver alone, so
the append-only results file has one writer. ``runner`` runs one cell; this module trains nothing.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferbench.benchmarks.execution import matching, sweeping
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
from transferbench.benchmarks.plan.sweeps import SweepRole
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


class Binder:
    """Plans bound to their task's data as jobs, each task loaded once per load key, each identity
    made with ``amp`` as the executor resolves it (first: a device the workers lack is refused
    before any data loads)."""

    def __init__(self, executor: Executor, log: Any) -> None:
        self.executor, self.log = executor, log
        self.cache: dict[tuple, TaskData] = {}

    def __call__(self, plan: Plan, role: SweepRole | None = None) -> Job:
        amp = self.executor.resolve_amp(plan.spec)
        if plan.load_key not in self.cache:
            self.cache[plan.load_key] = load(plan, self.log)
        data = self.cache[plan.load_key]
        return Job(dataclasses.replace(bind(plan, data, amp), role=role), data)


def plan_jobs(plans: list[Plan], *, bind: Binder, done: set[str], log: Any = print) -> list[Job]:
    """Each resolved cell as a job; ``done`` runs (finished, under --resume) are left out."""
    jobs = []
    for plan in plans:
        job = bind(plan)
        if job.run.run_id in done:
            log(f"skip {job.run.label}: finished record {job.run.run_id} exists")
            continue
        jobs.append(job)
    for plan in plans:
        if plan.recipe_note:
            log(f"note: {plan.label}: {plan.recipe_note}")
    return jobs


def _append(job: Job, result: CellResult, target: Path, out_dir: Path, log: Any) -> dict[str, Any]:
    """The driver's one write per cell: the record (or a failed one), then the checkpoint goes.
    A sweep's final carries its sweep; its winning point's kept checkpoint goes with it."""
    if result.record is not None:
        record = result.record
    else:
        record = failed_record(job.run, job.data, result.error, result.trace, result.hardware)
    if "sweep" in job.meta:
        record = {**record, "sweep": job.meta["sweep"]}
    append_or_keep(target, record)
    if result.record is not None:
        checkpoint_file(out_dir, record["run_id"]).unlink(missing_ok=True)
        if job.run.role is not None and job.run.role.resume_from:
            checkpoint_file(out_dir, job.run.role.resume_from).unlink(missing_ok=True)
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
        """This shard's cells, in matrix order. The seeds of a sweep are one unit (its winner on the
        first seed runs on the others), so a shard takes a sweep whole: its points and its finals."""
        keys = [_shard_key(spec) for spec in specs]
        mine = set(sorted(set(keys))[self.index - 1 :: self.count])
        return [spec for spec, key in zip(specs, keys, strict=True) if key in mine]

    def owns(self, spec: RunSpec) -> bool:
        """Whether a run planned after the matrix (a compute-matched scratch run) is this shard's."""
        return int(_shard_key(spec)[:8], 16) % self.count == self.index - 1


def _shard_key(spec: RunSpec) -> str:
    cell = spec.matrix_cell()
    return provenance.config_hash({k: v for k, v in cell.items() if k != "seed"} if spec.sweep else cell)


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
    match_compute: str | None = None,
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
    out_dir.mkdir(parents=True, exist_ok=True)  # where Ray workers look for it (checkpoints, kept sweep points)
    target = out_dir / (shard.file if shard is not None else RESULTS_FILE)
    check_results_file(target)
    kept = flush_pending(target) if distributed.is_main() else 0  # one writer, also under a launcher
    if kept:
        log(f"added {kept} finished records that an earlier run could not write to {target}")
    owned = not isinstance(executor, Executor)
    runner = EXECUTORS.get(executor)(options or ExecutorOptions()) if isinstance(executor, str) else executor
    records: list[dict[str, Any]] = []
    plain, sweeps = sweeping.split(plans, log)
    points = sweeping.points_file(out_dir, shard)

    def finish(job: Job, result: CellResult) -> None:
        if sweeping.is_point(job.run):
            sweeping.record_point(job, result, points, log)
        else:
            records.append(_append(job, result, target, out_dir, log))

    try:
        bind = Binder(runner, log)
        done = finished_ids(out_dir) if resume else set()
        jobs = plan_jobs(plain, bind=bind, done=done, log=log)
        recorded = sweeping.finished_points(out_dir) if resume else set()
        jobs += sweeping.point_jobs(sweeps, bind, recorded, log)
        runner.run(jobs, out_dir, finish, progress)
        while (wider := sweeping.widened_jobs(sweeps, bind, out_dir, recorded, log)) is not None:
            runner.run(wider, out_dir, finish, progress)
        finals = sweeping.final_jobs(sweeps, bind, out_dir, done, log)
        for job in [j for j in finals if "no_winner" in j.meta]:
            finish(job, CellResult(error="no point of its sweep finished (see the sweeps file)"))
        runner.run([j for j in finals if "no_winner" not in j.meta], out_dir, finish, progress)
        if match_compute:  # after every run it matches is recorded
            keep = None if shard is None else shard.owns
            runner.run(matching.matched_jobs(out_dir, match_compute, bind, done, log, keep), out_dir, finish, progress)
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
    if spec.sweep is not None:
        raise UserError("run_one runs one cell; a sweep is several: give it to run_all")
    run = bind(plan, data, EXECUTORS.get("serial")(ExecutorOptions()).resolve_amp(spec))
    return execute(run, data, out_dir=out_dir, progress=progress)
