"""Train and validation splits of a run, carved out of the task's training split (test is never
used for a choice): a named protocol's selection, else a stratified hold-out and an optional
class-balanced subsample, all fixed by ``split_seed`` so that seeds vary training only."""

from __future__ import annotations

from typing import Any

from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.errors import UserError
from transferbench.tasks import TaskData
from transferbench.tasks.base import Split, stratified_split, subsample
from transferbench.tasks.protocols import PROTOCOLS


def make_splits(spec: RunSpec, data: TaskData) -> tuple[Split, Split]:
    """Train and validation splits from the task's training split: a named protocol's selection,
    else a stratified ``val_fraction`` hold-out and an optional class-balanced subsample."""
    if spec.data_protocol:
        train, val = PROTOCOLS.get(spec.data_protocol).select(data.train.labels, spec.split_seed)
        return data.train.subset(train), data.train.subset(val)
    keep, held = stratified_split(data.train.labels, spec.val_fraction, spec.split_seed)
    train_split, val_split = data.train.subset(keep), data.train.subset(held)
    if spec.max_train_examples is not None and spec.max_train_examples < len(train_split):
        picked = subsample(train_split.labels, spec.max_train_examples, spec.split_seed, per_class=spec.per_class)
        train_split = train_split.subset(picked)
    if len(train_split) < spec.budget.batch_size:
        raise UserError(
            f"--batch-size {spec.budget.batch_size} is larger than the {len(train_split)} training examples"
        )
    return train_split, val_split


def protocol_record(spec: RunSpec, data: TaskData) -> dict[str, Any] | None:
    """Which examples a protocol run trained and validated on (None: no protocol)."""
    if not spec.data_protocol:
        return None
    protocol = PROTOCOLS.get(spec.data_protocol)
    return protocol.record(*protocol.select(data.train.labels, spec.split_seed), spec.split_seed)
