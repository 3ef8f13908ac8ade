"""Run one comparison cell (task x adapter x strategy x seed) and record it.

The flow (docs/design.md): resolve names -> load and decode the task once -> carve a seeded,
stratified validation split out of train (test is never used for choices) -> build the adapter
(pretrained or random) -> let the strategy prepare and fit it -> evaluate on test -> append one
record with metrics, timings, config and provenance. What differs by domain is asked of the task's
domain (``tasks.DOMAINS``), what differs by strategy of the strategy (``STRATEGIES``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import transferbench
from transferbench.adapters import ADAPTERS, Adapter, FreezePolicy
from transferbench.adapters.classical import ClassicalAdapter
from transferbench.adapters.families import weights_revision
from transferbench.benchmarks import distributed, provenance
from transferbench.benchmarks.device import peak_memory, reset_peak_memory, resolve_amp, resolve_device, seed_everything
from transferbench.benchmarks.metrics import compute_metrics
from transferbench.benchmarks.results import (
    FAILED,
    RESULTS_FILE,
    SETTLED,
    append_or_keep,
    check_results_file,
    flush_pending,
    read_records,
    shard_file,
)
from transferbench.benchmarks.strategies import STRATEGIES, Strategy
from transferbench.benchmarks.throughput import BenchConfig, pipeline_efficiency
from transferbench.benchmarks.training import Budget, FitRun, TrainOutcome, predict
from transferbench.errors import UserError
from transferbench.registry import Registry
from transferbench.tasks import DOMAINS, TaskData, load_task, resolve_task
from transferbench.tasks.base import Split, TaskConfig, stratified_split, subsample
from transferbench.tasks.domain import Domain, check_run_options
from transferbench.tasks.hub import dataset_revision
from transferbench.tasks.protocols import PROTOCOLS

# RunSpec fields that shape a model or its inputs; the adapter (model_path, ...) or the task's
# domain (image_size, ...) declares which of them it reads, and a run that sets another is refused
INPUT_OPTIONS = (
    "image_size",
    "model_path",
    "pooling",
    "max_length",
    "trust_remote_code",
    "text_column",
    "label_column",
    "duration",
)


@dataclass
class RunSpec:
    """Everything that defines one run. Defaults are the published recipe."""

    task: str
    adapter: str
    strategy: str
    seed: int = 0
    data_dir: str | None = None
    budget: Budget = field(default_factory=Budget)
    lr: float | None = None  # overrides the recipe's head lr
    backbone_lr_scale: float | None = None
    weight_decay: float | None = None
    freeze: str | None = None  # overrides the strategy's freeze policy
    bn_policy: str | None = None
    head: str = "linear"
    weights: str | None = None  # a local state-dict file for the backbone
    image_size: int | None = None  # vision
    model_path: str | None = None  # text: a local save_pretrained() dir (or another hub id)
    pooling: str | None = None  # text: mean | cls
    max_length: int | None = None  # text: token truncation length
    trust_remote_code: bool = False
    text_column: str | None = None
    label_column: str | None = None
    duration: float | None = None  # audio: clip length in seconds (default: the task's, else from the data)
    target_modules: str | None = None  # lora/ia3: which modules get adapters (names or a regex)
    lora_rank: int | None = None
    lora_alpha: float | None = None
    lora_dropout: float | None = None
    max_train_examples: int | None = None
    per_class: bool = False  # max_train_examples counts examples per class
    data_protocol: str | None = None  # a named train/val selection (tasks/protocols.py), e.g. vtab-1k
    test_fold: int | None = None  # fold-based tasks (ESC-50): which fold is held out as test
    val_fraction: float = 0.1
    split_seed: int = 0  # the validation split is fixed across seeds: seeds vary training only
    device: str = "auto"
    amp: str = "auto"
    channels_last: bool = False
    compile: bool = False  # torch.compile the adapter's forward
    sync_bn: bool = False  # distributed runs on CUDA: BatchNorm statistics over the global batch
    target_accuracy: float | None = None
    pipeline_efficiency: bool | None = None  # None: measure on CUDA only


# RunSpec fields that override a strategy field of the same name, where the strategy has one
STRATEGY_OPTIONS = ("target_modules", "lora_rank", "lora_alpha", "lora_dropout")


def resolved_strategy(spec: RunSpec) -> Strategy:
    """The strategy's defaults, then the adapter family's recipe for it, then the user's overrides
    (a strategy-specific option such as --lora-rank reaches only the strategies that have it)."""
    base = STRATEGIES.get(spec.strategy)
    recipe = ADAPTERS.get(spec.adapter).recipes.get(base.name, {})
    own = {f.name for f in dataclasses.fields(base)}
    specific = {o: getattr(spec, o) for o in STRATEGY_OPTIONS if o in own}
    return base.with_overrides(**recipe).with_overrides(
        lr=spec.lr,
        backbone_lr_scale=spec.backbone_lr_scale,
        weight_decay=spec.weight_decay,
        freeze=spec.freeze,
        bn_policy=spec.bn_policy,
        **specific,
    )


def run_options(spec: RunSpec) -> dict[str, Any]:
    """The input-shaping options a run sets (None/False: not set)."""
    return {o: getattr(spec, o) for o in INPUT_OPTIONS}


def _check_float(option: str, value: float | None, low: float, high: float, *, low_open: bool = False) -> None:
    """A float option must be finite and in [low, high] (or (low, high]): one line naming it."""
    if value is None:
        return
    above = value > low if low_open else value >= low
    if not (math.isfinite(value) and above and value <= high):
        bound = (
            f"{'(' if low_open else '['}{low:g}, {high:g}]"
            if math.isfinite(high)
            else (f"{'above' if low_open else 'at least'} {low:g}")
        )
        raise UserError(f"{option} must be a finite number {bound}, got {value}")


def _check_numbers(spec: RunSpec) -> None:
    inf = math.inf
    _check_float("--lr", spec.lr, 0, inf, low_open=True)
    _check_float("--backbone-lr-scale", spec.backbone_lr_scale, 0, inf)
    _check_float("--weight-decay", spec.weight_decay, 0, inf)
    _check_float("--warmup-fraction", spec.budget.warmup_fraction, 0, 1)
    _check_float("--target-accuracy", spec.target_accuracy, 0, 1)
    _check_float("--duration", spec.duration, 0, 600, low_open=True)
    _check_float("--lora-alpha", spec.lora_alpha, 0, math.inf, low_open=True)
    _check_float("--lora-dropout", spec.lora_dropout, 0, 1)
    if spec.lora_rank is not None and spec.lora_rank < 1:
        raise UserError(f"--lora-rank must be a positive integer, got {spec.lora_rank}")
    _check_float("val_fraction", spec.val_fraction, 0, 1, low_open=True)
    _check_float("label_smoothing", spec.budget.label_smoothing, 0, 1)
    _check_float("grad_clip", spec.budget.grad_clip, 0, inf, low_open=True)


def _check_distributed(spec: RunSpec) -> None:
    """What a run across processes (a launcher's WORLD_SIZE > 1) needs, and --sync-bn."""
    world = distributed.world_size()
    if world > 1 and spec.budget.batch_size % world:
        raise UserError(
            f"--batch-size {spec.budget.batch_size} does not split over {world} processes: give a multiple of "
            f"{world} (it is the global batch; each process trains on batch/{world} of it)"
        )
    device = distributed.device_for(resolve_device(spec.device))
    if spec.sync_bn and device.type != "cuda":
        raise UserError(
            f"--sync-bn needs CUDA: torch's SyncBatchNorm does not run on {device.type} tensors (without it "
            "each process normalises over its share of the batch)"
        )
    if spec.sync_bn and world == 1:
        raise UserError(
            "--sync-bn synchronises BatchNorm across the processes of one run: launch it with torchrun "
            "(docs/distributed.md); one process's BatchNorm already sees the whole batch"
        )


def sync_bn_applies(spec: RunSpec, strategy: Strategy) -> bool:
    """--sync-bn converts BatchNorm where its statistics train (scratch; --bn-policy train)."""
    return spec.sync_bn and strategy.bn_policy == "train"


def validate_spec(spec: RunSpec) -> None:
    """Fail fast, before any data is loaded, on options that cannot work."""
    for option, value in (
        ("--epochs", spec.budget.epochs),
        ("--batch-size", spec.budget.batch_size),
        ("--max-train-examples", spec.max_train_examples),
        ("--max-length", spec.max_length),
    ):
        if value is not None and value < 1:
            raise UserError(f"{option} must be a positive integer, got {value}")
    if spec.budget.min_steps < 0:
        raise UserError(f"--min-steps must be 0 (epochs alone) or more, got {spec.budget.min_steps}")
    _check_numbers(spec)
    if spec.data_protocol is not None:
        PROTOCOLS.get(spec.data_protocol)  # an unknown name: one line with the closest
        if spec.max_train_examples is not None:
            raise UserError(f"--train-examples {spec.data_protocol} fixes the training set; drop --max-train-examples")
    if spec.image_size is not None and spec.image_size < 8:
        raise UserError(f"--image-size must be at least 8 pixels, got {spec.image_size}")
    if spec.weights and not Path(spec.weights).is_file():
        raise UserError(f"--weights {spec.weights}: file not found")
    adapter = ADAPTERS.get(spec.adapter)
    task = task_config(spec)
    if adapter.domain != task.domain:
        raise UserError(
            f"adapter {adapter.name!r} is a {adapter.domain} adapter but task {task.name!r} is "
            f"{task.domain}; see `transferbench list adapters`"
        )
    strategy = resolved_strategy(spec)
    FreezePolicy.parse(strategy.freeze)
    strategy.check(adapter, spec.head)
    _check_distributed(spec)
    options = run_options(spec)
    check_run_options(DOMAINS.get(task.domain), options)
    adapter.check_options({o: v for o, v in options.items() if o not in DOMAINS.get(task.domain).run_options})


def task_config(spec: RunSpec) -> TaskConfig:
    """The task's config with the run's overrides (the held-out fold of fold-based tasks)."""
    config = resolve_task(spec.task, spec.data_dir)
    if spec.test_fold is None:
        return config
    if config.folds is None:
        raise UserError(f"--test-fold applies to fold-based tasks (esc50); {config.name!r} has fixed splits")
    if not 1 <= spec.test_fold <= config.folds.num_folds:
        raise UserError(f"--test-fold must be 1-{config.folds.num_folds}, got {spec.test_fold}")
    note = f"{config.name} has no test split: fold {spec.test_fold} is held out as test, the others train"
    folds = dataclasses.replace(config.folds, test_fold=spec.test_fold)
    return dataclasses.replace(config, folds=folds, test_note=note)


def input_settings(spec: RunSpec, config: TaskConfig, data: TaskData) -> dict[str, Any]:
    """The input-shaping settings of a run, resolved by its domain (part of its identity)."""
    return DOMAINS.get(config.domain).input_settings(run_options(spec), config, ADAPTERS.get(spec.adapter), data)


def run_identity(spec: RunSpec, data: TaskData, config: TaskConfig, strategy: Strategy, amp: str) -> dict[str, Any]:
    """The config whose hash identifies a run (for --resume and for citing)."""
    return {
        "task": data.task,
        "adapter": ADAPTERS.canonical(spec.adapter),
        "adapter_revision": ADAPTERS.get(spec.adapter).revision,
        "strategy": strategy.to_dict(),
        "seed": spec.seed,
        "budget": asdict(spec.budget),
        "head": spec.head,
        **input_settings(spec, config, data),
        "max_train_examples": spec.max_train_examples,
        "per_class": spec.per_class,
        # only when set, so every run without a protocol keeps its identity
        **({"data_protocol": spec.data_protocol} if spec.data_protocol else {}),
        # only across processes, so single-process identities stay, and --resume never takes a
        # record of one world size for another
        **({"distributed": _distributed_identity(spec, strategy)} if distributed.is_distributed() else {}),
        "test_fold": spec.test_fold,
        "val_fraction": spec.val_fraction,
        "split_seed": spec.split_seed,
        "weights": spec.weights,
        "amp": amp,
        "channels_last": spec.channels_last,
        "compile": spec.compile,
        "text_column": spec.text_column,
        "label_column": spec.label_column,
        "data_fingerprint": data.fingerprint(),
        "code_version": transferbench.__version__,
    }


def _distributed_identity(spec: RunSpec, strategy: Strategy) -> dict[str, Any]:
    return {"world_size": distributed.world_size(), "sync_bn": sync_bn_applies(spec, strategy)}


def make_splits(spec: RunSpec, data: TaskData) -> tuple[Split, Split]:
    """Train and validation splits from the task's training split: a named protocol's selection,
    else a stratified ``val_fraction`` hold-out and an optional class-balanced subsample."""
    if spec.data_protocol:
        train, val = PROTOCOLS.get(spec.data_protocol).select(data.train.labels, spec.split_seed)
        return data.train.subset(train), data.train.subset(val)
    keep, held = stratified_split(data.train.labels, spec.val_fraction, spec.split_seed)
    train_split, val_split = data.train.subset(keep), data.train.subset(held)
    if spec.max_train_examples is not None and spec.max_train_examples < len(train_split):
        picked = subsample(train_split.labels, spec.max_train_examples, spec.split_seed, per_class=spec.per_class)
        train_split = train_split.subset(picked)
    if len(train_split) < spec.budget.batch_size:
        raise UserError(
            f"--batch-size {spec.budget.batch_size} is larger than the {len(train_split)} training examples"
        )
    return train_split, val_split


def build_adapter(spec: RunSpec, strategy: Strategy, num_classes: int) -> Adapter | ClassicalAdapter:
    """The adapter, pretrained or not as the strategy says, prepared by the strategy."""
    adapter_spec = ADAPTERS.get(spec.adapter)
    options = {o: getattr(spec, o) for o in adapter_spec.options if getattr(spec, o)}
    model = adapter_spec.create(
        num_classes=num_classes,
        pretrained=strategy.pretrained,
        weights=spec.weights if strategy.pretrained else None,
        head=spec.head,
        **options,
    )
    if not adapter_spec.classical:
        strategy.prepare(model)
    return model


def public_spec(spec: RunSpec) -> dict[str, Any]:
    """The run as it was asked for, every default resolved (``--show-config`` prints the same), with
    local paths as folder/file names: published records never carry a machine's absolute paths."""
    fields = asdict(spec)
    for key in ("data_dir", "weights", "model_path"):
        if fields[key] and Path(fields[key]).is_absolute():
            fields[key] = Path(fields[key]).name
    return fields


def near_chance(accuracy: float, n: int, labels: np.ndarray) -> tuple[bool, float, float]:
    """Is test accuracy indistinguishable from always predicting the majority class?
    One-sided binomial test at p < 0.01. Returns (near_chance, majority_rate, p_value)."""
    from scipy.stats import binomtest

    majority = float(np.bincount(labels).max() / len(labels))
    p_value = float(binomtest(round(accuracy * n), n, majority, alternative="greater").pvalue)
    return p_value >= 0.01, majority, p_value


@dataclass
class Cell:
    """One run being executed: its spec, resolved pieces and where it writes."""

    spec: RunSpec
    data: TaskData
    config: TaskConfig
    strategy: Strategy
    device: torch.device
    amp: str
    identity: dict[str, Any]
    target: float | None
    out_dir: Path | None
    sync_bn_layers: int = 0  # BatchNorm layers --sync-bn converted

    @property
    def checkpoint(self) -> Path | None:
        if self.out_dir is None:
            return None
        return self.out_dir / "checkpoints" / f"{provenance.config_hash(self.identity)}.pt"


def execute(
    spec: RunSpec, data: TaskData, *, out_dir: Path | None = None, progress: bool = True, write: bool = True
) -> dict[str, Any]:
    """Run one cell and (if ``out_dir``) append its record to ``out_dir/results.jsonl``. With
    ``write=False`` (the executors of ``run_all``: the driver alone appends, so one writer keeps the
    file whole) checkpoints still go to ``out_dir``, so that a retried cell resumes, and the caller
    appends the returned record and then removes the checkpoint (``checkpoint_file``)."""
    config = task_config(spec)
    strategy = resolved_strategy(spec)
    device = distributed.device_for(resolve_device(spec.device))
    distributed.init(device)
    amp = resolve_amp(spec.amp, device)
    identity = run_identity(spec, data, config, strategy, amp)
    distributed.agree(provenance.config_hash(identity), "which run this is (every process must get the same runs)")
    target = spec.target_accuracy if spec.target_accuracy is not None else config.target_accuracy
    cell = Cell(spec, data, config, strategy, device, amp, identity, target, out_dir)
    train_split, val_split = make_splits(spec, data)
    seed_everything(spec.seed)
    started = time.perf_counter()
    model = build_adapter(spec, strategy, data.num_classes)
    if isinstance(model, ClassicalAdapter):  # the declared sibling contract: fitted in closed form
        outcome, preds, eval_s = _fit_classical(model, train_split, val_split, data.test, spec.seed)
        if target is not None and outcome.val_accuracy[0] >= target:
            outcome.time_to_target_s = outcome.train_s
    else:
        outcome, preds, eval_s = _fit_neural(cell, model, train_split, val_split, progress)
    outcome.extra["run_wall_s"] = time.perf_counter() - started
    record = build_record(cell, model, outcome, preds, eval_s, len(train_split), len(val_split))
    if out_dir is not None and write and distributed.is_main():  # across processes rank 0 writes
        append_or_keep(out_dir / RESULTS_FILE, record)
        if cell.checkpoint is not None:
            cell.checkpoint.unlink(missing_ok=True)
    return record


def _fit_neural(
    cell: Cell, model: Adapter, train_split: Split, val_split: Split, progress: bool
) -> tuple[TrainOutcome, np.ndarray | None, float]:
    """Fit through the strategy on the domain's pipelines, then predict the test split once."""
    spec, device, amp = cell.spec, cell.device, cell.amp
    model.to(device)
    if sync_bn_applies(spec, cell.strategy):
        cell.sync_bn_layers = distributed.convert_sync_batchnorm(model)
    if spec.channels_last:
        model.to(memory_format=torch.channels_last)
    if spec.compile:
        model.compile()  # compiles __call__ in place; freezing, heads and param groups still apply
    settings = input_settings(spec, cell.config, cell.data)
    domain: Domain = DOMAINS.get(cell.config.domain)
    train_pipe, val_pipe, test_pipe = domain.pipelines(
        (train_split, val_split, cell.data.test), model, cell.config, settings, device, spec.channels_last
    )
    label = f"{cell.data.task}/{cell.identity['adapter']}/{cell.strategy.name}/seed{spec.seed}"
    steps = cell.strategy.progress_steps(spec.budget, len(train_pipe), spec.head)
    shown = progress and distributed.is_main()
    reset_peak_memory(device)
    with tqdm(total=steps, desc=label, disable=not shown, leave=False, dynamic_ncols=True) as bar:
        run = FitRun(
            model,
            spec.budget,
            train_pipe,
            val_pipe,
            device,
            amp,
            spec.seed,
            spec.head,
            cell.target,
            bar,
            cell.checkpoint,
        )
        outcome = cell.strategy.fit(run)
    outcome.extra.update(peak_memory(device))  # training's peak: what a strategy costs in memory
    if outcome.status != "ok":
        return outcome, None, 0.0
    preds, eval_s = predict(model, test_pipe, spec.budget.batch_size * 2, device, amp)
    measure = spec.pipeline_efficiency if spec.pipeline_efficiency is not None else device.type == "cuda"
    if measure and not outcome.closed_form and outcome.samples_per_s:
        cfg = BenchConfig(  # per device: across processes, this device's share against one device alone
            adapter=spec.adapter,
            batch_size=distributed.local_batch_size(spec.budget.batch_size),
            image_size=settings.get("image_size"),
            seq_len=settings.get("max_length") or 128,
            channels_last=spec.channels_last,
            steps=10,
            warmup=3,
        )
        real = outcome.samples_per_s / distributed.world_size()
        outcome.extra["pipeline_efficiency"] = pipeline_efficiency(model, cfg, device, amp, real)
    return outcome, preds, eval_s


def _fit_classical(
    model: ClassicalAdapter, train_split: Split, val_split: Split, test: Split, seed: int
) -> tuple[TrainOutcome, np.ndarray, float]:
    outcome = TrainOutcome(steps=1, closed_form=True)
    start = time.perf_counter()
    details = model.fit(train_split.inputs, train_split.labels, val_split.inputs, val_split.labels, seed)
    outcome.train_s = outcome.timed_s = time.perf_counter() - start
    outcome.timed_samples = len(train_split)
    outcome.val_accuracy = [details.pop("val_accuracy")]
    outcome.extra = details
    start = time.perf_counter()
    preds = model.predict(test.inputs)
    return outcome, preds, time.perf_counter() - start


def _test_metrics(cell: Cell, outcome: TrainOutcome, preds: np.ndarray | None) -> tuple[dict[str, Any], str]:
    """Test metrics and the run's status: a run not significantly above the majority class is
    ``near-chance``, however it trained."""
    if preds is None:
        return {}, outcome.status
    labels = cell.data.test.labels
    metrics = compute_metrics(preds, labels, cell.data.num_classes)
    chance, majority, p_value = near_chance(metrics["accuracy"], len(preds), labels)
    metrics.update(majority_class_accuracy=majority, p_value_vs_majority=p_value)
    if not chance:
        return metrics, outcome.status
    outcome.status_detail = (
        f"test accuracy {metrics['accuracy']:.3f} is not significantly above "
        f"always predicting the majority class ({majority:.3f}); the run did not learn"
    )
    return metrics, "near-chance"


def protocol_record(spec: RunSpec, data: TaskData) -> dict[str, Any] | None:
    """Which examples a protocol run trained and validated on (None: no protocol)."""
    if not spec.data_protocol:
        return None
    protocol = PROTOCOLS.get(spec.data_protocol)
    return protocol.record(*protocol.select(data.train.labels, spec.split_seed), spec.split_seed)


def build_record(
    cell: Cell,
    model: Adapter | ClassicalAdapter,
    outcome: TrainOutcome,
    preds: np.ndarray | None,
    eval_s: float,
    n_train: int,
    n_val: int,
) -> dict[str, Any]:
    """The run's result line: metrics, timings, the full config and provenance."""
    spec, data, strategy = cell.spec, cell.data, cell.strategy
    metrics, status = _test_metrics(cell, outcome, preds)
    excluded = (
        "closed-form fit: rate over the one pass (features + solver)"
        if outcome.closed_form
        else f"first {outcome.warmup_steps_excluded} training steps (warm-up) and all evaluation"
    )
    run_id = provenance.config_hash(cell.identity)
    return {
        "run_id": run_id,
        "config_hash": run_id,
        "status": status,
        "status_detail": outcome.status_detail,
        "task": data.task,
        "domain": data.domain,
        "adapter": cell.identity["adapter"],
        "strategy": strategy.name,
        "pretrained": strategy.pretrained and not isinstance(model, ClassicalAdapter),
        "seed": spec.seed,
        "epochs": spec.budget.epochs,
        "train_examples": n_train,
        "val_examples": n_val,
        "test_examples": len(data.test),
        "test_split": data.test_split,
        "data_source": data.source,
        "data_layout": data.layout,
        "data_revision": dataset_revision(data),
        "data_notes": data.notes,
        "data_protocol": protocol_record(spec, data),
        "inputs": DOMAINS.get(data.domain).input_notes(data, input_settings(spec, cell.config, data)),
        "class_names": data.class_names,
        "metrics": metrics,
        "val_accuracy_per_epoch": outcome.val_accuracy,
        "time": {
            "train_s": outcome.train_s,
            "eval_s": eval_s,
            "time_to_target_s": outcome.time_to_target_s,
            "target_accuracy": cell.target,
            "device_s": outcome.extra.pop("run_wall_s"),  # the whole run on the device: build, train, validate, test
        },
        "throughput": {
            "train_samples_per_s": outcome.samples_per_s,
            "eval_samples_per_s": len(preds) / eval_s if preds is not None and eval_s > 0 else None,
            "excluded": excluded,
        },
        "steps": outcome.steps,
        "distributed": distributed.describe(spec.budget.batch_size, sync_bn=cell.sync_bn_layers > 0),
        "details": outcome.extra,
        "params": {"total": model.num_params(), "trainable": model.num_params(trainable_only=True)},
        "weights_revision": weights_revision(
            cell.identity["adapter"], model, pretrained=strategy.pretrained, weights=spec.weights
        ),
        "config": cell.identity,
        "run_spec": public_spec(spec),
        "preprocessing": model.preprocessing.to_dict(),
        "versions": provenance.versions(),
        "git_commit": provenance.git_commit(),
        "hardware": provenance.device_info(str(cell.device)),
        "finished_at": provenance.now_utc(),
    }


def finished_ids(out_dir: Path) -> set[str]:
    """Run ids --resume skips: records in the folder's set (results.jsonl and any shard files) whose
    status is SETTLED. A ``failed`` or ``oom`` record does not count: that run is tried again."""
    return {r["run_id"] for r in read_records(out_dir) if "run_id" in r and r.get("status") in SETTLED}


def checkpoint_file(out_dir: Path, run_id: str) -> Path:
    """A cell's per-epoch checkpoint (``Cell.checkpoint``), named by its run id."""
    return out_dir / "checkpoints" / f"{run_id}.pt"


def _load_key(spec: RunSpec, config: TaskConfig) -> tuple:
    """Runs whose decoded data is the same share one load."""
    settings = DOMAINS.get(config.domain).load_settings(run_options(spec), config, ADAPTERS.get(spec.adapter))
    return (config.name, spec.data_dir, spec.test_fold, tuple(sorted(settings.items())))


def _load(spec: RunSpec, config: TaskConfig, log: Any) -> TaskData:
    settings = DOMAINS.get(config.domain).load_settings(run_options(spec), config, ADAPTERS.get(spec.adapter))
    started = time.perf_counter()
    data = load_task(config, spec.data_dir, **settings)
    log(
        f"loaded {config.name} from {data.source}: {len(data.train)} train / {len(data.test)} "
        f"{data.test_split} examples ({time.perf_counter() - started:.1f}s)"
    )
    for note in data.notes:
        log(f"  note: {note}")
    return data


# --- the matrix: plan on the driver, run through an executor, append on the driver ---------------


@dataclass(frozen=True)
class ExecutorOptions:
    """Where and how an executor places cells. The serial executor runs them here, one at a time, and
    takes none of these; the Ray executor reads them all."""

    ray_address: str | None = None  # None: $RAY_ADDRESS if set, else a fresh local instance
    gpus_per_run: float = 0
    cpus_per_run: float = 1
    max_retries: int = 2  # how often a cell whose worker process died is started again
    local_cpus: int | None = None  # CPUs of a local Ray instance this starts (None: all); no effect on a cluster

    def check(self) -> None:
        """Refuse what no scheduler can place, before any data loads."""
        if not (math.isfinite(self.cpus_per_run) and self.cpus_per_run > 0):
            raise UserError(f"--cpus-per-run must be a number above 0, got {self.cpus_per_run}")
        if not (math.isfinite(self.gpus_per_run) and self.gpus_per_run >= 0):
            raise UserError(f"--gpus-per-run must be 0 or more, got {self.gpus_per_run}")
        if self.max_retries < 0:
            raise UserError(f"--max-retries must be 0 or more, got {self.max_retries}")


@dataclass
class PlannedCell:
    """A cell as the driver planned it: spec, resolved task, its data, identity and split sizes."""

    spec: RunSpec
    config: TaskConfig
    data: TaskData
    identity: dict[str, Any]
    n_train: int = 0
    n_val: int = 0

    @property
    def run_id(self) -> str:
        return provenance.config_hash(self.identity)

    @property
    def label(self) -> str:
        return f"{self.config.name}/{self.spec.adapter}/{self.spec.strategy}/seed{self.spec.seed}"


@dataclass
class CellResult:
    """What an executor hands the driver for one cell: the record, or why there is none."""

    record: dict[str, Any] | None = None
    error: str = ""  # one line: the exception, or that the worker process died
    trace: str = ""  # the traceback, kept in the failed record's details
    hardware: dict[str, Any] | None = None  # where it failed, if known


Finish = Callable[[PlannedCell, CellResult], None]


class Executor(ABC):
    """Runs planned cells and hands each result to the driver's ``finish``, which alone appends."""

    name = ""

    def __init__(self, options: ExecutorOptions) -> None:
        options.check()
        self.options = options

    @abstractmethod
    def resolve_amp(self, spec: RunSpec) -> str:
        """What ``--amp`` resolves to where the cells run: it is part of each run's identity, so the
        driver's --resume check must compute it as the worker will."""

    @abstractmethod
    def run(self, cells: list[PlannedCell], out_dir: Path, finish: Finish, progress: bool) -> None:
        """Run every cell, calling ``finish`` once per cell from this (the driver's) thread."""

    def close(self) -> None:
        """Release what the executor started (the Ray executor: its local instance)."""
        return None


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])(?:/[^\s/\"':]+)+/([^\s/\"':]+)")


def describe_error(exc: BaseException) -> str:
    """One line for a failed record's status_detail: the type and the message's first line."""
    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def without_paths(text: str) -> str:
    """Absolute paths cut to their last part: records get published, a machine's folders do not."""
    return _ABSOLUTE_PATH.sub(r"\1", text)


def _hardware(device: str) -> dict[str, Any]:
    try:
        return provenance.device_info(str(resolve_device(device)))
    except UserError:
        return provenance.device_info(device)


def run_here(spec: RunSpec, data: TaskData, out_dir: Path | None, progress: bool, *, stop_on: tuple) -> CellResult:
    """Run one cell in this process without writing. An exception of the types in ``stop_on``
    propagates; any other becomes a failed result with its traceback (BaseException, such as
    KeyboardInterrupt, always propagates)."""
    try:
        return CellResult(record=execute(spec, data, out_dir=out_dir, progress=progress, write=False))
    except stop_on:
        raise
    except Exception as exc:
        return CellResult(error=describe_error(exc), trace=traceback.format_exc(), hardware=_hardware(spec.device))


class SerialExecutor(Executor):
    """The cells one after another in this process (the default). A UserError raised by a cell
    stops the matrix as it always did: it is bad input that the next cells would mostly meet too, and
    the plan already refused what it could see before training. Any other exception (a bug, a
    library's crash) is recorded as ``failed`` and the remaining cells run."""

    name = "serial"

    def resolve_amp(self, spec: RunSpec) -> str:
        return resolve_amp(spec.amp, resolve_device(spec.device))

    def run(self, cells: list[PlannedCell], out_dir: Path, finish: Finish, progress: bool) -> None:
        for cell in cells:
            finish(cell, run_here(cell.spec, cell.data, out_dir, progress, stop_on=(UserError,)))


class LaunchedExecutor(SerialExecutor):
    """The serial executor in each process of one run across processes (torchrun, accelerate
    launch; docs/distributed.md), which every rank's driver uses: all ranks run each cell together.
    Any exception ends the process (the launcher then stops the others): a rank that recorded a
    failure and went on to the next cell would meet its peers' collectives of the failed one. Only
    rank 0's driver appends and logs."""

    name = "launched"

    def run(self, cells: list[PlannedCell], out_dir: Path, finish: Finish, progress: bool) -> None:
        for cell in cells:
            result = run_here(cell.spec, cell.data, out_dir, progress, stop_on=(Exception,))
            if distributed.is_main():
                finish(cell, result)


EXECUTORS: Registry[Callable[[ExecutorOptions], Executor]] = Registry("executor")
EXECUTORS.add("serial", SerialExecutor)


def split_sizes(spec: RunSpec, data: TaskData) -> tuple[int, int]:
    """Training and validation sizes of the run, as ``make_splits`` gives them, from the labels alone
    (no inputs copied): the plan checks every cell's budget against its data before anything trains."""
    indices = Split(np.arange(len(data.train)), data.train.labels)
    train_split, val_split = make_splits(spec, dataclasses.replace(data, train=indices))
    return len(train_split), len(val_split)


def plan(
    specs: list[RunSpec], *, out_dir: Path, resume: bool, executor: Executor, log: Any = print
) -> list[PlannedCell]:
    """Each cell resolved once, on the driver: its task's data (loaded once per load key), its
    identity (``amp`` as the executor resolves it) and split sizes; with ``resume``, finished runs
    are left out."""
    cache: dict[tuple, TaskData] = {}
    done = finished_ids(out_dir) if resume else set()
    cells = []
    for spec in specs:
        config = task_config(spec)
        amp = executor.resolve_amp(spec)  # first: a device the workers lack is refused before data loads
        key = _load_key(spec, config)
        if key not in cache:
            cache[key] = _load(spec, config, log)
        data = cache[key]
        cell = PlannedCell(spec, config, data, run_identity(spec, data, config, resolved_strategy(spec), amp))
        if cell.run_id in done:
            log(f"skip {cell.label}: finished record {cell.run_id} exists")
            continue
        cell.n_train, cell.n_val = split_sizes(spec, data)
        cells.append(cell)
    return cells


def failed_record(cell: PlannedCell, result: CellResult) -> dict[str, Any]:
    """The record of a cell that raised or whose worker died: identity and the error, no measurements
    (``results.validate_record`` accepts it, ``aggregate`` leaves it out, --resume reruns it)."""
    spec, data = cell.spec, cell.data
    strategy = resolved_strategy(spec)
    return {
        "run_id": cell.run_id,
        "config_hash": cell.run_id,
        "status": FAILED,
        "status_detail": without_paths(result.error),
        "task": data.task,
        "domain": data.domain,
        "adapter": cell.identity["adapter"],
        "strategy": strategy.name,
        "pretrained": strategy.pretrained and not ADAPTERS.get(spec.adapter).classical,
        "seed": spec.seed,
        "epochs": spec.budget.epochs,
        "train_examples": cell.n_train,
        "val_examples": cell.n_val,
        "test_examples": len(data.test),
        "test_split": data.test_split,
        "data_source": data.source,
        "details": {"traceback": without_paths(result.trace)[-4000:]} if result.trace else {},
        "config": cell.identity,
        "run_spec": public_spec(spec),
        "versions": provenance.versions(),
        "git_commit": provenance.git_commit(),
        "hardware": result.hardware or {"device": spec.device, "cpu": "unknown (the worker process died)"},
        "finished_at": provenance.now_utc(),
    }


def _append(cell: PlannedCell, result: CellResult, target: Path, out_dir: Path, log: Any) -> dict[str, Any]:
    """The driver's one write per cell: the record (or a failed one), then the checkpoint goes."""
    record = result.record if result.record is not None else failed_record(cell, result)
    append_or_keep(target, record)
    if result.record is not None:
        checkpoint_file(out_dir, record["run_id"]).unlink(missing_ok=True)
        if record["run_id"] != cell.run_id:
            log(
                f"note: {cell.label}: recorded as run {record['run_id']}, planned as {cell.run_id} (the worker's "
                "device or code differs from the driver's): --resume from this driver will not recognise it"
            )
    log(_summary_line(record))
    return record


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based) of a matrix, for job arrays (SLURM, Kubernetes Indexed
    Jobs). Cells are ordered by the hash of their public spec (data-free: a shard loads only the data
    it trains on; no paths or Python ``hash()``: the same on every machine and process) and dealt
    round-robin, so shard sizes differ by at most one cell. Every shard must get the same matrix."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise UserError(
                f"--shard {self.index}/{self.count} is not valid: expected I/N with 1 <= I <= N "
                "(I counts from 1; a 0-based index such as JOB_COMPLETION_INDEX needs +1)"
            )

    @property
    def file(self) -> str:
        return shard_file(self.index, self.count)

    def select(self, specs: list[RunSpec]) -> list[RunSpec]:
        """This shard's cells, in matrix order."""
        ranked = sorted(range(len(specs)), key=lambda i: provenance.config_hash(public_spec(specs[i])))
        mine = set(ranked[self.index - 1 :: self.count])
        return [spec for i, spec in enumerate(specs) if i in mine]


