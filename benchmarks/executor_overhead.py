"""What the Ray executor costs: one matrix run three ways, each as its own `transferbench run`
process: the serial executor; Ray with one cell at a time (``--cpus-per-run`` = every core, so a
cell gets the same torch threads as serial); Ray with two cells at a time (half the cores each).
The wall time of each whole command (Ray's start included), the ratio Ray one-at-a-time / serial
(the target is at most 1.05: Ray should cost nothing a matrix of real cells would notice), and
whether each run's records equal the serial ones (run ids always; accuracies where torch had the
same number of threads) go to OUT/executors.json and OUT/executors.md, with the hardware.

    bash scripts/bench-executors.sh                        # the default matrix, into results/executors/
    python benchmarks/executor_overhead.py --out /tmp/x --epochs 1 --max-train-examples 32 --image-size 16

Run it on a quiet machine: other load changes the serial and the Ray times differently.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from transferbench.benchmarks.results import provenance, read_records, write_atomic

MEASURED = ("metrics", "val_accuracy_per_epoch", "steps")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/executors", help="where executors.json and executors.md go")
    parser.add_argument("--task", default="digits")
    parser.add_argument("--adapter", default="efficientnet-lite0")
    parser.add_argument("--strategies", default="finetune,scratch")
    parser.add_argument("--seeds", default="0,1,2", help="with two strategies: 6 cells")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--max-train-examples", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each configuration (the median is kept)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores the runs may use")
    return parser.parse_args(argv)


def matrix_args(args: argparse.Namespace) -> list[str]:
    """The `transferbench run` flags of the matrix, the same for every configuration."""
    return [
        *("--task", args.task, "--adapter", args.adapter, "--strategy", args.strategies, "--seeds", args.seeds),
        *("--epochs", str(args.epochs), "--image-size", str(args.image_size), "--min-steps", "0"),
        *("--max-train-examples", str(args.max_train_examples), "--device", "cpu", "--no-progress"),
    ]


def configurations(cores: int) -> list[dict[str, Any]]:
    """Serial; Ray one cell at a time; Ray two at a time (each with half the cores)."""
    half = max(1, cores // 2)
    return [
        {"name": "serial", "at_once": 1, "threads": cores, "flags": []},
        {"name": "ray, 1 cell at a time", "at_once": 1, "threads": cores, "flags": ["--cpus-per-run", str(cores)]},
        {"name": "ray, 2 cells at a time", "at_once": 2, "threads": half, "flags": ["--cpus-per-run", str(half)]},
    ]


def run_once(config: dict[str, Any], args: argparse.Namespace, scratch: Path) -> tuple[float, list[dict]]:
    """One whole `transferbench run` process into a fresh folder: its wall time and records."""
    out = Path(tempfile.mkdtemp(dir=scratch))
    executor = ["--executor", "ray"] if config["flags"] else []
    cmd = [sys.executable, "-m", "transferbench.benchmarks.cli.main", "run", *matrix_args(args), *executor]
    cmd += [*config["flags"], "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if not config["flags"]:
        env["OMP_NUM_THREADS"] = str(config["threads"])  # serial: torch's threads = the cores allowed
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{config['name']}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    return wall, read_records(out)


def _same(records: list[dict], serial: list[dict]) -> dict[str, bool]:
    """Same run ids; same measurements (accuracies, curves, steps) per run id."""
    mine = {r["run_id"]: r for r in records}
    theirs = {r["run_id"]: r for r in serial}
    ids = sorted(mine) == sorted(theirs)
    measured = ids and all(all(mine[i].get(k) == theirs[i].get(k) for k in MEASURED) for i in theirs)
    return {"run_ids": ids, "accuracies": measured}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every configuration ``--repeats`` times, interleaved, so slow drift in load hits all alike."""
    configs = configurations(args.cores)
    walls: dict[str, list[float]] = {c["name"]: [] for c in configs}
    records: dict[str, list[dict]] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-executors-") as scratch:
        for _ in range(args.repeats):
            for config in configs:
                wall, records[config["name"]] = run_once(config, args, Path(scratch))
                walls[config["name"]].append(wall)
                print(f"{config['name']}: {wall:.1f} s", flush=True)
    serial = statistics.median(walls["serial"])
    rows = []
    for config in configs:
        median = statistics.median(walls[config["name"]])
        same = _same(records[config["name"]], records["serial"])
        rows.append({**{k: config[k] for k in ("name", "at_once", "threads")}, "wall_s": walls[config["name"]]})
        rows[-1].update(median_s=median, vs_serial=median / serial, same_as_serial=same)
    ratio = rows[1]["vs_serial"]
    return {
        "matrix": matrix_args(args),
        "cells": len(records["serial"]),
        "configurations": rows,
        "ratio_ray_one_at_a_time_to_serial": ratio,
        "target": 1.05,
        "target_met": ratio <= 1.05,
        "load_average_before_after": [load_before, os.getloadavg()],
        "hardware": {**provenance.device_info("cpu"), "cores_used": args.cores},
        "versions": {**provenance.versions(), "ray": _ray_version()},
        "git_commit": provenance.git_commit(),
        "finished_at": provenance.now_utc(),
    }


def _ray_version() -> str:
    import ray  # lazy: the ray extra is optional, and only its version is read here

    return ray.__version__


def markdown(result: dict[str, Any]) -> str:
    hw = result["hardware"]
    before, after = (load[0] for load in result["load_average_before_after"])
    lines = [
        "# Executor overhead",
        "",
        f"{result['cells']} cells (`transferbench run {' '.join(result['matrix'])}`), each configuration a whole "
        "`transferbench run` process (Ray's start included).",
        "",
        "| executor | cells at once | torch threads per cell | wall s (median) | vs serial | same records as serial |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in result["configurations"]:
        same = row["same_as_serial"]
        shown = "run ids and accuracies" if same["accuracies"] else ("run ids" if same["run_ids"] else "no")
        lines.append(
            f"| {row['name']} | {row['at_once']} | {row['threads']} | {row['median_s']:.1f} | "
            f"{row['vs_serial']:.3f} | {shown} |"
        )
    met = "met" if result["target_met"] else "NOT met"
    lines += [
        "",
        f"Ray one cell at a time / serial: **{result['ratio_ray_one_at_a_time_to_serial']:.3f}** "
        f"(target ≤ {result['target']}: {met}).",
        "",
        f"Hardware: {hw.get('cpu')}, {hw.get('cpu_count')} cores ({hw['cores_used']} used); load average "
        f"before/after {before:.2f}/{after:.2f}. "
        f"Versions: python {result['versions'].get('python')}, torch {result['versions'].get('torch')}, "
        f"ray {result['versions']['ray']}; git {result['git_commit']}; {result['finished_at']}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    provenance.git_commit()  # read at the start, as `run` does
    result = measure(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "executors.json", json.dumps(result, indent=2, default=str) + "\n")
    write_atomic(out / "executors.md", markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
