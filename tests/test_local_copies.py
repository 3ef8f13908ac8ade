"""A local copy is always read from the files it holds: two folders of the same name (``p1/data``,
``p2/data``) with different contents give their own rows, data revisions and run ids, in every
layout ``--data-dir`` reads, and a copy changed in place is read anew."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from fixtures.data import make_cifar10_like, make_fsdd_like, make_sst2_like

from transferbench.benchmarks.plan.resolve import bind, resolve
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.training.budget import Budget
from transferbench.tasks import TASKS, load_task
from transferbench.tasks.hub import dataset_revision
from transferbench.tasks.local_files import revision

CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: validation
    path: data/validation-*
---
"""


def _hub_copy(root: Path, seed: int) -> Path:
    import datasets

    rng = np.random.RandomState(seed)
    words = ["good", "bad", "fine", "dull", "bright", "grim"]
    texts = [f"{' '.join(rng.choice(words, 5))} number {seed}-{i}" for i in range(80)]
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"])}
    )
    ds = datasets.Dataset.from_dict({"sentence": texts, "label": [i % 2 for i in range(80)]}, features=features)
    (root / "data").mkdir(parents=True)
    ds.select(range(60)).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    ds.select(range(60, 80)).to_parquet(str(root / "data" / "validation-00000-of-00001.parquet"))
    (root / "README.md").write_text(CARD)
    return root


LAYOUTS = {
    "hub-copy": ("sst2", "tfidf-logreg", _hub_copy),
    "csv": ("sst2", "tfidf-logreg", lambda root, seed: make_sst2_like(root, (40, 40), (10, 10), 0, seed)),
    "imagefolder": (
        "cifar10",
        "resnet18",
        lambda root, seed: make_cifar10_like(root, {"train": 3, "test": 1}, ("cat", "dog"), 16, seed),
    ),
    "audiofolder": (
        "fsdd-digits",
        "logmel-cnn",
        lambda root, seed: make_fsdd_like(root, range(2), ("a", "b"), range(5, 7), range(1), seed),
    ),
}


def _first_input(data) -> bytes:
    item = data.train.inputs[0]
    return item.encode() if isinstance(item, str) else np.asarray(item).tobytes()


def _run_id(task: str, adapter: str, data_dir: Path, data) -> str:
    spec = RunSpec(task, adapter, "scratch", data_dir=str(data_dir), budget=Budget(batch_size=2))
    return bind(resolve(spec), data, "off").run_id


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_two_same_named_folders_give_their_own_rows_revisions_and_run_ids(tmp_path, layout):
    task, adapter, make = LAYOUTS[layout]
    first, second = make(tmp_path / "p1" / "data", 1), make(tmp_path / "p2" / "data", 2)
    a = load_task(TASKS.get(task), str(first))
    b = load_task(TASKS.get(task), str(second))
    again = load_task(TASKS.get(task), str(first))  # after the other folder: still its own rows
    assert a.layout == b.layout == layout
    assert _first_input(a) != _first_input(b) and _first_input(again) == _first_input(a)
    assert dataset_revision(a) == dataset_revision(again) == revision(first) != dataset_revision(b)
    assert dataset_revision(a).startswith("files:") and a.fingerprint() != b.fingerprint()
    assert _run_id(task, adapter, first, a) != _run_id(task, adapter, second, b)


def test_an_identical_copy_elsewhere_has_the_same_revision(tmp_path):
    first = _hub_copy(tmp_path / "p1" / "data", 1)
    shutil.copytree(first, tmp_path / "p3" / "data")
    assert revision(first) == revision(tmp_path / "p3" / "data")


def test_a_hub_copy_changed_in_place_is_read_anew_even_with_its_old_mtime(tmp_path):
    root = _hub_copy(tmp_path / "data", 1)
    before = load_task(TASKS.get("sst2"), str(root))
    train = root / "data" / "train-00000-of-00001.parquet"
    stat = train.stat()
    shutil.rmtree(root)
    _hub_copy(tmp_path / "data", 2)  # other sentences; the files keep their names
    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as `cp -p`, `rsync -a` and tar keep it
    after = load_task(TASKS.get("sst2"), str(root))
    assert _first_input(before) != _first_input(after)
    assert dataset_revision(before) != dataset_revision(after)


def test_hidden_files_of_a_download_are_not_part_of_the_revision(tmp_path):
    root = _hub_copy(tmp_path / "data", 1)
    before = revision(root)
    (root / ".cache" / "huggingface").mkdir(parents=True)
    (root / ".cache" / "huggingface" / "download.lock").write_text("x")
    assert revision(root) == before
    (root / "extra.txt").write_text("a file the copy holds")
    assert revision(root) != before
