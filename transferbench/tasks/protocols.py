"""Named data protocols: fixed train/validation selections that published benchmarks define, used
as a data budget next to ``all`` and N examples (``--train-examples vtab-1k``).

A protocol replaces the usual split (a stratified ``val_fraction`` hold-out, then an optional
class-balanced subsample): it draws a fixed number of training and validation examples from the
task's training split, the way the benchmark that defines it does. The selected indices go into the
record (``data_protocol``), so anyone can check which examples a published number saw.

A new protocol is one ``PROTOCOLS`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from transferbench.errors import DataError
from transferbench.registry import Registry


@dataclass(frozen=True)
class DataProtocol:
    name: str
    train: int  # training examples
    val: int  # validation examples (model selection, validation curves)
    description: str

    def select(self, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(train, val) indices into the task's training split: the first ``train`` and the next
        ``val`` examples of a seeded permutation (VTAB takes the first 800 and next 200 of TFDS'
        fixed train order; a seeded permutation is that rule for splits with no canonical order).
        Not stratified, as in VTAB: a class may be rare, which is part of the protocol."""
        need = self.train + self.val
        if len(labels) < need:
            raise DataError(
                f"--train-examples {self.name}: needs {need} training examples ({self.train} train + "
                f"{self.val} validation), the task's training split has {len(labels)}"
            )
        order = np.random.RandomState(seed).permutation(len(labels))
        return np.sort(order[: self.train]), np.sort(order[self.train : need])

    def record(self, train: np.ndarray, val: np.ndarray, seed: int) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "split_seed": seed,
            "train_indices": train.tolist(),
            "val_indices": val.tolist(),
        }


PROTOCOLS: Registry[DataProtocol] = Registry("data protocol")
PROTOCOLS.add(
    "vtab-1k",
    DataProtocol(
        "vtab-1k",
        800,
        200,
        "VTAB-1k (Zhai et al. 2019): 800 training + 200 validation examples from the training split; "
        "the test split is used whole",
    ),
)
