"""One pipeline base for every domain: the order examples are visited in, dropping the last
partial batch, and the unaugmented view. A domain's pipeline only says how a list of example
indices becomes a batch (``collate``); text also overrides the ordering (length buckets)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from transferbench.inputs import Batch


class Pipeline(ABC):
    """Batches of one decoded split on ``device``. ``train`` pipelines augment; ``unaugmented()``
    is the same data without augmentation (feature caching, BatchNorm statistics). A domain's
    pipeline must say how examples become a batch (``collate``): a subclass without it does not
    instantiate."""

    def __init__(self, labels: np.ndarray, *, device: torch.device, train: bool = False) -> None:
        self.labels = torch.as_tensor(labels, device=device)
        self.device, self.train = device, train

    def __len__(self) -> int:
        return len(self.labels)

    def unaugmented(self) -> Pipeline:
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__, train=False)
        return view

    @abstractmethod
    def collate(self, idx: torch.Tensor, gen: torch.Generator | None) -> Batch:
        """The batch of examples ``idx``; ``gen`` is set when the batch may be augmented."""

    def groups(
        self, batch_size: int, *, shuffle: bool, gen: torch.Generator | None, drop_last: bool
    ) -> list[torch.Tensor]:
        """Example indices per batch: a seeded permutation (or the split's order), cut in batches."""
        n = len(self)
        order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        return [order[start : start + batch_size] for start in range(0, stop, batch_size)]

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        gen: torch.Generator | None = None,
        drop_last: bool = False,
        share: tuple[int, int] = (0, 1),
    ) -> Iterator[Batch]:
        """The batches in order; ``share=(i, n)`` keeps every n-th batch from the i-th (one process's
        part of an evaluation that n processes split), collating only those."""
        part, parts = share
        for idx in self.groups(batch_size, shuffle=shuffle, gen=gen, drop_last=drop_last)[part::parts]:
            yield self.collate(idx, gen if shuffle else None)

    def with_targets(self, batch: dict[str, Any], idx: torch.Tensor | np.ndarray) -> Batch:
        """Add ``labels`` and ``index`` (positions in the split, to restore order) to a batch."""
        index = torch.as_tensor(idx, device=self.device)
        return {**batch, "labels": self.labels[index], "index": index}
