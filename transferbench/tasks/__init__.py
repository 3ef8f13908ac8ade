"""Tasks: declarative configs (:class:`TaskConfig`) over one generic loader per domain."""

from transferbench.tasks import audio, generated, text, vision  # noqa: F401  (registers the tasks)
from transferbench.tasks.base import TASKS, Split, TaskConfig, TaskData, resolve_task

__all__ = ["TASKS", "Split", "TaskConfig", "TaskData", "load_task", "resolve_task"]


def load_task(
    config: TaskConfig,
    data_dir: str | None,
    *,
    image_size: int = 224,
    text_column: str | None = None,
    label_column: str | None = None,
    sample_rate: int = 16_000,
) -> TaskData:
    """Load and decode a task's train and test splits. ``image_size`` only matters for image
    folders whose images differ in size; the column names override a text task's defaults."""
    if config.domain == "vision":
        return vision.load_vision(config, data_dir, image_size)
    if config.domain == "text":
        return text.load_text(config, data_dir, text_column, label_column)
    if config.domain == "audio":
        return audio.load_audio(config, data_dir, sample_rate)
    raise NotImplementedError(f"domain {config.domain!r}")
