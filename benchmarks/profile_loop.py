"""Where a training step's time goes: ``torch.profiler`` over steps of the real loop (the run's own
pipelines, strategy and budget), after warm-up, with the top operators by self time on the host and
on the device, and how much of the wall time the device was busy. On a GPU this is the trace behind
results/throughput/README.md; on a CPU, with a tiny model, it is the stand-in in which the host's
own work per step shows (there the device is the host). It records figures and asserts nothing.

    python benchmarks/profile_loop.py --task sst2 --data-dir DIR --adapter minilm-l6 --strategy lora \
        [--model-path DIR] [--max-length 64] [--image-size 224] [--steps 30] [--out results/throughput]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, schedule

from transferbench.benchmarks.execution.matrix import load
from transferbench.benchmarks.execution.runner import build_adapter
from transferbench.benchmarks.plan.resolve import bind, resolve
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.plan.splits import make_splits
from transferbench.benchmarks.results import provenance
from transferbench.benchmarks.runtime.device import resolve_amp, resolve_device
from transferbench.benchmarks.training import Budget, FitRun, loop


def _profiled_train(fit: FitRun, groups: list[dict], steps: int, warmup: int) -> tuple[profile, float]:
    """Train with the profiler stepping once per optimizer step; (profiler, wall seconds profiled)."""
    cuda = fit.device.type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    prof = profile(activities=activities, schedule=schedule(wait=0, warmup=warmup, active=steps, repeat=1))
    real_add = loop.LossWatch.add
    timing = {"start": 0.0, "end": 0.0, "n": 0}

    def stepping(self, loss, step):
        real_add(self, loss, step)
        timing["n"] += 1
        if timing["n"] == warmup + 1:
            timing["start"] = time.perf_counter()
        if timing["n"] == warmup + steps + 1:
            if cuda:
                torch.cuda.synchronize(fit.device)
            timing["end"] = time.perf_counter()
        prof.step()

    loop.LossWatch.add = stepping
    try:
        with prof:
            loop.train(fit, groups)
    finally:
        loop.LossWatch.add = real_add
    return prof, max(timing["end"] - timing["start"], 1e-9)


def _top(prof: profile, key: str, count: int = 15) -> list[dict]:
    rows = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)[:count]
    return [{"op": e.key, "calls": e.count, "self_ms": getattr(e, key) / 1000} for e in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag in ("--task", "--adapter", "--strategy"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--model-path")
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", help="append the summary to OUT/profiles.jsonl")
    args = parser.parse_args(argv)
    options = {
        k: v
        for k, v in (("model_path", args.model_path), ("max_length", args.max_length), ("image_size", args.image_size))
        if v is not None
    }
    budget = Budget(epochs=1, batch_size=args.batch_size, min_steps=args.steps + args.warmup + 1)
    spec = RunSpec.create(
        args.task, args.adapter, args.strategy, data_dir=args.data_dir, budget=budget, device=args.device, **options
    )
    plan = resolve(spec)
    data = load(plan, print)
    device = resolve_device(args.device)
    run = bind(plan, data, resolve_amp(spec.amp, device))
    model = build_adapter(plan, data.num_classes).to(device)
    train_split, val_split = make_splits(spec, data)
    train_pipe, val_pipe = plan.domain.pipelines((train_split, val_split), model, plan.task, dict(run.settings), device)
    fit = FitRun(model, budget, train_pipe, val_pipe, device, run.amp, spec.seed)
    prof, wall = _profiled_train(fit, plan.strategy.param_groups(model), args.steps, args.warmup)
    cuda = device.type == "cuda"
    busy = sum(e.self_device_time_total for e in prof.key_averages()) / 1e6 if cuda else None
    summary = {
        "what": f"{args.task}/{args.adapter}/{args.strategy}, batch {args.batch_size}, {args.steps} profiled steps",
        "wall_s": wall,
        "ms_per_step": 1000 * wall / args.steps,
        "device_busy_share": None if busy is None else busy / wall,
        "top_host": _top(prof, "self_cpu_time_total"),
        "top_device": _top(prof, "self_device_time_total") if cuda else None,
        "git_commit": provenance.git_commit(),
        **provenance.stamp(str(device)),
    }
    print(json.dumps({k: summary[k] for k in ("what", "ms_per_step", "device_busy_share")}))
    print(prof.key_averages().table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total", row_limit=15))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        with open(Path(args.out) / "profiles.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(summary, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
