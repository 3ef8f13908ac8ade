"""Results files: append-only, torn lines tolerated, table aggregation correct."""

import json

import pytest

from transferbench.benchmarks.results import (
    append_record,
    markdown_table,
    read_records,
    summarize,
    write_table,
)


def _record(strategy, seed, acc, status="ok", task="t", adapter="a"):
    return {
        "task": task,
        "adapter": adapter,
        "strategy": strategy,
        "seed": seed,
        "status": status,
        "train_examples": 100,
        "metrics": {"accuracy": acc, "macro_f1": acc - 0.01},
        "time": {"train_s": 2.0},
        "throughput": {"train_samples_per_s": 50.0},
        "params": {"trainable": 10, "total": 100},
        "finished_at": f"2026-01-0{seed + 1}",
        "versions": {"torch": "x"},
        "git_commit": "abc",
        "hardware": {"cpu": "cpu"},
    }


def test_append_is_append_only_and_survives_a_torn_line(tmp_path):
    path = tmp_path / "results.jsonl"
    append_record(path, _record("scratch", 0, 0.5))
    with open(path, "a") as fh:
        fh.write('{"task": "t", "adapt')  # a kill in the middle of a write
    append_record(path, _record("finetune", 0, 0.8))
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["strategy"] == "scratch"
    assert json.loads(lines[-1])["strategy"] == "finetune"  # started on a fresh line
    with pytest.warns(UserWarning, match=r"results.jsonl:2: skipped"):
        records = read_records(path)
    assert [r["strategy"] for r in records] == ["scratch", "finetune"]


def test_summary_mean_std_and_gain_over_scratch():
    records = [_record("scratch", s, a) for s, a in ((0, 0.50), (1, 0.60))]
    records += [_record("finetune", s, a) for s, a in ((0, 0.80), (1, 0.90), (2, 0.85))]
    rows = {r["strategy"]: r for r in summarize(records)}
    assert rows["scratch"]["accuracy_mean"] == pytest.approx(0.55)
    assert rows["scratch"]["accuracy_std"] == pytest.approx(0.0707107, rel=1e-5)
    assert rows["finetune"]["accuracy_mean"] == pytest.approx(0.85)
    assert rows["finetune"]["gain_over_scratch_pts"] == pytest.approx(30.0)
    assert rows["scratch"]["gain_over_scratch_pts"] is None


def test_table_flags_runs_that_did_not_learn_and_lists_failures(tmp_path):
    records = [_record("scratch", 0, 0.11, status="near-chance"), _record("finetune", 0, 0.9)]
    records.append({**_record("partial", 0, 0.0, status="diverged"), "status_detail": "loss became nan at step 3"})
    table = markdown_table(records)
    assert "⚠ near chance (1/1 seeds)" in table
    assert "**diverged** loss became nan at step 3" in table
    for r in records:
        append_record(tmp_path / "results.jsonl", r)
    text = write_table(tmp_path)
    assert (tmp_path / "results.md").read_text() == text
    assert "git commit: abc" in text
