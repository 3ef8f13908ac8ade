"""--data-dir also reads a local copy of a hub dataset (what `huggingface-cli download --repo-type
dataset NAME --local-dir DIR` leaves: parquet files and a dataset card), through the same
`datasets.load_dataset` code path and column checks as the hub."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import shared
from PIL import Image

from transferbench.benchmarks.cli import main
from transferbench.tasks import TASKS, load_task
from transferbench.tasks.local_files import revision

CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: {test}
    path: data/{test}-*
---
# a local copy of a hub dataset, written by the test
"""


def _hub_copy(root: Path, columns: dict[str, list], features, test_split: str, n_train: int) -> Path:
    import datasets

    (root / "data").mkdir(parents=True)
    ds = datasets.Dataset.from_dict(columns, features=features)
    ds.select(range(n_train)).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    ds.select(range(n_train, len(ds))).to_parquet(str(root / "data" / f"{test_split}-00000-of-00001.parquet"))
    (root / "README.md").write_text(CARD.format(test=test_split))
    return root


def _cifar_like_copy(root: Path) -> Path:
    import datasets

    rng = np.random.RandomState(0)
    images, labels = [], []
    for i in range(60):
        label = i % 3
        array = np.clip(rng.randn(32, 32, 3) * 20 + 60 + 70 * label, 0, 255).astype(np.uint8)
        images.append(Image.fromarray(array))
        labels.append(label)
    features = datasets.Features(
        {"img": datasets.Image(), "label": datasets.ClassLabel(names=["airplane", "automobile", "bird"])}
    )
    return _hub_copy(root, {"img": images, "label": labels}, features, "test", 45)


def test_vision_hub_copy_reads_through_the_hub_code_path(tmp_path):
    data = load_task(TASKS.get("cifar10"), str(_cifar_like_copy(tmp_path / "cifar10")))
    assert data.layout == "hub-copy" and data.class_names == ["airplane", "automobile", "bird"]
    assert tuple(data.train.inputs.shape) == (45, 3, 32, 32) and len(data.test) == 15
    assert data.source == str(tmp_path / "cifar10")  # the folder, never hf:// of a path


def test_text_hub_copy_runs_end_to_end_and_records_its_layout(tmp_path, capsys):
    import datasets

    texts = [f"a {'good fine' if i % 2 else 'bad dull'} film number {i}" for i in range(80)]
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"])}
    )
    root = _hub_copy(
        tmp_path / "sst2", {"sentence": texts, "label": [i % 2 for i in range(80)]}, features, "validation", 60
    )
    out = tmp_path / "out"
    argv = ["run", "--task", "sst2", "--adapter", "tfidf-logreg", "--strategy", "scratch", "--data-dir", str(root)]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0, capsys.readouterr().err
    record = json.loads((out / "results.jsonl").read_text())
    assert record["data_layout"] == "hub-copy" and record["test_examples"] == 20
    assert record["metrics"]["accuracy"] == 1.0 and len(record["config"]["data_fingerprint"]) == 16
    assert record["data_revision"] == revision(root)  # the copy's files, not the rows a cache served
    assert record["run_spec"]["data_dir"] == "sst2"  # as asked for, without the machine's absolute path
    assert record["run_spec"]["budget"]["epochs"] == 5 and record["run_spec"]["strategy"] == "scratch"


def test_a_hub_copy_missing_the_task_column_is_one_line(tmp_path, capsys):
    import datasets

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b"])})
    root = _hub_copy(tmp_path / "wrong", {"text": ["x y"] * 20, "label": [0, 1] * 10}, features, "validation", 10)
    argv = ["run", "--task", "sst2", "--adapter", "tfidf-logreg", "--strategy", "scratch", "--data-dir", str(root)]
    assert main([*argv, "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no column 'sentence'" in err and "Traceback" not in err


def test_a_folder_that_is_neither_layout_says_what_was_expected(tmp_path, capsys):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    argv = ["run", "--task", "cifar10", "--adapter", "resnet18", "--strategy", "scratch", "--data-dir"]
    assert main([*argv, str(tmp_path / "junk"), "--out", str(tmp_path / "out")]) == 2
    assert (
        "or a local copy of a hub dataset (parquet/arrow files with a README.md dataset card)"
        in capsys.readouterr().err
    )


@pytest.mark.slow
def test_shared_full_cifar10_in_the_hub_layout_runs_end_to_end(tmp_path, capsys):
    root = shared("cifar10-full")
    out = tmp_path / "out"
    argv = ["run", "--task", "cifar10", "--data-dir", str(root), "--adapter", "efficientnet-lite0"]
    argv += ["--strategy", "linear-probe", "--image-size", "32", "--max-train-examples", "500", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0, capsys.readouterr().err
    record = json.loads((out / "results.jsonl").read_text())
    assert record["data_layout"] == "hub-copy" and record["test_examples"] == 10_000
    assert record["train_examples"] == 500 and record["status"] == "ok"
