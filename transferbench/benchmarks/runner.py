"""Run one comparison cell (task x adapter x strategy x seed) and record it.

The flow (docs/design.md): resolve names -> load and decode the task once -> carve a seeded,
stratified validation split out of train (test is never used for choices) -> build the adapter
(pretrained or random) -> freeze per strategy -> train or fit a probe -> evaluate on test ->
append one record with metrics, timings, config and provenance.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferbench.adapters import ADAPTERS, Adapter
from transferbench.adapters.base import FreezePolicy
from transferbench.adapters.classical import ClassicalAdapter
from transferbench.benchmarks import provenance
from transferbench.benchmarks.metrics import compute_metrics
from transferbench.benchmarks.results import RESULTS_FILE, append_record, read_records
from transferbench.benchmarks.strategies import STRATEGIES, Strategy
from transferbench.benchmarks.training import Budget, TrainOutcome, fit_linear_probe, predict, train
from transferbench.errors import UserError
from transferbench.tasks import TaskData, load_task, resolve_task
from transferbench.tasks.audio import AudioPipeline
from transferbench.tasks.base import Split, TaskConfig, stratified_split, subsample
from transferbench.tasks.text import TextPipeline
from transferbench.tasks.vision import VisionPipeline

AMP_MODES = ("auto", "off", "bf16", "fp16")
OPTION_DOMAINS = {
    "model_path": ("text", "audio"),
    "trust_remote_code": ("text", "audio"),
    "pooling": ("text",),
    "max_length": ("text",),
}


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
    max_train_examples: int | None = None
    per_class: bool = False  # max_train_examples counts examples per class
    test_fold: int | None = None  # fold-based tasks (ESC-50): which fold is held out as test
    val_fraction: float = 0.1
    split_seed: int = 0  # the validation split is fixed across seeds: seeds vary training only
    device: str = "auto"
    amp: str = "auto"
    channels_last: bool = False
    compile: bool = False  # torch.compile the adapter's forward
    target_accuracy: float | None = None
    pipeline_efficiency: bool | None = None  # None: measure on CUDA only


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not valid: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    return device


def resolve_amp(amp: str, device: torch.device) -> str:
    if amp not in AMP_MODES:
        raise UserError(f"--amp {amp!r} is not valid: expected one of {', '.join(AMP_MODES)}")
    if amp == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "off"
    return amp


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolved_strategy(spec: RunSpec) -> Strategy:
    """The strategy's defaults, then the adapter family's recipe for it, then the user's overrides."""
    base = STRATEGIES.get(spec.strategy)
    recipe = ADAPTERS.get(spec.adapter).recipes.get(base.name, {})
    return base.with_overrides(**recipe).with_overrides(
        lr=spec.lr,
        backbone_lr_scale=spec.backbone_lr_scale,
        weight_decay=spec.weight_decay,
        freeze=spec.freeze,
        bn_policy=spec.bn_policy,
    )


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
    if spec.lr is not None and not spec.lr > 0:
        raise UserError(f"--lr must be a positive number, got {spec.lr}")
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
    if adapter.classical and strategy.name != "scratch":
        raise UserError(f"adapter {adapter.name!r} has no pretrained weights: it runs with --strategy scratch only")
    for option, domains in OPTION_DOMAINS.items():
        if getattr(spec, option) and adapter.domain not in domains:
            raise UserError(
                f"--{option.replace('_', '-')} applies to {' and '.join(domains)} adapters; "
                f"{adapter.name!r} is {adapter.domain}"
            )


def task_config(spec: RunSpec) -> TaskConfig:
    """The task's config with the run's overrides (the held-out fold of fold-based tasks)."""
    config = resolve_task(spec.task, spec.data_dir)
    if spec.test_fold is None:
        return config
    if "test_fold" not in config.options:
        raise UserError(f"--test-fold applies to fold-based tasks (esc50); {config.name!r} has fixed splits")
    if not 1 <= spec.test_fold <= 5:
        raise UserError(f"--test-fold must be 1-5, got {spec.test_fold}")
    note = f"ESC-50 has no test split: fold {spec.test_fold} is held out as test, the other four train"
    return dataclasses.replace(config, options={**config.options, "test_fold": spec.test_fold}, test_note=note)


