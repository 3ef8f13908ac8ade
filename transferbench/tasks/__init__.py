"""Tasks: declarative configs (:class:`TaskConfig`, one YAML file each) over one domain each."""

from transferbench.tasks import audio, generated, text, vision  # noqa: F401  (registers the domains, builtin data)
from transferbench.tasks.base import TASKS, Split, TaskConfig, TaskData, resolve_task
from transferbench.tasks.domain import DOMAINS, Domain, load_task
from transferbench.tasks.files import include_path, register_package_tasks, register_task_file

register_package_tasks()

__all__ = [
    "DOMAINS",
    "TASKS",
    "Domain",
    "Split",
    "TaskConfig",
    "TaskData",
    "include_path",
    "load_task",
    "register_task_file",
    "resolve_task",
]
