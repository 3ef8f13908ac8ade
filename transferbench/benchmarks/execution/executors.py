"""Executors: where a matrix's resolved cells run. Each hands every cell's result to the driver's
``finish``, which alone appends, so the append-only results file has one writer. The serial executor
runs cells here one after another, the launched one in every process of a torchrun job; the Ray
executor (``ray_executor``) registers itself here when imported."""

from __future__ import annotations

import math
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferbench.benchmarks.execution.records import describe_error
from transferbench.benchmarks.execution.runner import execute
from transferbench.benchmarks.plan.resolve import ResolvedRun
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.results import provenance
from transferbench.benchmarks.runtime import distributed
from transferbench.benchmarks.runtime.device import resolve_amp, resolve_device
from transferbench.errors import UserError
from transferbench.registry import Registry
from transferbench.tasks import TaskData


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
class CellResult:
    """What an executor hands the driver for one cell: the record, or why there is none."""

    record: dict[str, Any] | None = None
    error: str = ""  # one line: the exception, or that the worker process died
    trace: str = ""  # the traceback, kept in the failed record's details
    hardware: dict[str, Any] | None = None  # where it failed, if known


@dataclass(frozen=True)
class Job:
    """A resolved cell and its data, as the planner hands it to an executor."""

    run: ResolvedRun
    data: TaskData
    meta: Mapping[str, Any] = field(default_factory=dict)  # the driver's own notes (a sweep's), never shipped


Finish = Callable[[Job, CellResult], None]


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
    def run(self, jobs: list[Job], out_dir: Path, finish: Finish, progress: bool) -> None:
        """Run every cell, calling ``finish`` once per cell from this (the driver's) thread."""

    def close(self) -> None:
        """Release what the executor started (the Ray executor: its local instance)."""
        return None


def _hardware(device: str) -> dict[str, Any]:
    try:
        return provenance.device_info(str(resolve_device(device)))
    except UserError:
        return provenance.device_info(device)


def run_here(job: Job, out_dir: Path | None, progress: bool, *, stop_on: tuple) -> CellResult:
    """Run one cell in this process without writing. An exception of the types in ``stop_on``
    propagates; any other becomes a failed result with its traceback (BaseException, such as
    KeyboardInterrupt, always propagates)."""
    try:
        return CellResult(record=execute(job.run, job.data, out_dir=out_dir, progress=progress))
    except stop_on:
        raise
    except Exception as exc:
        return CellResult(
            error=describe_error(exc), trace=traceback.format_exc(), hardware=_hardware(job.run.spec.device)
        )


class SerialExecutor(Executor):
    """The cells one after another in this process (the default). A UserError raised by a cell
    stops the matrix as it always did: it is bad input that the next cells would mostly meet too, and
    the plan already refused what it could see before training. Any other exception (a bug, a
    library's crash) is recorded as ``failed`` and the remaining cells run."""

    name = "serial"

    def resolve_amp(self, spec: RunSpec) -> str:
        return resolve_amp(spec.amp, distributed.device_for(resolve_device(spec.device)))

    def run(self, jobs: list[Job], out_dir: Path, finish: Finish, progress: bool) -> None:
        for job in jobs:
            finish(job, run_here(job, out_dir, progress, stop_on=(UserError,)))


class LaunchedExecutor(SerialExecutor):
    """The serial executor in each process of one run across processes (torchrun, accelerate
    launch; docs/distributed.md), which every rank's driver uses: all ranks run each cell together.
    Any exception ends the process (the launcher then stops the others): a rank that recorded a
    failure and went on to the next cell would meet its peers' collectives of the failed one. Only
    rank 0's driver appends and logs."""

    name = "launched"

    def run(self, jobs: list[Job], out_dir: Path, finish: Finish, progress: bool) -> None:
        for job in jobs:
            result = run_here(job, out_dir, progress, stop_on=(Exception,))
            if distributed.is_main():
                finish(job, result)


EXECUTORS: Registry[Callable[[ExecutorOptions], Executor]] = Registry("executor")
EXECUTORS.add("serial", SerialExecutor)
