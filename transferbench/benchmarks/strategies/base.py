"""Training strategies and their default recipes.

Every strategy of a comparison shares one budget (epochs, batch size, data, optimizer family,
schedule); what differs is what is pretrained, what trains, and the learning rates each needs to
be a fair, strong contender. The recipes and why:

* ``finetune``: pretrained, everything trains, backbone at 0.1x the head's learning rate, and
  BatchNorm running statistics kept frozen (``frozen-stats``). Short fine-tuning runs with small
  batches otherwise replace good ImageNet statistics with noisy ones (EfficientNet's momentum of
  0.01 makes it worse: the statistics lag the weights), which can push fine-tuning below a linear
  probe.
* ``linear-probe``: pretrained and frozen; features are computed once (no augmentation) and an
  L2-regularised logistic regression is fitted on them, its strength chosen on the validation split
  (Kornblith et al. 2019, MTEB). The fitted weights become the adapter's linear head. With an MLP head
  the head is trained on the cached features with the run's optimizer and budget instead.
* ``partial``: pretrained, the last K backbone blocks + head train (K=2 by default).
* ``lp-ft``: fine-tuning whose head starts from the fitted linear probe instead of random weights
  (Kumar et al. 2022): the backbone is not pulled around by a random head's gradients early on.
  The probe's cost is counted in its training time.
* ``scratch``: the identical architecture from random initialisation, a 2x higher learning rate and
  stronger weight decay (a from-scratch net needs them), BatchNorm momentum reset to PyTorch's 0.1
  and running statistics re-estimated on training data before every evaluation ("precise BN"),
  so an evaluation never uses statistics that lag the weights.

Modern and parameter-efficient fine-tuning (pretrained; the head always trains; BatchNorm
statistics frozen as for ``finetune``; the defaults are the CNN recipe, which adapter families
override through ``AdapterSpec.recipes`` as they do for ``finetune``):

* ``lora``: low-rank updates W + (alpha/r)·BA on the family's target layers (PEFT), everything else
  frozen; merged into the weights after training, so what is tested is the deployable model.
  r=8, alpha=16 and weight decay 0.1 are the LoRA authors' RoBERTa-base GLUE runs
  (microsoft/LoRA examples/NLU/roberta_base_{qnli,mrpc}.sh; Hu et al. 2021, Table 9). Their lr
  (4e-4-5e-4) came with 30-80 epochs; at this suite's few-epoch budgets it underfits, so the lr is
  1e-3 for every family (transformers too: adapters/text.py says what was measured). The adapter weights train
  at the head's rate (``backbone_lr_scale`` 1), 10x ``finetune``'s backbone rate: they start at
  zero and carry the whole adaptation (PEFT's ViT LoRA guide trains them at 5e-3).
* ``ia3``: learned per-channel scales on keys, values and the feed-forward output (Liu et al. 2022,
  T-Few); the vectors start at one and train at 3e-3 (r-three/t-few configs/ia3.json), hence
  ``backbone_lr_scale`` 3 on the 1e-3 head, and no weight decay (it would pull scales towards 0).
* ``bitfit``: only the bias terms (optionally normalisation weights too) and the head
  (Ben Zaken et al. 2022); lr 1e-3 for both, the default of benzakenelad/BitFit run_glue.py.
* ``llrd``: ``finetune`` with layer-wise learning-rate decay: the top block at the backbone rate,
  each block below it ``layer_decay`` (0.8, google-research/electra configure_finetuning.py) slower,
  so the generic lower layers move least.
* ``gradual-unfreeze``: ULMFiT's schedule (Howard & Ruder 2018, §3.2): the first epoch trains the
  head only, each further epoch one more block from the top, at ``finetune``'s rates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar

from torch import nn

from transferbench.adapters.base import FreezePolicy, decay_groups, inserted_parameters, option_flag
from transferbench.benchmarks.strategies import peft_layers as peft_tuning
from transferbench.benchmarks.training.loop import (
    Budget,
    FitRun,
    TrainOutcome,
    train,
)
from transferbench.benchmarks.training.probe import PROBE_C_SEARCH, CSearch, fit_linear_probe
from transferbench.errors import UserError
from transferbench.registry import Registry


@dataclass(frozen=True)
class Strategy:
    """How a pretrained (or random) model is adapted to a task: what is pretrained, what trains
    (``prepare``), at which rates (``param_groups``), and how it is fitted (``fit``: gradient
    training by default). A new strategy is a subclass or an instance, registered in STRATEGIES.
    Every field is part of a run's identity and recorded in ``config.strategy``."""

    name: str
    description: str
    pretrained: bool
    freeze: str  # none | backbone | last-K
    bn_policy: str  # train | frozen-stats
    lr: float  # head learning rate
    backbone_lr_scale: float  # backbone lr = lr * scale
    weight_decay: float
    precise_bn: bool = False  # re-estimate BatchNorm statistics on training data before evaluating
    bn_momentum: float | None = None  # reset BatchNorm momentum (None: keep the backbone's)

    # How the head is fitted, recorded with the fields (kept as the record keys they always were)
    closed_form_head: ClassVar[bool] = False  # a logistic-regression probe on cached features
    head_init: ClassVar[str] = "random"  # random | probe (the head starts from a fitted probe)
    # whether a classical adapter (fitted in closed form, no pretrained weights) can run it
    fits_classical: ClassVar[bool] = False

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "probe": self.closed_form_head, "head_init": self.head_init}

    def with_overrides(self, **overrides: Any) -> Strategy:
        """A copy with the given fields replaced (None: not given). A field this strategy does not
        have is refused in one line (``--lora-rank`` on ``finetune``), not a TypeError."""
        given = {k: v for k, v in overrides.items() if v is not None}
        names = {f.name for f in fields(self)}
        for key in given:
            if key not in names:
                raise UserError(f"{option_flag(key)} does not apply to strategy {self.name!r}")
        return replace(self, **given)

    def check(self, adapter: Any, head: str) -> None:
        """Refuse, before any data loads, an adapter or head this strategy cannot work with."""
        if adapter.classical and not self.fits_classical:
            raise UserError(f"adapter {adapter.name!r} has no pretrained weights: it runs with --strategy scratch only")

    def applies_to(self, adapter: Any) -> bool:
        """Whether ``check`` accepts this registry entry (with the default head), for listings."""
        return not adapter.classical or self.fits_classical

    def scope(self) -> str:
        """Which adapters this strategy applies to, in words (``transferbench list strategies``)."""
        return "every adapter" if self.fits_classical else "every neural adapter"

    def claimed_trainable(self, model: Any, epoch: int = 0) -> set[str]:
        """Names of the parameters that train in ``epoch`` (strategy contract): the head, and the
        backbone blocks the freeze policy names."""
        policy = FreezePolicy.parse(self.freeze)
        blocks = model.blocks()
        keep = {"none": len(blocks), "backbone": 0, "last": policy.k}[policy.kind]
        return head_names(model) | block_names(model, blocks[len(blocks) - keep :])

    def epoch_hook(self, model: Any) -> Callable[[int], None] | None:
        """What to call before each epoch (``FitRun.on_epoch``), for strategies whose trainable
        set changes during training; None for the rest."""
        return None

    def prepare(self, model: Any) -> None:
        """Set what trains and how BatchNorm behaves, on a freshly built model."""
        model.freeze(self.freeze)
        model.set_bn_policy(self.bn_policy)
        if self.bn_momentum is not None:
            for bn in model.batchnorm_layers():
                bn.momentum = self.bn_momentum

    def param_groups(self, model: Any) -> list[dict]:
        return model.param_groups(self.lr, self.lr * self.backbone_lr_scale, self.weight_decay)

    def progress_steps(self, budget: Budget, num_examples: int, head: str) -> int:
        """How many ticks the run's progress bar counts."""
        return budget.total_steps(num_examples)

    def fit(self, run: FitRun) -> TrainOutcome:
        """Gradient training under the run's budget."""
        return train(run, self.param_groups(run.model), precise_bn=self.precise_bn)


