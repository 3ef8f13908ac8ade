"""Compute-matched baselines (``--match-compute flops|seconds``): beside the same-steps scratch row,
scratch given the compute of each strategy it is compared to.

Same steps is not the same compute: a LoRA step skips the frozen weights' gradients, a probe runs
one forward pass per example, and a sweep multiplies everything. So, once the matrix's runs are
recorded, each from-scratch run of the comparison's own budget is run again for every pretrained
strategy of its task, adapter, data budget and seed, with as many steps as that strategy's train
FLOPs (or measured training seconds) buy at scratch's own measured cost per step, rounded up to
whole epochs (at least one). The row is ``scratch =lora flops``; its record's ``run_spec.matched_to``
names the target, and its own ``train_flops`` say what it got.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from transferbench.benchmarks.execution.executors import Job
from transferbench.benchmarks.plan.resolve import resolve
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.results import FINISHED, latest_per_seed, read_records

MATCHES = ("flops", "seconds")


def cost(record: dict[str, Any], by: str) -> float | None:
    """What a run cost, as ``by`` counts it (None where it was not measured)."""
    value = record.get("train_flops") if by == "flops" else (record.get("time") or {}).get("train_s")
    return float(value) if value else None


def _same_cell(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("task", "adapter", "train_examples", "seed")
    return all(a[k] == b[k] for k in keys) and a.get("config", {}).get("data_protocol") == b.get("config", {}).get(
        "data_protocol"
    )


def matched_specs(records: list[dict[str, Any]], by: str, log: Any) -> list[RunSpec]:
    """The compute-matched scratch specs for ``records`` (a folder's, latest per seed)."""
    finished = [r for r in latest_per_seed(records) if r["status"] in FINISHED and r.get("run_spec")]
    own = [r for r in finished if not r["pretrained"] and not r["run_spec"].get("budget_multiple")]
    specs = []
    for base in own:
        if base["run_spec"].get("matched_to") or not base.get("steps"):
            continue
        per_step = (cost(base, by) or 0) / base["steps"]
        for other in (r for r in finished if r["pretrained"] and _same_cell(r, base)):
            target = cost(other, by)
            if not target or not per_step:
                log(f"note: {other['task']}/{other['adapter']}/{other['strategy']}: no {by} measured to match")
                continue
            specs.append(_matched(base, other["strategy"], by, math.ceil(target / per_step)))
    return specs


def _matched(base: dict[str, Any], strategy: str, by: str, steps: int) -> RunSpec:
    """``base``'s run (its sweep's winner, if it was swept) with the epochs that give ``steps``."""
    spec = dataclasses.replace(RunSpec.from_dict(base["run_spec"]), sweep=None)
    per_epoch = spec.budget.steps_per_epoch(base["train_examples"])
    budget = dataclasses.replace(spec.budget, epochs=max(1, math.ceil(steps / per_epoch)), min_steps=0)
    return dataclasses.replace(spec, budget=budget, matched_to=f"{strategy} {by}")


def matched_jobs(out_dir: Path, by: str, bind: Any, done: set[str], log: Any, keep: Any = None) -> list[Job]:
    """The jobs of ``matched_specs`` over the folder's records, less ``done``; ``keep`` (the shard's
    plan filter) drops specs another shard owns."""
    jobs = []
    for spec in matched_specs(read_records(out_dir), by, log):
        if keep is not None and not keep(spec):
            continue
        job = bind(resolve(spec))
        if job.run.run_id in done:
            log(f"skip {job.run.label} (= {spec.matched_to}): finished record {job.run.run_id} exists")
            continue
        jobs.append(job)
    return jobs
