"""A cell's result line: the record of a finished run (metrics, timings, config, provenance) or of a
cell that failed (its identity and why). Both share the fields that say which run it is, so a failed
record is found and rerun by ``--resume`` exactly as a finished one is kept."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from transferbench.adapters.classical import ClassicalAdapter
from transferbench.adapters.families import weights_revision
from transferbench.benchmarks.plan.local_paths import public_location
from transferbench.benchmarks.plan.resolve import ResolvedRun
from transferbench.benchmarks.plan.splits import protocol_record
from transferbench.benchmarks.results import FAILED, provenance
from transferbench.benchmarks.results.significance import correctness_code
from transferbench.benchmarks.runtime import distributed
from transferbench.benchmarks.training.loop import TrainOutcome
from transferbench.benchmarks.training.metrics import calibration, compute_metrics
from transferbench.tasks import TaskData
from transferbench.tasks.hub import dataset_revision

_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])(?:/[^\s/\"':]+)+/([^\s/\"':]+)")


def which_run(run: ResolvedRun, data: TaskData, n_train: int, n_val: int) -> dict[str, Any]:
    """The fields every record has, finished or failed: which run it is and on what."""
    return {
        "run_id": run.run_id,
        "config_hash": run.run_id,
        "task": data.task,
        "domain": data.domain,
        "adapter": run.identity["adapter"],
        "strategy": run.strategy.name,
        "pretrained": run.strategy.pretrained and not run.plan.adapter.classical,
        "seed": run.spec.seed,
        "epochs": run.spec.budget.epochs,
        "train_examples": n_train,
        "val_examples": n_val,
        "test_examples": len(data.test),
        "test_split": data.test_split,
        "data_source": public_location(data.source),
        "config": dict(run.identity),
        "run_spec": run.spec.public(),
        "versions": provenance.versions(),
        "git_commit": provenance.git_commit(),
        "finished_at": provenance.now_utc(),
    }


def near_chance(accuracy: float, n: int, labels: np.ndarray) -> tuple[bool, float, float]:
    """Is test accuracy indistinguishable from always predicting the majority class?
    One-sided binomial test at p < 0.01. Returns (near_chance, majority_rate, p_value)."""
    from scipy.stats import binomtest

    majority = float(np.bincount(labels).max() / len(labels))
    p_value = float(binomtest(round(accuracy * n), n, majority, alternative="greater").pvalue)
    return p_value >= 0.01, majority, p_value


@dataclass(frozen=True)
class Tested:
    """What a run's one pass over the test split gave: class ids, probabilities (None for a model
    that has none), and the seconds it took."""

    preds: np.ndarray
    probs: np.ndarray | None
    seconds: float


def score_test(data: TaskData, outcome: TrainOutcome, tested: Tested | None) -> tuple[dict[str, Any], str]:
    """Test metrics (accuracy, macro-F1, and where there are probabilities ECE over 15 bins and
    NLL) and the run's status: a run not significantly above the majority class is ``near-chance``,
    however it trained."""
    if tested is None:
        return {}, outcome.status
    preds, labels = tested.preds, data.test.labels
    metrics = compute_metrics(preds, labels, data.num_classes)
    if tested.probs is not None:
        metrics.update(calibration(tested.probs, labels))
    chance, majority, p_value = near_chance(metrics["accuracy"], len(preds), labels)
    metrics.update(majority_class_accuracy=majority, p_value_vs_majority=p_value)
    if not chance:
        return metrics, outcome.status
    outcome.status_detail = (
        f"test accuracy {metrics['accuracy']:.3f} is not significantly above "
        f"always predicting the majority class ({majority:.3f}); the run did not learn"
    )
    return metrics, "near-chance"


def build_record(
    cell: Any, model: Any, outcome: TrainOutcome, tested: Tested | None, n_train: int, n_val: int
) -> dict[str, Any]:
    """The run's result line: metrics, timings, the full config and provenance (``cell``: the
    runner's Cell: the resolved run, its data and device)."""
    run, data, spec = cell.run, cell.data, cell.run.spec
    metrics, status = score_test(data, outcome, tested)
    return {
        **which_run(run, data, n_train, n_val),
        "status": status,
        "status_detail": outcome.status_detail,
        "data_layout": data.layout,
        "data_revision": dataset_revision(data),
        "data_notes": data.notes,
        "data_protocol": protocol_record(spec, data),
        "inputs": run.plan.domain.input_notes(data, dict(run.settings)),
        "class_names": data.class_names,
        "metrics": metrics,
        # which test items it got right (a bit each, base64): the paired tests of results.significance
        "test_correct": correctness_code(tested.preds, data.test.labels) if tested is not None else None,
        "val_accuracy_per_epoch": outcome.val_accuracy,
        **_timing(cell, outcome, tested),
        "steps": outcome.steps,
        # the fit's FLOPs (training.flops: a step counted as it trains, times its steps; a closed-form
        # probe's forward pass per example); None where nothing was counted (a classical model)
        "train_flops": outcome.train_flops,
        "distributed": distributed.describe(spec.budget.batch_size, sync_bn=cell.sync_bn_layers > 0),
        "details": outcome.extra,
        "params": {"total": model.num_params(), "trainable": model.num_params(trainable_only=True)},
        "weights_revision": weights_revision(
            run.identity["adapter"],
            model,
            pretrained=run.strategy.pretrained and not isinstance(model, ClassicalAdapter),
            weights=spec.weights,
        ),
        "preprocessing": model.preprocessing.to_dict(),
        "hardware": provenance.device_info(str(cell.device)),
    }


