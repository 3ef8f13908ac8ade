"""Executors: the serial one (the default) and Ray's run the same cells into the same records; the
driver alone appends; a cell that raises is recorded as failed and the rest finish; a killed worker's
cell is retried; --resume reruns failed cells and nothing it counts as settled."""

from __future__ import annotations

import dataclasses
import sys

import matrix_cells
import pytest
import torch
from report_records import rec
from test_report import write

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.execution import executors
from transferbench.benchmarks.execution.matrix import ExecutorOptions, finished_ids, run_all
from transferbench.benchmarks.execution.ray_executor import MISSING, RayExecutor
from transferbench.benchmarks.results import STATUSES, read_records, validate_record, write_table
from transferbench.errors import UserError
from transferbench.tasks import register_task_file

QUIET = {"progress": False, "log": lambda _: None}


def _failed(**fields):
    """A failed record as failed_record writes it: identity fields, the error, no measurements."""
    measured = ("metrics", "val_accuracy_per_epoch", "time", "throughput", "params")
    record = {k: v for k, v in rec("finetune", 0, 0.5).items() if k not in measured}
    return {**record, "status": "failed", "status_detail": "RuntimeError: boom", **fields}


def test_a_failed_record_needs_its_identity_and_why_but_no_measurements():
    assert "failed" in STATUSES
    assert validate_record(_failed()) is None
    assert validate_record({k: v for k, v in _failed().items() if k != "status_detail"}) == (
        "a failed record needs status_detail (what went wrong)"
    )
    assert validate_record({k: v for k, v in _failed().items() if k != "task"}) == "missing field 'task'"
    assert validate_record({**_failed(), "time": {"train_s": "x"}}) == "field time.train_s should be a number"
    ok_without_metrics = {k: v for k, v in rec("finetune", 0, 0.5).items() if k != "metrics"}
    assert validate_record(ok_without_metrics) == "missing field 'metrics'"  # only failed records may omit it


def test_resume_skips_settled_runs_and_reruns_failed_and_oom(tmp_path):
    """ok, near-chance and diverged are what the recipe gives (a rerun repeats them); oom depends on
    the device and what else holds its memory, failed on an error or a dead worker: both run again."""
    records = [
        {**rec("finetune", seed, 0.5), "status": status, "run_id": status}
        for seed, status in enumerate(("ok", "near-chance", "diverged", "oom"))
    ]
    write(tmp_path / "results.jsonl", [*records, {**_failed(), "run_id": "failed"}])
    assert finished_ids(tmp_path) == {"ok", "near-chance", "diverged"}


@pytest.fixture(scope="module")
def digits():
    from transferbench.tasks import TASKS, load_task

    return load_task(TASKS.get("digits"), None)


def test_serial_records_a_crashing_cell_as_failed_runs_the_rest_and_resume_reruns_it(tmp_path, monkeypatch):
    real = executors.execute

    def crash_seed_1(run, data, **kw):
        if run.spec.seed == 1:
            raise RuntimeError(f"boom in {tmp_path}/deep/module.py")
        return real(run, data, **kw)

    monkeypatch.setattr(executors, "execute", crash_seed_1)
    specs = [matrix_cells.spec("finetune", seed) for seed in (1, 0)]
    first = run_all(specs, out_dir=tmp_path, **QUIET)
    assert [r["status"] for r in first] == ["failed", first[1]["status"]] and first[1]["metrics"]["accuracy"] > 0
    failed = first[0]
    assert failed["status_detail"] == "RuntimeError: boom in module.py"  # published records name no folders
    assert "crash_seed_1" in failed["details"]["traceback"] and str(tmp_path) not in failed["details"]["traceback"]
    assert failed["train_examples"] == first[1]["train_examples"] == 32 and validate_record(failed) is None
    assert "**failed** RuntimeError: boom in module.py" in write_table(tmp_path)

    monkeypatch.setattr(executors, "execute", real)
    (again,) = run_all(specs, out_dir=tmp_path, resume=True, **QUIET)  # only the failed cell runs again
    assert again["run_id"] == failed["run_id"] and again["status"] != "failed"
    assert "Runs that did not finish" not in write_table(tmp_path)  # the rerun supersedes the failure
    assert len(read_records(tmp_path)) == 3


