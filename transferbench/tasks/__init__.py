"""Tasks: declarative configs (:class:`TaskConfig`) over one generic loader per domain."""

from transferbench.tasks import vision
from transferbench.tasks.base import TASKS, Split, TaskConfig, TaskData, resolve_task

__all__ = ["TASKS", "Split", "TaskConfig", "TaskData", "load_task", "resolve_task"]


def load_task(config: TaskConfig, data_dir: str | None, *, image_size: int = 224) -> TaskData:
    """Load and decode a task's train and test splits (``image_size`` only matters for image
    folders whose images differ in size)."""
    if config.domain == "vision":
        return vision.load_vision(config, data_dir, image_size)
    raise NotImplementedError(f"domain {config.domain!r}")
