"""Run one resolved cell (task x adapter x strategy x seed) and return its record.

The cell arrives resolved (``plan.resolve``: a :class:`ResolvedRun`); the runner carves the splits,
builds the adapter (pretrained or random, as the strategy says), lets the strategy prepare and fit
it on the domain's pipelines, predicts the test split once and builds the record
(``execution.records``). It never writes results: the driver alone appends (``execution.matrix``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from transferbench.adapters import Adapter
from transferbench.adapters.classical import ClassicalAdapter
from transferbench.adapters.families import weights_revision
from transferbench.benchmarks.execution.records import Tested, build_record, point_record
from transferbench.benchmarks.execution.throughput import BenchConfig, pipeline_efficiency
from transferbench.benchmarks.execution.tracked import finish_trackers, start_trackers
from transferbench.benchmarks.plan.identity import sync_bn_applies
from transferbench.benchmarks.plan.resolve import Plan, ResolvedRun
from transferbench.benchmarks.plan.splits import make_splits
from transferbench.benchmarks.runtime import distributed
from transferbench.benchmarks.runtime.device import peak_memory, reset_peak_memory, resolve_device, seed_everything
from transferbench.benchmarks.tracking import Trackers
from transferbench.benchmarks.training.evaluate import predict_proba
from transferbench.benchmarks.training.features import FeatureCache, default_dir
from transferbench.benchmarks.training.loop import FitRun, TrainOutcome
from transferbench.tasks import TaskData
from transferbench.tasks.base import Split


@dataclass
class Cell:
    """One run being executed: the resolved run, its data, where it runs and checkpoints."""

    run: ResolvedRun
    data: TaskData
    device: torch.device
    out_dir: Path | None
    sync_bn_layers: int = 0  # BatchNorm layers --sync-bn converted
    trackers: Trackers | None = None  # where it also logs (--log-to; execution.tracked)

    @property
    def target(self) -> float | None:
        spec = self.run.spec
        return spec.target_accuracy if spec.target_accuracy is not None else self.run.task.target_accuracy

    @property
    def checkpoint(self) -> Path | None:
        """Where the run checkpoints: its own file, or (a sweep's final on the swept seed) the file of
        the winning point, which holds that point's last epoch: the final tests it without retraining."""
        role = self.run.role
        run_id = role.resume_from if role is not None and role.resume_from else self.run.run_id
        return None if self.out_dir is None else checkpoint_file(self.out_dir, run_id)

    @property
    def is_point(self) -> bool:
        """A sweep point trains and validates only; its last checkpoint is kept for the final run."""
        return self.run.role is not None and self.run.role.kind == "point"


def execute(run: ResolvedRun, data: TaskData, *, out_dir: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Run one cell and return its record. Checkpoints go to ``out_dir`` (so a retried or resumed
    cell continues from its last epoch); the caller appends the record and removes the checkpoint.
    With ``--log-to``, the cell's trackers start before its clock and finish after its record."""
    device = distributed.device_for(resolve_device(run.spec.device))
    trackers = start_trackers(run, out_dir, None if run.role is None else run.role.name)
    record = None
    try:
        record = _execute(Cell(run, data, device, out_dir, trackers=trackers), progress)
    finally:
        finish_trackers(trackers, record)
    return record


def _execute(cell: Cell, progress: bool) -> dict[str, Any]:
    run, data, device = cell.run, cell.data, cell.device
    distributed.init(device)
    distributed.agree(run.run_id, "which run this is (every process must get the same runs)")
    started = time.perf_counter()
    train_split, val_split = make_splits(run.spec, data)
    seed_everything(run.spec.seed)
    model = build_adapter(run.plan, data.num_classes)
    if isinstance(model, ClassicalAdapter):  # the declared sibling contract: fitted in closed form
        setup_s = time.perf_counter() - started
        outcome, tested = _fit_classical(model, train_split, val_split, data.test, run.spec.seed)
        outcome.extra["setup_s"] = setup_s
        if cell.target is not None and outcome.val_accuracy[0] >= cell.target:
            outcome.time_to_target_s = outcome.train_s
    else:
        outcome, tested = _fit_neural(cell, model, train_split, val_split, progress, started)
    outcome.extra["run_wall_s"] = time.perf_counter() - started
    if run.plan.recipe_note:
        outcome.extra["recipe_note"] = run.plan.recipe_note
    if cell.is_point:
        return point_record(cell, outcome)
    return build_record(cell, model, outcome, tested, len(train_split), len(val_split))


def build_adapter(plan: Plan, num_classes: int) -> Adapter | ClassicalAdapter:
    """The adapter, pretrained or not as the strategy says, prepared by the strategy."""
    options = {k: v for k, v in plan.options["adapter"].items() if v is not None and v is not False}
    model = plan.adapter.create(
        num_classes=num_classes,
        pretrained=plan.strategy.pretrained,
        weights=plan.spec.weights if plan.strategy.pretrained else None,
        head=plan.spec.head,
        **options,
    )
    if not plan.adapter.classical:
        plan.strategy.prepare(model)
    return model


def _place(cell: Cell, model: Adapter) -> None:
    """The model as the run asks: SyncBatchNorm, channels-last, compiled (it is on its device)."""
    spec = cell.run.spec
    if sync_bn_applies(cell.run.plan):
        cell.sync_bn_layers = distributed.convert_sync_batchnorm(model)
    if spec.channels_last:
        model.to(memory_format=torch.channels_last)
    if spec.compile:
        model.compile()  # compiles __call__ in place; freezing, heads and param groups still apply


def _fit_neural(
    cell: Cell, model: Adapter, train_split: Split, val_split: Split, progress: bool, started: float
) -> tuple[TrainOutcome, Tested | None]:
    """Fit through the strategy on the domain's pipelines, then predict the test split once. What
    came before the fit (building and placing the model, tokenising) is the run's ``setup_s``."""
    run, device = cell.run, cell.device
    spec, plan = run.spec, run.plan
    model.to(device)
    settings = dict(run.settings)
    train_pipe, val_pipe, test_pipe = plan.domain.pipelines(
        (train_split, val_split, cell.data.test), model, plan.task, settings, device, spec.channels_last
    )
    _place(cell, model)
    steps = run.strategy.progress_steps(spec.budget, len(train_pipe), spec.head)
    shown = progress and distributed.is_main()
    reset_peak_memory(device)
    setup_s = time.perf_counter() - started
    with tqdm(total=steps, desc=run.label, disable=not shown, leave=False, dynamic_ncols=True) as bar:
        fit = FitRun(
            model,
            spec.budget,
            train_pipe,
            val_pipe,
            device,
            run.amp,
            spec.seed,
            spec.head,
            cell.target,
            bar,
            cell.checkpoint,
            trackers=cell.trackers,
            keep_final=cell.is_point,
            features=feature_cache(run, model, device),
        )
        outcome = run.strategy.fit(fit)
    outcome.extra.update(peak_memory(device), setup_s=setup_s)  # training's peak: what a strategy costs in memory
    if outcome.status != "ok" or cell.is_point:  # a sweep point is never tested
        return outcome, None
    preds, probs, eval_s = predict_proba(model, test_pipe, spec.budget.batch_size * 2, device, run.amp)
    measure = spec.pipeline_efficiency if spec.pipeline_efficiency is not None else device.type == "cuda"
    if measure and not outcome.closed_form and outcome.samples_per_s:
        cfg = BenchConfig(  # per device: across processes, this device's share against one device alone
            adapter=plan.adapter_name,
            batch_size=distributed.local_batch_size(spec.budget.batch_size),
            shape=plan.domain.example_shape(settings, model),
            channels_last=spec.channels_last,
            steps=10,
            warmup=3,
        )
        real = outcome.samples_per_s / distributed.world_size()
        replay = _first_batches(train_pipe, spec.budget.batch_size, spec.seed, cfg.steps)
        with run.strategy.as_trained(model):
            outcome.extra["pipeline_efficiency"] = pipeline_efficiency(model, cfg, device, run.amp, real, replay)
    return outcome, Tested(preds, probs, eval_s)


def feature_cache(run: ResolvedRun, model: Adapter, device: torch.device) -> FeatureCache | None:
    """The run's entries in the feature cache: for strategies that fit a probe on frozen pretrained
    features, unless ``--no-cache`` or the weights have no known revision (``training.features``)."""
    spec, strategy = run.spec, run.strategy
    if not spec.cache or not strategy.pretrained or not (strategy.closed_form_head or strategy.head_init == "probe"):
        return None
    revision = weights_revision(run.identity["adapter"], model, pretrained=True, weights=spec.weights)
    if revision is None:
        return None
    return FeatureCache.for_run(
        Path(spec.cache_dir) if spec.cache_dir else default_dir(),
        run.identity,
        weights_revision=revision,
        preprocessing=model.preprocessing.to_dict(),
        device=device.type,
        torch=torch.__version__,
    )


def _first_batches(pipeline: Any, batch_size: int, seed: int, count: int) -> list[dict[str, torch.Tensor]]:
    """``count`` training batches as the loop draws them, collated up front (this rank's share)."""
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for batch in pipeline.batches(batch_size, shuffle=True, gen=gen, drop_last=True):
        batches.append(distributed.local_share(batch))
        if len(batches) == count:
            break
    return batches


def _fit_classical(
    model: ClassicalAdapter, train_split: Split, val_split: Split, test: Split, seed: int
) -> tuple[TrainOutcome, Tested]:
    outcome = TrainOutcome(steps=1, closed_form=True)
    start = time.perf_counter()
    details = model.fit(train_split.inputs, train_split.labels, val_split.inputs, val_split.labels, seed)
    outcome.train_s = outcome.timed_s = time.perf_counter() - start
    outcome.timed_samples = len(train_split)
    outcome.val_accuracy = [details.pop("val_accuracy")]
    outcome.extra = details
    start = time.perf_counter()
    preds = model.predict(test.inputs)
    probs = model.predict_proba(test.inputs)
    return outcome, Tested(preds, probs, time.perf_counter() - start)


def checkpoint_file(out_dir: Path, run_id: str) -> Path:
    """A cell's per-epoch checkpoint, named by its run id."""
    return out_dir / "checkpoints" / f"{run_id}.pt"
