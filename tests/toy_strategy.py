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


@dataclass(frozen=True)
class ClaimsOnValidation(Strategy):
    """A stand-in whose validation and test disagree, for sweep selection: it reports ``claim`` as
    its validation accuracy, and a claim above one half trains at a rate too small to learn, so the
    point that looks best on validation is the worst on test."""

    claim: float = option(0.5, "claims: the validation accuracy it reports", low=0, high=1)

    def param_groups(self, model: Any) -> list[dict]:
        lr = self.lr * (1e-6 if self.claim > 0.5 else 1.0)
        return model.param_groups(lr, lr * self.backbone_lr_scale, self.weight_decay)

    def fit(self, run: Any) -> Any:
        outcome = super().fit(run)
        outcome.val_accuracy = [*outcome.val_accuracy[:-1], self.claim]
        return outcome


register_strategy(
    ClaimsOnValidation(
        "claims",
        "random init; reports a validation accuracy of its choosing (a stand-in for sweep tests)",
        pretrained=False,
        freeze="none",
        bn_policy="train",
        lr=1e-2,
        backbone_lr_scale=1.0,
        weight_decay=0.0,
    )
)
