"""``timm:<name>[.<tag>]``: any timm model, e.g. ``timm:convnext_atto`` or ``timm:resnet18.tv_in1k``.

The backbone is ``timm.create_model(name, num_classes=0)``: timm's own pooling and pre-logits
(norm, neck) end in ``[B, D]`` features, and the adapter's head goes on top. Pretrained weights come
through timm's own loading (the hub, weights-only) or from ``--weights FILE`` (a timm-format state
dict, read safely by adapters/weights.py); scratch is the same architecture, randomly initialised.
Input size and mean/std come from the model's ``pretrained_cfg``; blocks for last-K and layer-wise
rates from timm's ``group_matcher(coarse=True)`` (stem, stages; a ViT's blocks). Models that take
``dynamic_img_size`` (ViTs, Swin, EVA) are built with it, so ``--image-size`` other than the native
one works for them as for CNNs (at the native size nothing changes).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from transferbench.adapters.base import ADAPTERS
from transferbench.adapters.families import (
    FamilySpec,
    cached_url_revision,
    file_revision,
    group_blocks,
    hub_commit,
    normalise,
    structural_blocks,
    unknown_model,
)
from transferbench.adapters.peft_targets import LAST_STAGES
from transferbench.adapters.vision import VisionAdapter
from transferbench.adapters.weights import load_into, load_state_dict_file
from transferbench.errors import UserError, WeightsError
from transferbench.inputs import Batch, Preprocessing


def create_backbone(name: str, *, pretrained: bool) -> nn.Module:
    """``timm.create_model(name, num_classes=0)``, with ``dynamic_img_size=True`` where the model
    takes it. A model that does not refuses the keyword when its class is called, before any
    weight is initialised or downloaded, so the retry changes neither random init nor downloads."""
    import timm

    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=0, dynamic_img_size=True)
    except TypeError as exc:
        if "dynamic_img_size" not in str(exc):
            raise
    return timm.create_model(name, pretrained=pretrained, num_classes=0)


def _from_hub(name: str) -> nn.Module:
    """The pretrained backbone through timm's own loading; any failure (offline, no such file)
    becomes one line that says what to do instead."""
    try:
        return create_backbone(name, pretrained=True)
    except Exception as exc:  # hub and network errors come in many types
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise WeightsError(
            f"could not load timm {name} pretrained weights ({type(exc).__name__}: {first}); "
            "offline, pass --weights FILE with a copy of its state dict"
        ) from None


def classifier_prefixes(pretrained_cfg: dict[str, Any]) -> tuple[str, ...]:
    """State-dict prefixes of the classifier(s) a full timm checkpoint has and a num_classes=0
    model lacks (``fc.``, ``head.fc.``; distilled models name two)."""
    names = pretrained_cfg.get("classifier") or ()
    return tuple(f"{n}." for n in ((names,) if isinstance(names, str) else names))


def hub_revision(pretrained_cfg: dict[str, Any]) -> str | None:
    """The hub commit timm loaded the weights from (``hf:timm/<name>@<sha>``), or the URL's file."""
    hub_id = pretrained_cfg.get("hf_hub_id")
    if hub_id:
        repo, _, revision = hub_id.partition("@")
        return hub_commit(repo, revision or None)
    url = pretrained_cfg.get("url")
    return cached_url_revision(url) if url else None


class TimmAdapter(VisionAdapter):
    """A timm model without its classifier -> the adapter's head."""

    def __init__(self, name: str, *, pretrained: bool, weights: str | None, **kw: Any) -> None:
        import timm

        if pretrained and not weights and not timm.models.is_model_pretrained(name):
            raise WeightsError(f"timm has no pretrained weights for {name}: pass --weights FILE or train from scratch")
        net = _from_hub(name) if pretrained and not weights else create_backbone(name, pretrained=False)
        cfg = net.pretrained_cfg
        if pretrained and weights:
            load_into(net, load_state_dict_file(weights), source=weights, skip_prefixes=classifier_prefixes(cfg))
        size = int(cfg.get("input_size", (3, 224, 224))[-1])
        mean, std = tuple(cfg.get("mean", (0.485, 0.456, 0.406))), tuple(cfg.get("std", (0.229, 0.224, 0.225)))
        prep = Preprocessing("vision", "pixel_values", input_size=size, mean=mean, std=std)
        super().__init__(net, getattr(net, "head_hidden_size", None) or net.num_features, prep, **kw)
        self.model_name = name
        revision = (file_revision(weights) if weights else hub_revision(cfg)) if pretrained else None
        self.weights_revision = revision

    def forward_features(self, batch: Batch) -> torch.Tensor:
        return self.backbone(batch["pixel_values"])

    def blocks(self) -> list[nn.Module]:
        """timm's coarse groups (stem, stages; a ViT's blocks), input side first; its fine groups
        where a model has no coarse ones (RDNet), its top-level structure where it has neither.
        Computed per call from the parameter names, so PEFT layers inserted later are grouped too."""
        from timm.models import group_parameters

        net = self.backbone
        for coarse in (True, False):
            try:
                groups = group_parameters(net, net.group_matcher(coarse=coarse))
            except (AssertionError, NotImplementedError):
                continue
            except AttributeError:  # no group_matcher at all
                break
            return group_blocks(net, [groups[k] for k in sorted(groups)])
        return structural_blocks(net, net)


def resolve(rest: str) -> tuple[str, FamilySpec]:
    """``<arch>[.<tag>]`` -> its spec, checked against timm's registry (names and pretrained tags)."""
    import timm

    arch, _, tag = rest.partition(".")
    arch, tag = normalise(arch), tag.strip().lower()
    if not timm.is_model(arch):
        raise unknown_model("timm", arch, timm.list_models(), "timm.list_models()")
    name = f"{arch}.{tag}" if tag else arch
    try:
        cfg = timm.get_pretrained_cfg(name)
    except RuntimeError:
        tags = [n.partition(".")[2] for n in timm.list_pretrained(f"{arch}.*")]
        raise UserError(f"timm {arch} has no pretrained tag {tag!r}; its tags: {', '.join(tags)}") from None
    pretrained = timm.models.is_model_pretrained(name)
    hub = (cfg.hf_hub_id or cfg.url) if cfg is not None else None
    weights_tag = cfg.tag if cfg is not None and cfg.tag else "no pretrained tag"
    spec = FamilySpec(
        name=f"timm:{name}",
        domain="vision",
        build=functools.partial(TimmAdapter, name),
        description=f"timm {name} ({weights_tag}), pooled pre-logits features",
        pretrained_source=f"timm {hub} or --weights" if pretrained and hub else "none (scratch) or --weights",
        offline_pretrained=False,
        example_shape={"image_size": 32},
        input_size=int(cfg.input_size[-1]) if cfg is not None else 224,
        peft_targets=LAST_STAGES,
        family="timm",
        model=name,
    )
    return name, spec


ADAPTERS.add_family("timm", resolve, description="timm model[.tag], e.g. timm:convnext_atto")
