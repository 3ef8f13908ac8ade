"""Results files: append-only, one reader (torn and foreign lines), one aggregation, one table."""

import ast
import json
import re
from pathlib import Path

import pytest
from report_records import rec
from test_report import write

from transferbench.benchmarks import results as results_module
from transferbench.benchmarks.reporting import report, write_index
from transferbench.benchmarks.results import (
    aggregate,
    append_record,
    check_results_file,
    read_records,
    read_results,
    table,
    write_table,
)
from transferbench.errors import UserError


def test_append_is_append_only_and_survives_a_torn_line(tmp_path):
    path = tmp_path / "results.jsonl"
    append_record(path, rec("scratch", 0, 0.5))
    with open(path, "a") as fh:
        fh.write('{"task": "t", "adapt')  # a kill in the middle of a write
    append_record(path, rec("finetune", 0, 0.8))
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["strategy"] == "scratch"
    assert json.loads(lines[-1])["strategy"] == "finetune"  # started on a fresh line
    with pytest.warns(UserWarning, match=r"results.jsonl:2: skipped a line that is not complete JSON"):
        records = read_records(path)
    assert [r["strategy"] for r in records] == ["scratch", "finetune"]


def test_foreign_line_is_refused_up_front_in_one_line_naming_file_and_line(tmp_path):
    path = write(tmp_path / "results.jsonl", [rec("scratch", 0, 0.5)], tail='{"task": "earlier"}\n{"x": 1}\n')
    check_results_file(tmp_path / "nowhere")  # no results file yet: nothing to refuse
    for given in (path, tmp_path):
        with pytest.raises(UserError) as info:
            check_results_file(given)
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(f"{path}:2: not a transferbench record (missing field 'run_id') (and 1 more")
    write(path, [rec("scratch", 0, 0.5)], tail='{"run_id": "x", "sta')  # a torn line is no reason to refuse
    check_results_file(path)


def test_strict_reading_lists_every_problem_lenient_counts_them(tmp_path):
    path = write(
        tmp_path / "results.jsonl",
        [rec("scratch", 0, 0.5), {**rec("finetune", 0, 0.8), "status": "weird"}, [1, 2]],
        tail='{"torn": ',
    )
    with pytest.raises(UserError) as info, pytest.warns(UserWarning, match="results.jsonl:4: skipped"):
        read_results(path, strict=True)
    assert str(info.value) == (
        f"{path}:2: not a transferbench record (status 'weird' is not one of ok, near-chance, diverged, oom, failed); "
        f"{path}:3: not a transferbench record (not a JSON object)"
    )
    with pytest.warns(UserWarning, match="results.jsonl:4: skipped"):
        loaded = read_results(path)
    assert [r["strategy"] for r in loaded.records] == ["scratch"]
    assert [s.line for s in loaded.foreign] == [2, 3] and [s.line for s in loaded.torn] == [4]
    with pytest.warns(UserWarning) as caught:
        assert [r["strategy"] for r in read_records(path)] == ["scratch"]
    assert any("skipped 2 line(s) that are not transferbench records" in str(w.message) for w in caught)


def test_a_foreign_line_does_not_break_the_table_after_a_run(tmp_path):
    """What `run` used to end with (KeyError: 'task'): results.md is written from the valid records."""
    write(tmp_path / "results.jsonl", [rec("scratch", 0, 0.5)], tail='{"task": "earlier", "status": "ok"}\n')
    text = write_table(tmp_path)
    assert "| t | a | scratch | 100 | 2 | — | — | 0.500 ± 0.000 (n=1) |" in text
    assert "## Skipped lines (1)" in text and "results.jsonl:2: not a transferbench record" in text


def test_bench_records_are_read_as_bench_records(tmp_path):
    bench = {"adapter": "x", "results": {"train": {}}, "finished_at": "2026-01-01", "hardware": {}, "versions": {}}
    compare = {**{k: v for k, v in bench.items() if k != "results"}, "ours": {}, "bare": {}}
    for record in (bench, compare):
        append_record(tmp_path / "bench.jsonl", record)
    append_record(tmp_path / "bench.jsonl", rec("scratch", 0, 0.5))  # a run record is not a bench record
    with pytest.warns(UserWarning, match="skipped 1 line"):
        assert read_records(tmp_path / "bench.jsonl") == [bench, compare]


def test_summary_mean_std_and_gain_over_scratch():
    records = [rec("scratch", s, a) for s, a in ((0, 0.50), (1, 0.60))]
    records += [rec("finetune", s, a) for s, a in ((0, 0.80), (1, 0.90), (2, 0.85))]
    rows = {r["strategy"]: r for r in aggregate(records)}
    assert rows["scratch"]["accuracy_mean"] == pytest.approx(0.55)
    assert rows["scratch"]["accuracy_std"] == pytest.approx(0.0707107, rel=1e-5)
    assert rows["finetune"]["accuracy_mean"] == pytest.approx(0.85)
    assert rows["finetune"]["gain_pts"] == pytest.approx(30.0)
    assert rows["scratch"]["gain_pts"] is None


