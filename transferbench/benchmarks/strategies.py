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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar

from transferbench.benchmarks.training import (
    Budget,
    FitRun,
    TrainOutcome,
    fit_linear_probe,
    train,
)
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

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "probe": self.closed_form_head, "head_init": self.head_init}

    def with_overrides(self, **overrides: Any) -> Strategy:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def check(self, adapter: Any, head: str) -> None:
        """Refuse, before any data loads, an adapter or head this strategy cannot work with."""
        if adapter.classical and self.name != "scratch":
            raise UserError(f"adapter {adapter.name!r} has no pretrained weights: it runs with --strategy scratch only")

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

    def progress_steps(self, budget: Budget, num_examples: int, head: str) -> int:
        return 4 if head == "linear" else super().progress_steps(budget, num_examples, head)

    def fit(self, run: FitRun) -> TrainOutcome:
        if run.head != "linear":
            return super().fit(run)
        probe = fit_linear_probe(run)
        if run.target is not None and probe.val_accuracy[0] >= run.target:
            probe.time_to_target_s = probe.train_s  # a probe reaches its accuracy when the fit ends
        return probe


@dataclass(frozen=True)
class ProbeThenFinetune(Strategy):
    """LP-FT: fit a linear probe, then train everything from it; the probe's time counts as training."""

    head_init: ClassVar[str] = "probe"

    def check(self, adapter: Any, head: str) -> None:
        super().check(adapter, head)
        if head != "linear":
            raise UserError(f"strategy {self.name!r} fits a linear probe: it needs --head linear")

    def fit(self, run: FitRun) -> TrainOutcome:
        probe = fit_linear_probe(run)
        outcome = super().fit(run)
        outcome.train_s += probe.train_s
        if outcome.time_to_target_s is not None:
            outcome.time_to_target_s += probe.train_s
        outcome.extra.update(probe_C=probe.extra["probe_C"], probe_val_accuracy=probe.val_accuracy[0])
        return outcome


STRATEGIES: Registry[Strategy] = Registry("strategy")


def register_strategy(strategy: Strategy, aliases: tuple[str, ...] = ()) -> Strategy:
    STRATEGIES.add(strategy.name, strategy, aliases=aliases)
    return strategy


register_strategy(
    Strategy(
        "finetune",
        "pretrained; all layers train, backbone at 0.1x lr; BatchNorm statistics frozen",
        pretrained=True,
        freeze="none",
        bn_policy="frozen-stats",
        lr=1e-3,
        backbone_lr_scale=0.1,
        weight_decay=0.01,
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
        pretrained=True,
        freeze="none",
        bn_policy="frozen-stats",
        lr=1e-3,
        backbone_lr_scale=0.1,
        weight_decay=0.01,
    ),
    aliases=("lpft",),
)
register_strategy(
    Strategy(
        "partial",
        "pretrained; last 2 backbone blocks + head train, backbone at 0.1x lr; BN stats frozen",
        pretrained=True,
        freeze="last-2",
        bn_policy="frozen-stats",
        lr=1e-3,
        backbone_lr_scale=0.1,
        weight_decay=0.01,
    )
)
register_strategy(
    Strategy(
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
