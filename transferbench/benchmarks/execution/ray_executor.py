"""The Ray executor (``run --executor ray``): each cell of a matrix is one Ray task, on a local Ray
instance (the default) or a cluster (``$RAY_ADDRESS`` or ``--ray-address``).

What stays on the driver, as with the serial executor: planning (validation, data loaded once per
task, identities, --resume) and writing (the driver alone appends records, so the append-only file
has one writer). What goes to a worker: one cell, its data (``ray.put`` once per loaded task, so a
matrix of 30 cells on one task ships the data once), and the task's config (so a task registered on
the driver from a file is known there too). The worker runs ``runner.execute`` with writing off
and returns the record; its checkpoints still go to the output folder when the worker can write
there, so a cell retried after its worker died resumes from its last epoch.

Failures: a cell whose worker process dies (SIGKILL, the kernel's OOM killer, a lost node) is
started again up to ``--max-retries`` times by Ray; a cell that raises is an application error,
never retried, recorded as ``failed`` with its error and traceback while the other cells go on.

Ray is optional (the ``ray`` extra) and imported only when this executor is used.
"""

from __future__ import annotations

import logging
import math
import os
import traceback
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from transferbench.benchmarks.execution.matrix import (
    EXECUTORS,
    CellResult,
    Executor,
    ExecutorOptions,
    Finish,
    PlannedCell,
    describe_error,
    run_here,
)
from transferbench.benchmarks.execution.runner import RunSpec
from transferbench.benchmarks.results import provenance
from transferbench.benchmarks.runtime.device import resolve_amp, resolve_device
from transferbench.errors import UserError
from transferbench.plugins import load_plugins
from transferbench.tasks import TASKS
from transferbench.tasks.base import TaskConfig, TaskData

MISSING = "--executor ray needs the ray extra: pip install 'transferbench[ray]'"


def import_ray() -> Any:
    """The ray module, or the one-line error that says how to install it."""
    try:
        import ray  # lazy: the ray extra is optional
    except ImportError:
        raise UserError(MISSING) from None
    return ray


# --- in the worker ---------------------------------------------------------------------------------


def _prepare_worker(spec: RunSpec, config: TaskConfig, threads: int) -> None:
    """A worker knows what the package and its installed plugins register; the driver's task
    config is registered too (under the name the spec uses), for tasks read from files on the
    driver. Torch gets as many threads as the cell reserved CPUs, so two cells on two cores do not
    fight over both."""
    load_plugins(warn=lambda _message: None)  # a broken plugin already warned on the driver
    if spec.task not in TASKS and config.name not in TASKS:
        TASKS.add(config.name, config, aliases=() if spec.task == config.name else (spec.task,))
    torch.set_num_threads(threads)


def _checkpoints_here(out_dir: str) -> Path | None:
    """The output folder if this worker can write checkpoints into it (a shared filesystem, or the
    driver's own machine), else None: the cell then runs without checkpoints rather than failing."""
    path = Path(out_dir)
    return path if path.is_dir() and os.access(path, os.W_OK) else None


def run_cell(spec: RunSpec, data: TaskData, config: TaskConfig, out_dir: str, threads: int) -> CellResult:
    """One cell, in a Ray worker: the record, or (any exception, UserError included) why not."""
    try:
        _prepare_worker(spec, config, threads)
    except Exception as exc:
        return CellResult(error=describe_error(exc), trace=traceback.format_exc())
    return run_here(spec, data, _checkpoints_here(out_dir), False, stop_on=())


def probe_amp(device: str, amp: str) -> str | UserError:
    """What ``--device``/``--amp`` resolve to on a worker with the cells' resources (the identity
    needs it; the driver may have no GPU). A UserError is returned, not raised, to be re-raised."""
    try:
        return resolve_amp(amp, resolve_device(device))
    except UserError as exc:
        return exc


# --- on the driver ---------------------------------------------------------------------------------