def run_all(
    specs: list[RunSpec],
    *,
    out_dir: Path,
    resume: bool = False,
    progress: bool = True,
    log: Any = print,
    executor: str | Executor = "serial",
    options: ExecutorOptions | None = None,
    shard: Shard | None = None,
) -> list[dict[str, Any]]:
    """Run a matrix: validate every spec, then (``shard``) keep this shard's cells; plan them
    (``plan``); let the executor run them; append each record here, to results.jsonl or the shard's
    file (one writer keeps the append-only file whole). Returns the records in the order they were
    appended. An executor given by name (``EXECUTORS``: "serial"; "ray" once
    ``transferbench.benchmarks.ray_executor`` is imported, as the CLI does) is made from ``options``
    and closed at the end; an Executor instance is the caller's to close."""
    for spec in specs:
        validate_spec(spec)
    specs = shard.select(specs) if shard is not None else specs
    target = out_dir / (shard.file if shard is not None else RESULTS_FILE)
    check_results_file(target)
    kept = flush_pending(target) if distributed.is_main() else 0  # one writer, also under a launcher
    if kept:
        log(f"added {kept} finished records that an earlier run could not write to {target}")
    owned = not isinstance(executor, Executor)
    runner = EXECUTORS.get(executor)(options or ExecutorOptions()) if isinstance(executor, str) else executor
    records: list[dict[str, Any]] = []
    try:
        cells = plan(specs, out_dir=out_dir, resume=resume, executor=runner, log=log)

        def finish(cell: PlannedCell, result: CellResult) -> None:
            records.append(_append(cell, result, target, out_dir, log))

        runner.run(cells, out_dir, finish, progress)
    finally:
        if owned:
            runner.close()
    return records


def _summary_line(r: dict[str, Any]) -> str:
    name = f"{r['task']}/{r['adapter']}/{r['strategy']}/seed{r['seed']}"
    if r["status"] == FAILED:
        return f"{name}: {r['status_detail']} [FAILED]"
    acc = r["metrics"].get("accuracy")
    score = f"accuracy {acc:.3f}, macro-F1 {r['metrics']['macro_f1']:.3f}" if acc is not None else r["status_detail"]
    flag = "" if r["status"] == "ok" else f" [{r['status'].upper()}]"
    return f"{name}: {score}; train {r['time']['train_s']:.1f}s{flag}"
