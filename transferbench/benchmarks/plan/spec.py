"""What a run is asked to be: :class:`RunSpec`.

A spec holds only what every run has: the task, adapter and strategy by name, the seed, the data
and its budget, the shared training budget, the head and weights, the device, and ``options``, the
values given to options that its components declare (a strategy's ``lora_rank``, a domain's
``image_size``, an adapter's ``max_length``, a task's ``test_fold``). Which component takes which
option is the resolver's to say (``plan.resolve``), once per cell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transferbench.adapters.base import HEADS
from transferbench.benchmarks.tracking import problem as tracker_problem
from transferbench.benchmarks.training.budget import Budget
from transferbench.options import Option, declared, option

AMP = ("auto", "off", "bf16", "fp16")
SWEEP_SEEDS = ("first", "all")


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run. Defaults are the published recipe."""

    task: str
    adapter: str
    strategy: str
    seed: int = option(0, "the training seed", low=0)
    data_dir: str | None = option(None, "a local copy of the task's data instead of the hub", identity=False)
    budget: Budget = field(default_factory=Budget)
    head: str = option(
        "linear", "the classification head: linear, or mlp = Dense(256, relu) -> Dense(N)", choices=HEADS
    )
    weights: str | None = option(None, "a local pretrained weights file (.safetensors or .pth state dict)")
    max_train_examples: int | None = option(None, "use at most N training examples (class-balanced)", low=1)
    per_class: bool = option(False, "--max-train-examples / --train-examples count examples per class")
    data_protocol: str | None = None  # a named train/val selection (tasks/protocols.py), e.g. vtab-1k
    val_fraction: float = option(
        0.1, "share of train held out (stratified) for validation", low=0, low_open=True, high=1
    )
    split_seed: int = option(0, "seed of the validation split and subsamples (fixed across training seeds)", low=0)
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps", identity=False)
    amp: str = option("auto", "mixed precision (auto: bf16 on GPUs that have it)", choices=AMP)
    channels_last: bool = option(False, "vision: channels-last memory format")
    compile: bool = option(False, "torch.compile the model")
    sync_bn: bool = option(False, "under torchrun on CUDA: BatchNorm statistics over the global batch")
    target_accuracy: float | None = option(None, "validation accuracy for time-to-accuracy", low=0, high=1)
    pipeline_efficiency: bool | None = option(
        None, "also time synthetic-input steps: real/synthetic throughput", default_text="on for CUDA, off on CPU"
    )
    # where the run is also logged (tracking/): never part of its identity, and in public() only when set
    log_to: tuple[str, ...] | None = option(
        None,
        "experiment trackers to log to: tensorboard, mlflow, wandb (pip install 'transferbench[trackers]')",
        distinct=True,
        identity=False,
        nullable=True,
        validator=tracker_problem,
        default_text="none",
    )
    # the feature cache (training.features): where probes keep frozen features; neither changes a result
    cache: bool = option(True, "reuse frozen features from the feature cache (linear probe, lp-ft)", identity=False)
    cache_dir: str | None = option(
        None,
        "the feature cache's folder",
        identity=False,
        default_text="features/ in $TRANSFERBENCH_CACHE_DIR, else ~/.cache/transferbench",
    )
    # validation-selected sweep (plan.sweeps): None, "default" (the strategy's own), or option -> values
    sweep: Mapping[str, tuple[Any, ...]] | str | None = None
    sweep_seeds: str = option(
        "first",
        "sweep on the first seed and run its winner on every seed (VTAB), or sweep all seeds",
        choices=SWEEP_SEEDS,
    )
    sweep_widen: int = option(
        2,
        "past the edge of a one-option sweep whose lowest or highest value alone wins, try up to N more "
        "values per side, one grid step at a time (0: only the grid given)",
        low=0,
    )
    # --scratch-budget 4x: the budget (epochs, min_steps) is this multiple of the comparison's own
    budget_multiple: float = 1.0
    # --match-compute: the strategy and measure this scratch run's steps were matched to ("lora flops")
    matched_to: str | None = None
    # a versioned benchmark's cell (``transferbench-1k@1``): its record says which benchmark it belongs to
    suite: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # component options given (plan.resolve routes them)

    def public(self) -> dict[str, Any]:
        """The run as it was asked for, every default resolved (``--show-config`` prints the same),
        with local paths as their names: published records never carry a machine's absolute paths."""
        fields = asdict(self)
        fields["options"] = dict(self.options)
        if self.log_to is None:  # added after the first records: absent unless set, as in the identity
            del fields["log_to"]
        else:
            fields["log_to"] = list(self.log_to)
        if self.sweep is None:  # added since too: absent unless set
            del fields["sweep"], fields["sweep_seeds"], fields["sweep_widen"]
        elif not isinstance(self.sweep, str):
            fields["sweep"] = {name: list(values) for name, values in self.sweep.items()}
        if self.budget_multiple == 1:
            del fields["budget_multiple"]
        for key in ("matched_to", "suite"):  # added since the first records: absent unless set
            if fields[key] is None:
                del fields[key]
        for key, default in (("cache", True), ("cache_dir", None)):
            if fields[key] == default:
                del fields[key]
        for holder, key in (
            (fields, "data_dir"),
            (fields, "weights"),
            (fields, "cache_dir"),
            (fields["options"], "model_path"),
        ):
            value = holder.get(key)
            if value and Path(value).is_absolute():
                holder[key] = Path(value).name
        return fields

    def matrix_cell(self) -> dict[str, Any]:
        """The spec as a cell of its matrix (what ``--shard`` orders cells by): ``public()`` without
        ``log_to``, so that the shards of one matrix agree whether or not each logs to trackers."""
        return {k: v for k, v in self.public().items() if k not in ("log_to", "cache", "cache_dir")}

    @classmethod
    def create(cls, task: str, adapter: str, strategy: str, **values: Any) -> RunSpec:
        """A spec from keyword values, the run's own fields and component options alike
        (``RunSpec.create("digits", "resnet18", "lora", seed=1, lora_rank=4, image_size=32)``)."""
        core = {f.name for f in dataclasses.fields(cls)}
        options = {k: v for k, v in values.items() if k not in core}
        return cls(task, adapter, strategy, **{k: v for k, v in values.items() if k in core}, options=options)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        """A spec from ``public()`` (or a record's ``run_spec``). Records written before options had
        their own mapping hold them flat; those keys move into ``options``."""
        core = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in core and k not in ("budget", "options")}
        if kwargs.get("log_to") is not None:
            kwargs["log_to"] = tuple(kwargs["log_to"])
        if isinstance(kwargs.get("sweep"), Mapping):
            kwargs["sweep"] = {name: tuple(values) for name, values in kwargs["sweep"].items()}
        legacy = {k: v for k, v in data.items() if k not in core and v is not None and v is not False}
        options = {**legacy, **data.get("options", {})}
        return cls(**kwargs, budget=Budget(**data.get("budget", {})), options=options)


def core_options() -> dict[str, tuple[Option, str]]:
    """The options every run has, by name, with where they live: ``run`` (the spec) or ``budget``."""
    return {
        **{o.name: (o, "run") for o in declared(RunSpec)},
        **{o.name: (o, "budget") for o in declared(Budget)},
    }