def test_serial_stops_at_a_user_error_in_a_cell(tmp_path, monkeypatch):
    def bad_input(run, data, **kw):
        raise UserError("weights file x.pth: not a readable torch file")

    monkeypatch.setattr(executors, "execute", bad_input)
    with pytest.raises(UserError, match="not a readable torch file"):
        run_all([matrix_cells.spec("finetune", 0), matrix_cells.spec("scratch", 0)], out_dir=tmp_path, **QUIET)
    assert not (tmp_path / "results.jsonl").exists()


def test_a_budget_the_data_cannot_fill_stops_before_anything_trains(tmp_path, monkeypatch):
    monkeypatch.setattr(executors, "execute", lambda *a, **kw: pytest.fail("a cell ran"))
    specs = [matrix_cells.spec("finetune", 0), matrix_cells.spec("scratch", 0, max_train_examples=8)]
    with pytest.raises(UserError, match="--batch-size 16 is larger than the 8 training examples"):
        run_all(specs, out_dir=tmp_path, **QUIET)


def test_the_workers_resolve_device_and_amp_for_the_identity():
    """What a Ray worker answers the driver (ray_executor.probe_amp), here without Ray: a device the
    worker lacks comes back as the UserError to raise on the driver."""
    from transferbench.benchmarks.execution.ray_executor import probe_amp

    assert probe_amp("cpu", "auto") == "off" and probe_amp("cpu", "bf16") == "bf16"
    if not torch.cuda.is_available():
        assert "CUDA is not available" in str(probe_amp("cuda", "auto"))


DIGITS = ["run", "--task", "digits", "--adapter", "efficientnet-lite0", "--strategy", "finetune", "--device", "cpu"]


