"""TensorBoard, through ``torch.utils.tensorboard``: one event folder per run,
``<out>/trackers/tensorboard/<group>/<run id>/``, with the training and validation scalars, the
config as text and, at the end, the parameters and final metrics in the HParams dashboard."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from transferbench.benchmarks.tracking.base import TRACKERS, Tracker, flatten, scalar


class TensorBoardTracker(Tracker):
    name = "tensorboard"
    requires = ("tensorboard",)

    def start(self, run_name: str, params: Mapping[str, Any], group: str) -> None:
        from torch.utils.tensorboard import SummaryWriter  # lazy: the trackers extra

        self.params = {k: scalar(v) for k, v in flatten(params).items()}
        self.writer = SummaryWriter(log_dir=str(self.folder("tensorboard", group, run_name)))
        self.writer.add_text("config", "```json\n" + json.dumps(params, indent=1, default=str) + "\n```")

    def log_step(self, step: int, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.last_step = step

    def finish(self, metrics: Mapping[str, float], status: str) -> None:
        from torch.utils.tensorboard.summary import hparams

        for key, value in metrics.items():
            self.writer.add_scalar(key, value, self.last_step)
        self.writer.add_text("status", status, self.last_step)
        # the parameters beside the final metrics (HParams dashboard), in this run's own folder
        # (SummaryWriter.add_hparams would write them to a new subfolder, a second run)
        writer = self.writer._get_file_writer()
        for summary in hparams({**self.params, "status": status}, dict(metrics)):
            writer.add_summary(summary)
        self.writer.flush()

    def close(self) -> None:
        if hasattr(self, "writer"):
            self.writer.close()


TRACKERS.add("tensorboard", TensorBoardTracker)
