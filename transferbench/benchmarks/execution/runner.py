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
import time
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
from transferbench.benchmarks.execution.throughput import BenchConfig, pipeline_efficiency
from transferbench.benchmarks.plan.local_paths import portable_identity, public_location
from transferbench.benchmarks.results import provenance
from transferbench.benchmarks.results.store import (
    RESULTS_FILE,
    append_or_keep,
)
from transferbench.benchmarks.runtime import distributed
from transferbench.benchmarks.runtime.device import (
    peak_memory,
    reset_peak_memory,
    resolve_amp,
    resolve_device,
    seed_everything,
)
from transferbench.benchmarks.strategies.base import STRATEGIES, Strategy
from transferbench.benchmarks.training.loop import Budget, FitRun, TrainOutcome, predict
from transferbench.benchmarks.training.metrics import compute_metrics
from transferbench.errors import UserError
from transferbench.tasks import DOMAINS, TaskData, resolve_task
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
    """The config whose hash identifies a run (for --resume and for citing), free of the machine's
    absolute paths (``local_paths``)."""
    return portable_identity(
        {
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
    )


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
        "data_source": public_location(data.source),
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


def checkpoint_file(out_dir: Path, run_id: str) -> Path:
    """A cell's per-epoch checkpoint (``Cell.checkpoint``), named by its run id."""
    return out_dir / "checkpoints" / f"{run_id}.pt"
