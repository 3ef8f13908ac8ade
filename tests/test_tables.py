"""Published tables people cite: the budget in every row, gain against the strongest scratch row,
the trainable share, the cross-task summary (results/summary.csv + README), and the VTAB-1k protocol."""

import csv
import json

import numpy as np
import pytest
from report_records import rec
from test_report import write

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.reporting import cross_task, report, write_index
from transferbench.benchmarks.results import aggregate, document, read_records, table
from transferbench.errors import UserError
from transferbench.tasks.protocols import PROTOCOLS


def _with(record, **changes):
    out = json.loads(json.dumps(record))
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        target = out
        for key in path:
            target = target.setdefault(key, {})
        target[last] = value
    return out


def _sst2_like_set():
    """Two architectures on one task: a weak and a strong scratch row, and three pretrained rows."""
    base = {"task": "s", "domain": "text"}
    records = [
        rec("scratch", 0, 0.70, adapter="big", **base),
        rec("scratch", 1, 0.72, adapter="big", **base),
        rec("finetune", 0, 0.86, adapter="big", **base),
        rec("finetune", 1, 0.88, adapter="big", **base),
        rec("scratch", 0, 0.76, adapter="classic", **base),
        rec("scratch", 1, 0.78, adapter="classic", **base),
        _with(rec("lora", 0, 0.85, adapter="big", **base), **{"params.trainable": 5}),
    ]
    for r in records:
        r.update(steps=336)
        r["config"] = {"max_length": 64}
    return records


def test_every_row_shows_its_budget_and_trainable_share():
    records = _sst2_like_set()
    records[-1]["details"] = {"epochs_run": 4}  # --min-steps added an epoch
    text = table(aggregate(records))
    assert "| epochs | steps | input |" in text and "| trainable share |" in text
    assert "| s | big | finetune | 100 | 2 | 336 | 64 tokens |" in text
    assert "| s | big | lora | 100 | 4 | 336 | 64 tokens |" in text
    lora = next(line for line in text.splitlines() if "| lora |" in line)
    assert lora.rstrip().endswith("| 0.5% |")  # 5 of 1000 parameters train


def test_a_closed_form_fit_shows_no_epochs_or_steps():
    probe = _with(rec("linear-probe", 0, 0.8), steps=1, **{"throughput.excluded": "closed-form fit: one pass"})
    assert "| t | a | linear-probe | 100 | — | closed form |" in table(aggregate([probe]))


def test_time_to_target_says_how_many_seeds_reached_it():
    """A mean over the one seed that got there must not read as every seed's time."""
    runs = [rec("scratch", seed, 0.7) for seed in range(3)]
    runs[2]["time"]["time_to_target_s"] = 222.0
    row = aggregate(runs)[0]
    assert row["target_reached_runs"] == 1
    assert "| 222s, 1/3 seeds (≥0.70) |" in table([row])
    for r in runs:
        r["time"]["time_to_target_s"] = 100.0
    assert "| 100s (≥0.70) |" in table(aggregate(runs))


def test_gain_against_the_strongest_scratch_row_of_the_task():
    rows = {(r["adapter"], r["strategy"]): r for r in aggregate(_sst2_like_set())}
    ft = rows[("big", "finetune")]
    assert ft["gain_pts"] == pytest.approx(16.0)  # over its own architecture from scratch (0.71)
    assert ft["gain_best_pts"] == pytest.approx(10.0) and ft["best_scratch"] == "classic"  # over 0.77
    assert ft["gain_best_ci_pts"] is not None  # two seeds a side: an interval
    weak = rows[("big", "scratch")]
    assert weak["gain_pts"] is None and weak["gain_best_pts"] == pytest.approx(-6.0)
    assert rows[("classic", "scratch")]["gain_best_pts"] is None  # the strongest row itself
    text = table(list(rows.values()))
    assert "+10.0 [" in text and "] (Welch) vs classic" in text  # no per-item results: Welch, and it says so
    assert "Gain intervals: a paired bootstrap" in document("t", list(rows.values()), _sst2_like_set(), [])


def test_report_csv_carries_the_budget_and_both_gains(tmp_path):
    write(tmp_path / "results.jsonl", _sst2_like_set())
    report([tmp_path], tmp_path / "out", plots=True)
    rows = {(r["adapter"], r["strategy"]): r for r in csv.DictReader((tmp_path / "out" / "report.csv").open())}
    ft = rows[("big", "finetune")]
    assert (ft["epochs"], ft["steps"], ft["input_size"]) == ("2", "336", "64 tokens")
    assert float(ft["gain_best_pts"]) == pytest.approx(10.0) and ft["best_scratch"] == "classic"
    assert float(rows[("big", "lora")]["trainable_share"]) == pytest.approx(0.005)
    assert (tmp_path / "out" / "accuracy_vs_trainable_params.png").stat().st_size > 0