class RayExecutor(Executor):
    """Cells as Ray tasks with ``--cpus-per-run``/``--gpus-per-run`` each, as many at once as the
    instance or cluster has room for; ``--max-retries`` restarts of a cell whose worker died."""

    name = "ray"

    def __init__(self, options: ExecutorOptions) -> None:
        super().__init__(options)
        self.ray = import_ray()
        self._started = False
        self._amp: dict[tuple[str, str], str] = {}

    def _connect(self) -> Any:
        """Start or join Ray once, quietly: no dashboard, workers' output stays in Ray's log files.
        Workers get the driver's git commit: the code that runs is the code at the start."""
        if not self.ray.is_initialized():
            self.ray.init(
                address=self.options.ray_address,
                num_cpus=None if self._cluster() else self.options.local_cpus,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                runtime_env={"env_vars": {"TRANSFERBENCH_GIT_COMMIT": provenance.git_commit()}},
            )
            self._started = True
            self._check_room()
        return self.ray

    def _cluster(self) -> bool:
        return bool(self.options.ray_address or os.environ.get("RAY_ADDRESS"))

    def _check_room(self) -> None:
        """On a local instance, a cell that needs more than the machine has would wait forever."""
        if self._cluster():
            return  # a cluster may add nodes on demand
        have = self.ray.cluster_resources()
        for flag, need, resource in (
            ("--cpus-per-run", self.options.cpus_per_run, "CPU"),
            ("--gpus-per-run", self.options.gpus_per_run, "GPU"),
        ):
            if need > have.get(resource, 0):
                raise UserError(f"{flag} {need:g}: the local Ray instance has {have.get(resource, 0):g} {resource}s")

    def _task(self, function: Any, retries: int) -> Any:
        remote = self.ray.remote(function)
        return remote.options(
            num_cpus=self.options.cpus_per_run,
            num_gpus=self.options.gpus_per_run,
            max_retries=retries,
            retry_exceptions=False,
        )

    def resolve_amp(self, spec: RunSpec) -> str:
        key = (spec.device, spec.amp)
        ray = self._connect()  # the plan asks before loading data: what cannot be placed is refused first
        if spec.device == "cpu":  # the same on every machine: no need to ask a worker
            return resolve_amp(spec.amp, torch.device("cpu"))
        if key not in self._amp:
            found = ray.get(self._task(probe_amp, self.options.max_retries).remote(*key))
            if isinstance(found, UserError):
                raise UserError(f"{found} (on a Ray worker with --gpus-per-run {self.options.gpus_per_run:g})")
            self._amp[key] = found
        return self._amp[key]

    def run(self, cells: list[PlannedCell], out_dir: Path, finish: Finish, progress: bool) -> None:
        if not cells:
            return
        ray = self._connect()
        task = self._task(run_cell, self.options.max_retries)
        threads = max(1, math.floor(self.options.cpus_per_run))
        shipped: dict[int, Any] = {}  # id(TaskData) -> its object ref: each loaded task goes out once
        pending: dict[Any, PlannedCell] = {}
        for cell in cells:
            if id(cell.data) not in shipped:
                shipped[id(cell.data)] = ray.put(cell.data)
            ref = task.remote(cell.spec, shipped[id(cell.data)], cell.config, str(out_dir), threads)
            pending[ref] = cell
        try:
            self._collect(pending, finish, progress)
        finally:
            for ref in pending:  # interrupted, or the results file refused a record
                ray.cancel(ref, force=True)

    def _collect(self, pending: dict[Any, PlannedCell], finish: Finish, progress: bool) -> None:
        """Hand each result to the driver as it arrives, with one progress line for the matrix."""
        slots, failed = self._slots(), 0
        with tqdm(total=len(pending), desc="cells", unit="cell", disable=not progress, dynamic_ncols=True) as bar:
            bar.set_postfix_str(f"running {min(len(pending), slots)}, failed 0")
            while pending:
                (ref,), _ = self.ray.wait(list(pending), num_returns=1)
                cell = pending.pop(ref)
                result = self._result(ref)
                failed += result.record is None
                with tqdm.external_write_mode():
                    finish(cell, result)
                bar.set_postfix_str(f"running {min(len(pending), slots)}, failed {failed}", refresh=False)
                bar.update()

    def _result(self, ref: Any) -> CellResult:
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:  # the worker died on every try, or Ray lost it
            tries = self.options.max_retries + 1
            return CellResult(error=f"its worker process died ({tries} tries): {describe_error(exc)}")

    def _slots(self) -> int:
        """How many cells fit at once (for the progress line): the scarcest requested resource."""
        have = self.ray.cluster_resources()
        fits = [have.get("CPU", 0) / self.options.cpus_per_run]
        if self.options.gpus_per_run:
            fits.append(have.get("GPU", 0) / self.options.gpus_per_run)
        return max(1, math.floor(min(fits)))

    def close(self) -> None:
        """Stop the local instance this executor started (or leave the cluster it joined)."""
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False


EXECUTORS.add("ray", RayExecutor)