def _timing(cell: Any, outcome: TrainOutcome, tested: Tested | None) -> dict[str, Any]:
    """The record's ``time`` and ``throughput``: what the run took, and its rates."""
    eval_s = tested.seconds if tested is not None else 0.0
    excluded = (
        "closed-form fit: rate over the one pass (features + solver)"
        if outcome.closed_form
        else f"first {outcome.warmup_steps_excluded} training steps (warm-up) and all evaluation"
    )
    return {
        "time": {
            "train_s": outcome.train_s,
            "eval_s": eval_s,
            "time_to_target_s": outcome.time_to_target_s,
            "target_accuracy": cell.target,
            "device_s": outcome.extra.pop("run_wall_s"),  # the whole run on the device: build, train, validate, test
            # fixed costs, not in train_s: building and placing the model and tokenising (setup_s), and
            # the first optimizer step's kernel selection and autotuning (first_step_s, part of setup_s)
            "setup_s": _setup_s(outcome),
            "first_step_s": outcome.extra.pop("first_step_s", None),
            # decoding the task, once per process for every cell that shares it (not in setup_s)
            "data_load_s": cell.data.load_s,
        },
        "throughput": {
            "train_samples_per_s": outcome.samples_per_s,
            "eval_samples_per_s": len(tested.preds) / eval_s if tested is not None and eval_s > 0 else None,
            "excluded": excluded,
        },
    }


def _setup_s(outcome: TrainOutcome) -> float | None:
    before = outcome.extra.pop("setup_s", None)
    return None if before is None else before + outcome.extra.get("first_step_s", 0.0)


POINT_KIND = "sweep-point"


def point_record(cell: Any, outcome: TrainOutcome) -> dict[str, Any]:
    """A sweep point's line (the sweeps file, not results): what selection reads, its validation
    accuracy after the last epoch, and what the point cost. It holds no test metric: a point is
    never tested. The driver adds which sweep and grid values it is (``execution.sweeping``)."""
    run = cell.run
    return {
        "kind": POINT_KIND,
        "point_id": run.run_id,
        "sweep": run.role.name,
        "status": outcome.status,
        "status_detail": outcome.status_detail,
        "seed": run.spec.seed,
        "val_accuracy": outcome.val_accuracy[-1] if outcome.val_accuracy and outcome.status == "ok" else None,
        "val_accuracy_per_epoch": outcome.val_accuracy,
        "train_s": outcome.train_s,
        "train_flops": outcome.train_flops,
        "steps": outcome.steps,
        "config": dict(run.identity),
        "git_commit": provenance.git_commit(),
        "hardware": provenance.device_info(str(cell.device)),
        "finished_at": provenance.now_utc(),
    }


def failed_point(run: ResolvedRun, error: str) -> dict[str, Any]:
    """The line of a point that raised or whose worker died: it cannot win."""
    return {
        "kind": POINT_KIND,
        "point_id": run.run_id,
        "sweep": run.role.name if run.role else "",
        "status": FAILED,
        "status_detail": without_paths(error),
        "seed": run.spec.seed,
        "val_accuracy": None,
        "train_s": 0.0,
        "train_flops": None,
        "finished_at": provenance.now_utc(),
    }


def failed_record(
    run: ResolvedRun, data: TaskData, error: str, trace: str, hardware: dict[str, Any] | None
) -> dict[str, Any]:
    """The record of a cell that raised or whose worker died: identity and the error, no measurements
    (``results.validate_record`` accepts it, ``aggregate`` leaves it out, --resume reruns it)."""
    return {
        **which_run(run, data, run.n_train, run.n_val),
        "status": FAILED,
        "status_detail": without_paths(error),
        "details": {"traceback": without_paths(trace)[-4000:]} if trace else {},
        "hardware": hardware or {"device": run.spec.device, "cpu": "unknown (the worker process died)"},
    }


def describe_error(exc: BaseException) -> str:
    """One line for a failed record's status_detail: the type and the message's first line."""
    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def without_paths(text: str) -> str:
    """Absolute paths cut to their last part: records get published, a machine's folders do not."""
    return _ABSOLUTE_PATH.sub(r"\1", text)


def summary_line(r: dict[str, Any]) -> str:
    """The line the driver prints when it appends a record."""
    name = f"{r['task']}/{r['adapter']}/{r['strategy']}/seed{r['seed']}"
    if r["status"] == FAILED:
        return f"{name}: {r['status_detail']} [FAILED]"
    acc = r["metrics"].get("accuracy")
    score = f"accuracy {acc:.3f}, macro-F1 {r['metrics']['macro_f1']:.3f}" if acc is not None else r["status_detail"]
    flag = "" if r["status"] == "ok" else f" [{r['status'].upper()}]"
    return f"{name}: {score}; train {r['time']['train_s']:.1f}s{flag}"
