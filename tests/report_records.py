"""A small results file built from real published records, for the HTML report and export tests:
SST-2 (MiniLM-L6 finetune, LoRA and scratch over two seeds, the TF-IDF model fitted once) and digits
at two data budgets (EfficientNet-Lite0 finetune, linear probe, scratch), so a page has every kind of
plot: gain against cost, accuracy against parameters, validation curves and data efficiency."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transferbench.benchmarks.results import latest_per_seed, read_results

RESULTS = Path(__file__).resolve().parents[1] / "results"
HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def sample_records() -> list[dict[str, Any]]:
    """12 records: the latest of each chosen cell and seed, in their files' order."""
    sst2 = latest_per_seed(read_results(RESULTS / "sst2-subset-minilm-l6", warn=False).records)
    digits = read_results(RESULTS / "digits-data-efficiency-efficientnet-lite0", warn=False).records
    picked = [
        r
        for r in sst2
        if (r["adapter"], r["strategy"]) in {("minilm-l6", "finetune"), ("minilm-l6", "lora"), ("minilm-l6", "scratch")}
        and r["seed"] in (0, 1)
    ]
    picked += [r for r in sst2 if r["adapter"] == "tfidf-logreg" and r["seed"] == 0]
    picked += [r for r in digits if r["train_examples"] in (50, 200) and r["strategy"] != "linear-probe"]
    picked += [r for r in digits if r["train_examples"] == 200 and r["strategy"] == "linear-probe"]
    assert len(picked) == 12, len(picked)
    return picked


def from_the_hub(record: dict[str, Any]) -> dict[str, Any]:
    """The record as if its data came from the hub at a known commit (as runs without --data-dir do)."""
    return {**record, "data_source": "hf://stanfordnlp/sst2", "data_revision": f"hf:stanfordnlp/sst2@{HUB_COMMIT}"}


def write_results(folder: Path, records: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    return folder


def rec(strategy, seed, acc, *, task="t", domain="vision", adapter="a", n=100, status="ok", curve=(0.4, 0.6)):
    """A hand-made finished record: what the aggregation and table tests vary, and nothing else."""
    return {
        "run_id": f"{task}{adapter}{strategy}{seed}{n}",
        "status": status,
        "task": task,
        "domain": domain,
        "adapter": adapter,
        "strategy": strategy,
        "pretrained": strategy != "scratch",
        "seed": seed,
        "epochs": 2,
        "train_examples": n,
        "test_examples": 50,
        "metrics": {"accuracy": acc, "macro_f1": acc - 0.02},
        "val_accuracy_per_epoch": list(curve),
        "time": {"train_s": 10.0 + seed, "eval_s": 1.0, "time_to_target_s": None, "target_accuracy": 0.7},
        "throughput": {"train_samples_per_s": 100.0},
        "params": {"total": 1000, "trainable": 10 if strategy == "linear-probe" else 1000},
        "config": {},
        "versions": {"torch": "2.11.0"},
        "git_commit": "abcdef123456",
        "hardware": {"cpu": "x86_64"},
        "finished_at": "2026-11-28T00:00:00+00:00",
        "test_split": "test",
        "data_source": "fixture",
    }
