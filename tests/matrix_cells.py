"""The cheapest real matrix: six cells of digits (scikit-learn's, no download) on efficientnet-lite0
at 16 px, 32 training examples, one epoch of two steps, CPU, one torch thread. tests/test_executors.py
and tests/test_shards.py run it through the Ray executor and as three shards; the serial run of it
(``serial_matrix`` in conftest.py) is what both must reproduce."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from transferbench.benchmarks.execution.matrix import run_all
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.training.loop import Budget

STRATEGIES = ("finetune", "scratch")  # both train (two steps each), so a fault at train-step:2 lands mid-cell
SEEDS = (0, 1, 2)


def spec(strategy: str, seed: int, **overrides: Any) -> RunSpec:
    fields: dict[str, Any] = {
        "image_size": 16,
        "max_train_examples": 32,
        "budget": Budget(epochs=1, batch_size=16, min_steps=0),
        "device": "cpu",
    }
    return RunSpec.create("digits", "efficientnet-lite0", strategy, seed=seed, **{**fields, **overrides})


def specs() -> list[RunSpec]:
    return [spec(strategy, seed) for strategy in STRATEGIES for seed in SEEDS]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One torch thread, as a Ray cell with one CPU has: CPU kernels add up in an order that depends
    on the thread count, so runs compared for equality must share it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_serial(out: Path) -> list[dict[str, Any]]:
    """The matrix through the serial executor."""
    with one_thread():
        return run_all(specs(), out_dir=out, progress=False, log=lambda _: None)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


MEASURED = ("run_id", "status", "config", "metrics", "val_accuracy_per_epoch", "train_examples", "steps", "params")


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """What must be equal between two runs of one cell: identity and measurements, timings aside."""
    return {key: record.get(key) for key in MEASURED}
