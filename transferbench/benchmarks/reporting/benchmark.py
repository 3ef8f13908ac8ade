"""A versioned benchmark's headline files beside its report: ``headline.md`` (the table people cite),
``headline.csv``, ``headline_gain_vs_cost.png`` (mean gain over tuned scratch against train
compute, with each domain's Pareto front; complete rows only) and ``headline_per_task.png`` (the same
per task, so that a benchmark still being filled in has a picture). Written by ``report`` for a set
whose records carry a benchmark label (``transferbench-1k@1``); the rules behind every number are
``results.headline``'s.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path
from typing import Any

from transferbench.benchmarks.plan.suites import SUITES
from transferbench.benchmarks.reporting.plots import pyplot
from transferbench.benchmarks.results import flops_text, write_atomic
from transferbench.benchmarks.results.headline import Benchmark, HeadlineRow, headline, per_task
from transferbench.tasks import TASKS

HEADLINE_FILES = ("headline.md", "headline.csv", "headline_gain_vs_cost.png", "headline_per_task.png")
CSV_FIELDS = [
    "domain",
    "domains",
    "adapter",
    "strategy",
    "tasks_have",
    "tasks_need",
    "accuracy",
    "gain_pts",
    "gain_ci_low_pts",
    "gain_ci_high_pts",
    "tier1_tasks",
    "trainable_share",
    "train_flops",
    "train_s",
    "sweep_size",
    "sweep_s",
    "missing",
    "devices",
]


def suite_tasks(label: str) -> dict[str, tuple[str, ...]] | None:
    """The tasks each domain of the registered benchmark ``name@version`` has (None if that version
    is not the registered one: then the records' own tasks are the list)."""
    by_domain: dict[str, list[str]] = {}
    for run in _suite_runs(label) or []:
        tasks = by_domain.setdefault(TASKS.get(run["task"]).domain, [])
        if run["task"] not in tasks:
            tasks.append(run["task"])
    return {d: tuple(t) for d, t in by_domain.items()} or None


def suite_strategies(label: str) -> dict[str, frozenset[str]] | None:
    """The strategies the registered benchmark ``name@version`` runs in each domain (None where
    that version is not the registered one: then every overall row needs every domain)."""
    by_domain: dict[str, set[str]] = defaultdict(set)
    for run in _suite_runs(label) or []:
        by_domain[TASKS.get(run["task"]).domain].add(run["strategy"])
    return {d: frozenset(s) for d, s in by_domain.items()} or None


def _suite_runs(label: str) -> list[dict] | None:
    name, _, version = label.rpartition("@")
    if name not in SUITES or str(SUITES.get(name).version) != version:
        return None
    return SUITES.get(name).runs


def _pts(value: float | None, ci: tuple[float, float] | None = None) -> str:
    if value is None:
        return "—"
    return f"{value:+.1f}" + (f" [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else "")


def _domain(row: HeadlineRow) -> str:
    return f"{row.domain} ({', '.join(row.domains)})" if row.domains else row.domain


def headline_cells(row: HeadlineRow) -> list[str]:
    tasks = f"{row.tasks_have}/{row.tasks_need}"
    if not row.complete:
        return [_domain(row), row.adapter, row.strategy, tasks, "—", "—", "—", "—", "—", "—", "—"]
    sweep = f"{row.sweep_size or '—'}" + (f", {row.sweep_s:,.0f} s" if row.sweep_s else "")
    return [
        _domain(row),
        row.adapter,
        row.strategy,
        tasks,
        f"{row.accuracy:.3f}",
        _pts(row.gain_pts, row.gain_ci_pts),
        f"{row.tier1_tasks}/{row.tasks_need}",
        f"{100 * row.trainable_share:.2g}%" if row.trainable_share is not None else "—",
        flops_text(row.train_flops) if row.train_flops else "—",
        f"{row.train_s:,.0f}" if row.train_s is not None else "—",
        sweep,
    ]


HEADERS = [
    "domain", "backbone", "strategy", "tasks", "mean accuracy", "gain vs tuned scratch, pts [95% CI]",
    "tier 1 on", "trainable", "train FLOPs / task", "train s / task", "sweep (points, s)",
]  # fmt: skip


def sort_keys(row: HeadlineRow) -> list[object]:
    """What each of ``headline_cells`` sorts by (None: not measured)."""
    return [
        row.domain, row.adapter, row.strategy, row.tasks_have, row.accuracy, row.gain_pts, row.tier1_tasks,
        row.trainable_share, row.train_flops, row.train_s, row.sweep_s,
    ]  # fmt: skip


def benchmark_headline(records: list[dict], by_task: dict | None = None) -> tuple[Benchmark, list[HeadlineRow]] | None:
    """The headline of a benchmark's records (None where they carry no benchmark label)."""
    labels = sorted({(r.get("config") or {}).get("suite") or "" for r in records})
    if labels == [""]:
        return None
    return headline(records, suite_tasks(labels[-1]), by_task, suite_strategies(labels[-1]))


def _task_cell(row: dict | None) -> str:
    if row is None:
        return "—"
    gain = row.get("headline_gain")
    return f"{row['accuracy_mean']:.3f} (n={row['n_seeds']})" + (f", {gain:+.1f}" if gain is not None else "")


def task_tables(bench: Benchmark, by_task: dict[tuple[str, str, str], dict[str, dict]]) -> list[str]:
    """Per domain, what every row measured on each task (accuracy, seeds, gain over tuned scratch in
    points): the cells behind the means, and where a row has none (—)."""
    lines = [
        "",
        "## Per task",
        "",
        "Mean test accuracy (seeds), and the gain over tuned scratch in points where there is one.",
        "",
    ]
    for domain, tasks in sorted(bench.tasks.items()):
        keys = sorted(k for k in by_task if k[0] == domain)
        if not keys:
            lines += [f"{domain}: no runs.", ""]
            continue
        lines += [
            f"### {domain}",
            "",
            "| backbone | strategy | " + " | ".join(tasks) + " |",
            "|---|---|" + "---|" * len(tasks),
        ]
        lines += [
            f"| {a} | {s} | " + " | ".join(_task_cell(by_task[(d, a, s)].get(t)) for t in tasks) + " |"
            for d, a, s in keys
        ]
        lines.append("")
    return lines


def markdown(bench: Benchmark, rows: list[HeadlineRow], by_task: dict | None = None) -> str:
    header = HEADERS
    lines = [
        f"# {bench.label}: headline",
        "",
        f"Protocol: {bench.protocol}. Tasks per domain: "
        + "; ".join(f"{d}: {', '.join(t)}" for d, t in sorted(bench.tasks.items()))
        + ". A row's means are over all of its domain's tasks (overall rows: those of every domain "
        "that runs the strategy, named where not all do); a row that lacks any shows how many it has "
        "and no mean. Gain: over the same network from scratch with its learning rate chosen on "
        "validation, at its better budget (1x or 4x); per task a paired bootstrap "
        "over test items and seeds, the mean's interval with the tasks taken as independent. Tier 1 on: "
        "tasks where the row is not shown to differ from its task's best row at 5%. Devices: "
        + (rows[0].devices if rows else "—")
        + ".",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(headline_cells(r)) + " |" for r in rows]
    missing = [r for r in rows if not r.complete and r.domain == "all"]
    if missing:
        lines += ["", "Missing tasks (why these rows have no mean):", ""]
        lines += [f"- {r.strategy} ({r.adapter}): {', '.join(r.missing)}" for r in missing]
    if by_task is not None:
        lines += task_tables(bench, by_task)
    return "\n".join(lines).rstrip("\n") + "\n"


def to_csv(rows: list[HeadlineRow]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        ci = r.gain_ci_pts or (None, None)
        values = {k: getattr(r, k) for k in CSV_FIELDS if hasattr(r, k)}
        joined = {"domains": " ".join(r.domains), "missing": " ".join(r.missing)}
        writer.writerow({**values, **joined, "gain_ci_low_pts": ci[0], "gain_ci_high_pts": ci[1]})
    return buffer.getvalue()


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both cost (lower) and gain (higher), by cost."""
    front, best = [], float("-inf")
    for cost, gain in sorted(points, key=lambda p: (p[0], -p[1])):
        if gain > best:
            front.append((cost, gain))
            best = gain
    return front


def plot(rows: list[HeadlineRow], out: Path) -> Path | None:
    """Mean gain against train FLOPs per task, one colour per domain, its Pareto front drawn."""
    shown = [r for r in rows if r.complete and r.domain != "all" and r.gain_pts is not None and r.train_flops]
    if not shown:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for domain in sorted({r.domain for r in shown}):
        mine = [r for r in shown if r.domain == domain]
        points = ax.scatter([r.train_flops for r in mine], [r.gain_pts for r in mine], label=domain)
        front = pareto([(r.train_flops, r.gain_pts) for r in mine])  # type: ignore[misc]
        ax.plot(*zip(*front, strict=True), color=points.get_facecolor()[0], alpha=0.6)
        for r in mine:
            ax.annotate(
                f"{r.adapter}/{r.strategy}",
                (r.train_flops, r.gain_pts),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.legend(title="domain (line: Pareto front)")
    return _save_gain_plot(plt, fig, ax, "train FLOPs per task (mean)", out / HEADLINE_FILES[2])


def plot_per_task(by_task: dict[tuple[str, str, str], dict[str, dict]], out: Path) -> Path | None:
    """Each task's gain against its train FLOPs, one point per task x strategy (colour: strategy),
    each task's Pareto front drawn: the picture before any row is complete, and the spread behind
    the means once they are. None where no row has a gain (only from-scratch rows)."""
    points = [
        (task, strategy, row["train_flops_mean"], row["headline_gain"])
        for (_, _, strategy), tasks in sorted(by_task.items())
        for task, row in sorted(tasks.items())
        if row.get("headline_gain") is not None and row.get("train_flops_mean")
    ]
    if not points:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for strategy in sorted({p[1] for p in points}):
        mine = [p for p in points if p[1] == strategy]
        ax.scatter([p[2] for p in mine], [p[3] for p in mine], label=strategy, zorder=3)
    for task in sorted({p[0] for p in points}):
        front = pareto([(p[2], p[3]) for p in points if p[0] == task])
        ax.plot(*zip(*front, strict=True), color="grey", alpha=0.5, linewidth=0.8)
        cost, gain = front[-1]
        ax.annotate(task, (cost, gain), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.legend(title="strategy (grey: each task's Pareto front)", fontsize=8)
    return _save_gain_plot(plt, fig, ax, "train FLOPs (mean over seeds)", out / HEADLINE_FILES[3])


def _save_gain_plot(plt: Any, fig: Any, ax: Any, xlabel: str, path: Path) -> Path:
    """The axes both gain-against-cost plots share (log FLOPs, gain in points, the zero line), saved."""
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("gain vs tuned scratch, accuracy points")
    ax.axhline(0, color="grey", linewidth=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_headline(records: list[dict], out: Path, *, plots: bool = True) -> list[Path]:
    """The headline files for a benchmark's records (none where the records carry no benchmark)."""
    if all(not (r.get("config") or {}).get("suite") for r in records):
        return []
    by_task = per_task(records)
    bench, rows = benchmark_headline(records, by_task)  # type: ignore[misc]
    write_atomic(out / HEADLINE_FILES[0], markdown(bench, rows, by_task))
    write_atomic(out / HEADLINE_FILES[1], to_csv(rows))
    images = [plot(rows, out), plot_per_task(by_task, out)] if plots else []
    return [out / HEADLINE_FILES[0], out / HEADLINE_FILES[1], *(image for image in images if image)]
