"""MLflow: a run in experiment ``transferbench`` (or ``$MLFLOW_EXPERIMENT_NAME``) of the tracking store
at ``$MLFLOW_TRACKING_URI`` when it is set, else of a local SQLite store,
``<out>/trackers/mlflow.db`` (artifacts beside it in ``mlflow-artifacts/``). MLflow 3 keeps its
file store (``./mlruns``) in maintenance mode and refuses it by default, so the local store is the
database MLflow recommends; ``mlflow ui --backend-store-uri sqlite:///<out>/trackers/mlflow.db`` shows it.

The run's name is the run id; its parameters are the flattened config, its tags the group and the
record's status; metrics are logged in batches at the loop's reads."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transferbench.benchmarks.tracking.base import TRACKERS, Tracker, absent, flatten, scalar

try:
    import fcntl
except ImportError:  # not POSIX: the store is made without a lock
    fcntl = None  # type: ignore[assignment]

EXPERIMENT = "transferbench"
MAX_PARAM = 6000  # MLflow's longest parameter value
BATCH = 100  # MLflow's most parameters per log_batch


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One process at a time (Ray cells start together): creating the database and the experiment."""
    with open(path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


class MlflowTracker(Tracker):
    name = "mlflow"

    @classmethod
    def missing(cls) -> list[str]:
        # a local SQLite store needs SQLAlchemy and Alembic (mlflow-skinny does not bring them)
        return absent(("mlflow",) if os.environ.get("MLFLOW_TRACKING_URI") else ("mlflow", "sqlalchemy", "alembic"))

    def start(self, run_name: str, params: Mapping[str, Any], group: str) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient  # lazy: the trackers extra

        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # "Creating initial ... tables"
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if uri:
            self.client = MlflowClient(tracking_uri=uri)
            experiment = self._experiment(None)
        else:
            root = self.folder()
            with _locked(root / "mlflow.lock"):
                self.client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
                experiment = self._experiment((root / "mlflow-artifacts").as_uri())
        tags = {"transferbench.group": group, "transferbench.run_id": run_name}
        self.run_id = self.client.create_run(experiment, run_name=run_name, tags=tags).info.run_id
        values = [Param(k, str(scalar(v))[:MAX_PARAM]) for k, v in flatten(params).items()]
        for i in range(0, len(values), BATCH):
            self.client.log_batch(self.run_id, params=values[i : i + BATCH])

    def _experiment(self, artifacts: str | None) -> str:
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=artifacts)
        except Exception:  # another process made it first (a tracking server: no lock across machines)
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def log_step(self, step: int, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])
        self.last_step = step

    def finish(self, metrics: Mapping[str, float], status: str) -> None:
        self.log_step(self.last_step, metrics)
        self.client.set_tag(self.run_id, "transferbench.status", status)
        self.client.set_terminated(self.run_id, "FINISHED")
        self.ended = True

    def close(self) -> None:
        if hasattr(self, "run_id") and not getattr(self, "ended", False):
            self.client.set_terminated(self.run_id, "FAILED")


TRACKERS.add("mlflow", MlflowTracker)
