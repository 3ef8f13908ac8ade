"""A toy strategy written the way a user would add one: from random init, the first blocks stay
frozen at their initialisation while the rest trains. Its knob, ``frozen_blocks``, is a declared
option: a flag (``--frozen-blocks``), a matrix-file key and a line of ``list strategies`` with no
other file touched. Importing this module registers it; nothing in the transferbench package changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transferbench.benchmarks.strategies import Strategy, block_names, register_strategy
from transferbench.options import option


@dataclass(frozen=True)
class FrozenStem(Strategy):
    """Random features from the first blocks, everything after them trained."""

    frozen_blocks: int = option(1, "frozen-stem: blocks from the input side that stay at their random init", low=0)

    def prepare(self, model: Any) -> None:
        super().prepare(model)
        for block in model.blocks()[: self.frozen_blocks]:
            for p in block.parameters():
                p.requires_grad_(False)

    def claimed_trainable(self, model: Any, epoch: int = 0) -> set[str]:
        return super().claimed_trainable(model, epoch) - block_names(model, model.blocks()[: self.frozen_blocks])


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
