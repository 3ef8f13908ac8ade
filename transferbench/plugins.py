"""Entry-point plugins: a package adds adapters, tasks, strategies, domains or trackers without editing this
one, by declaring an entry point in one of GROUPS (pyproject: ``[project.entry-points."transferbench.adapters"]
my_models = "my_package.models"``). The entry point names a module (importing it registers what it
defines) or a function (called once; if it returns a folder, the task files in it are registered).

A plugin that fails to load is reported in one line and skipped: one broken package must not take
the rest of the suite down with it.
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Callable
from pathlib import Path

from transferbench.tasks.files import include_path

GROUPS = (
    "transferbench.domains",
    "transferbench.adapters",
    "transferbench.tasks",
    "transferbench.strategies",
    "transferbench.trackers",  # a module that adds a tracker to TRACKERS (benchmarks/tracking/base.py)
)
_loaded: set[tuple[str, str]] = set()


def _warn(message: str) -> None:
    print(f"transferbench: warning: {message}", file=sys.stderr)


def load_plugins(warn: Callable[[str], None] = _warn) -> list[str]:
    """Load every installed plugin once; the names of those that loaded."""
    names = []
    for group in GROUPS:
        for entry in importlib.metadata.entry_points(group=group):
            key = (group, entry.name)
            if key in _loaded:
                continue
            _loaded.add(key)
            try:
                target = entry.load()
                result = target() if callable(target) else None
                if isinstance(result, str | Path):
                    include_path(result)
            except Exception as exc:  # a plugin's own bug: report it, keep the rest
                detail = str(exc).splitlines()[0][:160] if str(exc) else ""
                warn(f"plugin {entry.name!r} ({group} = {entry.value}) failed to load: {type(exc).__name__}: {detail}")
                continue
            names.append(entry.name)
    return names
