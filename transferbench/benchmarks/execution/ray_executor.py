"""The Ray executor (``run --executor ray``): each cell of a matrix is one Ray task, on a local Ray
instance (the default) or a cluster (``$RAY_ADDRESS`` or ``--ray-address``).

What stays on the driver, as with the serial executor: planning (every cell resolved once, data
loaded once per task, identities, --resume) and writing (the driver alone appends records, so the
append-only file has one writer). What goes to a worker: one resolved cell (``ResolvedRun``: its
task config, strategy and identity travel with it, so a task read from a file on the driver needs no
registering there) and its data (``ray.put`` once per loaded task, so a matrix of 30 cells on one
task ships the data once). The worker runs ``runner.execute`` and returns the record; its
checkpoints still go to the output folder when the worker can write there, so a cell retried after
its worker died resumes from its last epoch.

Failures: a cell whose worker process dies (SIGKILL, the kernel's OOM killer, a lost node) is
started again up to ``--max-retries`` times by Ray; a cell that raises is an application error,
never retried, recorded as ``failed`` with its error and traceback while the other cells go on.

Ray is optional (the ``ray`` extra) and imported only when this executor is used.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from transferbench.benchmarks.execution.executors import (
    EXECUTORS,
    CellResult,
    Executor,
    ExecutorOptions,
    Finish,
    Job,
    run_here,
)
from transferbench.benchmarks.execution.records import describe_error
from transferbench.benchmarks.plan.resolve import ResolvedRun
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.results import provenance
from transferbench.benchmarks.runtime.device import resolve_amp, resolve_device
from transferbench.errors import UserError
from transferbench.plugins import load_plugins
from transferbench.tasks import TaskData

MISSING = "--executor ray needs the ray extra: pip install 'transferbench[ray]'"


# Joining a cluster whose address answers nothing retried for about 14 minutes in Ray 2.60 (20
# attempts of 5 s connect + 5 s pubsub + 30 s waiting for a cluster id). These bound each attempt;
# Ray reads them when it is imported, so they are set before the import (a user's own value wins).
RAY_CONNECT_ENV = {"RAY_gcs_rpc_server_connect_timeout_s": "2", "RAY_py_gcs_connect_timeout_s": "5"}
TCP_CHECK_S = 5.0  # how long the address gets to accept a TCP connection before Ray is asked at all
PLACEMENT_WAIT_S = 600.0  # how long a cluster gets to offer one cell's resources (an autoscaler may add nodes)


def import_ray() -> Any:
    """The ray module, or the one-line error that says how to install it."""
    for key, value in RAY_CONNECT_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import ray  # lazy: the ray extra is optional
    except ImportError:
        raise UserError(MISSING) from None
    return ray


def check_reachable(address: str) -> None:
    """A ``host:port`` cluster address must accept a TCP connection within TCP_CHECK_S, else one line
    naming it and what to check (``auto`` and ``ray://`` addresses are left to Ray)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=TCP_CHECK_S).close()
    except OSError as exc:
        raise UserError(
            f"--ray-address {address}: nothing answers there ({exc.strerror or exc}); check that `ray start --head` "
            "runs on that host and that the port is its GCS port (6379 unless --port said otherwise)"
        ) from None


# --- in the worker ---------------------------------------------------------------------------------


def _prepare_worker(threads: int) -> None:
    """A worker knows what the package and its installed plugins register. Torch gets as many
    threads as the cell reserved CPUs, so two cells on two cores do not fight over both."""
    load_plugins(warn=lambda _message: None)  # a broken plugin already warned on the driver
    torch.set_num_threads(threads)


def _checkpoints_here(out_dir: str) -> Path | None:
    """The output folder if this worker can write checkpoints into it (a shared filesystem, or the
    driver's own machine), else None: the cell then runs without checkpoints rather than failing."""
    path = Path(out_dir)
    return path if path.is_dir() and os.access(path, os.W_OK) else None


def run_cell(run: ResolvedRun, data: TaskData, out_dir: str, threads: int) -> CellResult:
    """One cell, in a Ray worker: the record, or (any exception, UserError included) why not."""
    try:
        _prepare_worker(threads)
    except Exception as exc:
        return CellResult(error=describe_error(exc), trace=traceback.format_exc())
    return run_here(Job(run, data), _checkpoints_here(out_dir), False, stop_on=())


def probe_amp(device: str, amp: str) -> str | UserError:
    """What ``--device``/``--amp`` resolve to on a worker with the cells' resources (the identity
    needs it; the driver may have no GPU). A UserError is returned, not raised, to be re-raised."""
    try:
        return resolve_amp(amp, resolve_device(device))
    except UserError as exc:
        return exc


# --- on the driver ---------------------------------------------------------------------------------


@contextmanager
def _one_gcs_attempt(joining: bool) -> Iterator[None]:
    """Joining a cluster: one GCS attempt (about 10 s at most with RAY_CONNECT_ENV) instead of 20.
    Not when starting a local instance, whose own head waits for its GCS port by the same setting."""
    key = "RAY_gcs_server_port_wait_time_s"
    if not joining or key in os.environ:
        yield
        return
    os.environ[key] = "1"
    try:
        yield
    finally:
        os.environ.pop(key, None)


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
            address = self.options.ray_address or os.environ.get("RAY_ADDRESS")
            if address:
                check_reachable(address)
            try:
                with _one_gcs_attempt(joining=bool(address)):
                    self.ray.init(
                        address=self.options.ray_address,
                        num_cpus=None if self._cluster() else self.options.local_cpus,
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level=logging.ERROR,
                        runtime_env={"env_vars": {"TRANSFERBENCH_GIT_COMMIT": provenance.git_commit()}},
                    )
            except ConnectionError as exc:
                raise UserError(
                    f"--ray-address {address}: Ray could not join the cluster there ({describe_error(exc)}); check "
                    "that it is a Ray head's GCS address, that its Ray version matches this one, and that "
                    "RAY_AUTH_MODE or its token agrees with the cluster's"
                ) from None
            self._started = True
            self._check_room()
        return self.ray

    def _cluster(self) -> bool:
        return bool(self.options.ray_address or os.environ.get("RAY_ADDRESS"))

    def _short(self) -> list[tuple[str, float, str, float]]:
        """(flag, need, resource, have) for each resource one cell needs more of than the whole
        cluster has: such a cell would stay pending for ever (Ray never fails an infeasible task)."""
        have = self.ray.cluster_resources()
        wanted = (
            ("--cpus-per-run", self.options.cpus_per_run, "CPU"),
            ("--gpus-per-run", self.options.gpus_per_run, "GPU"),
        )
        return [(flag, need, res, have.get(res, 0)) for flag, need, res in wanted if need > have.get(res, 0)]

    def _check_room(self) -> None:
        """A local instance that cannot hold one cell is refused at once; a cluster gets up to
        PLACEMENT_WAIT_S to grow (an autoscaler adds nodes on demand), then the run is refused."""
        deadline = time.monotonic() + (PLACEMENT_WAIT_S if self._cluster() else 0)
        short = self._short()
        if short and self._cluster():
            flag, need, res, have = short[0]
            print(
                f"transferbench: waiting up to {PLACEMENT_WAIT_S / 60:.0f} min for the Ray cluster to offer {flag} "
                f"{need:g} (it has {have:g} {res}s)",
                file=sys.stderr,
            )
        while short and time.monotonic() < deadline:
            time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
            short = self._short()
        if short:
            flag, need, res, have = short[0]
            where = "the Ray cluster" if self._cluster() else "the local Ray instance"
            waited = f" after waiting {PLACEMENT_WAIT_S / 60:.0f} min" if self._cluster() else ""
            raise UserError(f"{flag} {need:g}: {where} has {have:g} {res}s{waited}; no cell could ever start")

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

    def run(self, jobs: list[Job], out_dir: Path, finish: Finish, progress: bool) -> None:
        if not jobs:
            return
        ray = self._connect()
        task = self._task(run_cell, self.options.max_retries)
        threads = max(1, math.floor(self.options.cpus_per_run))
        shipped: dict[int, Any] = {}  # id(TaskData) -> its object ref: each loaded task goes out once
        pending: dict[Any, Job] = {}
        for job in jobs:
            if id(job.data) not in shipped:
                shipped[id(job.data)] = ray.put(job.data)
            pending[task.remote(job.run, shipped[id(job.data)], str(out_dir), threads)] = job
        try:
            self._collect(pending, finish, progress)
        finally:
            for ref in pending:  # interrupted, or the results file refused a record
                ray.cancel(ref, force=True)

    def _collect(self, pending: dict[Any, Job], finish: Finish, progress: bool) -> None:
        """Hand each result to the driver as it arrives, with one progress line for the matrix."""
        slots, failed = self._slots(), 0
        with tqdm(total=len(pending), desc="cells", unit="cell", disable=not progress, dynamic_ncols=True) as bar:
            bar.set_postfix_str(f"running {min(len(pending), slots)}, failed 0")
            while pending:
                (ref,), _ = self.ray.wait(list(pending), num_returns=1)
                job = pending.pop(ref)
                result = self._result(ref)
                failed += result.record is None
                with tqdm.external_write_mode():
                    finish(job, result)
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
