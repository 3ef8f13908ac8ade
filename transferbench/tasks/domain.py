"""A domain (vision, text, audio, ...) as one registered object: how its tasks' data is loaded and
decoded, which run options shape its inputs, how decoded examples become batches, and the input
shape ``bench`` uses. The runner, ``bench`` and the report ask the domain; nothing outside a
domain's own module branches on its name. A new domain is one module that registers a ``Domain``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch

from transferbench.errors import DataError
from transferbench.options import Option
from transferbench.registry import Registry
from transferbench.tasks import local_files
from transferbench.tasks.base import TASK_FILES, NoTaskKeys, Split, TaskConfig, TaskData, check_classes
from transferbench.tasks.pipeline import Pipeline


class Domain(ABC):
    """The contract every domain fulfils. ``adapter`` arguments are registry entries of the model
    side (duck-typed: ``input_size``, ``sample_rate``, ``options``), so tasks never import models."""

    name: str = ""
    # run options only this domain reads (``--image-size``), declared; set on another domain's run
    # they are an error, naming the domain they belong to
    options: tuple[Option, ...] = ()
    # the domain's own task-file keys (a frozen dataclass: vision's flip_augment, audio's folds)
    task_keys: type = NoTaskKeys
    default_input_column: str | None = None  # the input column of its tasks unless one says otherwise
    # what the adapter contract validator runs a model of this domain at (small and fast)
    contract_options: dict[str, Any] = {}  # noqa: RUF012 (read-only class data)
    # the task a hub-pretrained model of this domain is first compared on (the report's "not run here")
    reference_task: str | None = None

    def keys(self, config: TaskConfig) -> Any:
        """The task's keys of this domain (its defaults where the task gives none)."""
        return config.keys if config.keys is not None else self.task_keys()

    # run options some of its tasks take (ESC-50's folds: ``test_fold``); ``task_options`` says which
    all_task_options: tuple[Option, ...] = ()

    def task_options(self, config: TaskConfig) -> tuple[Option, ...]:
        """The run options this task takes (of ``all_task_options``)."""
        return ()

    def with_task_options(self, config: TaskConfig, values: dict[str, Any]) -> TaskConfig:
        """The task as the run's task options change it (``values`` are of ``task_options``)."""
        return config

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


def domain_of_option(name: str) -> str | None:
    """The domain that declares run option ``name`` (None: no domain does)."""
    return next((d for d in DOMAINS.names() if any(o.name == name for o in DOMAINS.get(d).options)), None)


def with_defaults(config: TaskConfig) -> TaskConfig:
    """The task with what its domain fills in: the input column, the domain's key defaults."""
    domain = DOMAINS.get(config.domain)
    return dataclasses.replace(
        config, input_column=config.input_column or domain.default_input_column, keys=domain.keys(config)
    )


def load_task(config: TaskConfig, data_dir: str | None, **settings: Any) -> TaskData:
    """Load and decode a task through its domain (``settings``: e.g. ``image_size``, ``sample_rate``)."""
    config = with_defaults(config)
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