def input_settings(spec: RunSpec, config: TaskConfig) -> dict[str, Any]:
    """The input-shaping settings of a run, resolved (part of its identity)."""
    adapter = ADAPTERS.get(spec.adapter)
    if config.domain == "vision":
        return {"image_size": spec.image_size or config.image_size or adapter.input_size}
    if config.domain == "text" and not adapter.classical:
        return {
            "max_length": spec.max_length or 128,
            "pooling": spec.pooling or "mean",
            "model_path": spec.model_path,
            "trust_remote_code": spec.trust_remote_code,
        }
    if config.domain == "audio":
        return {
            "sample_rate": adapter.sample_rate,
            "duration_s": config.options.get("duration_s", 1.0),
            "model_path": spec.model_path,
        }
    return {}


def run_identity(spec: RunSpec, data: TaskData, config: TaskConfig, strategy: Strategy, amp: str) -> dict[str, Any]:
    """The config whose hash identifies a run (for --resume and for citing)."""
    import transferbench

    return {
        "task": data.task,
        "adapter": ADAPTERS.canonical(spec.adapter),
        "adapter_revision": ADAPTERS.get(spec.adapter).revision,
        "strategy": strategy.to_dict(),
        "seed": spec.seed,
        "budget": asdict(spec.budget),
        "head": spec.head,
        **input_settings(spec, config),
        "max_train_examples": spec.max_train_examples,
        "per_class": spec.per_class,
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


def make_splits(spec: RunSpec, data: TaskData) -> tuple[Split, Split]:
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
    adapter_spec = ADAPTERS.get(spec.adapter)
    options = {o: getattr(spec, o) for o in OPTION_DOMAINS if getattr(spec, o)}
    model = adapter_spec.create(
        num_classes=num_classes,
        pretrained=strategy.pretrained,
        weights=spec.weights if strategy.pretrained else None,
        head=spec.head,
        **options,
    )
    if isinstance(model, ClassicalAdapter):
        return model
    model.freeze(strategy.freeze)
    model.set_bn_policy(strategy.bn_policy)
    if strategy.bn_momentum is not None:
        for bn in model.batchnorm_layers():
            bn.momentum = strategy.bn_momentum
    return model


def near_chance(accuracy: float, n: int, labels: np.ndarray) -> tuple[bool, float, float]:
    """Is test accuracy indistinguishable from always predicting the majority class?
    One-sided binomial test at p < 0.01. Returns (near_chance, majority_rate, p_value)."""
    from scipy.stats import binomtest

    majority = float(np.bincount(labels).max() / len(labels))
    p_value = float(binomtest(round(accuracy * n), n, majority, alternative="greater").pvalue)
    return p_value >= 0.01, majority, p_value


def make_pipelines(
    spec: RunSpec,
    model: Adapter,
    config: TaskConfig,
    splits: tuple[Split, ...],
    settings: dict[str, Any],
    device: torch.device,
) -> list[Any]:
    """Training, validation and test pipelines for the task's domain (training one augments)."""
    if config.domain == "vision":
        common = {
            "image_size": settings["image_size"],
            "flip": config.flip_augment,
            "device": device,
            "channels_last": spec.channels_last,
        }
        return [VisionPipeline(split, model.preprocessing, train=i == 0, **common) for i, split in enumerate(splits)]
    if config.domain == "text":
        return [TextPipeline(split, model, device=device) for split in splits]
    if config.domain == "audio":
        return [
            AudioPipeline(
                split, rate=settings["sample_rate"], duration_s=settings["duration_s"], train=i == 0, device=device
            )
            for i, split in enumerate(splits)
        ]
    raise NotImplementedError(config.domain)


def execute(spec: RunSpec, data: TaskData, *, out_dir: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Run one cell and (if ``out_dir``) append its record to ``out_dir/results.jsonl``."""
    from tqdm.auto import tqdm

    config = task_config(spec)
    strategy = resolved_strategy(spec)
    device = resolve_device(spec.device)
    amp = resolve_amp(spec.amp, device)
    identity = run_identity(spec, data, config, strategy, amp)
    target = spec.target_accuracy if spec.target_accuracy is not None else config.target_accuracy
    train_split, val_split = make_splits(spec, data)
    seed_everything(spec.seed)
    started = time.perf_counter()
    model = build_adapter(spec, strategy, data.num_classes)
    ckpt = out_dir / "checkpoints" / f"{provenance.config_hash(identity)}.pt" if out_dir is not None else None
    if isinstance(model, ClassicalAdapter):
        outcome, preds, eval_s = _fit_classical(model, train_split, val_split, data.test, spec.seed)
        if target is not None and outcome.val_accuracy[0] >= target:
            outcome.time_to_target_s = outcome.train_s
    else:
        model.to(device)
        if spec.channels_last:
            model.to(memory_format=torch.channels_last)
        if spec.compile:
            model.compile()  # compiles __call__ in place; freezing, heads and param groups still apply
        settings = input_settings(spec, config)
        train_pipe, val_pipe, test_pipe = make_pipelines(
            spec, model, config, (train_split, val_split, data.test), settings, device
        )
        label = f"{data.task}/{identity['adapter']}/{strategy.name}/seed{spec.seed}"
        probe_only = strategy.probe and spec.head == "linear"
        steps = 4 if probe_only else spec.budget.total_steps(len(train_pipe))
        with tqdm(total=steps, desc=label, disable=not progress, leave=False, dynamic_ncols=True) as bar:
            outcome = _fit(model, strategy, spec, train_pipe, val_pipe, device, amp, target, bar, ckpt)
        preds, eval_s = (
            predict(model, test_pipe, spec.budget.batch_size * 2, device, amp)
            if outcome.status == "ok"
            else (None, 0.0)
        )
        measure_pipeline = spec.pipeline_efficiency if spec.pipeline_efficiency is not None else device.type == "cuda"
        if measure_pipeline and not probe_only and outcome.status == "ok" and outcome.samples_per_s:
            outcome.extra["pipeline_efficiency"] = _pipeline_efficiency(
                model, spec, settings, device, amp, outcome.samples_per_s
            )
    outcome.extra["run_wall_s"] = time.perf_counter() - started
    record = _record(
        spec,
        data,
        model,
        strategy,
        identity,
        outcome,
        preds,
        eval_s,
        len(train_split),
        len(val_split),
        device,
        amp,
        target,
    )
    if out_dir is not None:
        append_record(out_dir / RESULTS_FILE, record)
        if ckpt is not None:
            ckpt.unlink(missing_ok=True)
    return record


def _pipeline_efficiency(
    model: Adapter, spec: RunSpec, settings: dict[str, Any], device: torch.device, amp: str, real_rate: float
) -> dict[str, Any]:
    """Real-data training samples/s divided by synthetic-input samples/s at the same batch size
    (runs after the test evaluation, so the extra steps cannot touch the reported metrics). For text
    the synthetic batch is padded to max_length: above 1 means length bucketing beats full padding."""
    from transferbench.benchmarks.throughput import BenchConfig, measure

    cfg = BenchConfig(
        adapter=spec.adapter,
        batch_size=spec.budget.batch_size,
        image_size=settings.get("image_size"),
        seq_len=settings.get("max_length") or 128,
        channels_last=spec.channels_last,
        steps=10,
        warmup=3,
    )
    synthetic = measure(model, cfg, spec.budget.batch_size, device, amp, "train")
    return {
        "ratio": real_rate / synthetic["samples_per_s"],
        "synthetic_samples_per_s": synthetic["samples_per_s"],
        "real_samples_per_s": real_rate,
    }


def _fit_classical(
    model: ClassicalAdapter, train_split: Split, val_split: Split, test: Split, seed: int
) -> tuple[TrainOutcome, np.ndarray, float]:
    outcome = TrainOutcome(steps=1)
    start = time.perf_counter()
    details = model.fit(train_split.inputs, train_split.labels, val_split.inputs, val_split.labels, seed)
    outcome.train_s = outcome.timed_s = time.perf_counter() - start
    outcome.timed_samples = len(train_split)
    outcome.val_accuracy = [details.pop("val_accuracy")]
    outcome.extra = details
    start = time.perf_counter()
    preds = model.predict(test.inputs)
    return outcome, preds, time.perf_counter() - start


def _fit(model, strategy, spec, train_pipe, val_pipe, device, amp, target, bar, ckpt) -> TrainOutcome:
    """Probe, train, or (LP-FT) probe then train; the probe's time counts as training time."""
    probe_only = strategy.probe and spec.head == "linear"
    if probe_only or strategy.head_init == "probe":
        if spec.head != "linear":
            raise UserError(f"strategy {strategy.name!r} fits a linear probe: it needs --head linear")
        probe = fit_linear_probe(
            model, train_pipe.unaugmented(), val_pipe, spec.budget, device=device, amp=amp, seed=spec.seed, progress=bar
        )
        if probe_only:
            if target is not None and probe.val_accuracy[0] >= target:
                probe.time_to_target_s = probe.train_s  # a probe reaches its accuracy when the fit ends
            return probe
    outcome = train(
        model,
        strategy,
        spec.budget,
        train_pipe,
        val_pipe,
        device=device,
        amp=amp,
        seed=spec.seed,
        target_accuracy=target,
        progress=bar,
        checkpoint_path=ckpt,
    )
    if strategy.head_init == "probe":
        outcome.train_s += probe.train_s
        if outcome.time_to_target_s is not None:
            outcome.time_to_target_s += probe.train_s
        outcome.extra.update(probe_C=probe.extra["probe_C"], probe_val_accuracy=probe.val_accuracy[0])
    return outcome


def _record(
    spec: RunSpec,
    data: TaskData,
    model: Adapter | ClassicalAdapter,
    strategy: Strategy,
    identity: dict[str, Any],
    outcome: TrainOutcome,
    preds: np.ndarray | None,
    eval_s: float,
    n_train: int,
    n_val: int,
    device: torch.device,
    amp: str,
    target: float | None,
) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    status = outcome.status
    if preds is not None:
        metrics = compute_metrics(preds, data.test.labels, data.num_classes)
        chance, majority, p_value = near_chance(metrics["accuracy"], len(preds), data.test.labels)
        metrics.update(majority_class_accuracy=majority, p_value_vs_majority=p_value)
        if chance:
            status = "near-chance"
            outcome.status_detail = (
                f"test accuracy {metrics['accuracy']:.3f} is not significantly above "
                f"always predicting the majority class ({majority:.3f}); the run did not learn"
            )
    probe_only = isinstance(model, ClassicalAdapter) or (strategy.probe and spec.head == "linear")
    excluded = (
        "closed-form fit: rate over the one pass (features + solver)"
        if probe_only
        else f"first {outcome.warmup_steps_excluded} training steps (warm-up) and all evaluation"
    )
    run_id = provenance.config_hash(identity)
    return {
        "run_id": run_id,
        "config_hash": run_id,
        "status": status,
        "status_detail": outcome.status_detail,
        "task": data.task,
        "domain": data.domain,
        "adapter": identity["adapter"],
        "strategy": strategy.name,
        "pretrained": strategy.pretrained and not isinstance(model, ClassicalAdapter),
        "seed": spec.seed,
        "epochs": spec.budget.epochs,
        "train_examples": n_train,
        "val_examples": n_val,
        "test_examples": len(data.test),
        "test_split": data.test_split,
        "data_source": data.source,
        "data_notes": data.notes,
        "class_names": data.class_names,
        "metrics": metrics,
        "val_accuracy_per_epoch": outcome.val_accuracy,
        "time": {
            "train_s": outcome.train_s,
            "eval_s": eval_s,
            "time_to_target_s": outcome.time_to_target_s,
            "target_accuracy": target,
            "device_s": outcome.extra.pop("run_wall_s"),  # the whole run on the device: build, train, validate, test
        },
        "throughput": {
            "train_samples_per_s": outcome.samples_per_s,
            "eval_samples_per_s": len(preds) / eval_s if preds is not None and eval_s > 0 else None,
            "excluded": excluded,
        },
        "steps": outcome.steps,
        "details": outcome.extra,
        "params": {"total": model.num_params(), "trainable": model.num_params(trainable_only=True)},
        "config": identity,
        "preprocessing": model.preprocessing.to_dict(),
        "versions": provenance.versions(),
        "git_commit": provenance.git_commit(),
        "hardware": provenance.device_info(str(device)),
        "finished_at": provenance.now_utc(),
    }


def finished_ids(out_dir: Path) -> set[str]:
    return {r["run_id"] for r in read_records(out_dir / RESULTS_FILE) if "run_id" in r}


def _load_key(spec: RunSpec, config: TaskConfig) -> tuple:
    rate = ADAPTERS.get(spec.adapter).sample_rate if config.domain == "audio" else None
    return (config.name, spec.data_dir, spec.image_size, spec.text_column, spec.label_column, spec.test_fold, rate)


def run_all(
    specs: list[RunSpec], *, out_dir: Path, resume: bool = False, progress: bool = True, log: Any = print
) -> list[dict[str, Any]]:
    """Run specs in order, loading each task's data once; with ``resume``, skip finished runs."""
    for spec in specs:
        validate_spec(spec)
    cache: dict[tuple, TaskData] = {}
    done = finished_ids(out_dir) if resume else set()
    records = []
    for spec in specs:
        config = task_config(spec)
        key = _load_key(spec, config)
        if key not in cache:
            started = time.perf_counter()
            cache[key] = data = load_task(
                config,
                spec.data_dir,
                image_size=spec.image_size or config.image_size or 224,
                text_column=spec.text_column,
                label_column=spec.label_column,
                sample_rate=key[-1] or 16_000,
            )
            log(
                f"loaded {config.name} from {data.source}: {len(data.train)} train / {len(data.test)} "
                f"{data.test_split} examples ({time.perf_counter() - started:.1f}s)"
            )
            for note in data.notes:
                log(f"  note: {note}")
        data = cache[key]
        if resume:
            amp = resolve_amp(spec.amp, resolve_device(spec.device))
            run_id = provenance.config_hash(run_identity(spec, data, config, resolved_strategy(spec), amp))
            if run_id in done:
                name = f"{config.name}/{spec.adapter}/{spec.strategy}/seed{spec.seed}"
                log(f"skip {name}: finished record {run_id} exists")
                continue
        record = execute(spec, data, out_dir=out_dir, progress=progress)
        log(_summary_line(record))
        records.append(record)
    return records


def _summary_line(r: dict[str, Any]) -> str:
    acc = r["metrics"].get("accuracy")
    score = f"accuracy {acc:.3f}, macro-F1 {r['metrics']['macro_f1']:.3f}" if acc is not None else r["status_detail"]
    flag = "" if r["status"] == "ok" else f" [{r['status'].upper()}]"
    name = f"{r['task']}/{r['adapter']}/{r['strategy']}/seed{r['seed']}"
    return f"{name}: {score}; train {r['time']['train_s']:.1f}s{flag}"
