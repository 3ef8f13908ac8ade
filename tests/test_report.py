"""`transferbench report`: schema validation, aggregation with intervals, Markdown/CSV/plots, index."""

import csv
import json

import pytest
from report_records import rec

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.reporting import load_results, report
from transferbench.benchmarks.results import aggregate, validate_record, welch_interval
from transferbench.errors import UserError


def write(path, records, tail=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
    return path


def test_schema_rejects_what_a_reader_could_misread():
    assert validate_record(rec("scratch", 0, 0.5)) is None
    assert "missing field 'seed'" in validate_record({k: v for k, v in rec("scratch", 0, 0.5).items() if k != "seed"})
    assert "metrics.accuracy" in validate_record(rec("scratch", 0, 1.5))
    assert "field 'seed' should be int" in validate_record({**rec("scratch", 0, 0.5), "seed": "0"})
    assert "status 'weird'" in validate_record({**rec("scratch", 0, 0.5), "status": "weird"})
    assert validate_record({**rec("scratch", 0, 0.5), "status": "diverged", "metrics": {}}) is None


def test_foreign_line_names_file_and_line_unless_skipped(tmp_path):
    path = tmp_path / "results.jsonl"
    foreign = {k: v for k, v in rec("scratch", 1, 0.5).items() if k != "seed"}
    write(path, [rec("scratch", 0, 0.5), foreign, rec("finetune", 0, 0.8), {"hello": 1}])
    with pytest.raises(UserError) as info:
        load_results([path])
    message = str(info.value)
    assert "\n" not in message and "use --skip-invalid" in message
    assert f"{path}:2: not a transferbench record (missing field 'seed')" in message
    assert f"{path}:4: not a transferbench record (missing field 'run_id')" in message
    records, skipped = load_results([path], skip_invalid=True)
    assert [r["strategy"] for r in records] == ["scratch", "finetune"]
    assert skipped == [
        f"{path}:2: not a transferbench record (missing field 'seed')",
        f"{path}:4: not a transferbench record (missing field 'run_id')",
    ]


def test_torn_line_is_skipped_with_a_warning_in_both_modes(tmp_path):
    """What a kill mid-append leaves: a torn last line, or (killed, then resumed) one mid-file."""
    path = tmp_path / "results.jsonl"
    first, second = (json.dumps(rec(s, 0, a)) + "\n" for s, a in (("scratch", 0.5), ("finetune", 0.8)))
    torn = '{"run_id": "x", "sta'
    for text, number in ((first + second + torn, 3), (first + torn + "\n" + second, 2)):
        path.write_text(text)
        for skip_invalid in (False, True):
            with pytest.warns(UserWarning, match=rf"results.jsonl:{number}: skipped a line that is not complete JSON"):
                records, skipped = load_results([tmp_path], skip_invalid=skip_invalid)
            assert [r["strategy"] for r in records] == ["scratch", "finetune"]
            assert len(skipped) == 1 and skipped[0].startswith(f"{path}:{number}: not complete JSON (a torn write")


def test_cli_report_on_a_torn_line_mid_file_tables_the_complete_records(tmp_path, capsys):
    records = [rec("scratch", 0, 0.5), rec("finetune", 0, 0.8), rec("finetune", 1, 0.9)]
    write(tmp_path / "results.jsonl", records[:1], tail=json.dumps(records[1])[:40] + "\n")
    with (tmp_path / "results.jsonl").open("a") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in records[1:]))
    with pytest.warns(UserWarning, match=r"results.jsonl:2: skipped a line that is not complete JSON"):
        assert main(["report", str(tmp_path), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3 records ->") and "skipped 1 lines" in out
    md = (tmp_path / "report.md").read_text()
    assert "| t | a | finetune | 100 | 2 | — | — | 0.850 ± 0.071 (n=2) |" in md
    assert "| t | a | scratch | 100 | 2 | — | — | 0.500 ± 0.000 (n=1) |" in md
    assert "## Skipped lines (1)" in md and f"- {tmp_path.name}/results.jsonl:2: not complete JSON" in md


def test_aggregation_means_stds_and_gain_interval_on_known_inputs():
    records = [rec("scratch", s, a) for s, a in enumerate((0.50, 0.52, 0.54))]
    records += [rec("finetune", s, a) for s, a in enumerate((0.80, 0.84, 0.82))]
    rows = {r["strategy"]: r for r in aggregate(records)}
    ft = rows["finetune"]
    assert ft["accuracy_mean"] == pytest.approx(0.82) and ft["accuracy_std"] == pytest.approx(0.02)
    assert ft["gain_pts"] == pytest.approx(30.0)
    low, high = ft["gain_ci_pts"]
    # Welch: se = sqrt(0.02^2/3 * 2) = 0.01633, df = 4, t(0.975, 4) = 2.7764 -> ±4.53 points
    assert low == pytest.approx(30 - 4.534, abs=0.01) and high == pytest.approx(30 + 4.534, abs=0.01)
    assert rows["scratch"]["gain_pts"] is None
    assert welch_interval([0.5], [0.4, 0.6]) is None


def test_report_writes_markdown_csv_and_plots(tmp_path):
    records = [
        rec(s, seed, a + 0.01 * seed)
        for s, a in (("scratch", 0.3), ("linear-probe", 0.7), ("finetune", 0.8))
        for seed in (0, 1)
    ]
    records += [
        rec(s, 0, a, task="words", domain="text", adapter="enc") for s, a in (("scratch", 0.6), ("finetune", 0.9))
    ]
    records += [
        rec(s, 0, a, n=n) for n, gain in ((10, 0.3), (30, 0.2)) for s, a in (("scratch", 0.3), ("finetune", 0.3 + gain))
    ]
    records.append({**rec("partial", 0, 0.0), "status": "diverged", "metrics": {}, "status_detail": "nan at step 4"})
    write(tmp_path / "results.jsonl", records)
    summary = report([tmp_path], tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| t | a | finetune | 100 | 2 | — | — | 0.805 ± 0.007 (n=2) | 1 | 0.785 | +50.0 [" in md
    assert "| t | a | linear-probe | 100 | 2 | — | — | 0.705 ± 0.007 (n=2) | 2 |" in md
    assert "## Cross-domain summary" in md and "| text | words/enc/finetune | 0.900 |" in md
    assert "**diverged** nan at step 4" in md and "git commit" in md.lower()
    rows = list(csv.DictReader((tmp_path / "out" / "report.csv").read_text().splitlines()))
    assert {r["strategy"] for r in rows} == {"scratch", "linear-probe", "finetune"}
    names = {p.name for p in summary["files"]}
    assert {
        "accuracy_by_strategy.png",
        "accuracy_vs_cost.png",
        "validation_curves.png",
        "gain_vs_examples.png",
    } <= names
    for p in summary["files"]:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_cli_report_and_index(tmp_path, capsys):
    published = tmp_path / "results"
    write(
        (published / "set-a").mkdir(parents=True) or published / "set-a" / "results.jsonl",
        [rec("scratch", 0, 0.5), rec("finetune", 0, 0.8)],
    )
    assert main(["report", str(published / "set-a"), "--no-plots"]) == 0
    assert (published / "set-a" / "report.md").exists()
    assert main(["report", "--index", str(published)]) == 0
    index = (published / "README.md").read_text()
    assert "| [set-a](set-a/) | 2 | t | a | finetune, scratch | x86_64 | abcdef123456 | 2026-11-28 |" in index
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "not found" in capsys.readouterr().err


def test_index_with_sets_rewrites_every_set_one_and_two_levels_down(tmp_path, capsys):
    published = tmp_path / "results"
    for folder in (published / "set-a", published / "grouped" / "variant"):
        folder.mkdir(parents=True)
        write(folder / "results.jsonl", [rec("scratch", 0, 0.5), rec("finetune", 0, 0.8)])
    (published / "throughput").mkdir()  # a folder without results files is not a set
    assert main(["report", "--index", str(published), "--sets", "--no-plots"]) == 0
    for folder in (published / "set-a", published / "grouped" / "variant"):
        assert "| t | a | finetune |" in (folder / "report.md").read_text()
    assert not (published / "throughput" / "report.md").exists()
    assert (published / "README.md").exists()
    assert main(["report", str(published / "set-a"), "--sets"]) == 2
    assert "--sets needs --index" in capsys.readouterr().err


def test_a_rerun_seed_is_counted_once():
    first = rec("finetune", 0, 0.70)
    rerun = {**rec("finetune", 0, 0.74), "finished_at": "2026-11-29T00:00:00+00:00", "run_id": "other"}
    (row,) = aggregate([first, rerun])
    assert row["n_seeds"] == 1 and row["accuracy_mean"] == pytest.approx(0.74)


def test_pipeline_efficiency_column_appears_where_measured(tmp_path):
    gpu = [
        {**rec(s, 0, a), "details": {"pipeline_efficiency": {"ratio": ratio}}}
        for s, a, ratio in (("scratch", 0.3, 0.9), ("finetune", 0.8, 1.1))
    ]
    cpu = [rec(s, 0, a, task="cpu-task") for s, a in (("scratch", 0.3), ("finetune", 0.8))]
    write(tmp_path / "results.jsonl", gpu + cpu)
    report([tmp_path], tmp_path / "out", plots=False)
    md = (tmp_path / "out" / "report.md").read_text()
    sections = {part.split(" ", 1)[0]: part for part in md.split("\n## ")[1:]}
    assert "pipeline eff." in sections["t"] and "| 10 | 100 | 1.10 |" in sections["t"]
    assert "pipeline eff." not in sections["cpu-task"]
    rows = {r["strategy"]: r for r in csv.DictReader((tmp_path / "out" / "report.csv").read_text().splitlines())}
    assert float(rows["scratch"]["pipeline_efficiency"]) == pytest.approx(0.9)


def test_identical_seeds_give_no_interval_rather_than_a_certain_one():
    records = [rec("scratch", s, 0.5) for s in (0, 1)] + [rec("linear-probe", s, 0.8) for s in (0, 1)]
    rows = {r["strategy"]: r for r in aggregate(records)}
    assert rows["linear-probe"]["gain_pts"] == pytest.approx(30.0)
    assert rows["linear-probe"]["gain_ci_pts"] is None
    assert welch_interval([0.8, 0.8], [0.5, 0.5]) is None
