"""The training loop's guarantees: divergence is recorded, chance is flagged, the probe is exact."""

import dataclasses

import numpy as np
import pytest
import torch

from transferbench.benchmarks.execution.matrix import run_one as execute
from transferbench.benchmarks.execution.records import near_chance
from transferbench.benchmarks.execution.runner import build_adapter
from transferbench.benchmarks.plan.resolve import resolve
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.training.loop import Budget, warmup_cosine
from transferbench.benchmarks.training.probe import PROBE_C_SEARCH, widened
from transferbench.tasks import TASKS, load_task


@pytest.fixture(scope="module")
def digits():
    return load_task(TASKS.get("digits"), None)


def _spec(strategy, **kw):
    # min_steps 0: these tests are about the loop's mechanics at tiny sizes, not the budget rule
    budget = Budget(epochs=kw.pop("epochs", 1), batch_size=16, min_steps=0)
    return RunSpec.create(
        "digits",
        "efficientnet-lite0",
        strategy,
        image_size=16,
        max_train_examples=kw.pop("n", 96),
        budget=budget,
        device="cpu",
        **kw,
    )


def test_nan_loss_stops_the_run_as_diverged(digits, monkeypatch):
    from transferbench.adapters.vision import EfficientNetLiteAdapter

    calls = {"n": 0}
    original = EfficientNetLiteAdapter.forward

    def poisoned(self, batch):  # the third training step's forward (the FLOP count's runs in eval mode)
        calls["n"] += self.training
        out = original(self, batch)
        return out * float("nan") if calls["n"] == 3 else out

    monkeypatch.setattr(EfficientNetLiteAdapter, "forward", poisoned)
    record = execute(_spec("finetune"), digits, progress=False)
    assert record["status"] == "diverged"
    assert record["details"]["diverged_at_step"] == 2
    assert "at step 2" in record["status_detail"]
    assert record["metrics"] == {}


def test_linear_probe_head_reproduces_logistic_regression(digits):
    record = execute(_spec("linear-probe", n=200), digits, progress=False)
    assert record["status"] == "ok"
    scores = {float(c): s for c, s in record["details"]["probe_val_accuracy_by_C"].items()}
    assert set(PROBE_C_SEARCH.grid) <= set(scores) and record["details"]["probe_C"] in scores
    assert widened(scores, PROBE_C_SEARCH.limits) is None  # the search stopped where no edge wins alone
    assert record["params"]["trainable"] == 1280 * 10 + 10
    # the folded head must score on validation exactly what sklearn scored
    assert record["val_accuracy_per_epoch"][0] == pytest.approx(
        record["details"]["probe_val_accuracy_by_C"][str(record["details"]["probe_C"])]
    )


def test_record_carries_provenance_and_throughput(digits, tmp_path):
    record = execute(_spec("scratch"), digits, out_dir=tmp_path, progress=False)
    for key in (
        "task",
        "domain",
        "adapter",
        "strategy",
        "pretrained",
        "seed",
        "epochs",
        "train_examples",
        "test_examples",
        "val_accuracy_per_epoch",
        "versions",
        "git_commit",
        "config_hash",
        "status",
    ):
        assert key in record
    assert record["pretrained"] is False and record["train_examples"] == 96
    assert 0 <= record["metrics"]["accuracy"] <= 1 and 0 <= record["metrics"]["macro_f1"] <= 1
    assert record["throughput"]["train_samples_per_s"] > 0 and record["time"]["train_s"] > 0
    assert record["versions"]["torch"] == torch.__version__.split("+")[0] or record["versions"]["torch"]
    assert record["config"]["strategy"]["precise_bn"] is True
    assert not (tmp_path / "results.jsonl").exists()  # the driver alone appends records (execution.matrix)


def test_near_chance_detects_a_model_that_predicts_one_class():
    labels = np.repeat(np.arange(10), 100)
    assert near_chance(0.10, 1000, labels)[0]
    assert near_chance(0.115, 1000, labels)[0]
    assert not near_chance(0.25, 1000, labels)[0]
    skewed = np.array([0] * 900 + [1] * 100)  # majority baseline 0.9, not 0.5
    assert near_chance(0.9, 1000, skewed)[0]