@dataclass(frozen=True)
class LinearProbe(Strategy):
    """A closed-form probe on cached frozen features; with an MLP head, the head is trained."""

    closed_form_head: ClassVar[bool] = True
    c_search: CSearch = PROBE_C_SEARCH

    def progress_steps(self, budget: Budget, num_examples: int, head: str) -> int:
        return len(self.c_search.grid) if head == "linear" else super().progress_steps(budget, num_examples, head)

    def fit(self, run: FitRun) -> TrainOutcome:
        if run.head != "linear":
            return super().fit(run)
        probe = fit_linear_probe(run, self.c_search)
        if run.target is not None and probe.val_accuracy[0] >= run.target:
            probe.time_to_target_s = probe.train_s  # a probe reaches its accuracy when the fit ends
        return probe


@dataclass(frozen=True)
class FromScratch(Strategy):
    """Random init: the one strategy a classical reference model (tf-idf + logistic regression),
    which has no pretrained weights, runs under too."""

    fits_classical: ClassVar[bool] = True


@dataclass(frozen=True)
class ProbeThenFinetune(Strategy):
    """LP-FT: fit a linear probe, then train everything from it; the probe's time counts as training."""

    head_init: ClassVar[str] = "probe"
    c_search: CSearch = PROBE_C_SEARCH

    def check(self, adapter: Any, head: str) -> None:
        super().check(adapter, head)
        if head != "linear":
            raise UserError(f"strategy {self.name!r} fits a linear probe: it needs --head linear")

    def fit(self, run: FitRun) -> TrainOutcome:
        probe = fit_linear_probe(run, self.c_search)
        outcome = super().fit(run)
        outcome.train_s += probe.train_s
        if outcome.time_to_target_s is not None:
            outcome.time_to_target_s += probe.train_s
        outcome.extra.update(probe_C=probe.extra["probe_C"], probe_val_accuracy=probe.val_accuracy[0])
        return outcome


