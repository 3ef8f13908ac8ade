"""Tracker logging (``--log-to tensorboard,mlflow,wandb``): what a run logs to experiment trackers
beside its record. The contract and registry are ``base``; ``fanout`` keeps a failing tracker to one
warning line; one module per library (``tensorboard``, ``mlflow``, ``wandb``), each importing its
library only when a run asks for it. This room knows nothing of training or execution: the loop logs
through a ``Trackers`` it is handed, and the runner makes it (``execution.tracked``)."""

from transferbench.benchmarks.tracking import mlflow, tensorboard, wandb  # noqa: F401  (register the trackers)
from transferbench.benchmarks.tracking.base import EXTRA, TRACKERS, Tracker, flatten, problem, scalar
from transferbench.benchmarks.tracking.fanout import Trackers, open_trackers, warn

__all__ = ["EXTRA", "TRACKERS", "Tracker", "Trackers", "flatten", "open_trackers", "problem", "scalar", "warn"]
