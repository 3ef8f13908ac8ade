"""The strategy contract and its registry.

A :class:`Strategy` is a frozen dataclass of its recipe. Its fields declared with
:func:`transferbench.options.option` are its options: settable as flags (``--lr``, ``--lora-rank``),
as keys of matrix files, swept, listed by ``transferbench list strategies``, all from that one
declaration. A subclass adds a knob by adding such a field; nothing else changes.

Recipes live with what they tune. A strategy's own values are its recipe for CNN-like families;
``register_strategy(..., recipes={"transformer": {...}})`` states its rates for the other kinds of
family (``AdapterSpec.recipe_kind``), and an adapter may tune a strategy it knows further
(``AdapterSpec.recipes``). A strategy that states no recipe for a family's kind runs its own values
there, and says so (``recipe_note``): never a CNN's rate on a transformer without a word.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar

from torch import nn

from transferbench.adapters.base import BN_POLICIES, FreezePolicy
from transferbench.benchmarks.training.budget import Budget
from transferbench.benchmarks.training.loop import FitRun, TrainOutcome, train
from transferbench.errors import UserError
from transferbench.options import Option, declared, option, refusal
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
    freeze: str = option(
        help="what trains: none, backbone (head only) or last-K blocks", validator=refusal(FreezePolicy.parse)
    )
    bn_policy: str = option(
        help="BatchNorm statistics: update in training, or keep the backbone's", choices=BN_POLICIES
    )
    lr: float = option(help="head learning rate", low=0, low_open=True)
    backbone_lr_scale: float = option(help="backbone learning rate = lr x this", low=0)
    weight_decay: float = option(help="decoupled weight decay (AdamW), not on biases and norms", low=0)
    precise_bn: bool = option(False, "re-estimate BatchNorm statistics on training data before evaluating")
    bn_momentum: float | None = option(
        None, "reset BatchNorm momentum to this (none: keep the backbone's)", low=0, high=1, nullable=True
    )

    # How the head is fitted, recorded with the fields (kept as the record keys they always were)
    closed_form_head: ClassVar[bool] = False  # a logistic-regression probe on cached features
    head_init: ClassVar[str] = "random"  # random | probe (the head starts from a fitted probe)
    # whether a classical adapter (fitted in closed form, no pretrained weights) can run it
    fits_classical: ClassVar[bool] = False
    # ``--sweep default`` (plan.sweeps): option -> multiples of the recipe's value, tried on validation.
    # Three learning rates a factor 3 apart: the one knob every gradient-trained strategy is most
    # sensitive to, at the least points that can show a recipe's rate was not the best
    default_sweep: ClassVar[dict[str, tuple[float, ...]]] = {"lr": (1 / 3, 1.0, 3.0)}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "probe": self.closed_form_head, "head_init": self.head_init}

    @classmethod
    def options(cls) -> list[Option]:
        """The options this strategy declares (its fields made with ``option``)."""
        return declared(cls)

    def with_overrides(self, **overrides: Any) -> Strategy:
        """A copy with the given options replaced (None: not given), each checked by its declaration.
        An option this strategy does not declare is refused in one line, not a TypeError."""
        own = {o.name: o for o in self.options()}
        given = {k: v for k, v in overrides.items() if v is not None}
        for key, value in given.items():
            if key not in own:
                raise UserError(f"--{key.replace('_', '-')} does not apply to strategy {self.name!r}")
            given[key] = own[key].check(value)
        return replace(self, **given)

    def check_options(self) -> None:
        """Every option's current value (defaults and recipes included) within its declaration."""
        for opt in self.options():
            opt.check(getattr(self, opt.name), f"strategy {self.name!r}: {opt.name}")

    def check(self, adapter: Any, head: str) -> None:
        """Refuse, before any data loads, an adapter or head this strategy cannot work with."""
        if adapter.classical and not self.fits_classical:
            raise UserError(f"adapter {adapter.name!r} has no pretrained weights: it runs with --strategy scratch only")
        self.check_options()

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

    def as_trained(self, model: Any) -> AbstractContextManager[None]:
        """The model as it trained, for measuring its training step after the fit (a PEFT strategy
        merged its adapters into the weights: a merged model would time another computation)."""
        return nullcontext()


@dataclass(frozen=True)
class FromScratch(Strategy):
    """Random init: the one strategy a classical reference model (tf-idf + logistic regression),
    which has no pretrained weights, runs under too."""

    fits_classical: ClassVar[bool] = True


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
        self.check_options()


STRATEGIES: Registry[Strategy] = Registry("strategy")
# strategy name -> family kind (AdapterSpec.recipe_kind) -> the strategy's recipe for that kind
KIND_RECIPES: dict[str, dict[str, dict[str, Any]]] = {}
NATIVE_KIND = "cnn"  # what a strategy's own values are the recipe for


def register_strategy(
    strategy: Strategy, aliases: tuple[str, ...] = (), recipes: Mapping[str, Mapping[str, Any]] | None = None
) -> Strategy:
    """Register ``strategy``; ``recipes`` are its values for kinds of family other than CNNs
    (``{"transformer": {"lr": 5e-4}}``), checked against its declarations now."""
    strategy.check_options()
    for kind, values in (recipes or {}).items():
        strategy.with_overrides(**values).check_options()  # an unknown field or a bad value fails here
        KIND_RECIPES.setdefault(strategy.name, {})[kind] = dict(values)
    STRATEGIES.add(strategy.name, strategy, aliases=aliases)
    return strategy


def recipe_for(strategy: Strategy, adapter: Any) -> tuple[dict[str, Any], str | None]:
    """The overrides a family's kind and the adapter's own tuning give ``strategy``, and a note
    when the strategy states no recipe for that kind (so its own values run there, said aloud)."""
    kind = getattr(adapter, "recipe_kind", NATIVE_KIND)
    stated = KIND_RECIPES.get(strategy.name, {})
    note = None
    if kind != NATIVE_KIND and kind not in stated and not adapter.classical:
        note = (
            f"strategy {strategy.name!r} states no recipe for {kind} families: it runs its own values there "
            f"(lr {strategy.lr:g}, backbone x{strategy.backbone_lr_scale:g}); give --lr to set them"
        )
    return {**stated.get(kind, {}), **adapter.recipes.get(strategy.name, {})}, note


def applicable_adapters(strategy: Strategy, adapters: Any) -> list[str]:
    """Names of the registered adapters ``strategy`` applies to (``adapters``: the ADAPTERS registry)."""
    return [name for name in adapters.names() if strategy.applies_to(adapters.get(name))]


def option_owners() -> dict[str, tuple[Option, list[str]]]:
    """Every strategy option by name: its declaration and the registered strategies that have it."""
    out: dict[str, tuple[Option, list[str]]] = {}
    for name in STRATEGIES.names():
        for opt in STRATEGIES.get(name).options():
            known = out.get(opt.name)
            if known is not None and known[0] != opt:
                raise ValueError(f"strategy option {opt.name!r} is declared differently by {name} and {known[1]}")
            out.setdefault(opt.name, (opt, []))[1].append(name)
    return out
