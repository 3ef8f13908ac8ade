"""A toy domain written the way a user would add one: tabular feature vectors, with its own
pipeline, one builtin task, one adapter and a run option of its own (``noise``: a declared option,
so a flag ``--noise``, a matrix-file key and part of each run's input settings), all in this file.
Importing it registers them; nothing in the transferbench package changes."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from transferbench.adapters.base import Adapter, register_adapter
from transferbench.adapters.weights import load_into, load_state_dict_file
from transferbench.inputs import Batch, Preprocessing
from transferbench.options import Option
from transferbench.tasks.base import BUILTIN_DATA, Split, TaskConfig, TaskData, builtin_task_data, register_task
from transferbench.tasks.domain import Domain, register_domain
from transferbench.tasks.pipeline import Pipeline

FEATURES = 4


NOISE = Option("noise", float, "tabular: std of the Gaussian noise added to training features", default=0.05, low=0)


class TabularPipeline(Pipeline):
    """Batches of ``{"features": float[B, 4]}``; training batches get a little Gaussian noise."""

    def __init__(self, split: Split, *, device: torch.device, train: bool, noise: float = 0.05) -> None:
        super().__init__(split.labels, device=device, train=train)
        self.x = torch.as_tensor(np.asarray(split.inputs), dtype=torch.float32, device=device)
        self.noise = noise

    def collate(self, idx: torch.Tensor, gen: torch.Generator | None) -> Batch:
        idx = idx.to(self.device)
        x = self.x[idx]
        if self.train and gen is not None:
            x = x + self.noise * torch.randn(x.shape, generator=gen).to(x.device)
        return self.with_targets({"features": x}, idx)


class TabularDomain(Domain):
    name = "tabular"
    options = (NOISE,)

    def load(self, config: TaskConfig, data_dir: str | None, settings: dict[str, Any]) -> TaskData:
        return builtin_task_data(config)

    def input_settings(
        self, options: dict[str, Any], config: TaskConfig, adapter: Any, data: TaskData
    ) -> dict[str, Any]:
        return {"features": FEATURES, "noise": options.get("noise", NOISE.default)}

    def pipelines(self, splits, model, config, settings, device, channels_last=False) -> list[Pipeline]:
        noise = settings.get("noise", NOISE.default)
        return [TabularPipeline(split, device=device, train=i == 0, noise=noise) for i, split in enumerate(splits)]

    def example_shape(self, settings: dict[str, Any], model: Any) -> dict[str, int]:
        return {}

    def synthetic_split(self, n: int, num_classes: int, settings: dict[str, Any]) -> Split:
        x = np.random.RandomState(0).randn(n, FEATURES).astype(np.float32)
        return Split(x, np.arange(n, dtype=np.int64) % num_classes)


register_domain(TabularDomain())


@BUILTIN_DATA.register("toy-iris")
def iris() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_iris

    data = load_iris()
    x = ((data.data - data.data.mean(0)) / data.data.std(0)).astype(np.float32)
    rng = np.random.RandomState(0)
    order = rng.permutation(len(x))
    train, test = order[:100], order[100:]
    return x[train], data.target[train], x[test], data.target[test], list(data.target_names)


register_task(
    TaskConfig(
        name="toy-iris",
        domain="tabular",
        description="scikit-learn's iris flowers as standardised feature vectors (toy domain test)",
        loader="builtin",
        builtin="toy-iris",
        source_note="sklearn.datasets.load_iris",
    )
)


class TabularMLP(Adapter):
    domain = "tabular"

    def __init__(self, *, num_classes: int, head: str = "linear") -> None:
        backbone = nn.Sequential(nn.Linear(FEATURES, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
        super().__init__(backbone, 32, Preprocessing("tabular", "features"), num_classes=num_classes, head=head)

    def forward_features(self, batch: Batch) -> torch.Tensor:
        return self.backbone(batch["features"])

    def blocks(self) -> list[nn.Module]:
        return [self.backbone[0:2], self.backbone[2:4]]

    def example_batch(self, batch_size: int = 2, **shape: int) -> Batch:
        return {"features": torch.randn(batch_size, FEATURES)}


@register_adapter(
    "toy-mlp", domain="tabular", description="a two-layer MLP on feature vectors", pretrained_source="none"
)
def toy_mlp(*, num_classes: int, pretrained: bool, weights: str | None, head: str) -> TabularMLP:
    model = TabularMLP(num_classes=num_classes, head=head)
    if pretrained and weights:  # "pretrained" here means: a --weights file someone trained before
        load_into(model.backbone, load_state_dict_file(weights), source=weights)
    return model
