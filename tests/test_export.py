"""`transferbench export`: the records as parquet that `datasets` reads back, a dataset card and
per-model eval results that round-trip through huggingface_hub's own parsers, no machine paths, and
`--push` up to the upload (which needs the network and a token: monkeypatched here)."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import huggingface_hub
import pytest
import yaml
from report_records import HUB_COMMIT, from_the_hub, sample_records, write_results

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.reporting import export, export_cards
from transferbench.benchmarks.results import aggregate, latest_per_seed, runs_by_row
from transferbench.errors import UserError

MACHINE_FOLDERS = ("/work/", "/tmp/", "/root", "/home", "../shared")


def records() -> list[dict]:
    """The sample, with MiniLM-L6 finetune's runs as if they had read the hub's SST-2 at a commit."""
    return [from_the_hub(r) if r["strategy"] == "finetune" and r["task"] == "sst2" else r for r in sample_records()]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    folder = write_results(root / "sample-set", records())
    assert main(["export", str(folder), "--out", str(root / "hub")]) == 0
    return root / "hub"


def test_the_parquet_reads_back_with_datasets_one_row_per_record(exported: Path, tmp_path: Path):
    files = {p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file()}
    assert files == {
        "README.md",
        "data/records.parquet",
        "models/efficientnet-lite0/README.md",
        "models/minilm-l6/README.md",
        "models/minilm-l6/.eval_results/sst2.yaml",
        "models/tfidf-logreg/README.md",
    }
    direct = datasets.load_dataset(
        "parquet", data_files=str(exported / "data" / "records.parquet"), split="train", cache_dir=str(tmp_path / "a")
    )
    by_card = datasets.load_dataset(str(exported), split="train", cache_dir=str(tmp_path / "b"))  # the card's configs
    assert direct.to_list() == by_card.to_list()
    rows, original = direct.to_list(), records()
    assert [r["run_id"] for r in rows] == [r["run_id"] for r in original]
    assert [r["accuracy"] for r in rows] == [r["metrics"]["accuracy"] for r in original]
    assert [r["val_accuracy_per_epoch"] for r in rows] == [r["val_accuracy_per_epoch"] for r in original]
    assert sum(r["counted"] for r in rows) == len(latest_per_seed(original))
    assert {r["result_set"] for r in rows} == {"sample-set"}
    assert direct.features["accuracy"].dtype == "float64" and direct.features["seed"].dtype == "int64"
    for row, record in zip(rows, original, strict=True):
        assert json.loads(row["record"]) == export.public_record(record)
        assert json.loads(row["config"]) == record["config"]


def test_the_dataset_card_round_trips_through_huggingface_hub(exported: Path):
    card = huggingface_hub.DatasetCard.load(exported / "README.md")
    want = export_cards.card_data("sample-set", records(), license="apache-2.0", data_file=export.RECORDS_FILE)
    assert card.data.to_dict() == want.to_dict()
    assert card.data.to_dict() == {
        "license": "apache-2.0",
        "pretty_name": "transferbench results: sample-set",
        "tags": ["transferbench", "transfer-learning", "benchmark", "evaluation-results", "text", "vision"],
        "size_categories": ["n<1K"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/records.parquet"}]}],
    }
    assert "## sst2 (text)" in card.text and "| sst2 | minilm-l6 | lora |" in card.text


def test_model_cards_round_trip_as_model_index(exported: Path):
    rows = aggregate(records())
    runs = runs_by_row(rows, records())
    for adapter in ("efficientnet-lite0", "minilm-l6", "tfidf-logreg"):
        card = huggingface_hub.ModelCard.load(exported / "models" / adapter / "README.md")
        mine = [(row, rr) for row, rr in zip(rows, runs, strict=True) if row["adapter"] == adapter]
        want = export_cards.eval_results([m[0] for m in mine], [m[1] for m in mine], None)
        assert card.data.model_name == adapter
        assert card.data.eval_results == want and len(want) == 2 * len(mine)  # accuracy and macro-F1 per row
    lora = next(
        r for r in card_results(exported, "minilm-l6") if "lora" in r.metric_name and r.metric_type == "accuracy"
    )
    row = next(r for r in rows if r["strategy"] == "lora")
    assert lora.metric_value == round(row["accuracy_mean"], 4)
    std = f"{row['accuracy_std']:.3f}"
    assert lora.metric_name == f"test accuracy: lora, 3600 train examples, 64 tokens (mean of 2 seeds, std {std})"
    assert lora.dataset_type == "sst2" and lora.dataset_split == "validation"  # a local copy: no hub id claimed
    assert lora.dataset_revision == "content:40fae0e443c2758f"
    finetune = next(r for r in card_results(exported, "minilm-l6") if "finetune" in r.metric_name)
    assert (finetune.dataset_type, finetune.dataset_revision) == ("stanfordnlp/sst2", HUB_COMMIT)


def card_results(exported: Path, adapter: str) -> list:
    return huggingface_hub.ModelCard.load(exported / "models" / adapter / "README.md").data.eval_results


def test_eval_results_entries_only_for_rows_that_read_the_hub(exported: Path):
    parsed = huggingface_hub.parse_eval_result_entries(
        yaml.safe_load((exported / "models" / "minilm-l6" / ".eval_results" / "sst2.yaml").read_text())
    )
    finetune = next(r for r in aggregate(records()) if r["strategy"] == "finetune" and r["task"] == "sst2")
    assert len(parsed) == 1  # finetune read stanfordnlp/sst2 at a commit; lora and scratch read a local copy
    (entry,) = parsed
    assert (entry.dataset_id, entry.task_id, entry.dataset_revision) == ("stanfordnlp/sst2", "sst2", HUB_COMMIT)
    assert entry.value == round(finetune["accuracy_mean"], 4)
    assert entry.notes.startswith("transferbench test accuracy: finetune, 3600 train examples")
    assert entry.date == max(r["finished_at"] for r in records() if r["strategy"] == "finetune" and r["task"] == "sst2")


def test_nothing_exported_names_a_folder_of_the_machine(exported: Path):
    for path in exported.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for folder in (*MACHINE_FOLDERS, str(exported.parent)):
                assert folder.encode() not in data, (path, folder)


def test_push_uploads_the_folder_as_a_dataset_repo(tmp_path: Path, monkeypatch, capsys):
    calls = {}
    monkeypatch.setattr(huggingface_hub, "create_repo", lambda repo_id, **kw: calls.setdefault("create", (repo_id, kw)))
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda **kw: calls.setdefault("upload", kw) and "commit-url")
    folder = write_results(tmp_path / "sample-set", records())
    assert main(["export", str(folder), "--out", str(tmp_path / "hub"), "--push", "someone/results"]) == 0
    assert calls["create"] == ("someone/results", {"repo_type": "dataset", "exist_ok": True})
    assert calls["upload"] == {
        "repo_id": "someone/results",
        "folder_path": str(tmp_path / "hub"),
        "repo_type": "dataset",
        "commit_message": "transferbench export",
    }
    assert "needs the network and a token" in capsys.readouterr().out
    card = huggingface_hub.DatasetCard.load(tmp_path / "hub" / "README.md")
    assert 'load_dataset("someone/results", split="train")' in card.text
    sources = {r.source_url for r in card_results(tmp_path / "hub", "minilm-l6")}
    assert sources == {"https://huggingface.co/datasets/someone/results"}


def test_push_offline_is_one_line(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = write_results(tmp_path / "sample-set", records())

    def offline(*args, **kwargs):
        raise huggingface_hub.errors.OfflineModeIsEnabled("Cannot reach the hub: offline mode is enabled.")

    monkeypatch.setattr(huggingface_hub, "create_repo", offline)
    assert main(["export", str(folder), "--out", str(tmp_path / "hub"), "--push", "someone/results"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        "transferbench: error: export --push someone/results: the upload failed (OfflineModeIsEnabled"
    )
    assert "\n" not in err and (tmp_path / "hub" / "data" / "records.parquet").is_file()


def test_out_must_be_new_or_an_earlier_export(tmp_path: Path):
    folder = write_results(tmp_path / "sample-set", records())
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not empty and not an earlier transferbench export"):
        export.export_results([folder], foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    out = tmp_path / "hub"
    export.export_results([folder], out)
    only_digits = write_results(tmp_path / "digits", [r for r in records() if r["task"] == "digits"])
    export.export_results([only_digits], out)  # an earlier export: what it wrote for other adapters goes
    assert sorted(p.name for p in (out / "models").iterdir()) == ["efficientnet-lite0"]
