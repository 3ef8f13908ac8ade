"""A toy strategy written the way a user would add one: from random init, the first block stays
frozen at its initialisation while the rest trains. Importing it registers it; nothing in the
transferbench package changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transferbench.benchmarks.strategies.base import Strategy, register_strategy


@dataclass(frozen=True)
class FrozenStem(Strategy):
    """Random features from the first block, everything after it trained."""

    def prepare(self, model: Any) -> None:
        super().prepare(model)
        for p in model.blocks()[0].parameters():
            p.requires_grad_(False)


register_strategy(
    FrozenStem(
        "frozen-stem",
        "random init; the first block stays at its random initialisation, the rest trains",
        pretrained=False,
        freeze="none",
        bn_policy="train",
        lr=1e-2,
        backbone_lr_scale=1.0,
        weight_decay=0.0,
    )
)
