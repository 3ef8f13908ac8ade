"""Throughput and cost on synthetic inputs, measured the way timm's benchmark.py does.

Warm-up steps are excluded; on GPU each step is timed with CUDA events and the device is
synchronised before a timer is read; on CPU ``perf_counter`` brackets each step. A train step is
forward + loss + backward + optimizer step (the same ``_step`` the runner trains with); inference
runs under ``torch.inference_mode``. Out-of-memory halves the batch and retries, and says so.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from transferbench.adapters import ADAPTERS, Adapter
from transferbench.benchmarks.results import provenance
from transferbench.benchmarks.runtime.device import autocast, is_oom, resolve_amp, resolve_device, sync
from transferbench.benchmarks.strategies import peft_layers as peft_tuning
from transferbench.benchmarks.strategies.base import STRATEGIES
from transferbench.benchmarks.training.loop import Budget, make_optimizer, train_step
from transferbench.errors import UserError
from transferbench.tasks import DOMAINS

MODES = ("train", "infer", "both")


@dataclass
class BenchConfig:
    adapter: str
    batch_size: int = 32
    image_size: int | None = None
    seq_len: int = 128
    amp: str = "auto"
    channels_last: bool = False
    compile: bool = False
    mode: str = "both"
    steps: int = 20
    warmup: int = 5
    device: str = "auto"
    num_classes: int = 1000
    model_path: str | None = None
    shape: dict[str, int] | None = None  # example_batch's shape, as a run's domain gives it (else from the above)


def input_shape(cfg: BenchConfig, model: Adapter) -> dict[str, int]:
    """``example_batch`` shape arguments: a run's (``cfg.shape``), else as the model's domain reads
    the bench options."""
    if cfg.shape is not None:
        return cfg.shape
    settings = {"image_size": cfg.image_size, "max_length": cfg.seq_len}
    return DOMAINS.get(model.domain).example_shape(settings, model)


def synthetic_batch(
    model: Adapter, shape: dict[str, int], batch_size: int, device: torch.device, channels_last: bool = False
) -> dict[str, torch.Tensor]:
    """A full-length synthetic batch with random labels, on ``device``."""
    torch.manual_seed(0)
    batch = model.example_batch(batch_size, **shape)
    if "attention_mask" in batch:
        batch["attention_mask"] = torch.ones_like(batch["attention_mask"])  # full-length sequences
    batch = {k: v.to(device) for k, v in batch.items()}
    if channels_last and "pixel_values" in batch:
        batch["pixel_values"] = batch["pixel_values"].contiguous(memory_format=torch.channels_last)
    batch["labels"] = torch.randint(0, model.num_classes, (batch_size,), device=device)
    return batch


class StepTimer:
    """Per-step wall time: CUDA events on GPU (recorded around the step, read after one sync at the
    end), perf_counter around a synchronised step elsewhere."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.events: list[tuple[Any, Any]] = []
        self.cpu_times: list[float] = []

    def time(self, fn: Callable[[], Any]) -> None:
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            self.events.append((start, end))
        else:
            t0 = time.perf_counter()
            fn()
            self.cpu_times.append(time.perf_counter() - t0)

    def seconds(self) -> list[float]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return [s.elapsed_time(e) / 1000 for s, e in self.events]
        return self.cpu_times


def _summary(times: list[float], batch_size: int) -> dict[str, float]:
    median = statistics.median(times)
    q = statistics.quantiles(times, n=10) if len(times) >= 2 else [median] * 9
    return {
        "samples_per_s": batch_size / median,
        "step_ms_median": 1000 * median,
        "step_ms_p10": 1000 * q[0],
        "step_ms_p90": 1000 * q[-1],
        "timed_steps": len(times),
    }


