"""Running sweeps (``plan.sweeps`` says what they are): points first, beside the matrix's plain runs,
then each sweep's winner on every seed.

The points of every sweep go to the executor with the plain runs, so Ray runs them side by side; a
point's line goes to the sweeps file (``sweeps.jsonl``, one per shard), never to results. A point
recorded before is not run again under ``--resume``, so a killed sweep resumes at its next point.
Once every point has a line, a sweep whose lone winner is the lowest or highest value tried gets one
more point past that edge (``plan.sweeps.past_edge``, up to ``sweep_widen`` per side), round after
round until no winner is a lone edge. Then each sweep's winner is chosen on validation alone and its final run
is planned: on the swept seed it continues from the winning point's last checkpoint (kept for it)
and is tested without training again; on the other seeds (``sweep_seeds: first``) it trains afresh.
The final's record carries the sweep: grid, every point's validation score and cost, the winner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferbench.benchmarks.execution.executors import CellResult, Job
from transferbench.benchmarks.execution.records import failed_point
from transferbench.benchmarks.execution.runner import checkpoint_file
from transferbench.benchmarks.plan.resolve import Plan, ResolvedRun, resolve
from transferbench.benchmarks.plan.sweeps import Grid, SweepRole, grid_for, past_edge, point_spec, winner
from transferbench.benchmarks.results import (
    SETTLED,
    SWEEP_FILE,
    SWEEP_SHARD_FILE,
    append_record,
    provenance,
    read_points,
)
from transferbench.registry import slug

Bind = Callable[[Plan, SweepRole | None], Job]
SELECTED_ON = "validation accuracy after the last epoch (ties: the earlier point of the grid)"


@dataclass
class SweepGroup:
    """One sweep: its grid and its base runs by seed (the seeds of one matrix cell)."""

    name: str
    grid: Grid  # the grid as tried so far: ``base`` and the values widening added after it
    mode: str  # sweep_seeds: first | all
    widen: int  # sweep_widen: values that may be added past each edge
    base: Grid  # the grid as asked for
    plans: dict[int, Plan] = field(default_factory=dict)
    point_ids: dict[tuple[int, int], str] = field(default_factory=dict)  # (seed, index) -> point run id

    def swept_seed(self, seed: int) -> int:
        """The seed whose points choose this seed's winner."""
        return min(self.plans) if self.mode == "first" else seed

    def swept_seeds(self) -> list[int]:
        return sorted({self.swept_seed(seed) for seed in self.plans})


def group_key(plan: Plan) -> str:
    """The seeds of one cell share a sweep: its matrix cell without the seed."""
    return provenance.config_hash({k: v for k, v in plan.spec.matrix_cell().items() if k != "seed"})


def split(plans: list[Plan], log: Any) -> tuple[list[Plan], list[SweepGroup]]:
    """The plans without a sweep (a sweep that does not apply to its run is dropped, said aloud)
    and the sweeps, each with the plans of its seeds."""
    plain, groups = [], {}
    for plan in plans:
        grid, note = grid_for(plan)
        if note:
            log(f"note: {note}")
        if grid is None:
            plain.append(plan if plan.spec.sweep is None else resolve(dataclasses.replace(plan.spec, sweep=None)))
            continue
        key = group_key(plan)
        name = slug(f"sweep-{plan.task.name}-{plan.adapter_name}-{plan.strategy.name}-{key[:8]}")
        group = SweepGroup(name, grid, plan.spec.sweep_seeds, plan.spec.sweep_widen, grid)
        groups.setdefault(key, group).plans[plan.spec.seed] = plan
    return plain, list(groups.values())


def point_jobs(groups: list[SweepGroup], bind: Bind, done: set[str], log: Any, start: int = 0) -> list[Job]:
    """Every point of every sweep from index ``start`` on as a job, less those ``done`` (recorded
    under --resume)."""
    jobs = []
    for group in groups:
        for seed in group.swept_seeds():
            for index, values in list(enumerate(group.grid.points()))[start:]:
                job = bind(resolve(point_spec(group.plans[seed].spec, values)), SweepRole("point", group.name))
                group.point_ids[(seed, index)] = job.run.run_id
                if job.run.run_id in done:
                    log(f"skip {group.name} point {values} (seed {seed}): recorded")
                    continue
                jobs.append(dataclasses.replace(job, meta={"index": index, "values": values}))
    return jobs


def points_file(out_dir: Path, shard: Any) -> Path:
    return out_dir / (SWEEP_SHARD_FILE.format(index=shard.index, count=shard.count) if shard else SWEEP_FILE)


def record_point(job: Job, result: CellResult, target: Path, log: Any) -> None:
    """The driver's one write per point: its line (or a failed one) in the sweeps file."""
    line = dict(result.record) if result.record is not None else failed_point(job.run, result.error)
    line.update(job.meta)
    append_record(target, line)
    score = "—" if line["val_accuracy"] is None else f"{line['val_accuracy']:.3f}"
    log(f"{line['sweep']} point {line['values']} (seed {line['seed']}): validation {score} [{line['status']}]")


