"""A run SIGKILLed half-way through appending its record, then resumed, leaves a torn line mid-file:
`transferbench report` must still table every complete record (warning about the torn one)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.results import read_records


@pytest.mark.slow  # a real SIGKILL of a CLI subprocess: its start costs most of a minute
def test_report_after_a_kill_mid_append_and_a_resume(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    run = ["run", "--task", "digits", "--adapter", "efficientnet-lite0", "--strategy", "linear-probe", "--seeds", "0,1"]
    run += ["--image-size", "16", "--max-train-examples", "32", "--batch-size", "16", "--epochs", "1"]
    run += ["--min-steps", "0", "--device", "cpu", "--no-progress", "--resume", "--out", str(out)]

    monkeypatch.delenv("TRANSFERBENCH_FAULT", raising=False)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFERBENCH_FAULT": "append:2"}
    cmd = [sys.executable, "-m", "transferbench.benchmarks.cli.main", *run]
    # a real process, really SIGKILLed: seed 0 is recorded, seed 1 dies half-way through writing its line
    killed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    lines = (out / "results.jsonl").read_text().split("\n")
    assert len(lines) == 2 and lines[1]  # one complete record, then half a line with no newline
    torn = lines[1]

    # the resume and the report run in this process: the same CLI entry point, one interpreter start less each
    with pytest.warns(UserWarning, match=r"results.jsonl:2: skipped a line that is not complete JSON"):
        assert main(run) == 0
    assert "skip digits/efficientnet-lite0/linear-probe/seed0" in capsys.readouterr().out
    lines = (out / "results.jsonl").read_text().split("\n")
    assert len(lines) == 4 and lines[1] == torn and lines[3] == ""  # torn line mid-file
    with pytest.warns(UserWarning, match=r"results.jsonl:2: skipped a line that is not complete JSON"):
        records = read_records(out / "results.jsonl")
    assert sorted(r["seed"] for r in records) == [0, 1] and len({r["run_id"] for r in records}) == 2

    with pytest.warns(UserWarning, match=r"results.jsonl:2: skipped a line that is not complete JSON"):
        assert main(["report", str(out), "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("2 records ->") and "skipped 1 lines" in printed
    md = (out / "report.md").read_text()
    assert "| digits | efficientnet-lite0 | linear-probe | 32 |" in md and "(n=2)" in md
    assert "## Skipped lines (1)" in md and "- out/results.jsonl:2: not complete JSON" in md
    assert str(tmp_path) not in md
    assert "(n=2)" in (out / "results.md").read_text()