def head_names(model: Any) -> set[str]:
    return {f"head.{n}" for n, _ in model.head.named_parameters()}


def block_names(model: Any, blocks: list[nn.Module]) -> set[str]:
    """Names (in the adapter) of the parameters held by ``blocks``."""
    wanted = {id(p) for block in blocks for p in block.parameters()}
    return {n for n, p in model.named_parameters() if id(p) in wanted}


def has_pretrained_weights(adapter: Any) -> bool:
    """Whether a registry entry has published pretrained weights to adapt: classical rows have none,
    and an entry without any says so in its ``pretrained_source`` ("none (train with --strategy
    scratch) ...", logmel-cnn)."""
    return not adapter.classical and not adapter.pretrained_source.strip().lower().startswith("none")


@dataclass(frozen=True)
class PretrainedStrategy(Strategy):
    """A strategy that adapts pretrained weights, refused on adapters that have none. Its trainable
    set is its own (``fixed_freeze``): ``--freeze`` is refused rather than silently ignored."""

    fixed_freeze: ClassVar[str | None] = None

    def refusal(self, adapter: Any) -> str | None:
        """Why this strategy cannot apply to ``adapter``, and what it would need (None: it applies)."""
        if adapter.classical:
            return "it is a classical model fitted in closed form, which runs with --strategy scratch only"
        if not has_pretrained_weights(adapter):
            return f"it has no published pretrained weights for {self.name} to adapt (use --strategy scratch)"
        return None

    def applies_to(self, adapter: Any) -> bool:
        return self.refusal(adapter) is None

    def scope(self) -> str:
        return "neural adapters with published pretrained weights"

    def check(self, adapter: Any, head: str) -> None:
        why = self.refusal(adapter)
        if why is not None:
            raise UserError(f"strategy {self.name!r} does not apply to adapter {adapter.name!r}: {why}")
        if self.fixed_freeze is not None and self.freeze != self.fixed_freeze:
            raise UserError(f"strategy {self.name!r} sets what trains itself: --freeze {self.freeze} does not apply")
        self.check_fields()

    def check_fields(self) -> None:
        """Refuse out-of-range values of the strategy's own fields (one line naming the flag)."""


def _require_range(name: str, value: float, low: float, high: float, *, low_open: bool = True) -> None:
    inside = (value > low if low_open else value >= low) and value <= high
    if not (math.isfinite(value) and inside):
        bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise UserError(f"{option_flag(name)} must be in {bounds}, got {value}")


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._NormBase | nn.LayerNorm | nn.GroupNorm)


@dataclass(frozen=True)
class BitFit(PretrainedStrategy):
    """Bias terms (and, with ``train_norm``, normalisation weights) plus the head; all else frozen."""

    train_norm: bool = False  # also the normalisation layers' scale (BatchNorm/LayerNorm weight)
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

    layer_decay: float = 0.8

    def check_fields(self) -> None:
        _require_range("layer_decay", self.layer_decay, 0.0, 1.0)

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

    blocks_per_epoch: int = 1
    fixed_freeze: ClassVar[str | None] = "backbone"

    def check_fields(self) -> None:
        if self.blocks_per_epoch < 1:
            raise UserError(f"--blocks-per-epoch must be a positive integer, got {self.blocks_per_epoch}")

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


