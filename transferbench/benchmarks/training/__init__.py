"""Training: the shared budget (``budget``), the one loop (``loop``), evaluation (``evaluate``), the
linear probe (``probe``) and the metrics every run reports (``metrics``)."""

from transferbench.benchmarks.training.budget import OPTIMIZERS, Budget
from transferbench.benchmarks.training.evaluate import accuracy, in_order, predict, recalibrate_batchnorm
from transferbench.benchmarks.training.loop import (
    FitRun,
    TrainOutcome,
    make_optimizer,
    train,
    train_step,
    warmup_cosine,
)

__all__ = [
    "OPTIMIZERS",
    "Budget",
    "FitRun",
    "TrainOutcome",
    "accuracy",
    "in_order",
    "make_optimizer",
    "predict",
    "recalibrate_batchnorm",
    "train",
    "train_step",
    "warmup_cosine",
]
