"""The runner's side of tracker logging (``--log-to``; the trackers themselves are ``tracking/``):
which trackers a cell opens, under what name, group and parameters, and what it reports at the end.

A cell logs from one process: the main one (under torchrun, rank 0; in a Ray worker, that worker).
Its tracker run is named by the run id, so a tracker run and a record are found by the same id; its
parameters are the resolved config (the record's ``config``: what the run id hashes) and the run as
it was asked for (``run_spec``); its final metrics are the record's. Trackers start before the run's
clock and finish after the record is built, so nothing they do is in the record's times, and the
record is built and written whatever they do (``tracking.Trackers``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transferbench.benchmarks.plan.resolve import ResolvedRun
from transferbench.benchmarks.runtime import distributed
from transferbench.benchmarks.tracking import Trackers, open_trackers, warn
from transferbench.registry import slug

TRACKERS_DIR = "trackers"  # under the output folder


def group_of(run: ResolvedRun) -> str:
    """The tracker group of a run: its task, adapter and strategy, so a tracker groups the seeds (and
    data budgets) of one comparison. A sweep that wants its points grouped under its own name passes
    that name to ``start_trackers`` instead."""
    return slug(f"{run.task.name}-{run.identity['adapter']}-{run.strategy.name}")


def params_of(run: ResolvedRun) -> dict[str, Any]:
    """The parameters a tracker records: the resolved config, the run id, the run as asked for."""
    return {**dict(run.identity), "run_id": run.run_id, "run_spec": run.spec.public()}


def start_trackers(run: ResolvedRun, out_dir: Path | None, group: str | None = None) -> Trackers | None:
    """The cell's trackers, started (None when the run logs to none, or on a process other than the
    main one). They write under ``<out_dir>/trackers`` unless their environment says where."""
    if not run.spec.log_to or not distributed.is_main():
        return None
    trackers = open_trackers(run.spec.log_to, None if out_dir is None else out_dir / TRACKERS_DIR)
    trackers.start(run.run_id, params_of(run), group or group_of(run))
    return trackers


def final_metrics(record: dict[str, Any]) -> dict[str, float]:
    """A record's numbers as a tracker's final metrics: ``test/accuracy``, ``test/macro_f1``,
    ``val/accuracy`` (the last validation), ``time/train_s``, ``throughput/train_samples_per_s``,
    ``params/trainable``, ``steps``, ... (values the record does not have are left out)."""
    out: dict[str, float] = {f"test/{k}": v for k, v in record.get("metrics", {}).items() if _number(v)}
    curve = record.get("val_accuracy_per_epoch") or []
    if curve and _number(curve[-1]):
        out["val/accuracy"] = curve[-1]
    for section in ("time", "throughput", "params"):
        out.update({f"{section}/{k}": v for k, v in (record.get(section) or {}).items() if _number(v)})
    if _number(record.get("steps")):
        out["steps"] = record["steps"]
    return {k: float(v) for k, v in out.items()}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def finish_trackers(trackers: Trackers | None, record: dict[str, Any] | None) -> None:
    """Finish the cell's trackers with its record (None: the cell raised, and they end as failed)."""
    if trackers is None:
        return
    if record is not None:
        try:
            metrics = final_metrics(record)
        except Exception as exc:  # never a lost record: the trackers end without these metrics
            warn(f"tracker logging could not read the record's metrics ({type(exc).__name__}: {exc})")
            metrics = {}
        trackers.finish(metrics, str(record.get("status")))
    trackers.close()
