"""Modern fine-tuning strategies: BitFit, layer-wise learning-rate decay, gradual unfreezing (ULMFiT).

Each is a :class:`PretrainedStrategy` whose knobs are declared options (``--train-norm``,
``--layer-decay``, ``--blocks-per-epoch``); the recipes and their sources are in ``builtin``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from torch import nn

from transferbench.adapters.base import decay_groups
from transferbench.benchmarks.strategies.base import PretrainedStrategy, block_names, head_names
from transferbench.benchmarks.training.loop import FitRun, TrainOutcome, train
from transferbench.errors import UserError
from transferbench.options import option


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._NormBase | nn.LayerNorm | nn.GroupNorm)


@dataclass(frozen=True)
class BitFit(PretrainedStrategy):
    """Bias terms (and, with ``train_norm``, normalisation weights) plus the head; all else frozen."""

    train_norm: bool = option(False, "bitfit: also train the normalisation layers' scale (BatchNorm/LayerNorm weight)")
    fixed_freeze: ClassVar[str | None] = "backbone"

    def selected(self, model: Any) -> set[str]:
        """Backbone parameters BitFit trains: every bias (``bias``, the LSTM's ``bias_ih_l0`` ...),
        and the normalisation weights if ``train_norm``."""
        chosen = set()
        for prefix, module in model.backbone.named_modules():
            for name, _ in module.named_parameters(recurse=False):
                if name == "bias" or name.startswith("bias_") or (self.train_norm and _is_norm(module)):
                    chosen.add(f"backbone.{prefix}.{name}" if prefix else f"backbone.{name}")
        return chosen

    def prepare(self, model: Any) -> None:
        super().prepare(model)  # head only
        chosen = self.selected(model)
        if not chosen:
            raise UserError(f"strategy {self.name!r}: the {type(model).__name__} backbone has no bias to train")
        for name, p in model.named_parameters():
            if name in chosen:
                p.requires_grad_(True)
        model.train(model.training)  # BatchNorm layers with trainable parameters now count as trainable

    def claimed_trainable(self, model: Any, epoch: int = 0) -> set[str]:
        return head_names(model) | self.selected(model)


@dataclass(frozen=True)
class LayerwiseDecay(PretrainedStrategy):
    """Everything trains; block d below the top gets the backbone rate x ``layer_decay``**d."""

    layer_decay: float = option(
        0.8,
        "llrd: each block below the top learns this many times as fast as the one above",
        low=0,
        low_open=True,
        high=1,
    )

    def block_rates(self, num_blocks: int) -> list[float]:
        """Learning rate per block, input side first (the order of ``blocks()``)."""
        top = self.lr * self.backbone_lr_scale
        return [top * self.layer_decay ** (num_blocks - 1 - i) for i in range(num_blocks)]

    def param_groups(self, model: Any) -> list[dict]:
        groups = decay_groups("head", model.head.parameters(), self.lr, self.weight_decay)
        blocks, seen = model.blocks(), set()
        for index, (block, rate) in enumerate(zip(blocks, self.block_rates(len(blocks)), strict=True)):
            params = [p for p in block.parameters() if id(p) not in seen]
            seen |= {id(p) for p in params}
            groups += decay_groups(f"backbone-{index}", params, rate, self.weight_decay)
        return groups

    def fit(self, run: FitRun) -> TrainOutcome:
        outcome = super().fit(run)
        outcome.extra["lr_by_block"] = self.block_rates(len(run.model.blocks()))
        return outcome


@dataclass(frozen=True)
class GradualUnfreeze(PretrainedStrategy):
    """ULMFiT: epoch e trains the head and the top e x ``blocks_per_epoch`` blocks."""

    blocks_per_epoch: int = option(1, "gradual-unfreeze: blocks unfrozen per epoch, from the top", low=1)
    fixed_freeze: ClassVar[str | None] = "backbone"

    def unfrozen(self, epoch: int, num_blocks: int) -> int:
        return min(num_blocks, epoch * self.blocks_per_epoch)

    def epoch_hook(self, model: Any) -> Callable[[int], None]:
        num_blocks = len(model.blocks())

        def unfreeze(epoch: int) -> None:  # set from the epoch alone: a resumed run gets the same state
            model.freeze(f"last-{self.unfrozen(epoch, num_blocks)}")

        return unfreeze

    def claimed_trainable(self, model: Any, epoch: int = 0) -> set[str]:
        blocks = model.blocks()
        return head_names(model) | block_names(model, blocks[len(blocks) - self.unfrozen(epoch, len(blocks)) :])

    def param_groups(self, model: Any) -> list[dict]:
        """The whole backbone from the start, frozen blocks included: the optimizer exists once,
        and a parameter without a gradient gets no update (nor weight decay) from AdamW or SGD."""
        backbone = decay_groups(
            "backbone",
            model.backbone.parameters(),
            self.lr * self.backbone_lr_scale,
            self.weight_decay,
            trainable_only=False,
        )
        return decay_groups("head", model.head.parameters(), self.lr, self.weight_decay) + backbone

    def fit(self, run: FitRun) -> TrainOutcome:
        run = replace(run, on_epoch=self.epoch_hook(run.model))
        outcome = train(run, self.param_groups(run.model), precise_bn=self.precise_bn)
        epochs = run.budget.epochs_for(run.budget.steps_per_epoch(len(run.train_pipe)))
        outcome.extra["unfrozen_blocks_by_epoch"] = [self.unfrozen(e, len(run.model.blocks())) for e in range(epochs)]
        return outcome
