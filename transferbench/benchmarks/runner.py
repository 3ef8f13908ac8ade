"""Run one comparison cell (task x adapter x strategy x seed) and record it.

The flow (docs/design.md): resolve names -> load and decode the task once -> carve a seeded,
stratified validation split out of train (test is never used for choices) -> build the adapter
(pretrained or random) -> freeze per strategy -> train or fit a probe -> evaluate on test ->
append one record with metrics, timings, config and provenance.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferbench.adapters import ADAPTERS, Adapter
from transferbench.benchmarks import provenance
from transferbench.benchmarks.metrics import compute_metrics
from transferbench.benchmarks.results import RESULTS_FILE, append_record, read_records
from transferbench.benchmarks.strategies import STRATEGIES, Strategy
from transferbench.benchmarks.training import Budget, TrainOutcome, fit_linear_probe, predict, train
from transferbench.errors import UserError
from transferbench.tasks import TaskData, load_task, resolve_task
from transferbench.tasks.base import TaskConfig, stratified_split, subsample
from transferbench.tasks.vision import VisionPipeline

AMP_MODES = ("auto", "off", "bf16", "fp16")


@dataclass
class RunSpec:
    """Everything that defines one run. Defaults are the published recipe."""

    task: str
    adapter: str
    strategy: str
    seed: int = 0
    data_dir: str | None = None
    budget: Budget = field(default_factory=Budget)
    lr: float | None = None  # overrides the strategy's head lr
    backbone_lr_scale: float | None = None
    weight_decay: float | None = None
    freeze: str | None = None  # overrides the strategy's freeze policy
    bn_policy: str | None = None
    head: str = "linear"
    weights: str | None = None
    image_size: int | None = None
    max_train_examples: int | None = None
    val_fraction: float = 0.1
    split_seed: int = 0  # the validation split is fixed across seeds: seeds vary training only
    device: str = "auto"
    amp: str = "auto"
    channels_last: bool = False
    target_accuracy: float | None = None


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
    base = STRATEGIES.get(spec.strategy)
    return base.with_overrides(
        lr=spec.lr,
        backbone_lr_scale=spec.backbone_lr_scale,
        weight_decay=spec.weight_decay,
        freeze=spec.freeze,
        bn_policy=spec.bn_policy,
    )


def validate_spec(spec: RunSpec) -> None:
    """Fail fast, before any data is loaded, on options that cannot work."""
    if spec.budget.epochs < 1:
        raise UserError(f"--epochs must be a positive integer, got {spec.budget.epochs}")
    if spec.budget.batch_size < 1:
        raise UserError(f"--batch-size must be a positive integer, got {spec.budget.batch_size}")
    if spec.lr is not None and not spec.lr > 0:
        raise UserError(f"--lr must be a positive number, got {spec.lr}")
    if spec.image_size is not None and spec.image_size < 8:
        raise UserError(f"--image-size must be at least 8 pixels, got {spec.image_size}")
    if spec.max_train_examples is not None and spec.max_train_examples < 1:
        raise UserError(f"--max-train-examples must be a positive integer, got {spec.max_train_examples}")
    if spec.weights and not Path(spec.weights).is_file():
        raise UserError(f"--weights {spec.weights}: file not found")
    ADAPTERS.canonical(spec.adapter)
    resolved_strategy(spec)
    from transferbench.adapters.base import FreezePolicy

    FreezePolicy.parse(resolved_strategy(spec).freeze)


def run_identity(spec: RunSpec, data: TaskData, strategy: Strategy, image_size: int, amp: str) -> dict[str, Any]:
    """The config whose hash identifies a run (for --resume and for citing)."""
    import transferbench

    return {
        "task": data.task,
        "adapter": ADAPTERS.canonical(spec.adapter),
        "strategy": strategy.to_dict(),
        "seed": spec.seed,
        "budget": asdict(spec.budget),
        "head": spec.head,
        "image_size": image_size,
        "max_train_examples": spec.max_train_examples,
        "val_fraction": spec.val_fraction,
        "split_seed": spec.split_seed,
        "weights": spec.weights,
        "amp": amp,
        "channels_last": spec.channels_last,
        "data_fingerprint": data.fingerprint(),
        "code_version": transferbench.__version__,
    }


def make_splits(spec: RunSpec, data: TaskData) -> tuple[Any, Any]:
    keep, held = stratified_split(data.train.labels, spec.val_fraction, spec.split_seed)
    train_split, val_split = data.train.subset(keep), data.train.subset(held)
    if spec.max_train_examples is not None and spec.max_train_examples < len(train_split):
        train_split = train_split.subset(subsample(train_split.labels, spec.max_train_examples, spec.split_seed))
    if len(train_split) < spec.budget.batch_size:
        raise UserError(
            f"--batch-size {spec.budget.batch_size} is larger than the {len(train_split)} training examples"
        )
    return train_split, val_split


def build_adapter(spec: RunSpec, strategy: Strategy, num_classes: int) -> Adapter:
    adapter_spec = ADAPTERS.get(spec.adapter)
    model = adapter_spec.create(
        num_classes=num_classes,
        pretrained=strategy.pretrained,
        weights=spec.weights if strategy.pretrained else None,
        head=spec.head,
    )
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


def pipelines(spec: RunSpec, data: TaskData, model: Adapter, config: TaskConfig, image_size: int, device: torch.device):
    train_split, val_split = make_splits(spec, data)
    if data.domain != model.domain:
        raise UserError(f"adapter {spec.adapter!r} is a {model.domain} adapter; task {data.task!r} is {data.domain}")
    common = {
        "image_size": image_size,
        "flip": config.flip_augment,
        "device": device,
        "channels_last": spec.channels_last,
    }
    prep = model.preprocessing
    return (
        VisionPipeline(train_split, prep, train=True, **common),
        VisionPipeline(val_split, prep, train=False, **common),
        VisionPipeline(data.test, prep, train=False, **common),
    )


def execute(spec: RunSpec, data: TaskData, *, out_dir: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Run one cell and (if ``out_dir``) append its record to ``out_dir/results.jsonl``."""
    from tqdm.auto import tqdm

    config = resolve_task(spec.task, spec.data_dir)
    strategy = resolved_strategy(spec)
    device = resolve_device(spec.device)
    amp = resolve_amp(spec.amp, device)
    seed_everything(spec.seed)
    model = build_adapter(spec, strategy, data.num_classes).to(device)
    if spec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    image_size = spec.image_size or config.image_size or model.preprocessing.input_size
    train_pipe, val_pipe, test_pipe = pipelines(spec, data, model, config, image_size, device)
    identity = run_identity(spec, data, strategy, image_size, amp)
    target = spec.target_accuracy if spec.target_accuracy is not None else config.target_accuracy
    label = f"{data.task}/{identity['adapter']}/{strategy.name}/seed{spec.seed}"
    steps = (len(train_pipe) // spec.budget.batch_size) * spec.budget.epochs
    steps = 4 if strategy.probe and spec.head == "linear" else steps + (4 if strategy.head_init == "probe" else 0)
    with tqdm(total=steps, desc=label, disable=not progress, leave=False, dynamic_ncols=True) as bar:
        ckpt = out_dir / "checkpoints" / f"{provenance.config_hash(identity)}.pt" if out_dir is not None else None
        outcome = _fit(model, strategy, spec, train_pipe, val_pipe, device, amp, target, bar, ckpt)
    record = _record(
        spec,
        data,
        model,
        strategy,
        identity,
        outcome,
        test_pipe,
        len(train_pipe),
        len(val_pipe),
        device,
        amp,
        target,
    )
    if out_dir is not None:
        append_record(out_dir / RESULTS_FILE, record)
        if ckpt is not None:
            ckpt.unlink(missing_ok=True)
    return record


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
    model: Adapter,
    strategy: Strategy,
    identity: dict[str, Any],
    outcome: TrainOutcome,
    test_pipe: VisionPipeline,
    n_train: int,
    n_val: int,
    device: torch.device,
    amp: str,
    target: float | None,
) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    eval_s, eval_rate = 0.0, None
    status = outcome.status
    if status == "ok":
        preds, eval_s = predict(model, test_pipe, spec.budget.batch_size * 2, device, amp)
        metrics = compute_metrics(preds, data.test.labels, data.num_classes)
        eval_rate = len(preds) / eval_s if eval_s > 0 else None
        chance, majority, p_value = near_chance(metrics["accuracy"], len(preds), data.test.labels)
        metrics.update(majority_class_accuracy=majority, p_value_vs_majority=p_value)
        if chance:
            status = "near-chance"
            outcome.status_detail = (
                f"test accuracy {metrics['accuracy']:.3f} is not significantly above "
                f"always predicting the majority class ({majority:.3f}); the run did not learn"
            )
    return {
        "run_id": provenance.config_hash(identity),
        "config_hash": provenance.config_hash(identity),
        "status": status,
        "status_detail": outcome.status_detail,
        "task": data.task,
        "domain": data.domain,
        "adapter": identity["adapter"],
        "strategy": strategy.name,
        "pretrained": strategy.pretrained,
        "seed": spec.seed,
        "epochs": spec.budget.epochs,
        "train_examples": n_train,
        "val_examples": n_val,
        "test_examples": len(data.test),
        "test_split": data.test_split,
        "data_source": data.source,
        "data_notes": data.notes,
        "class_names": data.class_names,
        "image_size": identity["image_size"],
        "metrics": metrics,
        "val_accuracy_per_epoch": outcome.val_accuracy,
        "time": {
            "train_s": outcome.train_s,
            "eval_s": eval_s,
            "time_to_target_s": outcome.time_to_target_s,
            "target_accuracy": target,
        },
        "throughput": {
            "train_samples_per_s": outcome.samples_per_s,
            "eval_samples_per_s": eval_rate,
            "excluded": f"first {outcome.warmup_steps_excluded} training steps (warm-up) and all evaluation"
            if not (strategy.probe and spec.head == "linear")
            else "probe: rate of the one feature-extraction pass",
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
        config = resolve_task(spec.task, spec.data_dir)
        key = (config.name, spec.data_dir, spec.image_size)
        if key not in cache:
            started = time.perf_counter()
            cache[key] = load_task(config, spec.data_dir, image_size=spec.image_size or config.image_size or 224)
            log(
                f"loaded {config.name} from {cache[key].source}: {len(cache[key].train)} train / "
                f"{len(cache[key].test)} {cache[key].test_split} examples ({time.perf_counter() - started:.1f}s)"
            )
        data = cache[key]
        if resume:
            strategy = resolved_strategy(spec)
            device = resolve_device(spec.device)
            image_size = spec.image_size or config.image_size or ADAPTERS.get(spec.adapter).input_size
            run_id = provenance.config_hash(
                run_identity(spec, data, strategy, image_size, resolve_amp(spec.amp, device))
            )
            if run_id in done:
                log(
                    f"skip {config.name}/{spec.adapter}/{spec.strategy}/seed{spec.seed}: "
                    f"finished record {run_id} exists"
                )
                continue
        record = execute(spec, data, out_dir=out_dir, progress=progress)
        log(_summary_line(record))
        records.append(record)
    return records


def _summary_line(r: dict[str, Any]) -> str:
    acc = r["metrics"].get("accuracy")
    score = f"accuracy {acc:.3f}, macro-F1 {r['metrics']['macro_f1']:.3f}" if acc is not None else r["status_detail"]
    flag = "" if r["status"] == "ok" else f" [{r['status'].upper()}]"
    return (
        f"{r['task']}/{r['adapter']}/{r['strategy']}/seed{r['seed']}: {score}; train {r['time']['train_s']:.1f}s{flag}"
    )
