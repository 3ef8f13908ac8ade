"""The feature cache: a hit gives the bit-identical probe, across strategies and seeds; any change of
its key is a miss; a broken entry is computed again; ``--no-cache`` bypasses it."""

from __future__ import annotations

import numpy as np
import pytest

from transferbench.benchmarks.execution.matrix import run_one
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.training.budget import Budget
from transferbench.benchmarks.training.features import FeatureCache
from transferbench.tasks import TASKS, load_task


@pytest.fixture(scope="module")
def digits():
    return load_task(TASKS.get("digits"), None)


def _probe(digits, cache_dir, strategy="linear-probe", **values):
    values = {"image_size": 16, "max_train_examples": 96, **values}
    spec = RunSpec.create(
        "digits",
        "efficientnet-lite0",
        strategy,
        budget=Budget(epochs=1, batch_size=16, min_steps=0),
        device="cpu",
        cache_dir=str(cache_dir),
        **values,
    )
    return run_one(spec, digits)


def _found(record):
    return record["details"]["feature_cache"]


def test_a_hit_gives_the_bit_identical_probe_across_strategies_and_seeds(digits, tmp_path):
    first = _probe(digits, tmp_path)
    assert _found(first) == {"train": "miss", "val": "miss"}
    again = _probe(digits, tmp_path)
    assert _found(again) == {"train": "hit", "val": "hit"}
    assert again["metrics"] == first["metrics"]
    assert first["throughput"]["train_samples_per_s"] > 0 and again["throughput"]["train_samples_per_s"] is None
    assert again["train_flops"] == first["train_flops"]  # what the method needs, whatever the cache saved
    assert again["details"]["probe_val_accuracy_by_C"] == first["details"]["probe_val_accuracy_by_C"]
    assert _found(_probe(digits, tmp_path, seed=1)) == {"train": "hit", "val": "hit"}  # frozen features: no seed
    assert _found(_probe(digits, tmp_path, strategy="lp-ft")) == {"train": "hit", "val": "hit"}
    assert len(list(tmp_path.rglob("*.npy"))) == 2  # one entry per split


@pytest.mark.parametrize("change", [{"image_size": 24}, {"max_train_examples": 64}, {"split_seed": 1}])
def test_any_change_of_the_key_misses(digits, tmp_path, change):
    _probe(digits, tmp_path)
    assert _found(_probe(digits, tmp_path, **change)) == {"train": "miss", "val": "miss"}


def test_a_broken_entry_is_computed_again_and_no_cache_bypasses_it(digits, tmp_path):
    first = _probe(digits, tmp_path)
    for entry in tmp_path.rglob("*.npy"):
        entry.write_bytes(entry.read_bytes()[:50])  # a torn file, as a crash mid-write elsewhere would leave
    again = _probe(digits, tmp_path)
    assert _found(again) == {"train": "miss", "val": "miss"} and again["metrics"] == first["metrics"]
    bypassed = _probe(digits, tmp_path / "unused", cache=False)
    assert _found(bypassed) == {"train": "off", "val": "off"} and not (tmp_path / "unused").exists()
    assert bypassed["metrics"] == first["metrics"]


def test_entries_are_written_whole_and_keyed_by_split(tmp_path):
    cache = FeatureCache(tmp_path, {"adapter": "x"})
    calls = []
    features, found = cache.get("train", lambda: calls.append(1) or np.ones((3, 2)))
    assert found == "miss" and features.dtype == np.float32
    assert cache.get("train", lambda: calls.append(1) or np.zeros((3, 2)))[1] == "hit" and calls == [1]
    assert cache.path("train") != cache.path("val")
    assert not list(tmp_path.rglob("*.tmp"))  # the temporary file was renamed into place
