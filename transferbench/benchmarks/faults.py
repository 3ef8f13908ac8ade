"""Fault injection for the kill-and-resume tests.

``TRANSFERBENCH_FAULT=<point>:<n>`` makes the process SIGKILL itself the n-th time it reaches
``point`` (``train-step``, ``eval``, ``append``), so tests can kill a real run at an exact place. Unset
(always, outside tests) it does nothing.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def armed(point: str) -> bool:
    """True when this is the configured hit of ``point`` (counts every call)."""
    spec = os.environ.get("TRANSFERBENCH_FAULT")
    if not spec:
        return False
    name, _, nth = spec.partition(":")
    if name != point:
        return False
    _counts[point] = _counts.get(point, 0) + 1
    return _counts[point] == int(nth or 1)


def kill_if_armed(point: str) -> None:
    if armed(point):
        os.kill(os.getpid(), signal.SIGKILL)
