"""Tracker logging (``--log-to tensorboard,mlflow,wandb``): what a run logged is read back with each
library's own reader (TensorBoard's EventAccumulator, ``mlflow.search_runs`` and its client, ``wandb leet
inspect`` over the offline run's ``.wandb`` file) and compared with the run's record. Logging changes
no result and no run id, a tracker that fails is one warning line and never a lost record, a missing
library or an unknown name is one line before any data loads, and the loop logs at its reads only."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.cli.parser import build_parser
from transferbench.benchmarks.cli.run import show_config, specs_from_args
from transferbench.benchmarks.execution import tracked
from transferbench.benchmarks.execution.matrix import Shard
from transferbench.benchmarks.plan.catalog import catalog
from transferbench.benchmarks.plan.resolve import bind, resolve
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.results import read_records
from transferbench.benchmarks.tracking import TRACKERS, Tracker, Trackers
from transferbench.benchmarks.tracking.tensorboard import TensorBoardTracker
from transferbench.benchmarks.training import Budget, FitRun, loop, train, warmup_cosine
from transferbench.tasks import load_task
from transferbench.tasks.base import Split

EPOCHS = 3
TOY = [
    *("run", "--task", "toy-iris", "--adapter", "toy-mlp", "--epochs", str(EPOCHS), "--batch-size", "16"),
    *("--min-steps", "0", "--no-progress"),
]
ALL = "tensorboard,mlflow,wandb"
CLEAN_ENV = ("WANDB_API_KEY", "WANDB_DIR", "WANDB_PROJECT", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME")


def _offline(env: pytest.MonkeyPatch, home: Path) -> None:
    """Every tracker offline and under the run's folder, whatever the machine's environment says."""
    for key in CLEAN_ENV:
        env.delenv(key, raising=False)
    env.setenv("WANDB_MODE", "offline")
    env.setenv("WANDB_CACHE_DIR", str(home / "wandb-cache"))
    env.setenv("WANDB_CONFIG_DIR", str(home / "wandb-config"))


@pytest.fixture(autouse=True)
def _toys_offline(monkeypatch, tmp_path):
    import toy_domain  # noqa: F401  (registers the tabular domain, toy-iris and toy-mlp)
    import toy_strategy  # noqa: F401  (registers frozen-stem)

    _offline(monkeypatch, tmp_path)


def _run(out: Path, *flags: str) -> list[dict]:
    assert main([*TOY, "--strategy", "scratch,frozen-stem", "--out", str(out), *flags]) == 0
    return read_records(out / "results.jsonl")


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> tuple[Path, list[dict]]:
    """Two toy runs (scratch, frozen-stem) logged to all three trackers, and their records."""
    import toy_domain  # noqa: F401
    import toy_strategy  # noqa: F401

    out = tmp_path_factory.mktemp("logged")
    with pytest.MonkeyPatch.context() as env:
        _offline(env, out.parent)
        records = _run(out, "--log-to", ALL)
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    return out, records


def _reads(record: dict) -> list[int]:
    """The steps at which the loop read the device: each epoch's end (READ_EVERY is more than an epoch)."""
    per_epoch = record["steps"] // EPOCHS
    assert per_epoch < loop.READ_EVERY
    return [per_epoch * epoch for epoch in range(1, EPOCHS + 1)]


def _group(record: dict) -> str:
    return f"toy-iris-toy-mlp-{record['strategy']}"


# --- read back with each library's own reader ----------------------------------------------------


def test_tensorboard_holds_one_run_per_record_with_its_curves_and_metrics(logged):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, records = logged
    root = out / "trackers" / "tensorboard"
    assert sorted(p.name for p in root.glob("*/*")) == sorted(r["run_id"] for r in records)
    for record in records:
        folder = root / _group(record) / record["run_id"]
        events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
        events.Reload()

        def scalars(tag: str, events=events) -> list[tuple[int, float]]:
            return [(e.step, e.value) for e in events.Scalars(tag)]

        assert [step for step, _ in scalars("train/loss")] == _reads(record)  # at the loop's reads, not per step
        assert all(np.isfinite(v) and v > 0 for _, v in scalars("train/loss"))
        curve = [v for _, v in scalars("val/accuracy")]
        assert curve[:EPOCHS] == pytest.approx(record["val_accuracy_per_epoch"], abs=1e-6)  # float32 in events
        assert [s for s, _ in scalars("epoch")] == _reads(record)
        assert scalars("test/accuracy") == [(record["steps"], pytest.approx(record["metrics"]["accuracy"], abs=1e-6))]
        assert scalars("test/macro_f1")[0][1] == pytest.approx(record["metrics"]["macro_f1"], abs=1e-6)
        assert scalars("steps")[0][1] == record["steps"]
        if record["strategy"] == "scratch":  # the head's rate follows the schedule: warm-up, then cosine to 0
            lr, total = record["config"]["strategy"]["lr"], record["steps"]
            expected = [lr * warmup_cosine(total, 0.1)(step) for step in _reads(record)]
            assert [v for _, v in scalars("train/lr/head")] == pytest.approx(expected, rel=1e-5, abs=1e-9)
        config = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
        assert f'"run_id": "{record["run_id"]}"' in config
        assert {"_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(
            events.PluginTagToContent("hparams")
        )


