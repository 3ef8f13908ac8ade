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
class NoTaskKeys:
    """The task keys of a domain that has none of its own."""


@dataclass(frozen=True)
class TaskConfig:
    """A task as data: where its examples come from, how they are labelled, what it is judged by.
    Nothing here is code, so a task can be written as a file. What only one domain reads (vision's
    ``flip_augment``, audio's ``duration_s`` and ``folds``) is that domain's: its ``task_keys``
    dataclass, held in ``keys`` (a task file writes them flat, beside these)."""

    name: str
    domain: str
    description: str
    loader: str  # "hub-or-dir" (hub dataset unless --data-dir) | "dir" (needs --data-dir) | "builtin"
    hub_path: str | None = None
    hub_config: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    input_column: str | None = None  # None: the domain's (Domain.default_input_column)
    label_column: str = "label"
    metric: str = "accuracy"
    target_accuracy: float | None = None  # for time-to-accuracy
    test_note: str = ""  # e.g. "upstream test labels are hidden; validation is reported"
    builtin: str | None = None  # name of a data set in BUILTIN_DATA (ships with a package, or generated)
    source_note: str | None = None  # how a builtin data set is described as a source
    class_names: tuple[str, ...] | None = None  # fixed names for integer labels 0..N-1 (SST-2)
    keys: Any = None  # the domain's own keys (an instance of its Domain.task_keys); None: its defaults
    # raised when a task's definition changes what its runs see (data, split, labels): records of two
    # versions are never averaged together (the benchmark's headline table refuses it)
    version: int = 1


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
    layout: str = "builtin"  # what was read: hub | hub-copy | imagefolder | csv | audiofolder | fold-metadata
    revision: str | None = None  # a local copy's: the content hash of its files (tasks.local_files)
    load_s: float | None = None  # how long loading and decoding took (once per process, shared by its runs)

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


HUB_COPY_EXPECTED = "or a local copy of a hub dataset (parquet/arrow files with a README.md dataset card)"
TASKS: Registry[TaskConfig] = Registry("task")
# tasks read from a user's file: name -> (file, line of each key), so a problem found only when the
# data loads (a column it lacks) still names the file, line and key
TASK_FILES: dict[str, tuple[str, dict[str, int]]] = {}
# Data sets that ship with a package or are generated: name -> () -> (x_train, y_train, x_test, y_test, names)
BUILTIN_DATA: Registry[Callable[[], tuple[Any, np.ndarray, Any, np.ndarray, list[str]]]] = Registry("builtin data set")


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
            + f", {HUB_COPY_EXPECTED}"
        )
    return path


def check_classes(data: TaskData) -> None:
    """Every domain's data, once decoded: a classification task needs two classes with training
    examples, and no test example of a class that training never shows (its accuracy would be
    published for a class nothing could learn)."""
    present = np.unique(data.train.labels)
    if len(present) < 2:
        found = ", ".join(repr(data.class_names[int(c)]) for c in present) or "none"
        raise DataError(f"{data.source}: task {data.task!r} needs at least 2 classes in training; found {found}")
    unseen = sorted(set(np.unique(data.test.labels).tolist()) - set(present.tolist()))
    if unseen:
        names = ", ".join(repr(data.class_names[int(c)]) for c in unseen[:5])
        raise DataError(
            f"{data.source}: {data.test_split} holds classes {names} with no training example; "
            "a model cannot learn classes it never saw"
        )


def task_data(
    config: TaskConfig,
    names: list[str],
    train: tuple[Any, np.ndarray],
    test: tuple[Any, np.ndarray],
    source: str,
    notes: list[str] | None = None,
    test_split: str | None = None,
    layout: str = "builtin",
) -> TaskData:
    """A task's decoded data from (inputs, labels) pairs, as every domain's loader returns it."""
    split = test_split or config.test_split
    return TaskData(config.name, config.domain, names, Split(*train), Split(*test), source, split, notes or [], layout)


def builtin_task_data(config: TaskConfig) -> TaskData:
    """A builtin data set, decoded: the same in every domain."""
    x_train, y_train, x_test, y_test, names = BUILTIN_DATA.get(config.builtin or config.name)()
    return task_data(config, names, (x_train, y_train), (x_test, y_test), source=config.source_note or "builtin")


def resolve_task(name: str, data_dir: str | None) -> TaskConfig:
    config = TASKS.get(name)
    if config.loader == "dir" and not data_dir:
        raise UserError(f"task {config.name!r} reads a local folder: pass --data-dir DIR")
    return config
