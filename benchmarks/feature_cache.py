"""What the feature cache buys: the wall time of a linear probe on three seeds and an LP-FT run, one
after another, with the cache (starting cold, in a fresh folder) and without it (``--no-cache``).

EfficientNet-Lite0 on the CIFAR-10 fixture at 96 px (1,800 train, 200 validation); LP-FT trains one
epoch after its probe, the part the cache cannot shorten. Each run's wall time is its record's
``time.device_s`` (build, fit, validate, test); the figure is their sum per mode. It records figures
and asserts nothing.

    python benchmarks/feature_cache.py [OUT_JSONL]   (default results/throughput/feature-cache-cpu.jsonl)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CIFAR = Path(os.environ.get("TRANSFERBENCH_SHARED_DATA", REPO.parent / "shared" / "data")) / "cifar10"
PLAN = [("linear-probe", 0), ("linear-probe", 1), ("linear-probe", 2), ("lp-ft", 0)]


def specs(cache_dir: Path | None) -> list:
    from transferbench.benchmarks.plan.spec import RunSpec
    from transferbench.benchmarks.training import Budget

    return [
        RunSpec.create(
            "cifar10",
            "efficientnet-lite0",
            strategy,
            seed=seed,
            data_dir=str(CIFAR),
            image_size=96,
            budget=Budget(epochs=1, batch_size=32, min_steps=0),
            device="cpu",
            cache=cache_dir is not None,
            cache_dir=str(cache_dir) if cache_dir else None,
        )
        for strategy, seed in PLAN
    ]


def main(out: str = str(REPO / "results" / "throughput" / "feature-cache-cpu.jsonl")) -> int:
    from transferbench.benchmarks.execution.matrix import run_all
    from transferbench.benchmarks.results import append_record, provenance

    if not CIFAR.is_dir():
        print(f"needs the CIFAR-10 fixture at {CIFAR} (../shared/data, or TRANSFERBENCH_SHARED_DATA)", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    figures = {}
    with tempfile.TemporaryDirectory() as work:
        for mode, cache_dir in (("without cache", None), ("with cache (cold)", Path(work) / "features")):
            records = run_all(specs(cache_dir), out_dir=Path(work) / mode.split()[0], progress=False, log=print)
            figures[mode] = {
                "wall_s": sum(r["time"]["device_s"] for r in records),
                "runs": [
                    {
                        "strategy": r["strategy"],
                        "seed": r["seed"],
                        "device_s": r["time"]["device_s"],
                        "train_s": r["time"]["train_s"],
                        "feature_cache": r["details"].get("feature_cache"),
                        "accuracy": r["metrics"]["accuracy"],
                    }
                    for r in records
                ],
            }
    same = [a["accuracy"] for a in figures["without cache"]["runs"]] == [
        b["accuracy"] for b in figures["with cache (cold)"]["runs"]
    ]
    speedup = figures["without cache"]["wall_s"] / figures["with cache (cold)"]["wall_s"]
    record = {
        "benchmark": "feature-cache",
        "what": "probe x 3 seeds + lp-ft (1 epoch), EfficientNet-Lite0, CIFAR-10 fixture at 96 px, 1 torch thread",
        "results": figures,
        "speedup": speedup,
        "same_accuracies": same,
        "hardware": provenance.device_info("cpu"),
        "versions": provenance.versions(),
        "git_commit": provenance.git_commit(),
        "finished_at": provenance.now_utc(),
    }
    append_record(out, record)
    for mode, fig in figures.items():
        print(f"{mode}: {fig['wall_s']:.1f} s")
    print(f"speed-up {speedup:.2f}x; accuracies {'identical' if same else 'DIFFER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
