"""Tasks: declarative configs (:class:`TaskConfig`) over one generic loader per domain."""

from transferbench.tasks import audio, generated, text, vision  # noqa: F401  (registers the domains and tasks)
from transferbench.tasks.base import TASKS, Split, TaskConfig, TaskData, resolve_task
from transferbench.tasks.domain import DOMAINS, Domain, load_task

__all__ = ["DOMAINS", "TASKS", "Domain", "Split", "TaskConfig", "TaskData", "load_task", "resolve_task"]