def test_summary_pools_every_set_one_column_per_task_budget_and_device(tmp_path):
    write((tmp_path / "text-set").mkdir() or tmp_path / "text-set" / "results.jsonl", _sst2_like_set())
    vision = [rec("finetune", 0, 0.90), rec("finetune", 1, 0.92)]
    gpu = [_with(rec("finetune", 0, 0.95), **{"hardware.gpu": "NVIDIA H200"})]
    write((tmp_path / "vision-set").mkdir() or tmp_path / "vision-set" / "results.jsonl", vision + gpu)
    write_index(tmp_path)
    summary = list(csv.reader((tmp_path / "summary.csv").open()))
    header, body = summary[0], {(r[0], r[1]): r for r in summary[1:]}
    columns = ["s (100 ex, 64 tokens, CPU)", "t (100 ex, CPU)", "t (100 ex, NVIDIA H200)"]
    assert header == ["adapter", "strategy", *columns, "mean", "columns"]
    # the CPU and GPU runs of the same cell and seed are separate columns, never averaged
    assert body[("a", "finetune")][3:] == ["0.9100", "0.9500", "0.9300", "2"]
    assert body[("big", "finetune")][2:] == ["0.8700", "", "", "0.8700", "1"]
    readme = (tmp_path / "README.md").read_text()
    assert "## Every published set, one table" in readme and "| a | finetune | — | 0.910 ± 0.014 (2) |" in readme


def test_cross_task_rows_are_one_per_adapter_and_strategy():
    columns, rows = cross_task(_sst2_like_set())
    assert columns == ["s (100 ex, 64 tokens, CPU)"]
    assert [(r["adapter"], r["strategy"]) for r in rows] == [
        ("big", "finetune"),
        ("big", "lora"),
        ("big", "scratch"),
        ("classic", "scratch"),
    ]


# --- VTAB-1k -------------------------------------------------------------------------------------


def test_vtab_1k_selects_800_and_200_disjoint_examples_reproducibly():
    labels = np.arange(5000) % 10
    protocol = PROTOCOLS.get("vtab-1k")
    train, val = protocol.select(labels, seed=0)
    assert (len(train), len(val)) == (800, 200) and not set(train) & set(val)
    again, _ = protocol.select(labels, seed=0)
    other, _ = protocol.select(labels, seed=1)
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_vtab_1k_refuses_a_training_split_under_1000_examples():
    with pytest.raises(UserError, match=r"--train-examples vtab-1k: needs 1000 training examples .* has 999"):
        PROTOCOLS.get("vtab-1k").select(np.zeros(999, dtype=int), seed=0)


def test_unknown_protocol_suggests_the_closest(capsys):
    assert main(["run", "--task", "digits", "--adapter", "efficientnet-lite0", "--train-examples", "vtab1k"]) != 0
    assert "vtab-1k" in capsys.readouterr().err


def test_vtab_1k_runs_end_to_end_and_records_its_selection(tmp_path, capsys):
    out = tmp_path / "vtab"
    args = ["run", "--task", "digits", "--adapter", "efficientnet-lite0", "--strategy", "linear-probe"]
    assert main([*args, "--train-examples", "vtab-1k", "--out", str(out), "--no-progress"]) == 0
    (record,) = read_records(out / "results.jsonl")
    assert (record["train_examples"], record["val_examples"]) == (800, 200)
    chosen = record["data_protocol"]
    assert chosen["name"] == "vtab-1k" and len(chosen["train_indices"]) == 800 and len(chosen["val_indices"]) == 200
    assert record["config"]["data_protocol"] == "vtab-1k"
    # peak accelerator memory is a CUDA figure: on CPU the record says it was not measured, never 0
    assert record["details"]["peak_memory_gib"] is None and "CUDA only" in record["details"]["peak_memory_note"]
    assert "| digits | efficientnet-lite0 | linear-probe | 800 (vtab-1k) |" in (out / "results.md").read_text()
    capsys.readouterr()
    # a run without the protocol keeps the identity it always had: no data_protocol key at all
    assert main([*args, "--max-train-examples", "64", "--out", str(tmp_path / "plain"), "--no-progress"]) == 0
    (plain,) = read_records(tmp_path / "plain" / "results.jsonl")
    assert "data_protocol" not in plain["config"] and plain["data_protocol"] is None


def test_vtab_1k_with_max_train_examples_is_refused(capsys):
    args = ["run", "--task", "digits", "--adapter", "efficientnet-lite0", "--train-examples", "vtab-1k"]
    assert main([*args, "--max-train-examples", "10"]) != 0
    assert "both set the training-set size: use one" in capsys.readouterr().err


def test_calibration_columns_show_where_records_measured_it():
    records = [rec("finetune", s, 0.8) for s in (0, 1)]
    for i, r in enumerate(records):
        r["metrics"].update(ece=0.05 + 0.01 * i, nll=0.4 + 0.1 * i)
    header, _, row = table(aggregate(records)).splitlines()
    cells = dict(zip(header.split(" | "), row.split(" | "), strict=True))
    assert (cells["ECE"], cells["NLL"]) == ("0.055", "0.450")
    assert "NLL" not in table(aggregate([rec("finetune", 0, 0.8)]))  # not measured: no column
