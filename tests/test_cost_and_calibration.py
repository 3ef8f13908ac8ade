"""What a run costs in FLOPs and how well its probabilities are calibrated: the counts against a
hand count of a small MLP, the per-run totals in records, ECE/NLL against hand-worked cases, and the
per-item correctness the paired tests read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.results.significance import correctness_code, correctness_of
from transferbench.benchmarks.training.flops import probe_flops, step_flops
from transferbench.benchmarks.training.metrics import calibration
from transferbench.tasks.base import Split


@pytest.fixture(autouse=True)
def _toys():
    import toy_domain  # noqa: F401  (registers the tabular domain and toy-iris)


def _mlp_and_pipe(n: int = 40):
    import toy_domain

    torch.manual_seed(0)
    model = toy_domain.TabularMLP(num_classes=3)
    split = Split(np.random.RandomState(0).randn(n, toy_domain.FEATURES).astype(np.float32), np.arange(n) % 3)
    return model, toy_domain.TabularPipeline(split, device=torch.device("cpu"), train=True)


def _linear(batch: int, fan_in: int, fan_out: int) -> int:
    return 2 * batch * fan_in * fan_out  # a multiply and an add per weight per example


def test_a_step_is_counted_as_the_hand_count_and_a_frozen_backbone_costs_less():
    model, pipe = _mlp_and_pipe()
    b, f, w, c = 8, 4, 32, 3  # toy MLP: Linear(4, 32) -> Linear(32, 32) -> head Linear(32, 3)
    forward = _linear(b, f, w) + _linear(b, w, w) + _linear(b, w, c)
    # every weight gets its gradient; inputs get theirs except the first layer's (the data needs none)
    full = forward + forward + _linear(b, w, w) + _linear(b, w, c)
    assert step_flops(model, pipe, b, "none") == full
    model.freeze("backbone")
    assert step_flops(model, pipe, b, "none") == forward + _linear(b, w, c)  # the head's weight gradient only
    assert step_flops(model, pipe, b, "none", backward=False) == forward
    assert probe_flops(model, pipe, b, "none", examples=100) == round(forward / b * 100)


@pytest.mark.parametrize("groups", [1, 4, 16])
def test_a_grouped_convolutions_step_is_three_forward_passes_and_frozen_it_is_two(groups):
    """torch 2.11 counts a grouped conv's weight gradient ``groups`` times over; ours does not."""

    class Conv(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Conv2d(3, 16, 1)  # its input needs no gradient: not charged one
            self.conv = torch.nn.Conv2d(16, 16, 3, padding=1, groups=groups)

        def forward(self, batch):
            return self.conv(self.stem(batch["x"])).mean((2, 3))

    class Pipe:
        labels = torch.zeros(4, dtype=torch.long)

        def unaugmented(self):
            return self

        def groups(self, batch_size, **_):
            return [torch.arange(4)]

        def collate(self, idx, gen):
            return {"x": torch.ones(len(idx), 3, 8, 8), "labels": self.labels[idx]}

    model = Conv()
    b, positions = 4, 8 * 8
    stem, conv = 2 * b * positions * 3 * 16, 2 * b * positions * 16 * (16 // groups) * 9
    forward = stem + conv
    assert step_flops(model, Pipe(), b, "none", backward=False) == forward
    # weights: one gradient pass each; inputs: the conv's only
    assert step_flops(model, Pipe(), b, "none") == forward + forward + conv
    model.conv.weight.requires_grad_(False)
    model.conv.bias.requires_grad_(False)
    assert step_flops(model, Pipe(), b, "none") == forward + stem + conv


def test_counting_at_a_micro_batch_scales_to_the_batch_and_leaves_the_model_as_it_was():
    model, pipe = _mlp_and_pipe()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    assert step_flops(model, pipe, 16, "none", micro_batch=4) == step_flops(model, pipe, 16, "none")
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _toy_records(tmp_path: Path, strategy: str) -> list[dict]:
    out = tmp_path / strategy
    argv = ["run", "--task", "toy-iris", "--adapter", "toy-mlp", "--strategy", strategy, "--epochs", "2"]
    assert main([*argv, "--batch-size", "16", "--min-steps", "0", "--no-progress", "--out", str(out)]) == 0
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("strategy", ["finetune", "scratch"])
def test_a_trained_runs_flops_are_its_step_count_times_its_steps(tmp_path, strategy):
    (record,) = _toy_records(tmp_path, strategy)
    assert record["steps"] > 0
    assert record["train_flops"] == record["details"]["flops_per_step"] * record["steps"]


def test_a_probe_costs_one_forward_pass_per_example_and_lp_ft_adds_its_training(tmp_path):
    (probe,) = _toy_records(tmp_path, "linear-probe")
    forward = 2 * (4 * 32 + 32 * 32 + 32 * 3)  # one example through the toy MLP
    assert probe["train_flops"] == forward * (probe["train_examples"] + probe["val_examples"])
    (lp_ft,) = _toy_records(tmp_path, "lp-ft")
    assert lp_ft["train_flops"] == probe["train_flops"] + lp_ft["details"]["flops_per_step"] * lp_ft["steps"]


def test_records_carry_calibration_and_which_test_items_were_right(tmp_path):
    (record,) = _toy_records(tmp_path, "finetune")
    metrics, n = record["metrics"], record["test_examples"]
    assert 0 <= metrics["ece"] <= 1 and metrics["nll"] > 0
    right = correctness_of(record["test_correct"], n)
    assert right.shape == (n,) and right.mean() == pytest.approx(metrics["accuracy"])


def test_ece_and_nll_match_hand_worked_cases():
    labels = np.array([0, 0, 1, 1])
    certain = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert calibration(certain, labels) == pytest.approx({"ece": 0.0, "nll": 0.0}, abs=1e-9)
    # always 0.6 sure of class 0, right half the time: one bin, |0.5 - 0.6| = 0.1
    unsure = np.tile([0.6, 0.4], (4, 1))
    assert calibration(unsure, labels) == pytest.approx({"ece": 0.1, "nll": -(np.log(0.6) + np.log(0.4)) / 2})
    # two bins: 0.9-sure and right (gap 0.1), 0.7-sure and wrong (gap 0.7), half the items each
    mixed = np.array([[0.9, 0.1], [0.9, 0.1], [0.7, 0.3], [0.7, 0.3]])
    assert calibration(mixed, np.array([0, 0, 1, 1]))["ece"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.7)


def test_correctness_round_trips_for_any_length():
    rng = np.random.RandomState(0)
    for n in (1, 7, 8, 9, 1001):
        preds, labels = rng.randint(0, 3, n), rng.randint(0, 3, n)
        assert np.array_equal(correctness_of(correctness_code(preds, labels), n), preds == labels)