def test_mlflow_holds_one_finished_run_per_record_named_by_its_run_id(logged):
    import mlflow
    from mlflow.tracking import MlflowClient

    out, records = logged
    uri = f"sqlite:///{out / 'trackers' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    runs = {r.info.run_name: r for r in mlflow.search_runs(experiment_names=["transferbench"], output_format="list")}
    assert sorted(runs) == sorted(r["run_id"] for r in records)
    client = MlflowClient(tracking_uri=uri)
    for record in records:
        run = runs[record["run_id"]]
        params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
        assert run.info.status == "FINISHED" and tags["transferbench.status"] == record["status"]
        assert tags["transferbench.group"] == _group(record)
        assert params["strategy.name"] == record["strategy"] and params["run_id"] == record["run_id"]
        assert params["strategy.lr"] == str(record["config"]["strategy"]["lr"])
        assert params["budget.epochs"] == str(EPOCHS) and params["run_spec.log_to"] == json.dumps(ALL.split(","))
        assert metrics["test/accuracy"] == record["metrics"]["accuracy"]
        assert metrics["test/macro_f1"] == record["metrics"]["macro_f1"]
        assert metrics["time/train_s"] == record["time"]["train_s"]
        assert metrics["throughput/train_samples_per_s"] == record["throughput"]["train_samples_per_s"]
        loss = client.get_metric_history(run.info.run_id, "train/loss")
        assert [m.step for m in loss] == _reads(record)
        curve = [m.value for m in client.get_metric_history(run.info.run_id, "val/accuracy")]
        assert curve[:EPOCHS] == record["val_accuracy_per_epoch"]


