"""No lost results: checkpoints resume exactly, and a suite killed anywhere completes on --resume."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from transferbench.benchmarks.execution.matrix import run_all
from transferbench.benchmarks.execution.matrix import run_one as execute
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.runtime import faults
from transferbench.benchmarks.training.loop import Budget
from transferbench.tasks import TASKS, load_task


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def digits():
    return load_task(TASKS.get("digits"), None)


def _spec(strategy: str) -> RunSpec:
    return RunSpec.create(
        "digits",
        "efficientnet-lite0",
        strategy,
        image_size=16,
        max_train_examples=96,
        budget=Budget(epochs=3, batch_size=16, min_steps=0),  # resume is tested per epoch
        device="cpu",
    )


@pytest.mark.slow  # several real trainings, killed and resumed: minutes on 2 cores
@pytest.mark.parametrize("strategy", ["finetune", "scratch"])
def test_resumed_run_matches_uninterrupted_run_exactly(strategy, digits, tmp_path, monkeypatch):
    """Deterministic on CPU: the resumed run's metrics and curve are *equal*, not just close."""
    reference = execute(_spec(strategy), digits, out_dir=tmp_path / "a", progress=False)

    monkeypatch.setenv("TRANSFERBENCH_FAULT", "eval:3")  # die in the third epoch's evaluation
    monkeypatch.setattr(faults, "_counts", {})

    def die(point: str) -> None:
        if faults.armed(point):
            raise Killed(point)

    monkeypatch.setattr(faults, "kill_if_armed", die)
    with pytest.raises(Killed):
        execute(_spec(strategy), digits, out_dir=tmp_path / "b", progress=False)
    assert list((tmp_path / "b" / "checkpoints").glob("*.pt"))
    monkeypatch.delenv("TRANSFERBENCH_FAULT")
    (resumed,) = run_all([_spec(strategy)], out_dir=tmp_path / "b", progress=False, log=lambda _: None)

    assert resumed["details"]["resumed_from_epoch"] == 2
    assert resumed["metrics"]["accuracy"] == reference["metrics"]["accuracy"]
    assert resumed["metrics"]["macro_f1"] == reference["metrics"]["macro_f1"]
    assert resumed["val_accuracy_per_epoch"] == reference["val_accuracy_per_epoch"]
    assert resumed["run_id"] == reference["run_id"]
    assert not list((tmp_path / "b" / "checkpoints").glob("*.pt"))  # cleaned up once the driver appended it


def _records(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # the torn line a kill leaves
            out.append(json.loads(line))
    return out


@pytest.mark.slow  # a CLI subprocess killed mid-suite, then resumed: minutes on 2 cores
def test_killed_suite_loses_nothing_and_completes_on_resume(tmp_path):
    """SIGKILL a real CLI process during training, during evaluation and while writing a record;
    every rerun with --resume keeps what was finished, never duplicates it, and finally completes."""
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "transferbench.benchmarks.cli.main",
        "run",
        "--task",
        "digits",
        "--adapter",
        "efficientnet-lite0",
        "--strategy",
        "linear-probe,finetune,scratch",
        "--epochs",
        "2",
        "--image-size",
        "16",
        "--max-train-examples",
        "64",
        "--batch-size",
        "16",
        "--min-steps",
        "0",
        "--device",
        "cpu",
        "--no-progress",
        "--resume",
        "--out",
        str(out),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    seen: list[str] = []
    # (fault, records finished before it): probe finishes; finetune dies mid-training;
    # finetune dies in evaluation; scratch dies half-way through writing its record.
    for fault, finished_before in (("train-step:3", 1), ("eval:2", 1), ("append:2", 2)):
        proc = subprocess.run(
            cmd, env={**env, "TRANSFERBENCH_FAULT": fault}, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == -9, (fault, proc.stdout[-800:], proc.stderr[-2000:])
        ids = [r["run_id"] for r in _records(out / "results.jsonl")]
        assert len(ids) == len(set(ids)) == finished_before, (fault, ids)
        assert ids[: len(seen)] == seen  # nothing finished earlier was lost or rewritten
        seen = ids
    text = (out / "results.jsonl").read_text()
    assert not text.endswith("\n")  # the torn half line is really there
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = _records(out / "results.jsonl")
    assert sorted(r["strategy"] for r in records) == ["finetune", "linear-probe", "scratch"]
    assert [r["run_id"] for r in records][:2] == seen
    assert "skip digits/efficientnet-lite0/linear-probe/seed0" in proc.stdout
    assert "| digits | efficientnet-lite0 | scratch |" in (out / "results.md").read_text()


def test_resume_reruns_what_an_adapter_revision_changed(digits, tmp_path, monkeypatch):
    """A finished record of an older adapter revision is not what the code now computes: rerun it."""
    from transferbench.adapters import ADAPTERS
    from transferbench.benchmarks.execution.matrix import run_all

    spec = _spec("linear-probe")
    (first,) = run_all([spec], out_dir=tmp_path, resume=True, progress=False, log=lambda _: None)
    assert run_all([spec], out_dir=tmp_path, resume=True, progress=False, log=lambda _: None) == []
    monkeypatch.setattr(ADAPTERS.get("efficientnet-lite0"), "revision", 99)
    (second,) = run_all([spec], out_dir=tmp_path, resume=True, progress=False, log=lambda _: None)
    assert second["config"]["adapter_revision"] == 99 and second["run_id"] != first["run_id"]