def build(cfg: BenchConfig, device: torch.device) -> Adapter:
    # Fixed input shapes: let cuDNN pick its fastest kernels, as timm's benchmark.py does.
    torch.backends.cudnn.benchmark = device.type == "cuda"
    options = {"model_path": cfg.model_path} if cfg.model_path else {}
    spec = ADAPTERS.get(cfg.adapter)
    if spec.classical:
        raise UserError(f"adapter {spec.name!r} is fitted in closed form on the CPU; bench measures neural adapters")
    model = spec.create(num_classes=cfg.num_classes, pretrained=False, **options).to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def measure(
    model: Adapter,
    cfg: BenchConfig,
    batch_size: int,
    device: torch.device,
    amp: str,
    mode: str,
    batches: list[dict[str, torch.Tensor]] | None = None,
) -> dict[str, float]:
    """Median step time over ``cfg.steps`` timed steps after ``cfg.warmup`` untimed ones, on one
    synthetic batch, or on ``batches`` (collated beforehand, taken in turn)."""
    batches = batches or [synthetic_batch(model, input_shape(cfg, model), batch_size, device, cfg.channels_last)]
    turn = iter(range(1 << 62))
    timer = StepTimer(device)
    forward = torch.compile(model) if cfg.compile else model
    if mode == "train":
        model.train()
        groups = model.param_groups(1e-4, 1e-5, 0.01)
        optimizer = make_optimizer("adamw", groups)
        params = [p for g in groups for p in g["params"]]
        budget = Budget(batch_size=batch_size)

        def step() -> None:
            batch = batches[next(turn) % len(batches)]
            train_step(forward, batch, optimizer, params, budget, device, amp, batch_size)
    else:
        model.eval()

        def step() -> None:
            with torch.inference_mode(), autocast(device, amp):
                forward(batches[next(turn) % len(batches)])

    for _ in range(cfg.warmup):
        step()
    sync(device)
    for _ in range(cfg.steps):
        timer.time(step)
    return _summary(timer.seconds(), batch_size)


def pipeline_efficiency(
    model: Adapter,
    cfg: BenchConfig,
    device: torch.device,
    amp: str,
    real_rate: float,
    replay: list[dict[str, torch.Tensor]] | None = None,
) -> dict[str, Any]:
    """Real-data training samples/s over the same step's samples/s without the pipeline and the loop
    (run after the test evaluation, so the extra steps cannot touch the reported metrics):

    * ``ratio``: against one synthetic batch of the full input shape (text: padded to max_length,
      so above 1 means length bucketing beats full padding);
    * ``ratio_replayed`` (given ``replay``, real batches collated beforehand): against those very
      batches stepped back to back: what collation, copies and the loop's bookkeeping cost."""
    synthetic = measure(model, cfg, cfg.batch_size, device, amp, "train")
    out = {
        "ratio": real_rate / synthetic["samples_per_s"],
        "synthetic_samples_per_s": synthetic["samples_per_s"],
        "real_samples_per_s": real_rate,
    }
    if replay:
        replayed = measure(model, cfg, cfg.batch_size, device, amp, "train", batches=replay)
        out.update(
            ratio_replayed=real_rate / replayed["samples_per_s"], replayed_samples_per_s=replayed["samples_per_s"]
        )
    return out


