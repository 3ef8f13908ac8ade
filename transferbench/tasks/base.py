"""Tasks as small declarative configs over one generic loader (the lm-evaluation-harness way).

A task = a data source (hub dataset, local folder or a dataset that ships with a package) +
splits + input/label columns + class names + metric + domain. Loading returns :class:`TaskData`,
whose inputs are already decoded (images as one uint8 tensor, texts as strings, audio as float
arrays), so every run of an invocation reuses them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from transferbench.errors import DataError, UserError
from transferbench.registry import Registry


@dataclass(frozen=True)
class TaskConfig:
    name: str
    domain: str
    description: str
    loader: str  # "hub-or-dir" (hub dataset unless --data-dir) | "dir" (needs --data-dir) | "builtin"
    hub_path: str | None = None
    hub_config: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    input_column: str = "image"
    label_column: str = "label"
    metric: str = "accuracy"
    flip_augment: bool = True  # horizontal flips preserve the label (not for digits or text)
    image_size: int | None = None  # default input size, else the adapter's native size
    target_accuracy: float | None = None  # for time-to-accuracy
    test_note: str = ""  # e.g. "upstream test labels are hidden; validation is reported"
    builtin: Callable[[], tuple[Any, np.ndarray, Any, np.ndarray, list[str]]] | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Split:
    inputs: Any  # vision: uint8 tensor [N, 3, H, W]; text: list[str]; audio: list of float32 arrays
    labels: np.ndarray  # int64 class ids

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> Split:
        inputs = self.inputs[index] if hasattr(self.inputs, "shape") else [self.inputs[i] for i in index]
        return Split(inputs, self.labels[index])


@dataclass
class TaskData:
    task: str
    domain: str
    class_names: list[str]
    train: Split
    test: Split
    source: str  # where the data came from: hub id, folder, or package
    test_split: str
    notes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fingerprint(self) -> str:
        """Content hash of the decoded data and labels: identifies the data in a run's identity."""
        digest = hashlib.sha256()
        for split in (self.train, self.test):
            digest.update(np.ascontiguousarray(split.labels).tobytes())
            if hasattr(split.inputs, "numpy"):
                digest.update(split.inputs.numpy().tobytes())
            else:
                for item in split.inputs:
                    digest.update(item.encode() if isinstance(item, str) else np.asarray(item).tobytes())
        digest.update("\n".join(self.class_names).encode())
        return digest.hexdigest()[:16]


TASKS: Registry[TaskConfig] = Registry("task")


def register_task(config: TaskConfig, aliases: tuple[str, ...] = ()) -> TaskConfig:
    TASKS.add(config.name, config, aliases=aliases)
    return config


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): ``fraction`` of each class held out (at least one per class
    with two or more examples), reproducibly for a seed."""
    rng = np.random.RandomState(seed)
    keep: list[int] = []
    held: list[int] = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_held = max(1, round(fraction * len(idx))) if len(idx) > 1 else 0
        held.extend(idx[:n_held])
        keep.extend(idx[n_held:])
    return np.sort(np.array(keep, dtype=np.int64)), np.sort(np.array(held, dtype=np.int64))


def subsample(labels: np.ndarray, n: int, seed: int, per_class: bool = False) -> np.ndarray:
    """Indices of ``n`` examples (or ``n`` per class), class-balanced as far as the data allows."""
    rng = np.random.RandomState(seed)
    classes = np.unique(labels)
    pools = {c: list(rng.permutation(np.flatnonzero(labels == c))) for c in classes}
    if per_class:
        chosen = [i for c in classes for i in pools[c][:n]]
    else:
        chosen = []
        while len(chosen) < min(n, len(labels)):  # round-robin over classes keeps balance
            for c in classes:
                if pools[c] and len(chosen) < n:
                    chosen.append(pools[c].pop(0))
    return np.sort(np.array(chosen, dtype=np.int64))


def check_data_dir(data_dir: str | Path, splits: tuple[str, ...]) -> Path:
    path = Path(data_dir)
    if not path.exists():
        raise DataError(f"--data-dir {path}: does not exist")
    if not path.is_dir():
        raise DataError(f"--data-dir {path}: is not a directory")
    missing = [s for s in splits if not (path / s).is_dir()]
    if missing:
        raise DataError(
            f"--data-dir {path}: no {'/'.join(missing)}/ folder; expected "
            + " and ".join(f"{s}/<class>/<files>" for s in splits)
        )
    return path


def resolve_task(name: str, data_dir: str | None) -> TaskConfig:
    config = TASKS.get(name)
    if config.loader == "dir" and not data_dir:
        raise UserError(f"task {config.name!r} reads a local folder: pass --data-dir DIR")
    return config
