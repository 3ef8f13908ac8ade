"""Fault injection for the kill-and-resume tests and the distributed failure tests.

``TRANSFERBENCH_FAULT=<point>:<n>`` makes the process SIGKILL itself the n-th time it reaches
``point`` (``train-step``, ``eval``, ``append``), so tests can kill a real run at an exact place.
``TRANSFERBENCH_FAULT=raise-rank<R>:<point>:<n>`` instead makes only the process of rank R (a
launcher's ``RANK``, read here so this module stays torch-free; 0 without one) raise
:class:`InjectedFault` there (at ``train-step`` and ``eval``), so tests can make one rank of a
distributed run fail while the others wait on it. Unset (always, outside tests) it does nothing.

``TRANSFERBENCH_FAULT_ONCE=<file>`` (with ``TRANSFERBENCH_FAULT``) fires the fault once across
processes: the first process to reach it creates ``file`` (exclusively) and dies; every later one,
such as the Ray worker that retries the killed cell, finds the file and goes on. Without it each new
process counts from zero, and a retried cell would die at the same place every time.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable

_counts: dict[str, int] = {}
_RAISE = re.compile(r"raise-rank(\d+):(.*)")


class InjectedFault(RuntimeError):
    """The failure a ``raise-rank<R>:`` fault raises: an unexpected error, not a user's mistake."""


def _spec() -> tuple[int | None, str]:
    """(the rank that raises, or None to SIGKILL; ``<point>:<n>``) from the environment."""
    spec = os.environ.get("TRANSFERBENCH_FAULT", "")
    match = _RAISE.fullmatch(spec)
    return (int(match.group(1)), match.group(2)) if match else (None, spec)


def armed(point: str) -> bool:
    """True when this is the configured hit of ``point`` (counts every call) on this rank."""
    raising_rank, spec = _spec()
    if not spec:
        return False
    name, _, nth = spec.partition(":")
    if name != point or (raising_rank is not None and raising_rank != int(os.environ.get("RANK", "0"))):
        return False
    _counts[point] = _counts.get(point, 0) + 1
    if _counts[point] != int(nth or 1):
        return False
    marker = os.environ.get("TRANSFERBENCH_FAULT_ONCE")
    return _first_across_processes(marker) if marker else True


def _first_across_processes(marker: str) -> bool:
    """True for the one process that creates ``marker``; O_EXCL makes racing processes agree."""
    try:
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    return True


def _nothing() -> None:
    return None


def hook(point: str) -> Callable[[], None]:
    """What the code at ``point`` calls each time it passes (a training step, an evaluation). The
    environment is read once, here: unless ``TRANSFERBENCH_FAULT`` names this point the hook does
    nothing at all, so an unarmed run pays one empty call per step, not a parse of the environment."""
    if _spec()[1].partition(":")[0] != point:
        return _nothing
    return lambda: kill_if_armed(point)


def kill_if_armed(point: str) -> None:
    if not armed(point):
        return
    if _spec()[0] is not None:
        raise InjectedFault(f"injected fault at {point} ({os.environ['TRANSFERBENCH_FAULT']})")
    os.kill(os.getpid(), signal.SIGKILL)