def finished_points(out_dir: Path) -> set[str]:
    """Point ids --resume skips: points recorded with a SETTLED status."""
    return {p["point_id"] for p in read_points(out_dir) if p["status"] in SETTLED}


def widened_jobs(groups: list[SweepGroup], bind: Bind, out_dir: Path, done: set[str], log: Any) -> list[Job] | None:
    """One more point past the lone winning edge of each sweep that has one (on any swept seed; the
    grid is the sweep's, so every swept seed tries it), as jobs less those ``done``; None when no
    sweep grew, so the caller's rounds end."""
    latest, jobs, grew = _latest_points(out_dir), [], False
    for group in groups:
        start = group.grid.size
        wanted = {
            past_edge(group.grid, _chosen(group, s, latest)[1], group.base, group.widen) for s in group.swept_seeds()
        }
        for value in sorted(v for v in wanted if v is not None):
            group.grid = group.grid.extended(value)
            log(f"{group.name}: its best value is an edge of those tried, so {value} is tried too")
        if group.grid.size > start:
            grew = True
            jobs += point_jobs([group], bind, done, log, start)
    return jobs if grew else None


def _latest_points(out_dir: Path) -> dict[str, dict[str, Any]]:
    """Point id -> its newest line in the sweeps file."""
    latest: dict[str, dict[str, Any]] = {}
    for point in read_points(out_dir):
        if point["point_id"] not in latest or point["finished_at"] >= latest[point["point_id"]]["finished_at"]:
            latest[point["point_id"]] = point
    return latest


def final_jobs(groups: list[SweepGroup], bind: Bind, out_dir: Path, done: set[str], log: Any) -> list[Job]:
    """Each sweep's winner as the final run of every seed; the losers' kept checkpoints go."""
    latest = _latest_points(out_dir)
    jobs = []
    for group in groups:
        chosen = {s: _chosen(group, s, latest) for s in group.swept_seeds()}
        for swept, (win, _) in chosen.items():
            for index in range(group.grid.size):
                point_id = group.point_ids[(swept, index)]
                if win is None or point_id != win["point_id"]:
                    checkpoint_file(out_dir, point_id).unlink(missing_ok=True)
        for seed, plan in sorted(group.plans.items()):
            swept = group.swept_seed(seed)
            win, points = chosen[swept]
            job = _final(group, plan, seed, swept, win, points, bind)
            if job.run.run_id in done:
                log(f"skip {job.run.label} ({group.name}'s winner): finished record {job.run.run_id} exists")
                continue
            jobs.append(job)
    return jobs


def _chosen(group: SweepGroup, seed: int, latest: dict[str, dict]) -> tuple[dict | None, list[dict]]:
    """The winning point of the sweep on ``seed`` (None if no point finished) and every point."""
    points = []
    for index, values in enumerate(group.grid.points()):
        point_id = group.point_ids[(seed, index)]
        found = latest.get(point_id) or {"status": "failed", "status_detail": "no line in the sweeps file"}
        points.append({**found, "point_id": point_id, "index": index, "values": values})
    return winner(points), points


def _final(
    group: SweepGroup, plan: Plan, seed: int, swept: int, win: dict | None, points: list[dict], bind: Bind
) -> Job:
    """The final run of ``seed``: the winner's values, tested; with no winner, the base run, which
    the driver records as failed (``meta["no_winner"]``) without running it."""
    section = {
        "name": group.name,
        "grid": group.grid.to_dict(),
        "size": group.grid.size,
        **({"widened": group.grid.added_to(group.base)} if group.grid != group.base else {}),
        "seeds": group.mode,
        "swept_seed": swept,
        "selected_on": SELECTED_ON,
        "winner": None if win is None else win["values"],
        "points": [_point_summary(p) for p in points],
        "train_s": sum(p.get("train_s") or 0.0 for p in points),
        "train_flops": _total_flops(points),
        "tested_the_point": win is not None and seed == swept,
    }
    if win is None:
        return dataclasses.replace(bind(plan, SweepRole("final", group.name)), meta={"sweep": section, "no_winner": 1})
    spec = dataclasses.replace(point_spec(plan.spec, win["values"]), sweep=group.grid.to_dict())
    role = SweepRole("final", group.name, resume_from=win["point_id"] if seed == swept else None)
    return dataclasses.replace(bind(resolve(spec), role), meta={"sweep": section})


def _point_summary(point: dict[str, Any]) -> dict[str, Any]:
    keys = ("values", "val_accuracy", "status", "train_s", "train_flops", "steps")
    return {k: point.get(k) for k in keys}


def _total_flops(points: list[dict[str, Any]]) -> float | None:
    """The points' FLOPs together (None where none was counted: a run fitted without the loop)."""
    counted = [p["train_flops"] for p in points if p.get("train_flops") is not None]
    return float(sum(counted)) if counted else None


def is_point(run: ResolvedRun) -> bool:
    return run.role is not None and run.role.kind == "point"