def test_strategies_set_up_what_they_promise():
    finetune = build_adapter(resolve(_spec("finetune")), 10)
    finetune.train()
    assert all(not bn.training for bn in finetune.batchnorm_layers())  # frozen statistics
    assert finetune.num_params(trainable_only=True) == finetune.num_params()
    scratch = build_adapter(resolve(_spec("scratch")), 10)
    scratch.train()
    assert all(bn.training and bn.momentum == 0.1 for bn in scratch.batchnorm_layers())
    partial = build_adapter(resolve(_spec("partial")), 10)
    trainable = {id(p) for p in partial.parameters() if p.requires_grad}
    last_two = {id(p) for b in partial.blocks()[-2:] for p in b.parameters()}
    assert trainable == last_two | {id(p) for p in partial.head.parameters()}


def test_warmup_cosine_schedule():
    f = warmup_cosine(100, 0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5, abs=0.02) and f(99) < 0.01


def _limit_training_batch(monkeypatch, limit):
    from transferbench.adapters.vision import EfficientNetLiteAdapter

    original = EfficientNetLiteAdapter.forward

    def limited(self, batch):
        if self.training and len(batch["pixel_values"]) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, batch)

    monkeypatch.setattr(EfficientNetLiteAdapter, "forward", limited)


@pytest.mark.slow  # trains at micro-batches down to 1: minutes on 2 cores
def test_oom_halves_the_micro_batch_and_keeps_the_effective_batch(digits, monkeypatch):
    _limit_training_batch(monkeypatch, 4)
    record = execute(_spec("finetune"), digits, progress=False)
    assert record["status"] in ("ok", "near-chance")  # trained to the end (1 epoch at 16 px learns little)
    assert record["details"]["micro_batch"] == 4 and record["details"]["grad_accumulation"] == 4
    assert record["details"]["oom_retries"] == 2  # 16 -> 8 -> 4, then it fits for the rest of the run
    assert record["steps"] == 96 // 16


def test_oom_below_the_floor_ends_the_run_as_oom(digits, monkeypatch):
    _limit_training_batch(monkeypatch, 0)
    record = execute(_spec("scratch"), digits, progress=False)
    assert record["status"] == "oom"
    assert "out of memory at step 0" in record["status_detail"]
    assert record["metrics"] == {}


def test_pipeline_efficiency_is_measured_when_asked(digits):
    """Real-data samples/s over synthetic-input samples/s: on by default on CUDA, asked for here."""
    record = execute(_spec("finetune", n=96, pipeline_efficiency=True), digits, progress=False)
    eff = record["details"]["pipeline_efficiency"]
    assert eff["real_samples_per_s"] == pytest.approx(record["throughput"]["train_samples_per_s"])
    assert eff["synthetic_samples_per_s"] > 0
    assert eff["ratio"] == pytest.approx(eff["real_samples_per_s"] / eff["synthetic_samples_per_s"])


def test_pipeline_efficiency_is_off_on_cpu_by_default(digits):
    record = execute(_spec("finetune", n=32), digits, progress=False)
    assert "pipeline_efficiency" not in record["details"]


def test_small_training_sets_get_min_steps_and_still_validate_epochs_times():
    budget = Budget(epochs=3, batch_size=16, min_steps=100)
    assert budget.epochs_for(33) == 4 and budget.epochs_for(50) == 3
    assert budget.epochs_for(1) == 100
    assert budget.validation_epochs(1) == [32, 66, 99]  # 3 validations, the last after the last epoch
    assert budget.validation_epochs(50) == [0, 1, 2]
    assert Budget(epochs=3, min_steps=0).epochs_for(1) == 3


def test_few_shot_run_trains_min_steps(digits):
    """5 examples per class at batch 16: 3 epochs would be 9 optimizer steps; min_steps makes it 12."""
    spec = _spec("finetune", n=5, per_class=True, epochs=3)
    spec = dataclasses.replace(spec, budget=dataclasses.replace(spec.budget, min_steps=12))
    record = execute(spec, digits, progress=False)
    assert record["steps"] == 12  # 3 steps per epoch x 4 epochs
    assert record["details"]["epochs_run"] == 4
    assert record["details"]["val_epochs"] == [1, 3, 4]
    assert len(record["val_accuracy_per_epoch"]) == 3
