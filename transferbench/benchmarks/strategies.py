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
from typing import Any

from transferbench.registry import Registry


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    pretrained: bool
    freeze: str  # none | backbone | last-K
    bn_policy: str  # train | frozen-stats
    lr: float  # head learning rate
    backbone_lr_scale: float  # backbone lr = lr * scale
    weight_decay: float
    probe: bool = False  # fit the head on cached frozen features
    precise_bn: bool = False  # re-estimate BatchNorm statistics on training data before evaluating
    bn_momentum: float | None = None  # reset BatchNorm momentum (None: keep the backbone's)
    head_init: str = "random"  # random | probe (fit a linear probe first, then train everything)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **overrides: Any) -> Strategy:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


STRATEGIES: Registry[Strategy] = Registry("strategy")


def _add(strategy: Strategy, aliases: tuple[str, ...] = ()) -> None:
    STRATEGIES.add(strategy.name, strategy, aliases=aliases)


_add(
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
_add(
    Strategy(
        "linear-probe",
        "pretrained, frozen; logistic regression on cached features (C tuned on validation)",
        pretrained=True,
        freeze="backbone",
        bn_policy="frozen-stats",
        lr=1e-3,
        backbone_lr_scale=0.0,
        weight_decay=1e-4,
        probe=True,
    ),
    aliases=("linear", "probe", "lp"),
)
_add(
    Strategy(
        "lp-ft",
        "finetune, with the head initialised from a fitted linear probe (LP-FT, Kumar et al. 2022)",
        pretrained=True,
        freeze="none",
        bn_policy="frozen-stats",
        lr=1e-3,
        backbone_lr_scale=0.1,
        weight_decay=0.01,
        head_init="probe",
    ),
    aliases=("lpft",),
)
_add(
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
_add(
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