@dataclass(frozen=True)
class PeftStrategy(PretrainedStrategy):
    """Adapter layers inserted by PEFT (:mod:`peft_tuning`) into the backbone, which stays frozen;
    the inserted weights and the head train. After training the adapters are merged into the
    weights (kept only if the logits agree) and the run records what was wrapped."""

    target_modules: str = peft_tuning.AUTO  # auto: the family default; else names or a regex
    method: ClassVar[str] = ""
    fixed_freeze: ClassVar[str | None] = "backbone"

    def refusal(self, adapter: Any) -> str | None:
        why = super().refusal(adapter)
        if why is None and self.target_modules == peft_tuning.AUTO and peft_tuning.family_for(adapter) is None:
            families = "; ".join(f.name.split(":")[0] for f in peft_tuning.FAMILIES)
            return (
                f"it has no layers {self.method} wraps by default (Linear/Conv2d layers of: {families}); "
                "name them with --target-modules"
            )
        return why

    def scope(self) -> str:
        return "pretrained " + " | ".join(f.name for f in peft_tuning.FAMILIES)

    def check_fields(self) -> None:
        if self.target_modules != peft_tuning.AUTO:
            peft_tuning.parse_targets(self.target_modules)

    def peft_options(self) -> dict[str, Any]:
        """The method's own PEFT config options."""
        return {}

    def feedforward(self) -> str:
        return peft_tuning.AUTO

    def prepare(self, model: Any) -> None:
        super().prepare(model)  # head only, then the inserted weights
        targets = peft_tuning.resolve_targets(model, self.method, self.target_modules, self.feedforward())
        model.peft_record = peft_tuning.insert(model, self.method, targets, **self.peft_options())

    def claimed_trainable(self, model: Any, epoch: int = 0) -> set[str]:
        inserted = {id(p) for p in inserted_parameters(model.backbone)}
        return head_names(model) | {n for n, p in model.named_parameters() if id(p) in inserted}

    def fit(self, run: FitRun) -> TrainOutcome:
        outcome = super().fit(run)
        model = run.model
        record = dict(getattr(model, "peft_record", {}))
        trainable, total = model.num_params(trainable_only=True), model.num_params()
        record.update(trainable_params=trainable, total_params=total, trainable_share=trainable / total)
        if outcome.status == "ok":
            batch = next(iter(run.val_pipe.batches(run.budget.batch_size, shuffle=False)))
            record.update(peft_tuning.merge_checked(model, batch))
        outcome.extra["peft"] = record
        return outcome


@dataclass(frozen=True)
class LoRA(PeftStrategy):
    """LoRA (Hu et al. 2021) through PEFT."""

    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    method: ClassVar[str] = "lora"

    def check_fields(self) -> None:
        super().check_fields()
        if self.lora_rank < 1 or self.lora_rank != int(self.lora_rank):
            raise UserError(f"--lora-rank must be a positive integer, got {self.lora_rank}")
        _require_range("lora_alpha", self.lora_alpha, 0.0, math.inf)
        _require_range("lora_dropout", self.lora_dropout, 0.0, 0.99, low_open=False)

    def peft_options(self) -> dict[str, Any]:
        return {"r": int(self.lora_rank), "lora_alpha": self.lora_alpha, "lora_dropout": self.lora_dropout}


@dataclass(frozen=True)
class IA3(PeftStrategy):
    """(IA)^3 (Liu et al. 2022) through PEFT: per-channel scales on the target layers' outputs, or
    on their inputs for the ``feedforward_modules``."""

    feedforward_modules: str = peft_tuning.AUTO  # auto: the family default; "" none; else names or a regex
    method: ClassVar[str] = "ia3"

    def check_fields(self) -> None:
        super().check_fields()
        if self.feedforward_modules.strip() and self.feedforward_modules != peft_tuning.AUTO:
            peft_tuning.parse_targets(self.feedforward_modules)

    def feedforward(self) -> str:
        return self.feedforward_modules


STRATEGIES: Registry[Strategy] = Registry("strategy")


