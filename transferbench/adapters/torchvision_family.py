"""``torchvision:<name>[.<WEIGHTS>]``: any torchvision classification model, e.g.
``torchvision:mobilenet_v3_small`` or ``torchvision:resnet50.IMAGENET1K_V1`` (default: ``DEFAULT``).

The backbone is ``torchvision.models.get_model(name)`` with its final linear classifier replaced by
``Identity``: its own pooling and pre-logit layers end in ``[B, D]`` features (a VGG's fc6/fc7
included: the curated ``vgg16`` is the conv stack + global pooling instead). Pretrained weights are
the named weights enum's file (downloaded and hash-checked by torch.hub, loaded weights-only) or
``--weights FILE``; input size and mean/std come from that enum's transforms. Blocks come from the
structure (:func:`trunk`): the children of ``features`` / ``encoder.layers`` / ``trunk_output`` /
``layers`` / ``blocks``, else of the model itself, plus the stem before and the norms after them.
Models with no linear classifier (SqueezeNet's is a convolution) are refused with a one-line error.
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
    normalise,
    structural_blocks,
    unknown_model,
)
from transferbench.adapters.peft_targets import LAST_STAGES
from transferbench.adapters.vision import VisionAdapter, published_state
from transferbench.adapters.weights import load_into, load_state_dict_file
from transferbench.errors import UserError
from transferbench.inputs import Batch, Preprocessing

TRUNKS = ("features", "encoder.layers", "trunk_output", "layers", "blocks")
AUX_PREFIXES = ("aux1.", "aux2.", "AuxLogits.")  # GoogLeNet / Inception auxiliary classifiers (left out)


def build_kwargs(arch: str, published: Any) -> dict[str, Any]:
    """What torchvision's builders set when handed weights, set for scratch too, so scratch is the
    architecture the weights were trained in: a ViT's image size (SWAG weights are 384/518 px),
    GoogLeNet/Inception's input transform (no auxiliary heads: they never reach the features)."""
    if arch in ("googlenet", "inception_v3"):
        return {"aux_logits": False, "transform_input": True, "init_weights": True}
    if arch.startswith("vit_"):
        return {"image_size": published.meta["min_size"][0]}
    return {}


def trunk(net: nn.Module) -> nn.Module:
    """The sequence of stages the blocks are cut from: the first of :data:`TRUNKS` the model has."""
    for path in TRUNKS:
        try:
            stages = net.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(stages, nn.Sequential | nn.ModuleList):
            return stages
    return net


def classifier_of(net: nn.Module, arch: str, num_outputs: int) -> str:
    """The name of the last linear layer, the classifier (``fc``, ``classifier.6``, ``heads.head``)."""
    linears = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not linears or linears[-1][1].out_features != num_outputs:
        raise UserError(f"torchvision {arch}: not supported: its classifier is no final linear layer")
    return linears[-1][0]


def drop_classifier(net: nn.Module, name: str) -> int:
    """Replace the layer ``name`` with Identity; returns its input width, the feature size."""
    parent, _, child = name.rpartition(".")
    width = net.get_submodule(name).in_features
    setattr(net.get_submodule(parent), child, nn.Identity())
    return int(width)


class TorchvisionAdapter(VisionAdapter):
    """A torchvision classifier without its last linear layer -> the adapter's head."""

    def __init__(self, arch: str, published: Any, *, pretrained: bool, weights: str | None, **kw: Any) -> None:
        import torchvision

        net = torchvision.models.get_model(arch, weights=None, **build_kwargs(arch, published))
        classifier = classifier_of(net, arch, len(published.meta["categories"]))
        if pretrained:
            state = load_state_dict_file(weights) if weights else published_state(published, arch)
            load_into(net, state, source=weights or published.url, skip_prefixes=(f"{classifier}.", *AUX_PREFIXES))
        num_features = drop_classifier(net, classifier)
        transforms = published.transforms()
        prep = Preprocessing(
            "vision",
            "pixel_values",
            input_size=int(transforms.crop_size[0]),
            mean=tuple(float(v) for v in transforms.mean),
            std=tuple(float(v) for v in transforms.std),
        )
        super().__init__(net, num_features, prep, **kw)
        self.model_name = arch
        revision = (file_revision(weights) if weights else cached_url_revision(published.url)) if pretrained else None
        self.weights_revision = revision

    def forward_features(self, batch: Batch) -> torch.Tensor:
        return self.backbone(batch["pixel_values"])

    def blocks(self) -> list[nn.Module]:
        return structural_blocks(self.backbone, trunk(self.backbone))


def resolve(rest: str) -> tuple[str, FamilySpec]:
    """``<arch>[.<WEIGHTS>]`` -> its spec, checked against torchvision's classification models and
    the architecture's weights enum."""
    import torchvision

    arch, _, tag = rest.partition(".")
    arch, tag = normalise(arch), tag.strip().upper() or "DEFAULT"
    names = torchvision.models.list_models(module=torchvision.models)
    if arch not in names:
        raise unknown_model("torchvision", arch, names, "torchvision.models.list_models(module=torchvision.models)")
    enum = torchvision.models.get_model_weights(arch)
    if tag not in enum.__members__:
        raise UserError(f"torchvision {arch} has no weights {tag!r}; its weights: {', '.join(enum.__members__)}")
    published = enum[tag]
    name = arch if tag == "DEFAULT" else f"{arch}.{published.name}"
    spec = FamilySpec(
        name=f"torchvision:{name}",
        domain="vision",
        build=functools.partial(TorchvisionAdapter, arch, published),
        description=f"torchvision {arch} ({published.name}), pre-logits features",
        pretrained_source=f"torchvision {arch}.{published.name} ({published.url}) or --weights",
        offline_pretrained=False,
        example_shape={"image_size": 32},
        input_size=int(published.transforms().crop_size[0]),
        peft_targets=LAST_STAGES,
        family="torchvision",
        model=name,
    )
    return name, spec


ADAPTERS.add_family("torchvision", resolve, description="torchvision model[.WEIGHTS], e.g. torchvision:resnet50")