def bench(cfg: BenchConfig) -> dict[str, Any]:
    """Measure one adapter; returns a record with figures, setup and provenance."""
    if cfg.mode not in MODES:
        raise UserError(f"--mode {cfg.mode!r} is not valid: expected one of {', '.join(MODES)}")
    for option, value in (("--batch-size", cfg.batch_size), ("--steps", cfg.steps), ("--seq-len", cfg.seq_len)):
        if value < 1:
            raise UserError(f"{option} must be a positive integer, got {value}")
    if cfg.warmup < 0:
        raise UserError(f"--warmup must be >= 0, got {cfg.warmup}")
    device = resolve_device(cfg.device)
    amp = resolve_amp(cfg.amp, device)
    model = build(cfg, device)
    record: dict[str, Any] = {
        "adapter": ADAPTERS.canonical(cfg.adapter),
        "domain": model.domain,
        "setup": {
            **asdict(cfg),
            "amp": amp,
            "input": input_shape(cfg, model),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
        },
        "results": {},
        "params": {"total": model.num_params()},
    }
    for mode in ("train", "infer") if cfg.mode == "both" else (cfg.mode,):
        batch_size, halvings = cfg.batch_size, 0
        while True:
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            try:
                figures = measure(model, cfg, batch_size, device, amp, mode)
                break
            except RuntimeError as exc:
                if not is_oom(exc) or batch_size == 1:
                    if is_oom(exc):
                        record["results"][mode] = {"status": "oom", "detail": "out of memory even at batch size 1"}
                    raise UserError(f"bench {mode}: {str(exc).splitlines()[0][:200]}") from None
                batch_size //= 2
                halvings += 1
        figures.update(batch_size=batch_size, oom_halvings=halvings, status="ok")
        figures["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        record["results"][mode] = figures
    record.update(git_commit=provenance.git_commit(), **provenance.stamp(str(device)))
    record["excluded"] = f"{cfg.warmup} warm-up steps per mode; data loading (synthetic inputs on device)"
    return record


def interleaved(
    fns: dict[str, Callable[[], Any]], cfg: BenchConfig, device: torch.device, rounds: int
) -> dict[str, list[float]]:
    """Per-step seconds of each function, timed in ``rounds`` alternating blocks after a shared
    warm-up, so that drift (clocks, other load) affects every contender alike."""
    for _ in range(cfg.warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns.items())
    for r in range(rounds):
        for name, fn in order if r % 2 == 0 else order[::-1]:
            timer = StepTimer(device)
            for _ in range(max(1, cfg.steps // rounds)):
                timer.time(fn)
            times[name] += timer.seconds()
    return times


def compare_bare(cfg: BenchConfig, rounds: int = 5) -> dict[str, Any]:
    """Our train step vs a bare hand-written PyTorch loop on the same model and batch, in one
    process, interleaved in ``rounds`` blocks so drift affects both alike. Ratio = ours / bare."""
    device = resolve_device(cfg.device)
    amp = resolve_amp(cfg.amp, device)
    model = build(cfg, device)
    model.train()
    batch = synthetic_batch(model, input_shape(cfg, model), cfg.batch_size, device, cfg.channels_last)
    groups = model.param_groups(1e-4, 1e-5, 0.01)
    ours_opt = make_optimizer("adamw", groups)
    params = [p for g in groups for p in g["params"]]
    budget = Budget(batch_size=cfg.batch_size)
    bare_opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    pixel_key = model.preprocessing.input_key

    def ours() -> None:
        train_step(model, batch, ours_opt, params, budget, device, amp, cfg.batch_size)

    def bare() -> None:
        with autocast(device, amp):
            logits = model({k: v for k, v in batch.items() if k != "labels"})
        loss = F.cross_entropy(logits.float(), batch["labels"])
        bare_opt.zero_grad(set_to_none=True)
        loss.backward()
        bare_opt.step()

    times = interleaved({"ours": ours, "bare": bare}, cfg, device, rounds)
    ours_s, bare_s = _summary(times["ours"], cfg.batch_size), _summary(times["bare"], cfg.batch_size)
    return {
        "adapter": ADAPTERS.canonical(cfg.adapter),
        "input_key": pixel_key,
        "setup": {**asdict(cfg), "amp": amp, "input": input_shape(cfg, model), "rounds": rounds},
        "ours": ours_s,
        "bare": bare_s,
        "ratio": ours_s["samples_per_s"] / bare_s["samples_per_s"],
        **provenance.stamp(str(device)),
    }


def compare_merged(cfg: BenchConfig, rounds: int = 5) -> dict[str, Any]:
    """Inference with LoRA (the ``lora`` strategy's default targets for the adapter) kept as separate
    low-rank branches against merged into the weights, interleaved in one process. Merged, a wrapped
    layer is its base layer alone, which is why the suite evaluates merged models. Ratio = merged / unmerged."""
    device = resolve_device(cfg.device)
    amp = resolve_amp(cfg.amp, device)
    lora = STRATEGIES.get("lora")
    lora.check(ADAPTERS.get(cfg.adapter), "linear")  # one line for an adapter LoRA cannot wrap
    model = build(cfg, device)
    lora.prepare(model)
    model.eval()
    batch = synthetic_batch(model, input_shape(cfg, model), cfg.batch_size, device, cfg.channels_last)
    inputs = {k: v for k, v in batch.items() if k != "labels"}

    def infer(merged: bool) -> Callable[[], Any]:
        def step() -> None:
            peft_tuning.set_merged(model, merged)  # a no-op after the first step of a block
            with torch.inference_mode(), autocast(device, amp):
                model(inputs)

        return step

    times = interleaved({"unmerged": infer(False), "merged": infer(True)}, cfg, device, rounds)
    unmerged, merged = (_summary(times[k], cfg.batch_size) for k in ("unmerged", "merged"))
    return {
        "adapter": ADAPTERS.canonical(cfg.adapter),
        "comparison": "lora merged vs unmerged, inference",
        "setup": {**asdict(cfg), "amp": amp, "input": input_shape(cfg, model), "rounds": rounds},
        "wrapped_modules": len(peft_tuning.wrapped_modules(model)),
        "unmerged": unmerged,
        "merged": merged,
        "ratio": merged["samples_per_s"] / unmerged["samples_per_s"],
        **provenance.stamp(str(device)),
    }
