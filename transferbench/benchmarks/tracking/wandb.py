"""Weights & Biases: offline unless configured. Without ``$WANDB_MODE`` or ``$WANDB_API_KEY`` the run
is written offline under ``<out>/trackers/wandb/offline-run-*`` (``$WANDB_DIR`` moves it) and
``wandb sync <that folder>`` uploads it later; with either set, wandb does as they say. The project is
``transferbench`` unless ``$WANDB_PROJECT`` names another.

The run's name is the run id and its group the run's group (W&B averages a group's runs: the seeds
of one task, adapter and strategy by default); the config is the resolved config, history the
training and validation metrics, the summary the record's final metrics and status. wandb's console
capture, system-metrics sampler, git and code saving are off: they would share the host with the
training being timed, and the record already carries the git commit."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from transferbench.benchmarks.tracking.base import TRACKERS, Tracker

PROJECT = "transferbench"


class WandbTracker(Tracker):
    name = "wandb"
    requires = ("wandb",)

    def start(self, run_name: str, params: Mapping[str, Any], group: str) -> None:
        import wandb  # lazy: the trackers extra

        settings = wandb.Settings(console="off", x_disable_stats=True, disable_git=True, save_code=False, silent=True)
        where: dict[str, Any] = {}
        mode = os.environ.get("WANDB_MODE", "").lower()
        if not mode and not os.environ.get("WANDB_API_KEY"):
            where["mode"] = mode = "offline"
        if not os.environ.get("WANDB_DIR") and (self.root is not None or mode in ("offline", "dryrun")):
            where["dir"] = str(self.folder())  # offline with no folder here: nowhere to keep the run (one warning)
        if not os.environ.get("WANDB_PROJECT"):
            where["project"] = PROJECT
        self.run = wandb.init(
            name=run_name, group=group, config=dict(params), reinit="create_new", settings=settings, **where
        )

    def log_step(self, step: int, metrics: Mapping[str, float]) -> None:
        self.run.log(dict(metrics), step=step)
        self.last_step = step

    def finish(self, metrics: Mapping[str, float], status: str) -> None:
        self.run.summary.update({**metrics, "status": status})
        self.run.finish()
        self.ended = True

    def close(self) -> None:
        if hasattr(self, "run") and not getattr(self, "ended", False):
            self.run.finish(exit_code=1)


TRACKERS.add("wandb", WandbTracker)
