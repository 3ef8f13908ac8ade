"""The fan-out: one run's trackers behind one object, so that logging can never cost a result.

Every call goes to each live tracker in turn; a tracker that raises (a library's bug, a full disk, a
tracking server that is down) is one warning line on stderr and is dropped, and the run goes on
without it: the record is written whatever the trackers do. The host's random number generators
(Python's, NumPy's, torch's CPU generator) are put back after every call, so a library that draws
from them cannot change what the run computes.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferbench.benchmarks.tracking.base import TRACKERS, Tracker


def warn(message: str) -> None:
    print(f"transferbench: warning: {message}", file=sys.stderr, flush=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def _host_rng_kept() -> Iterator[None]:
    """Python's, NumPy's and torch's CPU generator as they were before the block (no device state:
    reading a GPU generator would wait for the device)."""
    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])


class Trackers:
    """The trackers of one run. Never raises (except BaseException such as KeyboardInterrupt)."""

    def __init__(self, trackers: list[Tracker], warn: Callable[[str], None] = warn) -> None:
        self.live = list(trackers)
        self._warn = warn

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.live]

    def _each(self, call: Callable[[Tracker], None]) -> None:
        for tracker in list(self.live):
            try:
                with _host_rng_kept():
                    call(tracker)
            except Exception as exc:
                self.live.remove(tracker)
                self._warn(f"{tracker.name} logging failed ({_one_line(exc)}); the run goes on without it")
                with suppress(Exception):  # already reported once: a tracker that failed says nothing more
                    tracker.close()

    def start(self, run_name: str, params: Mapping[str, Any], group: str) -> None:
        self._each(lambda t: t.start(run_name, params, group))

    def log_step(self, step: int, metrics: Mapping[str, float]) -> None:
        self._each(lambda t: t.log_step(step, metrics))

    def log_epoch(self, epoch: int, step: int, metrics: Mapping[str, float]) -> None:
        self._each(lambda t: t.log_epoch(epoch, step, metrics))

    def finish(self, metrics: Mapping[str, float], status: str) -> None:
        self._each(lambda t: t.finish(metrics, status))

    def close(self) -> None:
        """Close every tracker (once); a run not finished ends as failed in each."""
        self._each(lambda t: t.close())
        self.live = []


def open_trackers(names: tuple[str, ...], root: Path | None, warn: Callable[[str], None] = warn) -> Trackers:
    """A fan-out over a new tracker of each name (``TRACKERS``), writing under ``root``."""
    made: list[Tracker] = []
    for name in names:
        try:
            made.append(TRACKERS.get(name)(root))
        except Exception as exc:
            warn(f"{name} logging failed ({_one_line(exc)}); the run goes on without it")
    return Trackers(made, warn)