def test_without_the_ray_extra_the_ray_executor_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert main([*DIGITS, "--executor", "ray", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"transferbench: error: {MISSING}\n"
    assert not (tmp_path / "results.jsonl").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--gpus-per-run", "1"], "--gpus-per-run applies to --executor ray"),
        (["--executor", "ray", "--cpus-per-run", "0"], "--cpus-per-run must be a number above 0, got 0.0"),
        (["--executor", "ray", "--max-retries", "-1"], "--max-retries must be 0 or more, got -1"),
    ],
)
def test_executor_flags_are_checked_in_one_line(flags, message, tmp_path, capsys):
    assert main([*DIGITS, *flags, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:  # a port nothing listens on once this closes
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_ray_address_where_nothing_listens_is_one_line_at_once(tmp_path, capsys):
    pytest.importorskip("ray")
    address = f"127.0.0.1:{_closed_port()}"
    assert main([*DIGITS, "--executor", "ray", "--ray-address", address, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"transferbench: error: --ray-address {address}: nothing answers")
    assert "ray start --head" in err


def test_a_cluster_that_never_offers_a_gpu_is_refused_after_the_placement_wait(monkeypatch, capsys):
    pytest.importorskip("ray")
    from transferbench.benchmarks.execution import ray_executor

    class Cluster:  # a cluster with CPUs only, as `ray.cluster_resources()` reports one
        @staticmethod
        def cluster_resources() -> dict:
            return {"CPU": 16.0}

    monkeypatch.setattr(ray_executor, "PLACEMENT_WAIT_S", 0.05)
    executor = RayExecutor(ExecutorOptions(ray_address="10.0.0.1:6379", gpus_per_run=1))
    executor.ray = Cluster()
    with pytest.raises(UserError, match=r"--gpus-per-run 1: the Ray cluster has 0 GPUs after waiting"):
        executor._check_room()
    assert "waiting up to" in capsys.readouterr().err


# --- Ray: one local instance with two CPUs, one run of the matrix plus a cell that cannot load -------


# seven cells in fresh worker processes (each imports torch), one of them killed and restarted: most
# of a minute on 2 busy cores, so these run with the slow tests (CI runs both sets)
RAY_MATRIX = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_run(tmp_path_factory, serial_matrix):
    """The six cells, a seventh whose weights file is not a state dict (seed 7: a cell and seed of its
    own, so no finished record supersedes it in the tables) and an eighth on a task read from a file
    on the driver only, on a local Ray instance
    with 2 CPUs, 1 per cell; the first worker to reach its second training step is SIGKILLed once."""
    pytest.importorskip("ray")
    out = tmp_path_factory.mktemp("ray")
    bad = out.parent / "broken-weights.pth"
    bad.write_bytes(b"not a state dict")
    marker = out.parent / "killed-once"
    task_file = out.parent / "ray-file-digits.yaml"  # a task only the driver has read: the workers get its config
    task_file.write_text("name: ray-file-digits\ndomain: vision\ndescription: d\nloader: builtin\nbuiltin: digits\n")
    register_task_file(task_file)
    specs = [*matrix_cells.specs(), matrix_cells.spec("finetune", 7, weights=str(bad))]
    specs.append(dataclasses.replace(matrix_cells.spec("scratch", 0), task="ray-file-digits"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TRANSFERBENCH_FAULT", "train-step:2")  # the Ray workers inherit it; the driver never trains
        env.setenv("TRANSFERBENCH_FAULT_ONCE", str(marker))
        executor = RayExecutor(ExecutorOptions(cpus_per_run=1, max_retries=2, local_cpus=2))
        try:
            returned = run_all(specs, out_dir=out, executor=executor, **QUIET)
            cpus = executor.ray.cluster_resources()["CPU"]
        finally:
            executor.close()
    return out, returned, marker, cpus


@RAY_MATRIX
def test_ray_records_equal_the_serial_executors(ray_run, serial_matrix):
    out, returned, _, cpus = ray_run
    assert cpus == 2
    by_id = {r["run_id"]: r for r in read_records(out) if r["status"] != "failed" and r["task"] == "digits"}
    serial = {r["run_id"]: r for r in serial_matrix[1]}
    assert len(serial) == 6 and sorted(by_id) == sorted(serial)
    for run_id, record in serial.items():
        assert matrix_cells.comparable(by_id[run_id]) == matrix_cells.comparable(record)
        assert by_id[run_id]["git_commit"] == record["git_commit"]  # the driver's commit, given to the workers
    assert len(returned) == 8  # run_all returns what the driver appended
    (mine,) = [r for r in returned if r["task"] == "ray-file-digits"]
    assert mine["status"] != "failed" and mine["metrics"]["accuracy"] > 0


@RAY_MATRIX
def test_a_killed_worker_is_retried_and_its_cell_recorded_once(ray_run):
    out, _, marker, _ = ray_run
    assert marker.exists()  # a worker really was SIGKILLed mid-cell
    lines = matrix_cells.lines(out / "results.jsonl")
    ids = [r["run_id"] for r in lines]
    assert len(ids) == len(set(ids)) == 8
    assert sum(r["status"] == "failed" for r in lines) == 1  # the broken weights only, not the killed cell
    assert not list((out / "checkpoints").glob("*.pt"))  # the driver removed each cell's checkpoint


@RAY_MATRIX
def test_a_cell_that_raises_is_recorded_failed_and_the_rest_finish(ray_run):
    out, _, _, _ = ray_run
    (failed,) = [r for r in read_records(out) if r["status"] == "failed"]
    assert failed["status_detail"].startswith("WeightsError: weights file broken-weights.pth: ")
    assert "Traceback" in failed["details"]["traceback"] and failed["run_spec"]["weights"] == "broken-weights.pth"
    assert failed["hardware"]["device"] == "cpu" and failed["train_examples"] == 32
    table = write_table(out)
    assert "## Runs that did not finish" in table and "**failed** WeightsError" in table
    assert str(out.parent) not in table
