"""Keep the device fed: the training loop reads the device once per READ_EVERY steps (and at the end
of an epoch), never per step, and batches are built by gathers on the device. A per-step read (a
loss printed, a divergence checked, a batch built from host lists) would make the host wait for every
step on a GPU: these tests fail if one comes back, by counting the host reads an epoch makes."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import peft
import pytest
import torch
import transformers

import transferbench
from transferbench.adapters import ADAPTERS
from transferbench.benchmarks.strategies import STRATEGIES
from transferbench.benchmarks.training import Budget, FitRun, loop, train
from transferbench.tasks import DOMAINS
from transferbench.tasks.base import Split, TaskConfig
from transferbench.testing import tiny_bert

READS = ("item", "cpu", "tolist", "numpy", "__bool__", "__int__", "__float__")


# the code a training step runs besides torch's own: ours, and the model and adapter libraries it calls
PACKAGES = tuple(str(Path(module.__file__).parent) for module in (transferbench, transformers, peft))


@contextlib.contextmanager
def counting(monkeypatch: pytest.MonkeyPatch, counts: dict[str, int]) -> Iterator[None]:
    """Count every Tensor.item/.cpu/.tolist/.numpy call that transferbench, transformers or PEFT makes while
    the block runs (torch's optimizers read their CPU step counters: not a wait for the device)."""
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, __original=original, __name=name, **kwargs):
            if sys._getframe(1).f_code.co_filename.startswith(PACKAGES):
                counts[__name] = counts.get(__name, 0) + 1
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    yield
    monkeypatch.undo()


def _epoch_reads(n: int, strategy: str, tmp_path, monkeypatch) -> int:
    """Host reads during the training epochs (not validation) of a tiny BERT on ``n`` texts."""
    model = ADAPTERS.get("minilm-l6").create(num_classes=2, pretrained=True, **tiny_bert(tmp_path))
    STRATEGIES.get(strategy).prepare(model)
    words = ["good", "bad", "fine", "dull", "film", "plot"]
    texts = [" ".join(words[(i + j) % 6] for j in range(3 + i % 5)) for i in range(n)]
    split = Split(texts, np.arange(n) % 2)
    config = TaskConfig("t", "text", "t", loader="builtin")
    train_pipe, val_pipe = DOMAINS.get("text").pipelines((split, split), model, config, {}, torch.device("cpu"))
    counts: dict[str, int] = {}
    real_epoch = loop._Loop.epoch

    def counted_epoch(self, epoch):
        with counting(monkeypatch, counts):
            return real_epoch(self, epoch)

    monkeypatch.setattr(loop._Loop, "epoch", counted_epoch)
    run = FitRun(
        model, Budget(epochs=1, batch_size=8, min_steps=0), train_pipe, val_pipe, torch.device("cpu"), "off", 0
    )
    outcome = train(run, STRATEGIES.get(strategy).param_groups(model))
    assert outcome.status == "ok" and outcome.steps == n // 8
    monkeypatch.undo()
    return sum(counts.values())


@pytest.mark.parametrize("strategy", ["finetune", "bitfit", "lora"])
def test_an_epoch_reads_the_device_a_fixed_number_of_times_whatever_its_length(strategy, tmp_path, monkeypatch):
    few = _epoch_reads(64, strategy, tmp_path, monkeypatch)  # 8 steps
    many = _epoch_reads(320, strategy, tmp_path, monkeypatch)  # 40 steps, still under READ_EVERY
    assert many == few <= 3


def test_a_non_finite_loss_is_still_caught_at_the_next_read(monkeypatch):
    watch = loop.LossWatch(torch.device("cpu"))
    for step, value in enumerate([0.9, 0.8, float("inf"), float("nan"), 0.5]):
        watch.add(torch.tensor(value), step)
    first_bad, bad_loss, mean = watch.read()
    assert (first_bad, bad_loss) == (2, float("inf")) and mean == pytest.approx((0.9 + 0.8 + 0.5) / 5)


@torch.no_grad()
def test_the_bert_encoder_mask_gives_the_2d_masks_outputs_without_a_read(tmp_path):
    """transferbench passes BERT-family encoders under SDPA a 4D boolean mask, which transformers
    uses as it is; a 2D one it checks for padding with a read of the device in every forward."""
    model = ADAPTERS.get("minilm-l6").create(num_classes=2, pretrained=True, **tiny_bert(tmp_path)).eval()
    ids = torch.randint(5, 60, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[0, 5:], mask[2, 2:] = 0, 0
    four = model.encoder_mask(mask)
    assert four.shape == (3, 1, 9, 9) and four.dtype == torch.bool
    ours = model.backbone(input_ids=ids, attention_mask=four).last_hidden_state
    plain = model.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(ours, plain, atol=1e-6)


def test_a_split_is_tokenised_once_per_process_for_every_run_that_shares_it(tmp_path):
    from transferbench.tasks import text

    model = ADAPTERS.get("minilm-l6").create(num_classes=2, pretrained=True, **tiny_bert(tmp_path))
    calls = {"n": 0}
    real = model.encode

    def counted(texts):
        calls["n"] += 1
        return real(texts)

    model.encode = counted
    texts = [f"good film {i}" for i in range(40)]
    first = text.encoded(model, texts)
    again = text.encoded(model, list(texts))  # another run's copy of the same split
    other = text.encoded(model, texts[:20])
    assert calls["n"] == 2 and first is again and len(other) == 20


def test_fixed_costs_are_recorded_apart_from_training_time(tmp_path):
    from transferbench.benchmarks.execution.matrix import run_all
    from transferbench.benchmarks.plan.spec import RunSpec

    spec = RunSpec.create(
        "digits",
        "efficientnet-lite0",
        "finetune",
        image_size=16,
        max_train_examples=64,
        device="cpu",
        budget=Budget(epochs=1, batch_size=16, min_steps=0),
    )
    (record,) = run_all([spec], out_dir=tmp_path, progress=False, log=lambda _: None)
    time_ = record["time"]
    assert time_["data_load_s"] > 0 and time_["setup_s"] >= time_["first_step_s"] > 0
    assert time_["train_s"] + time_["setup_s"] <= time_["device_s"] + time_["data_load_s"]


def _split_reads(n: int, tmp_path, monkeypatch) -> dict[str, int]:
    """Host reads while predicting and while extracting features over ``n`` texts, batch 8."""
    from transferbench.benchmarks.training.evaluate import predict
    from transferbench.benchmarks.training.probe import extract_features

    model = ADAPTERS.get("minilm-l6").create(num_classes=2, pretrained=True, **tiny_bert(tmp_path))
    split = Split([f"good film {i}" for i in range(n)], np.arange(n) % 2)
    config = TaskConfig("t", "text", "t", loader="builtin")
    pipe, _ = DOMAINS.get("text").pipelines((split, split), model, config, {}, torch.device("cpu"))
    reads = {}
    for name, step in (("predict", predict), ("features", extract_features)):
        counts: dict[str, int] = {}
        with counting(monkeypatch, counts):
            step(model, pipe, 8, torch.device("cpu"), "off")
        reads[name] = sum(counts.values())
    return reads


def test_evaluation_and_feature_extraction_read_the_device_once_per_split_whatever_its_size(tmp_path, monkeypatch):
    few, many = _split_reads(16, tmp_path, monkeypatch), _split_reads(160, tmp_path, monkeypatch)
    assert few == many  # a fixed number per split (the predictions, the features), none per batch
