"""Parameter-efficient adapter layers (LoRA, IA3) inserted into a transferbench Adapter through PEFT.

The layers go into ``adapter.backbone`` with ``peft.inject_adapter_in_model``, not
``get_peft_model``: the Adapter stays the model (``forward(batch)``, ``blocks()``, the head, the
BatchNorm policy all keep working) and PEFT only replaces the targeted layers in place, each by a
tuner layer that holds the original as ``base_layer``.

Which layers are wrapped is the default the model's family declares (``adapters.peft_targets``), or the
user's ``target_modules``: comma-separated module names matched as PEFT matches a list (a module
whose name is, or ends in ``.``, one of them), or a regular expression (anything with regex
characters, matched against the whole module name as PEFT matches a string). Either way the
names are resolved here to the exact layers first, so what was wrapped and what was left out
(and why) is recorded, instead of PEFT failing half-way on a layer it cannot take: LoRA and IA3
wrap ``nn.Linear`` and ``nn.Conv2d``; LoRA skips grouped/depthwise convolutions (PEFT cannot
merge them, and refuses them outright unless the rank divides the groups).

peft is imported only where it is used: importing it costs seconds (it imports transformers).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferbench.adapters.base import Adapter, inserted_parameters
from transferbench.adapters.peft_targets import suffix_match
from transferbench.errors import UserError

METHODS = ("lora", "ia3")
AUTO = "auto"
REGEX_CHARS = set("*[]()?+\\^$|{}")


@dataclass
class Targets:
    """What one PEFT method wraps in one model: backbone-relative module names."""

    modules: list[str]
    feedforward: list[str] = field(default_factory=list)  # IA3: these scale their input, not their output
    skipped: dict[str, str] = field(default_factory=dict)  # matched but not wrapped: name -> why


# --- resolving target names -----------------------------------------------------------------------
def parse_targets(text: str) -> str | list[str]:
    """A user's ``target_modules``: a regular expression (PEFT's string form: full match) if it has
    regex characters, else comma-separated names (PEFT's list form: suffix match)."""
    text = text.strip()
    if REGEX_CHARS & set(text):
        try:
            re.compile(text)
        except re.error as exc:
            raise UserError(f"--target-modules {text!r} is not a valid regular expression ({exc})") from None
        return text
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UserError("--target-modules is empty: expected module names (e.g. query,value) or a regex")
    return names


def _matches(name: str, pattern: str | list[str]) -> bool:
    if isinstance(pattern, str):
        return re.fullmatch(pattern, name) is not None
    return any(suffix_match(name, t) for t in pattern)


def unsupported(method: str, module: nn.Module) -> str | None:
    """Why ``method`` cannot wrap ``module`` (None: it can)."""
    if isinstance(module, nn.Linear):
        return None
    if not isinstance(module, nn.Conv2d):
        return f"a {type(module).__name__}: PEFT's {method} wraps Linear and Conv2d layers here"
    if method != "lora":
        return None
    if module.groups > 1:
        return f"a grouped convolution (groups={module.groups}): LoRA cannot merge it"
    same_padding = type(module) is not nn.Conv2d and module.padding == (0, 0)
    if same_padding and (module.kernel_size != (1, 1) or tuple(module.stride) != (1, 1)):
        return "pads in forward ('same' padding): LoRA's convolution would not line up with it"
    return None


def resolve_targets(model: Adapter, method: str, target_modules: str, feedforward_modules: str = AUTO) -> Targets:
    """The backbone layers ``method`` wraps: the family default (``auto``) or the user's names,
    keeping the layers it supports and recording the others (layers with parameters of their own;
    containers a name happens to match are passed over)."""
    if target_modules == AUTO:
        defaults = getattr(model, "peft_targets", None)  # declared by the model's family (adapters.peft_targets)
        if defaults is None:
            raise UserError(
                f"no default {method} target modules for a {type(model).__name__}: pass --target-modules NAMES"
            )
        pattern, ff_pattern = defaults(model, method)
    else:
        pattern = parse_targets(target_modules)
        ff_pattern = []
    if feedforward_modules != AUTO:
        ff_pattern = parse_targets(feedforward_modules) if feedforward_modules.strip() else []
    targets = Targets([])
    for name, module in model.backbone.named_modules():
        own = next(module.parameters(recurse=False), None) is not None
        if not name or not own or not _matches(name, pattern):
            continue
        why = unsupported(method, module)
        if why is None:
            targets.modules.append(name)
        else:
            targets.skipped[name] = why
    if not targets.modules:
        raise UserError(
            f"--target-modules {target_modules!r} matched no layer {method} can wrap in {type(model).__name__} "
            f"(skipped: {', '.join(sorted(targets.skipped)[:3]) or 'none'})"
        )
    targets.feedforward = [n for n in targets.modules if ff_pattern and _matches(n, ff_pattern)]
    return targets


# --- inserting, merging, saving ---------------------------------------------------------------------
@contextlib.contextmanager
def _plain_convs(model: Adapter, names: list[str]) -> Iterator[None]:
    """PEFT builds LoRA's ``lora_A`` as ``type(base_layer)(in, r, kernel, stride, padding)``: a Conv2d
    subclass with another constructor (EfficientNet's 'same'-padding convs take dilation third)
    would misread it. For the layers :func:`unsupported` lets through (1x1, stride 1: no padding
    either way) the plain Conv2d is the same layer, so it stands in while the adapters are built."""
    modules = dict(model.backbone.named_modules())
    swapped = [(modules[n], type(modules[n])) for n in names if type(modules[n]) not in (nn.Conv2d, nn.Linear)]
    swapped = [(m, cls) for m, cls in swapped if isinstance(m, nn.Conv2d)]
    for module, _ in swapped:
        module.__class__ = nn.Conv2d
    try:
        yield
    finally:
        for module, cls in swapped:
            module.__class__ = cls


def peft_config(method: str, targets: Targets, **options: Any) -> Any:
    """PEFT's config for ``method`` over exactly ``targets`` (names are matched whole)."""
    from peft import IA3Config, LoraConfig

    if method == "lora":
        return LoraConfig(target_modules=list(targets.modules), bias="none", **options)
    return IA3Config(target_modules=list(targets.modules), feedforward_modules=list(targets.feedforward), **options)


def insert(model: Adapter, method: str, targets: Targets, **options: Any) -> dict[str, Any]:
    """Wrap ``targets`` in ``model.backbone``; only the inserted weights of the backbone train
    afterwards (the head is untouched). Returns what was done, for the run's record."""
    from peft import inject_adapter_in_model

    with _plain_convs(model, targets.modules):
        inject_adapter_in_model(peft_config(method, targets, **options), model.backbone)
    wrapped = wrapped_modules(model)
    if sorted(wrapped) != sorted(f"backbone.{n}" for n in targets.modules):  # PEFT matches names by suffix
        raise RuntimeError(f"PEFT wrapped {len(wrapped)} layers, not the {len(targets.modules)} resolved")
    added = sum(p.numel() for p in inserted_parameters(model.backbone))
    return {
        "method": method,
        "wrapped_modules": wrapped,
        "feedforward_modules": [f"backbone.{n}" for n in targets.feedforward],
        "skipped_modules": {f"backbone.{n}": why for n, why in targets.skipped.items()},
        "adapter_params": added,
    }


def tuner_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [(name, m) for name, m in model.named_modules() if isinstance(m, BaseTunerLayer)]


def wrapped_modules(model: Adapter) -> list[str]:
    """Names (in the adapter, e.g. ``backbone.encoder.layer.0.attention.self.query``) of the wrapped layers."""
    return [name for name, _ in tuner_layers(model)]


def set_merged(model: Adapter, merged: bool) -> None:
    """Fold the adapter weights into the wrapped layers' weights (LoRA: W + BA·alpha/r; IA3: W·l),
    or take them out again. Merged, a wrapped layer runs as its base layer alone: no extra latency."""
    for _, layer in tuner_layers(model):
        if merged and not layer.merged:
            layer.merge()
        elif not merged and layer.merged:
            layer.unmerge()


@torch.no_grad()
def merge_checked(model: Adapter, batch: dict[str, torch.Tensor], rtol: float = 1e-3) -> dict[str, Any]:
    """Merge, keeping the merge only if the logits on ``batch`` stay within ``rtol`` of the largest
    logit (float32, no autocast; TF32 convolutions on GPUs round at about 1e-3). What is evaluated
    afterwards is then the deployable model, and the record says how close it is."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.autocast(device.type, enabled=False):
        before = model(batch).float()
        set_merged(model, True)
        after = model(batch).float()
    diff = float((after - before).abs().max())
    tolerance = rtol * (1.0 + float(before.abs().max()))
    if diff > tolerance:
        set_merged(model, False)
    model.train(was_training)
    return {"merged": diff <= tolerance, "merge_max_abs_diff": diff, "merge_tolerance": tolerance}


def adapter_state_dict(model: Adapter) -> dict[str, torch.Tensor]:
    """What a PEFT run trained, the part a fresh model of the same strategy lacks: the inserted
    weights (``peft.get_peft_model_state_dict``, keyed as PEFT saves them, under ``backbone.``) and
    the head (under ``head.``). Never any pretrained backbone weight."""
    from peft import get_peft_model_state_dict

    state = {f"backbone.{k}": v for k, v in get_peft_model_state_dict(model.backbone).items()}
    state.update({f"head.{k}": v for k, v in model.head.state_dict().items()})
    return state


def save_adapter(model: Adapter, path: str | Path) -> Path:
    """:func:`adapter_state_dict` as a safetensors file (the format PEFT's save_pretrained writes)."""
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().cpu() for k, v in adapter_state_dict(model).items()}, str(path))
    return Path(path)


def load_adapter(model: Adapter, path: str | Path) -> None:
    """Load :func:`save_adapter`'s file into a model prepared by the same strategy (unmerged)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = load_file(str(path))
    inserted = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    result = set_peft_model_state_dict(model.backbone, inserted)
    if result.unexpected_keys:
        raise UserError(f"{path}: adapter weights for layers this model lacks, e.g. {result.unexpected_keys[:2]}")
    model.head.load_state_dict({k[len("head.") :]: v for k, v in state.items() if k.startswith("head.")})