def _inspect(path: Path, *flags: str) -> str:
    """wandb's own reader of a run's .wandb transaction log (``wandb leet inspect``)."""
    done = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", *flags, str(path)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_wandb_holds_one_offline_run_per_record_with_its_config_history_and_summary(logged):
    out, records = logged
    files = sorted((out / "trackers" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == len(records)
    runs = {}
    for path in files:
        state = json.loads(_inspect(path, "--summary", "--json"))
        runs[state["name"]] = (state, [json.loads(line) for line in _inspect(path, "--json").splitlines()])
    assert sorted(runs) == sorted(r["run_id"] for r in records)
    for record in records:
        state, log = runs[record["run_id"]]
        assert state["state"] == "finished" and state["project"] == "transferbench"
        assert state["config"]["strategy"]["name"] == record["strategy"]
        assert state["config"]["run_id"] == record["run_id"]
        assert state["config"]["strategy"] == record["config"]["strategy"]
        summary = state["summary"]
        assert summary["test/accuracy"] == record["metrics"]["accuracy"] and summary["status"] == record["status"]
        assert summary["time/train_s"] == record["time"]["train_s"]
        (run,) = [r["run"] for r in log if r["type"] == "run"]
        assert run["display_name"] == record["run_id"] and run["run_group"] == _group(record)
        history = [r["history"] for r in log if r["type"] == "history"]
        assert [h["step"]["num"] for h in history if "train/loss" in h["item"]] == _reads(record)
        assert [h["item"]["val/accuracy"] for h in history if "val/accuracy" in h["item"]] == record[
            "val_accuracy_per_epoch"
        ]


def test_logging_changes_no_result_and_no_run_id(logged, tmp_path):
    _, with_trackers = logged
    without = {r["strategy"]: r for r in _run(tmp_path / "plain")}
    for record in with_trackers:
        plain = without[record["strategy"]]
        for key in ("run_id", "status", "config", "metrics", "val_accuracy_per_epoch", "steps", "params"):
            assert record[key] == plain[key], key
        assert record["run_spec"].pop("log_to") == ALL.split(",") and "log_to" not in plain["run_spec"]
        assert record["run_spec"] == plain["run_spec"]


# --- failures are one line -----------------------------------------------------------------------


class Memory(Tracker):
    """A tracker that keeps what it is given (registered for one test with ``monkeypatch``)."""

    name = "memory"
    calls: ClassVar[list[tuple]] = []

    def start(self, run_name, params, group):
        Memory.calls.append(("start", run_name, dict(params), group))

    def log_step(self, step, metrics):
        Memory.calls.append(("step", step, dict(metrics)))

    def log_epoch(self, epoch, step, metrics):
        Memory.calls.append(("epoch", epoch, step, dict(metrics)))

    def finish(self, metrics, status):
        Memory.calls.append(("finish", dict(metrics), status))

    def close(self):
        Memory.calls.append(("close",))


@pytest.fixture
def memory(monkeypatch):
    monkeypatch.setitem(TRACKERS._entries, "memory", Memory)
    monkeypatch.setattr(Memory, "calls", [])
    return Memory.calls


@pytest.mark.parametrize("method", ["__init__", "start", "log_step", "log_epoch", "finish"])
def test_a_tracker_that_fails_is_one_warning_line_and_the_run_goes_on(method, memory, tmp_path, monkeypatch, capsys):
    def broken(self, *args, **kwargs):
        raise OSError("No space left on device\nand a second line nobody needs")

    monkeypatch.setattr(TensorBoardTracker, method, broken)
    out = tmp_path / "out"
    assert main([*TOY, "--strategy", "scratch", "--log-to", "tensorboard,memory", "--out", str(out)]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [
        "transferbench: warning: tensorboard logging failed (OSError: No space left on device); "
        "the run goes on without it"
    ]
    (record,) = read_records(out / "results.jsonl")
    assert record["status"] == "ok"
    kinds = [call[0] for call in memory]
    assert kinds[0] == "start" and kinds[-2:] == ["finish", "close"]  # the other tracker logged all of it
    assert memory[-2][1]["test/accuracy"] == record["metrics"]["accuracy"]


def test_a_cell_that_raises_ends_its_tracker_runs_as_failed(memory, tmp_path, monkeypatch):
    def crash(self, epoch, precise_bn):
        raise RuntimeError("a bug in validation")

    monkeypatch.setattr(loop._Loop, "validate", crash)
    assert main([*TOY, "--strategy", "scratch", "--log-to", "memory,mlflow", "--out", str(tmp_path)]) == 1
    (record,) = read_records(tmp_path / "results.jsonl")
    assert record["status"] == "failed"
    assert [call[0] for call in memory][-1] == "close" and "finish" not in [call[0] for call in memory]
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'trackers' / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["transferbench"], output_format="list")
    assert run.info.status == "FAILED" and run.info.run_name == record["run_id"]


def _error(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "loaded" not in captured.out  # before any data loads
    (line,) = [line for line in captured.err.splitlines() if line.startswith("transferbench: error: ")]
    return line.removeprefix("transferbench: error: ")


@pytest.mark.parametrize("name, module", [("tensorboard", "tensorboard"), ("mlflow", "mlflow"), ("wandb", "wandb")])
def test_a_missing_library_is_one_line_naming_the_extra_before_any_data_loads(
    name, module, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, module, None)  # find_spec then says it is not installed
    assert main([*TOY, "--strategy", "scratch", "--log-to", name, "--out", str(tmp_path)]) == 2
    assert _error(capsys) == (
        f"--log-to: {name} needs {module}, which is not installed: pip install 'transferbench[trackers]'"
    )


def test_an_unknown_tracker_is_one_line_with_the_closest_names(tmp_path, capsys):
    assert main([*TOY, "--strategy", "scratch", "--log-to", "tensorboard,mlfow", "--out", str(tmp_path)]) == 2
    assert _error(capsys) == (
        "--log-to: unknown tracker 'mlfow'. Did you mean: mlflow? Valid trackers: mlflow, tensorboard, wandb"
    )
    assert main([*TOY, "--strategy", "scratch", "--log-to", "nope", "--out", str(tmp_path)]) == 2
    assert _error(capsys) == "--log-to: unknown tracker 'nope'. Valid trackers: mlflow, tensorboard, wandb"
    matrix = tmp_path / "m.yaml"
    matrix.write_text("runs:\n  - {task: toy-iris, adapter: toy-mlp, strategy: scratch, log_to: [tensorbord]}\n")
    assert main(["validate", str(matrix)]) == 2
    assert _error(capsys).endswith(
        "log_to: unknown tracker 'tensorbord'. Did you mean: tensorboard? Valid trackers: mlflow, tensorboard, wandb"
    )


# --- the option ----------------------------------------------------------------------------------


def _specs(*argv: str) -> list[RunSpec]:
    return specs_from_args(build_parser().parse_args(["run", *argv]))[0]


def test_log_to_is_a_flag_and_a_matrix_key_and_no_part_of_the_identity(tmp_path):
    (flag,) = _specs("--task", "toy-iris", "--adapter", "toy-mlp", "--strategy", "scratch", "--log-to", "mlflow,wandb")
    assert flag.log_to == ("mlflow", "wandb")
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        textwrap.dedent(
            """\
            defaults: {log_to: [tensorboard]}
            runs:
              - {task: toy-iris, adapter: toy-mlp, strategy: scratch}
              - {task: toy-iris, adapter: toy-mlp, strategy: frozen-stem, log_to: [wandb, mlflow]}
            """
        )
    )
    assert [s.log_to for s in _specs("--config", str(matrix))] == [("tensorboard",), ("wandb", "mlflow")]
    assert [s.log_to for s in _specs("--config", str(matrix), "--log-to", "none")] == [None, None]
    assert "log_to:\n  - wandb\n  - mlflow\n" in show_config(_specs("--config", str(matrix)))
    assert catalog()["log_to"].option.identity is False
    plain = RunSpec.create("toy-iris", "toy-mlp", "scratch", budget=Budget(epochs=1, min_steps=0))
    logged = RunSpec.create("toy-iris", "toy-mlp", "scratch", budget=Budget(epochs=1, min_steps=0), log_to=("wandb",))
    data = load_task(resolve(plain).task, None)
    runs = [bind(resolve(spec), data, "off") for spec in (plain, logged)]
    assert runs[0].run_id == runs[1].run_id and "log_to" not in runs[0].identity
    assert "log_to" not in plain.public() and logged.public()["log_to"] == ["wandb"]
    assert RunSpec.from_dict(logged.public()) == logged
    cells = [RunSpec.create("toy-iris", "toy-mlp", "scratch", seed=s) for s in range(6)]
    with_logging = [RunSpec.create("toy-iris", "toy-mlp", "scratch", seed=s, log_to=("mlflow",)) for s in range(6)]
    shard = Shard(1, 3)
    assert [s.seed for s in shard.select(cells)] == [s.seed for s in shard.select(with_logging)]


def test_only_the_main_process_logs_and_a_sweep_may_name_the_group(memory, tmp_path, monkeypatch):
    spec = RunSpec.create("toy-iris", "toy-mlp", "scratch", log_to=("memory",))
    run = bind(resolve(spec), load_task(resolve(spec).task, None), "off")
    monkeypatch.setenv("RANK", "1")
    assert tracked.start_trackers(run, tmp_path) is None and memory == []
    monkeypatch.setenv("RANK", "0")
    trackers = tracked.start_trackers(run, tmp_path, group="lr-sweep")
    assert trackers is not None and trackers.names == ["memory"]
    (_, name, params, group) = memory[0]
    assert (name, group) == (run.run_id, "lr-sweep") and params["strategy"] == dict(run.identity)["strategy"]
    assert params["run_spec"]["log_to"] == ["memory"]
    no_trackers = RunSpec.create("toy-iris", "toy-mlp", "scratch")
    assert (
        tracked.start_trackers(bind(resolve(no_trackers), load_task(resolve(spec).task, None), "off"), tmp_path) is None
    )


# --- the loop and the fan-out --------------------------------------------------------------------


def test_the_loop_logs_at_its_reads_only_and_reads_the_device_no_more_often(memory):
    from test_loop_reads import counting
    from toy_domain import TabularMLP, TabularPipeline

    def epochs_reads(trackers: Trackers | None) -> int:
        torch.manual_seed(0)
        model = TabularMLP(num_classes=3)
        x = np.random.RandomState(0).randn(16 * 60, 4).astype(np.float32)
        split = Split(x, np.arange(len(x)) % 3)
        cpu = torch.device("cpu")
        pipes = TabularPipeline(split, device=cpu, train=True), TabularPipeline(split, device=cpu, train=False)
        run = FitRun(model, Budget(epochs=2, batch_size=16, min_steps=0), *pipes, cpu, "off", 0, trackers=trackers)
        counts: dict[str, int] = {}
        real_epoch = loop._Loop.epoch
        local = pytest.MonkeyPatch()  # counting() undoes all of its monkeypatch: not the memory fixture's

        def counted_epoch(self, epoch):
            with counting(local, counts):
                return real_epoch(self, epoch)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(loop._Loop, "epoch", counted_epoch)
            outcome = train(run, model.param_groups(1e-3))
        assert outcome.status == "ok" and outcome.steps == 120
        return sum(counts.values())

    without = epochs_reads(None)
    fan_out = Trackers([Memory(None)])
    assert epochs_reads(fan_out) == without  # logging added no read of the device
    steps = [call[1] for call in memory if call[0] == "step"]
    assert steps == [50, 60, 100, 120]  # every READ_EVERY steps and at each epoch's end
    assert all(
        set(call[2]) == {"train/loss", "train/lr/head", "train/lr/backbone"} for call in memory if call[0] == "step"
    )
    assert [(call[1], call[2]) for call in memory if call[0] == "epoch"] == [(1, 60), (2, 120)]


class Drawing(Memory):
    """A tracker whose library draws from every host generator, then fails in log_step."""

    name = "drawing"

    def start(self, run_name, params, group):
        random.random(), np.random.rand(), torch.rand(1)

    def log_step(self, step, metrics):
        random.random(), np.random.rand(), torch.rand(1)
        raise ValueError("boom")


def test_the_fan_out_keeps_the_host_generators_and_drops_a_failing_tracker_once(memory):
    warnings: list[str] = []
    trackers = Trackers([Drawing(None), Memory(None)], warn=warnings.append)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = random.random(), np.random.rand(), torch.rand(1).item()
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    trackers.start("id", {}, "g")
    trackers.log_step(1, {"train/loss": 1.0})
    trackers.log_step(2, {"train/loss": 0.5})
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert warnings == ["drawing logging failed (ValueError: boom); the run goes on without it"]
    assert trackers.names == ["memory"] and [c[1] for c in memory if c[0] == "step"] == [1, 2]


# --- one process per cell: torchrun and Ray ------------------------------------------------------


@pytest.mark.slow  # a two-process launch of a small CNN: about half a minute on 2 loaded cores
def test_a_torchrun_run_logs_once_from_rank_0(tmp_path):
    from test_distributed import TORCHRUN, VISION, _launch, _records

    out = tmp_path / "two"
    proc = _launch(TORCHRUN, [*VISION, "--epochs", "1", "--log-to", ALL, "--out", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [line for line in proc.stderr.splitlines() if line.startswith("transferbench:")] == []
    (record,) = _records(out)
    (folder,) = (out / "trackers" / "tensorboard").glob("*/*")
    assert folder.name == record["run_id"] and len(list(folder.glob("events.out.tfevents.*"))) == 1
    assert len(list((out / "trackers" / "wandb").glob("offline-run-*"))) == 1
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{out / 'trackers' / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["transferbench"], output_format="list")
    assert run.info.run_name == record["run_id"] and run.data.metrics["test/accuracy"] == record["metrics"]["accuracy"]


@pytest.mark.slow  # a local Ray instance and two cells
def test_ray_cells_log_from_their_workers_and_their_records_equal_the_serial_ones(tmp_path, serial_matrix):
    pytest.importorskip("ray")
    import dataclasses

    import matrix_cells
    import mlflow

    from transferbench.benchmarks.execution.matrix import ExecutorOptions, run_all
    from transferbench.benchmarks.execution.ray_executor import RayExecutor

    specs = [
        dataclasses.replace(matrix_cells.spec(s, 0), log_to=("tensorboard", "mlflow")) for s in ("finetune", "scratch")
    ]
    executor = RayExecutor(ExecutorOptions(cpus_per_run=1, local_cpus=2))
    try:
        records = run_all(specs, out_dir=tmp_path, executor=executor, progress=False, log=lambda _: None)
    finally:
        executor.close()
    serial = {r["run_id"]: r for r in serial_matrix[1]}
    assert len(records) == 2 and all(r["status"] != "failed" for r in records)
    for record in records:
        assert matrix_cells.comparable(record) == matrix_cells.comparable(serial[record["run_id"]])
    folders = sorted(p.name for p in (tmp_path / "trackers" / "tensorboard").glob("*/*"))
    assert folders == sorted(r["run_id"] for r in records)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'trackers' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["transferbench"], output_format="list")
    assert sorted(r.info.run_name for r in runs) == folders and {r.info.status for r in runs} == {"FINISHED"}


def test_without_an_output_folder_a_tracker_is_one_warning_unless_its_environment_says_where(monkeypatch):
    """A Ray worker that cannot write the output folder, or ``run_one`` without ``out_dir``."""
    from transferbench.benchmarks.tracking import open_trackers

    warnings: list[str] = []
    trackers = open_trackers(("tensorboard", "wandb"), None, warn=warnings.append)
    trackers.start("id", {}, "g")
    assert trackers.names == [] and warnings == [
        f"{name} logging failed (UserError: no output folder in this process to write to); the run goes on without it"
        for name in ("tensorboard", "wandb")
    ]
