"""The tracker contract and its registry.

A :class:`Tracker` logs one run to one experiment tracker: ``start`` (the run's name, its resolved
config as parameters, its group), ``log_step`` (training loss and learning rates at the loop's reads),
``log_epoch`` (each validation), ``finish`` (the record's final metrics and status) and ``close``. A
tracker is one class registered in :data:`TRACKERS` by name (``--log-to NAME``); a plugin registers
its own the same way. Each library is imported inside its tracker's methods, so a missing one costs
nothing until it is asked for, and :func:`problem` says so in one line before any data loads.
"""

from __future__ import annotations

import importlib.util
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transferbench.errors import UserError
from transferbench.registry import Registry

EXTRA = "pip install 'transferbench[trackers]'"


class Tracker(ABC):
    """One run logged to one tracker. ``root`` is the folder its files go to (``<out>/trackers``), or
    None where the run has no output folder (then only a tracker configured by its own environment
    variables can log). Methods may raise: the fan-out (``tracking.Trackers``) turns any exception into
    one warning line and drops the tracker."""

    name = ""
    requires: tuple[str, ...] = ()  # the modules it imports (checked before any data loads)

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.last_step = 0

    @classmethod
    def missing(cls) -> list[str]:
        """The modules this tracker needs that are not installed."""
        return absent(cls.requires)

    def folder(self, *parts: str) -> Path:
        """A folder under ``root`` (created), or the error that there is none here."""
        if self.root is None:
            raise UserError("no output folder in this process to write to")
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @abstractmethod
    def start(self, run_name: str, params: Mapping[str, Any], group: str) -> None:
        """Open the tracker's run named ``run_name`` (the run id) in ``group`` with ``params``, the
        resolved config (nested mappings; :func:`flatten` gives ``strategy.lr``-style keys)."""

    @abstractmethod
    def log_step(self, step: int, metrics: Mapping[str, float]) -> None:
        """Training metrics at global optimizer step ``step``."""

    def log_epoch(self, epoch: int, step: int, metrics: Mapping[str, float]) -> None:
        """Metrics of validation ``epoch`` (1-based), at global step ``step``."""
        self.log_step(step, {**metrics, "epoch": float(epoch)})

    @abstractmethod
    def finish(self, metrics: Mapping[str, float], status: str) -> None:
        """The run's final metrics (the record's) and status (``ok``, ``near-chance``, ...); the
        tracker's run ends as finished."""

    def close(self) -> None:
        """Release the run; one not finished (the cell raised) ends as failed. Called once, last."""
        return None


TRACKERS: Registry[type[Tracker]] = Registry("tracker")


def absent(modules: tuple[str, ...]) -> list[str]:
    """Those of ``modules`` that are not installed (found without importing them)."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def problem(names: tuple[str, ...]) -> str | None:
    """Why ``--log-to names`` cannot work here (an unknown name, with the closest; a library that is
    not installed, with the extra that installs it), or None."""
    for name in names:
        try:
            tracker = TRACKERS.get(name)
        except UserError as exc:
            return str(exc)
        missing = tracker.missing()
        if missing:
            return f"{name} needs {', '.join(missing)}, which is not installed: {EXTRA}"
    return None


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with dotted keys (``{"strategy": {"lr": 1e-3}}`` ->
    ``{"strategy.lr": 1e-3}``); lists and tuples stay values."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def scalar(value: Any) -> str | float | int | bool:
    """A parameter value as a tracker's scalar: numbers, strings and booleans as they are, anything
    else (None, lists, empty mappings) as its JSON text."""
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return json.dumps(value, default=str)
