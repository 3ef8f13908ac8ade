"""A domain (vision, text, audio, ...) as one registered object: how its tasks' data is loaded and
decoded, which run options shape its inputs, how decoded examples become batches, and the input
shape ``bench`` uses. The runner, ``bench`` and the report ask the domain; nothing outside a
domain's own module branches on its name. A new domain is one module that registers a ``Domain``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch

from transferbench.errors import DataError, UserError
from transferbench.registry import Registry
from transferbench.tasks import local_files
from transferbench.tasks.base import TASK_FILES, Split, TaskConfig, TaskData, check_classes
from transferbench.tasks.pipeline import Pipeline


class Domain(ABC):
    """The contract every domain fulfils. ``adapter`` arguments are registry entries of the model
    side (duck-typed: ``input_size``, ``sample_rate``, ``options``), so tasks never import models."""

    name: str = ""
    # RunSpec fields that only this domain reads; set on another domain's run, they are an error
    run_options: tuple[str, ...] = ()
    # the task a hub-pretrained model of this domain is first compared on (the report's "not run here")
    reference_task: str | None = None

    @abstractmethod
    def load(self, config: TaskConfig, data_dir: str | None, settings: dict[str, Any]) -> TaskData:
        """Load and decode a task's train and test splits (``settings``: :meth:`load_settings`)."""

    def load_settings(self, options: dict[str, Any], config: TaskConfig, adapter: Any) -> dict[str, Any]:
        """The settings that change the decoded data (so two runs sharing them share one load)."""
        return {}

    @abstractmethod
    def input_settings(
        self, options: dict[str, Any], config: TaskConfig, adapter: Any, data: TaskData
    ) -> dict[str, Any]:
        """The resolved input-shaping settings of a run: recorded, and part of its identity. A
        default may depend on the decoded ``data`` (the audio clip length does)."""

    def input_notes(self, data: TaskData, settings: dict[str, Any]) -> dict[str, Any]:
        """What the settings do to the data (e.g. how many clips are cropped), for the record."""
        return {}

    @abstractmethod
    def pipelines(
        self,
        splits: Sequence[Split],
        model: Any,
        config: TaskConfig,
        settings: dict[str, Any],
        device: torch.device,
        channels_last: bool = False,
    ) -> list[Pipeline]:
        """One pipeline per split; the first (training) one augments."""

    @abstractmethod
    def example_shape(self, settings: dict[str, Any], model: Any) -> dict[str, int]:
        """Shape arguments for ``model.example_batch`` at these settings (``bench``, validation)."""

    @abstractmethod
    def synthetic_split(self, n: int, num_classes: int, settings: dict[str, Any]) -> Split:
        """A small split of made-up decoded examples, for checking a model against this domain's
        real pipeline without any data set."""


DOMAINS: Registry[Domain] = Registry("domain")


def register_domain(domain: Domain) -> Domain:
    DOMAINS.add(domain.name, domain)
    return domain


def check_run_options(domain: Domain, options: dict[str, Any]) -> None:
    """Refuse, before any data loads, an option that only another domain reads."""
    for other in DOMAINS.names():
        if other == domain.name:
            continue
        for option in DOMAINS.get(other).run_options:
            if option in domain.run_options or not options.get(option):
                continue
            raise UserError(f"--{option.replace('_', '-')} applies to {other} tasks; this run's task is {domain.name}")


def load_task(config: TaskConfig, data_dir: str | None, **settings: Any) -> TaskData:
    """Load and decode a task through its domain (``settings``: e.g. ``image_size``, ``sample_rate``)."""
    try:
        data = DOMAINS.get(config.domain).load(config, data_dir, settings)
    except DataError as exc:
        raise _in_task_file(config, exc) from None
    check_classes(data)
    if data_dir:  # what the run read is what the files hold, whatever a cache says
        data.revision = local_files.revision(data_dir)
    return data


def _in_task_file(config: TaskConfig, error: DataError) -> DataError:
    """A column the data lacks, for a task read from a file: name the file, line and key."""
    if config.name not in TASK_FILES:
        return error
    path, lines = TASK_FILES[config.name]
    for key in ("input_column", "label_column"):
        if f"no column {getattr(config, key)!r}" in str(error) and key in lines:
            return DataError(f"{path}:{lines[key]}: {key}: {error}")
    return error