def register_strategy(strategy: Strategy, aliases: tuple[str, ...] = ()) -> Strategy:
    STRATEGIES.add(strategy.name, strategy, aliases=aliases)
    return strategy


# Fine-tuning's recipe, shared by the strategies that fine-tune everything (or a part) from
# pretrained weights; each states where it departs from it
FINETUNE_RECIPE: dict[str, Any] = {
    "pretrained": True,
    "freeze": "none",
    "bn_policy": "frozen-stats",
    "lr": 1e-3,
    "backbone_lr_scale": 0.1,
    "weight_decay": 0.01,
}


register_strategy(
    Strategy(
        "finetune",
        "pretrained; all layers train, backbone at 0.1x lr; BatchNorm statistics frozen",
        **FINETUNE_RECIPE,
    ),
    aliases=("fine-tune", "ft"),
)
register_strategy(
    LinearProbe(
        "linear-probe",
        "pretrained, frozen; logistic regression on cached features (C tuned on validation)",
        pretrained=True,
        freeze="backbone",
        bn_policy="frozen-stats",
        lr=1e-3,
        backbone_lr_scale=0.0,
        weight_decay=1e-4,
    ),
    aliases=("linear", "probe", "lp"),
)
register_strategy(
    ProbeThenFinetune(
        "lp-ft",
        "finetune, with the head initialised from a fitted linear probe (LP-FT, Kumar et al. 2022)",
        **FINETUNE_RECIPE,
    ),
    aliases=("lpft",),
)
register_strategy(
    Strategy(
        "partial",
        "pretrained; last 2 backbone blocks + head train, backbone at 0.1x lr; BN stats frozen",
        **{**FINETUNE_RECIPE, "freeze": "last-2"},
    )
)
register_strategy(
    FromScratch(
        "scratch",
        "random init, same architecture; all layers train at 2x lr; BN momentum 0.1 + precise BN",
        pretrained=False,
        freeze="none",
        bn_policy="train",
        lr=2e-3,
        backbone_lr_scale=1.0,
        weight_decay=0.05,
        precise_bn=True,
        bn_momentum=0.1,
    ),
    aliases=("from-scratch", "random-init"),
)
register_strategy(
    LoRA(
        "lora",
        "pretrained, frozen; LoRA (r=8, alpha=16) on the family's target layers + head, merged after training",
        pretrained=True,
        freeze="backbone",
        bn_policy="frozen-stats",
        lr=1e-3,
        backbone_lr_scale=1.0,
        weight_decay=0.1,
    ),
    aliases=("low-rank",),
)
register_strategy(
    IA3(
        "ia3",
        "pretrained, frozen; (IA)^3 scaling vectors (at 3x lr) on the family's target layers + head, merged",
        pretrained=True,
        freeze="backbone",
        bn_policy="frozen-stats",
        lr=1e-3,
        backbone_lr_scale=3.0,
        weight_decay=0.0,
    ),
    aliases=("ia3-peft", "(ia)^3"),
)
register_strategy(
    BitFit(
        "bitfit",
        "pretrained; only the bias terms + head train, both at lr; BatchNorm statistics frozen",
        pretrained=True,
        freeze="backbone",
        bn_policy="frozen-stats",
        lr=1e-3,
        backbone_lr_scale=1.0,
        weight_decay=0.01,
    ),
    aliases=("bias-only",),
)
register_strategy(
    LayerwiseDecay(
        "llrd",
        "finetune with layer-wise lr decay: top block at 0.1x lr, each block below 0.8x slower",
        **FINETUNE_RECIPE,
    ),
    aliases=("layerwise-lr-decay", "discriminative-lr"),
)
register_strategy(
    GradualUnfreeze(
        "gradual-unfreeze",
        "ULMFiT: head first, then one more block per epoch from the top, at finetune's rates",
        pretrained=True,
        freeze="backbone",
        bn_policy="frozen-stats",
        lr=1e-3,
        backbone_lr_scale=0.1,
        weight_decay=0.01,
    ),
    aliases=("ulmfit", "gradual-unfreezing"),
)


def applicable_adapters(strategy: Strategy, adapters: Any) -> list[str]:
    """Names of the registered adapters ``strategy`` applies to (``adapters``: the ADAPTERS registry)."""
    return [name for name in adapters.names() if strategy.applies_to(adapters.get(name))]
