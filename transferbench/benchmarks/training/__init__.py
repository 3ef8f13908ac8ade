"""The training loop, evaluation, the linear probe and the metrics every run reports."""

from transferbench.benchmarks.training.loop import (
    OPTIMIZERS,
    Budget,
    FitRun,
    TrainOutcome,
    in_order,
    make_optimizer,
    predict,
    recalibrate_batchnorm,
    train,
    train_step,
    warmup_cosine,
)

__all__ = [
    "OPTIMIZERS",
    "Budget",
    "FitRun",
    "TrainOutcome",
    "in_order",
    "make_optimizer",
    "predict",
    "recalibrate_batchnorm",
    "train",
    "train_step",
    "warmup_cosine",
]