def test_missing_samples_per_s_is_shown_as_a_dash_and_never_averaged_as_zero():
    measured = rec("finetune", 0, 0.8)
    unmeasured = {**rec("finetune", 1, 0.8), "throughput": {"train_samples_per_s": None}}
    (row,) = aggregate([measured, unmeasured])
    assert row["train_samples_per_s"] == pytest.approx(100.0)  # not (100 + 0) / 2
    (row,) = aggregate([unmeasured, {**unmeasured, "seed": 2, "throughput": {}}])
    assert row["train_samples_per_s"] is None
    header, _, line = table([row]).splitlines()
    assert line.split(" | ")[header.split(" | ").index("train samples/s")] == "—"


def _tables(markdown: str) -> list[str]:
    """The per-task table lines of a document (the cross-domain summary excluded)."""
    body = markdown.split("## Cross-domain summary")[0]
    return [line for line in body.splitlines() if line.startswith("|")]


def test_results_md_and_report_md_tables_come_from_one_function(tmp_path):
    records = [rec(s, seed, a + 0.01 * seed) for s, a in (("scratch", 0.3), ("finetune", 0.8)) for seed in (0, 1)]
    records += [rec("scratch", 0, 0.6, task="words", domain="text", adapter="enc")]
    records.append({**rec("partial", 0, 0.0), "status": "oom", "metrics": {}, "status_detail": "out of memory"})
    records.append({**rec("linear-probe", 0, 0.9), "status": "near-chance"})
    write(tmp_path / "results.jsonl", records)
    results_md = write_table(tmp_path)
    report([tmp_path], tmp_path / "out", plots=False)
    report_md = (tmp_path / "out" / "report.md").read_text()
    rows = aggregate(records)
    expected = [line for task in ("t", "words") for line in table([r for r in rows if r["task"] == task]).splitlines()]
    assert _tables(results_md) == _tables(report_md) == expected and len(expected) == 2 + 3 + 2 + 1
    for text in (results_md, report_md):  # "failed" is the same everywhere: not ok, not near-chance
        assert "## Runs that did not finish" in text and "**oom** out of memory" in text
        assert "| t | a | linear-probe | 100 | 2 | — | — | 0.900 ± 0.000 (n=1) ⚠ near chance (1/1 seeds) |" in text
        assert "| t | a | partial |" not in text


def test_a_rerun_supersedes_a_failed_record():
    failed = {**rec("finetune", 0, 0.0), "status": "diverged", "metrics": {}}
    rerun = {**rec("finetune", 0, 0.8), "finished_at": "2026-11-29T00:00:00+00:00"}
    assert results_module.failed_runs([failed, rerun]) == []
    assert [r["n_seeds"] for r in aggregate([failed, rerun])] == [1]


def test_published_markdown_names_no_absolute_path(tmp_path):
    local = {**rec("scratch", 0, 0.5), "data_source": str(tmp_path / "data" / "cifar10")}
    local["config"] = {"data_fingerprint": "d11efb9b82c87668"}
    hub = {**rec("finetune", 0, 0.8, task="sst2", domain="text"), "data_source": "hf://stanfordnlp/sst2"}
    published = tmp_path / "results" / "set-a"
    published.mkdir(parents=True)
    write(published / "results.jsonl", [local, hub], tail='{"run_id": "x", "sta')
    with pytest.warns(UserWarning, match="not complete JSON"):
        report([published], published, plots=False)
        write_table(published)
        write_index(published.parent)
    texts = {name: (published / name).read_text() for name in ("report.md", "results.md")}
    texts["README.md"] = (published.parent / "README.md").read_text()
    for name, text in texts.items():
        assert str(tmp_path) not in text, name
        assert not re.search(r"(?<![\w:/])/(tmp|home|work|root|Users)/", text), name
    for name in ("report.md", "results.md"):
        assert "data: local folder 'cifar10', data fingerprint d11efb9b82c87668." in texts[name]
        assert "data: hf://stanfordnlp/sst2." in texts[name]
        assert "- set-a/results.jsonl:3: not complete JSON" in texts[name]


def test_results_never_import_reports():
    """Reports read results; results know nothing of reports (tests/test_layering.py checks the rest)."""
    folder = Path(results_module.__file__).parent
    for path in folder.glob("*.py"):
        imported = {n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)}
        assert not any(m and m.startswith("transferbench.benchmarks.reporting") for m in imported), path.name
