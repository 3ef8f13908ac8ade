"""One readable training loop (in the spirit of airbench) plus evaluation (the linear probe: probe.py).

Timing: the device is synchronised before a timer is read; the first steps of a run (warm-up:
kernel selection, allocator growth) are excluded from throughput, and evaluation is never counted
as training time. Both exclusions are recorded with the result.

Across processes (``distributed``; docs/distributed.md): every rank draws the same global batch and
trains on its share through DistributedDataParallel; throughput counts global samples; ``predict``
splits the batches between ranks and gathers the predictions. Precise BN and the linear probe's
feature extraction run identically on every rank (the same full batches, the same result), which
keeps them one code path at the price of repeating that work world-size times.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from transferbench.adapters.base import Adapter
from transferbench.benchmarks.runtime import checkpoint, distributed, faults
from transferbench.benchmarks.runtime.device import autocast, is_oom, sync
from transferbench.benchmarks.tracking import Trackers
from transferbench.benchmarks.training.budget import OPTIMIZERS, Budget
from transferbench.benchmarks.training.evaluate import accuracy, recalibrate_batchnorm
from transferbench.benchmarks.training.features import FeatureCache
from transferbench.benchmarks.training.flops import step_flops
from transferbench.errors import UserError


@dataclass
class TrainOutcome:
    status: str = "ok"  # ok | diverged
    status_detail: str = ""
    steps: int = 0
    val_accuracy: list[float] = field(default_factory=list)
    train_s: float = 0.0
    timed_samples: int = 0
    timed_s: float = 0.0
    warmup_steps_excluded: int = 0
    time_to_target_s: float | None = None
    closed_form: bool = False  # fitted in one pass (probe, classical model), not by gradient steps
    train_flops: int | None = None  # forward + backward FLOPs of the fit so far (training.flops); None: not counted
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def samples_per_s(self) -> float | None:
        return self.timed_samples / self.timed_s if self.timed_s > 0 else None


def make_optimizer(name: str, groups: list[dict]) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(groups)
    if name == "adam":  # classic Adam: L2 penalty in the gradient, as Keras' recipe used
        return torch.optim.Adam(groups)
    if name == "sgd":
        return torch.optim.SGD(groups, momentum=0.9, nesterov=True)
    raise UserError(f"--optimizer {name!r} is not valid: expected one of {', '.join(OPTIMIZERS)}")


def warmup_cosine(total_steps: int, warmup_fraction: float) -> Any:
    warmup = max(1, round(total_steps * warmup_fraction)) if warmup_fraction > 0 else 0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train_step(
    model: nn.Module,
    batch: dict,
    optimizer: torch.optim.Optimizer,
    params: list,
    budget: Budget,
    device: torch.device,
    amp: str,
    micro_batch: int,
) -> torch.Tensor:
    """One optimizer step over ``batch``, in micro-batches of ``micro_batch`` whose gradients
    accumulate (the effective batch stays the budget's). Returns the (detached) mean loss, on the
    device: nothing here waits for the device, so the host queues the next batch while this one
    runs. A non-finite loss is not looked at here: the loop finds it at its next read (``_Loop``).

    ``model`` may be a DistributedDataParallel wrapper and ``batch`` this rank's share: the loss is
    the share's mean, so DDP's averaged gradients are the global batch's mean; gradients are
    all-reduced once, in the last micro-batch's backward; the returned loss is the global mean, so
    every rank agrees on whether the run diverged (one returning early would leave the others
    waiting in the all-reduce)."""
    n = len(batch["labels"])
    optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=device)
    for i in range(0, n, micro_batch):
        part = {k: v[i : i + micro_batch] for k, v in batch.items()}
        with distributed.no_sync(model, last=i + micro_batch >= n):
            with autocast(device, amp):
                logits = model(part)
            loss = F.cross_entropy(logits.float(), part["labels"], label_smoothing=budget.label_smoothing)
            loss = loss * (len(part["labels"]) / n)
            loss.backward()
        total += loss.detach()
    total = distributed.average(total)
    if budget.grad_clip:
        nn.utils.clip_grad_norm_(params, budget.grad_clip)
    optimizer.step()
    return total


@dataclass
class FitRun:
    """What fitting one run needs: the model, its data pipelines and budget, and where it runs.
    Strategies receive it whole, so a new strategy needs no new arguments threaded through."""

    model: Adapter
    budget: Budget
    train_pipe: Any
    val_pipe: Any
    device: torch.device
    amp: str
    seed: int
    head: str = "linear"
    target: float | None = None  # validation accuracy for time-to-target
    progress: Any = None  # a tqdm bar, or None
    checkpoint_path: Path | None = None
    min_micro_batch: int = 1
    # Called with the (0-based) epoch before each epoch trains, also for the first epoch of a resumed
    # run, so it must set its state from the epoch alone (gradual unfreezing sets what trains).
    on_epoch: Callable[[int], None] | None = None
    # also checkpoint after the last epoch (a sweep point: its final run continues from it, testing)
    keep_final: bool = False
    features: FeatureCache | None = None  # where a probe's frozen features are kept (training.features)
    # Where the loop also logs (``--log-to``): its reads' mean loss and learning rates, each validation.
    # None: nowhere (also on every process but the main one).
    trackers: Trackers | None = None


# optimizer steps between the loop's reads of the device (its loss and whether it stayed finite)
READ_EVERY = 50


class _Loop:
    """The state of one training run: optimizer, schedule, RNG, timers and the outcome so far."""

    def __init__(self, run: FitRun, groups: list[dict]) -> None:
        self.run, self.outcome = run, TrainOutcome()
        self.gen = torch.Generator().manual_seed(run.seed)
        self.optimizer = make_optimizer(run.budget.optimizer, groups)
        self.params = [p for g in groups for p in g["params"]]
        self.steps_per_epoch = run.budget.steps_per_epoch(len(run.train_pipe))
        self.epochs = run.budget.epochs_for(self.steps_per_epoch)
        self.validate_after = run.budget.validation_epochs(self.steps_per_epoch)
        total = self.steps_per_epoch * self.epochs
        if self.epochs > run.budget.epochs:
            self.outcome.extra.update(epochs_run=self.epochs, val_epochs=[e + 1 for e in self.validate_after])
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(total, run.budget.warmup_fraction)
        )
        self.outcome.warmup_steps_excluded = self.warmup_excluded = min(5, total // 10)
        self.micro_batch = distributed.local_batch_size(run.budget.batch_size)  # this rank's share
        self.replica = distributed.Replica(run.model, run.device)
        self.first_epoch, self.earlier_s, self.eval_s = 0, 0.0, 0.0
        self.step_fault, self.eval_fault = faults.hook("train-step"), faults.hook("eval")  # no-ops unless armed
        self.watch = LossWatch(run.device)
        self.start = 0.0
        self.first_step_s = 0.0
        self.flops_per_step = 0
        self.log_s = 0.0  # spent in trackers (--log-to): not training time

    def count_flops(self) -> None:
        """FLOPs of one step as the model now trains (``training.flops``), charged for every step of
        this epoch; the counting is not training time."""
        began = time.perf_counter()
        run = self.run
        self.flops_per_step = step_flops(run.model, run.train_pipe, run.budget.batch_size, run.amp, self.micro_batch)
        self.outcome.extra["flops_per_step"] = self.flops_per_step
        self.start += time.perf_counter() - began

    def elapsed(self) -> float:
        """Training time so far: without evaluation, without logging to trackers, and without this
        process's first step (kernel selection, autotuning, lazy initialisation: a fixed cost, recorded
        as ``first_step_s``)."""
        return self.earlier_s + time.perf_counter() - self.start - self.eval_s - self.first_step_s - self.log_s

    def restore(self) -> None:
        """Continue from the run's checkpoint, if a killed earlier attempt left one (every rank
        reads rank 0's; they must all find the same one)."""
        saved = checkpoint.load(self.run.checkpoint_path) if self.run.checkpoint_path else None
        distributed.agree(
            None if saved is None else saved["epoch"],
            "the checkpoint epoch to resume from (across machines --out must be one shared folder)",
        )
        if saved is None:
            return
        self.run.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.schedule.load_state_dict(saved["schedule"])
        checkpoint.set_rng_state(saved["rng"], self.gen)
        for key, value in saved["outcome"].items():
            setattr(self.outcome, key, value)
        self.first_epoch, self.earlier_s, self.micro_batch = saved["epoch"] + 1, saved["train_s"], saved["micro_batch"]
        self.outcome.extra["resumed_from_epoch"] = self.first_epoch
        if self.run.progress is not None:
            self.run.progress.update(self.outcome.steps)

    def save(self, epoch: int) -> None:
        """Rank 0 writes the checkpoint (every rank holds the same state); the others wait for it."""
        if distributed.is_main():
            self._write(epoch)
        distributed.barrier()

    def _write(self, epoch: int) -> None:
        checkpoint.save(
            self.run.checkpoint_path,
            {
                "model": self.run.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "rng": checkpoint.rng_state(self.gen),
                "epoch": epoch,
                "train_s": self.elapsed(),
                "micro_batch": self.micro_batch,
                "outcome": {k: getattr(self.outcome, k) for k in _RESUMABLE},
            },
        )

    def stop(self, status: str, detail: str) -> TrainOutcome:
        self.outcome.status, self.outcome.status_detail = status, detail
        self.outcome.train_s = self.elapsed()
        return self.outcome

    def step(self, model: nn.Module, batch: dict) -> torch.Tensor | None:
        """One optimizer step; out of memory halves the micro-batch and retries (None: below the floor).

        Across processes each rank halves its own micro-batch (an out-of-memory in a forward pass
        leaves the ranks' all-reduces in step); one below the floor ends the whole run with an
        error, since the other ranks would wait for it in the all-reduce."""
        run, outcome = self.run, self.outcome
        while True:
            try:
                return train_step(
                    model, batch, self.optimizer, self.params, run.budget, run.device, run.amp, self.micro_batch
                )
            except RuntimeError as exc:  # torch.cuda.OutOfMemoryError is a RuntimeError
                if not is_oom(exc):
                    raise
                self.optimizer.zero_grad(set_to_none=True)
                if run.device.type == "cuda":
                    torch.cuda.empty_cache()
                outcome.extra["oom_retries"] = outcome.extra.get("oom_retries", 0) + 1
                if self.micro_batch // 2 < run.min_micro_batch:
                    if distributed.is_distributed():
                        raise UserError(
                            f"out of memory at step {outcome.steps} even with micro-batch {self.micro_batch}"
                        ) from None
                    return None
                self.micro_batch //= 2
                outcome.extra["micro_batch"] = self.micro_batch
                per_device = distributed.local_batch_size(run.budget.batch_size)
                outcome.extra["grad_accumulation"] = -(-per_device // self.micro_batch)

    def validate(self, epoch: int, precise_bn: bool) -> None:
        run, outcome = self.run, self.outcome
        if precise_bn:  # part of the training cost, so timed as training
            recalibrate_batchnorm(run.model, run.train_pipe.unaugmented(), run.budget.batch_size)
        eval_start = time.perf_counter()
        self.eval_fault()
        outcome.val_accuracy.append(accuracy(run.model, run.val_pipe, run.budget.batch_size * 2, run.device, run.amp))
        self.eval_s += time.perf_counter() - eval_start
        reached = run.target is not None and outcome.val_accuracy[-1] >= run.target
        if reached and outcome.time_to_target_s is None:
            outcome.time_to_target_s = self.elapsed()
        if run.trackers is not None:
            logging = time.perf_counter()
            run.trackers.log_epoch(epoch + 1, outcome.steps, {"val/accuracy": outcome.val_accuracy[-1]})
            self.log_s += time.perf_counter() - logging
        if run.progress is not None:
            run.progress.set_postfix(epoch=epoch + 1, val_acc=f"{outcome.val_accuracy[-1]:.3f}", refresh=True)
        if run.checkpoint_path is not None and (epoch + 1 < self.epochs or run.keep_final):
            self.save(epoch)

    def epoch(self, epoch: int) -> TrainOutcome | None:
        """One pass over the training data; an outcome if the run has to stop (OOM, divergence).
        The host never waits for the device inside it, except every READ_EVERY steps (``read``)."""
        run, outcome = self.run, self.outcome
        run.model.train()
        model = self.replica.module()  # after on_epoch: the trainable set is this epoch's
        epoch_timer = None
        for batch in run.train_pipe.batches(run.budget.batch_size, shuffle=True, gen=self.gen, drop_last=True):
            self.step_fault()
            if epoch_timer is None and outcome.steps >= self.warmup_excluded:
                sync(run.device)
                epoch_timer, logged_before = time.perf_counter(), self.log_s
            loss = self.step(model, distributed.local_share(batch))
            if loss is None:
                return self.stop(
                    "oom", f"out of memory at step {outcome.steps} even with micro-batch {self.micro_batch}"
                )
            if not self.first_step_s:  # one wait for the device, once per process: the fixed cost apart
                sync(run.device)
                self.first_step_s = max(time.perf_counter() - self.start - self.eval_s, 1e-9)
                outcome.extra["first_step_s"] = self.first_step_s
            self.watch.add(loss, outcome.steps)
            self.schedule.step()
            outcome.steps += 1
            outcome.train_flops = (outcome.train_flops or 0) + self.flops_per_step
            if epoch_timer is not None:
                outcome.timed_samples += len(batch["labels"])  # the global batch: samples/s of the whole run
            if run.progress is not None:
                run.progress.update(1)
            if outcome.steps % READ_EVERY == 0 and (stopped := self.read(epoch)) is not None:
                return stopped
        stopped = self.read(epoch)
        sync(run.device)
        if epoch_timer is not None and stopped is None:
            outcome.timed_s += time.perf_counter() - epoch_timer - (self.log_s - logged_before)
        return stopped

    def read(self, epoch: int) -> TrainOutcome | None:
        """The loop's one read of the device per READ_EVERY steps: the mean loss since the last read
        (for the progress bar), and whether a loss became non-finite (the run then stops, recorded as
        diverged at the step where it first did)."""
        first_bad, bad_loss, mean_loss = self.watch.read()
        if first_bad is not None:
            self.outcome.extra["diverged_at_step"] = first_bad
            self.outcome.steps = first_bad
            epoch_of = first_bad // self.steps_per_epoch + 1
            return self.stop("diverged", f"loss became {bad_loss} at step {first_bad} (epoch {epoch_of})")
        if self.run.progress is not None and mean_loss is not None:
            self.run.progress.set_postfix(epoch=epoch + 1, loss=f"{mean_loss:.3f}", refresh=False)
        if self.run.trackers is not None and mean_loss is not None:
            logging = time.perf_counter()
            self.run.trackers.log_step(self.outcome.steps, {"train/loss": mean_loss, **learning_rates(self.optimizer)})
            self.log_s += time.perf_counter() - logging
        return None


def learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """The learning rate of each named parameter group (``train/lr/head``, ``train/lr/backbone``; a
    group and its no-decay twin share one), from the host's copy: nothing here reads the device."""
    rates: dict[str, float] = {}
    for i, group in enumerate(optimizer.param_groups):
        name = str(group.get("name", f"group{i}")).removesuffix("-no-decay")
        if isinstance(group["lr"], int | float):  # a tensor learning rate would be a read: left out
            rates.setdefault(f"train/lr/{name}", float(group["lr"]))
    return rates


class LossWatch:
    """The training loss and the first non-finite one, kept on the device as the steps go and read
    in one transfer: reading a loss every step would make the host wait for every step to finish
    (the H200 measurement: text fine-tuning ran the GPU at 39%)."""

    def __init__(self, device: torch.device) -> None:
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.bad_loss = torch.zeros((), device=device)
        self.loss_sum = torch.zeros((), device=device)
        self.count = 0

    def add(self, loss: torch.Tensor, step: int) -> None:
        bad = ~torch.isfinite(loss)
        first = bad & (self.first_bad < 0)
        self.first_bad = torch.where(first, step, self.first_bad)
        self.bad_loss = torch.where(first, loss, self.bad_loss)
        self.loss_sum = self.loss_sum + torch.where(bad, torch.zeros_like(loss), loss)
        self.count += 1

    def read(self) -> tuple[int | None, float, float | None]:
        """(first non-finite step or None, that loss, the mean loss since the last read or None)."""
        first_bad, bad_loss, loss_sum = torch.stack([self.first_bad.float(), self.bad_loss, self.loss_sum]).tolist()
        mean = loss_sum / self.count if self.count else None
        self.loss_sum.zero_()
        self.count = 0
        return (int(first_bad) if first_bad >= 0 else None), bad_loss, mean


def train(run: FitRun, groups: list[dict], *, precise_bn: bool = False) -> TrainOutcome:
    """Train ``run.model``'s parameter ``groups`` under the run's budget, validating ``epochs``
    times (precise BN first, if asked). ``run.on_epoch``, if set, is called before every epoch.

    With ``run.checkpoint_path``, state is saved after every validation and a run finds and
    continues from it. On out-of-memory the micro-batch is halved (gradient accumulation keeps the
    effective batch) and the step retried; below ``min_micro_batch`` the run ends with status ``oom``.
    """
    loop = _Loop(run, groups)
    loop.restore()
    loop.start = time.perf_counter()  # restoring is not training time
    for epoch in range(loop.first_epoch, loop.epochs):
        if run.on_epoch is not None:
            run.on_epoch(epoch)
        if run.on_epoch is not None or epoch == loop.first_epoch:  # what trains may change only here
            loop.count_flops()
        stopped = loop.epoch(epoch)
        if stopped is not None:
            return stopped
        if epoch in loop.validate_after:
            loop.validate(epoch, precise_bn)
    loop.outcome.train_s = loop.elapsed()
    return loop.outcome


_RESUMABLE = ("steps", "val_accuracy", "timed_samples", "timed_s", "time_to_target_s", "train_flops", "extra")
