"""Train and inference steps per adapter family, and the data pipelines, on tiny CPU-sized inputs.

These record timings (pytest-benchmark's JSON); they assert nothing about speed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferbench.adapters import ADAPTERS
from transferbench.benchmarks.execution.throughput import BenchConfig, input_shape, synthetic_batch
from transferbench.benchmarks.training.loop import Budget, make_optimizer, train_step
from transferbench.tasks import TASKS, load_task
from transferbench.tasks.base import Split
from transferbench.tasks.text import TextPipeline
from transferbench.tasks.vision import VisionPipeline
from transferbench.testing import tiny_bert

CPU = torch.device("cpu")
FAMILIES = {
    "cnn-efficientnet-lite0": ("efficientnet-lite0", {}, {"image_size": 64}),
    "cnn-resnet18": ("resnet18", {}, {"image_size": 64}),
    "transformer-minilm-l6": ("minilm-l6", {}, {"seq_len": 64}),
    "transformer-tiny-bert": ("bert-tiny", "tiny", {"seq_len": 64}),
}


def _model(family: str, tmp_path):
    name, options, shape = FAMILIES[family]
    options = tiny_bert(tmp_path) if options == "tiny" else options
    model = ADAPTERS.get(name).create(num_classes=10, pretrained=False, **options)
    cfg = BenchConfig(adapter=name, image_size=shape.get("image_size"), seq_len=shape.get("seq_len", 128))
    return model, synthetic_batch(model, input_shape(cfg, model), 16, CPU)


@pytest.mark.parametrize("family", list(FAMILIES))
def bench_train_step(benchmark, family, tmp_path):
    model, batch = _model(family, tmp_path)
    model.train()
    groups = model.param_groups(1e-4, 1e-5, 0.01)
    optimizer = make_optimizer("adamw", groups)
    params = [p for g in groups for p in g["params"]]
    benchmark.extra_info.update(batch_size=16, family=family)
    benchmark.pedantic(
        train_step,
        args=(model, batch, optimizer, params, Budget(batch_size=16), CPU, "off", 16),
        rounds=5,
        warmup_rounds=1,
    )


@pytest.mark.parametrize("family", list(FAMILIES))
def bench_inference_step(benchmark, family, tmp_path):
    model, batch = _model(family, tmp_path)
    model.eval()

    def infer():
        with torch.inference_mode():
            return model(batch)

    benchmark.extra_info.update(batch_size=16, family=family)
    benchmark.pedantic(infer, rounds=5, warmup_rounds=1)


def bench_vision_pipeline_epoch(benchmark):
    """One augmented epoch over sklearn digits resized to 64 px (decode is done once, up front)."""
    data = load_task(TASKS.get("digits"), None)
    prep = ADAPTERS.get("efficientnet-lite0").create(num_classes=10, pretrained=False).preprocessing
    pipe = VisionPipeline(data.train, prep, image_size=64, train=True, flip=False, device=CPU)

    def epoch():
        return sum(len(b["labels"]) for b in pipe.batches(32, shuffle=True, gen=torch.Generator().manual_seed(0)))

    benchmark.extra_info.update(examples=len(data.train))
    benchmark.pedantic(epoch, rounds=5, warmup_rounds=1)


def bench_text_pipeline_epoch(benchmark, tmp_path):
    """Tokenise once, then one bucketed epoch of dynamically padded batches."""
    model = ADAPTERS.get("minilm-l6").create(num_classes=2, pretrained=False)
    rng = np.random.RandomState(0)
    words = ["good", "bad", "film", "plot", "acting", "not", "very", "quite", "story", "ending"]
    texts = [" ".join(rng.choice(words, rng.randint(3, 40))) for _ in range(2000)]
    pipe = TextPipeline(Split(texts, np.arange(2000) % 2), model, device=CPU)

    def epoch():
        return sum(len(b["labels"]) for b in pipe.batches(32, shuffle=True, gen=torch.Generator().manual_seed(0)))

    benchmark.extra_info.update(examples=len(texts))
    benchmark.pedantic(epoch, rounds=5, warmup_rounds=1)
