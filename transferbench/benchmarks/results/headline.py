"""A versioned benchmark's headline: one row per domain x backbone x strategy and one overall row per
strategy (over the domains whose suite grid runs it), each a mean over those tasks, and only over all
of them.

Rules that keep one number honest (MTEB users were bitten by averages that skipped missing tasks):
records of two benchmark versions, two versions of one task or two data protocols are never averaged
together (one line saying which); a row that lacks any of its domain's tasks shows how many it has
and no mean. The gain is over the *tuned* scratch row: the same network from scratch, its learning
rate chosen on validation, at whichever budget (1x, 4x) did best on test in the mean, with its paired
interval; the mean gain's interval treats the tasks as independent (the half-widths add in
quadrature, divided by the number of tasks).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from transferbench.benchmarks.results.aggregate import aggregate, base_strategy, protocol_of, runs_by_row
from transferbench.benchmarks.results.significance import difference
from transferbench.errors import UserError


@dataclass(frozen=True)
class Benchmark:
    """Which benchmark the records belong to and the tasks each domain must have for a mean."""

    label: str  # name@version
    tasks: dict[str, tuple[str, ...]]  # domain -> its tasks (from the suite, else those in the records)
    protocol: str | None
    # domain -> the strategies the suite runs there (None: every strategy in every domain). An overall
    # row pools the domains that run its strategy: the audio backbone (an LSTM) takes no LoRA, so
    # LoRA's overall row is over vision and text, and says so; a strategy merely not run yet is
    # still missing from it.
    strategies: dict[str, frozenset[str]] | None = None

    def domains_running(self, strategy: str) -> list[str]:
        """The domains whose grid runs a row's strategy (``scratch 4x``: those that run scratch)."""
        base = base_strategy(strategy)
        return [d for d in sorted(self.tasks) if self.strategies is None or base in self.strategies.get(d, ())]


@dataclass
class HeadlineRow:
    domain: str  # a domain, or "all" for the overall rows
    adapter: str  # the backbone (overall rows: one per domain, joined)
    strategy: str
    tasks_have: int
    tasks_need: int
    missing: list[str] = field(default_factory=list)
    accuracy: float | None = None
    gain_pts: float | None = None
    gain_ci_pts: tuple[float, float] | None = None
    tier1_tasks: int | None = None  # tasks where the row is in its comparison's first tier
    trainable_share: float | None = None
    train_flops: float | None = None  # mean per task
    train_s: float | None = None  # mean per task
    sweep_size: int | None = None
    sweep_s: float | None = None  # the sweeps' train seconds, summed over the tasks
    devices: str = ""
    domains: tuple[str, ...] = ()  # an overall row's domains, where not every domain runs its strategy

    @property
    def complete(self) -> bool:
        return 0 < self.tasks_have == self.tasks_need  # a row that needs no task has no mean


def _suite_label(record: dict) -> str | None:
    return (record.get("config") or {}).get("suite")


def benchmark_of(
    records: list[dict],
    suite_tasks: dict[str, tuple[str, ...]] | None = None,
    suite_strategies: dict[str, frozenset[str]] | None = None,
) -> Benchmark:
    """The one benchmark, version and protocol the records share, or a UserError naming what is mixed."""
    labels = sorted({_suite_label(r) or "(none)" for r in records})
    if len(labels) != 1 or labels[0] == "(none)":
        raise UserError(
            f"headline: records of {', '.join(labels)}: a headline averages one benchmark version's records "
            "(report each version's folder apart)"
        )
    protocols = sorted({protocol_of(r) or "all" for r in records})
    if len(protocols) != 1:
        raise UserError(f"headline: records of the protocols {', '.join(protocols)}: one protocol per headline")
    versions: dict[str, set[int]] = defaultdict(set)
    for r in records:
        versions[r["task"]].add((r.get("config") or {}).get("task_version", 1))
    mixed = sorted(t for t, v in versions.items() if len(v) > 1)
    if mixed:
        raise UserError(f"headline: task {mixed[0]!r} has records of versions {sorted(versions[mixed[0]])}")
    if suite_tasks is None:
        found: dict[str, set[str]] = defaultdict(set)
        for r in records:
            found[r["domain"]].add(r["task"])
        suite_tasks = {d: tuple(sorted(t)) for d, t in found.items()}
    return Benchmark(labels[0], suite_tasks, protocols[0], suite_strategies)


def _tuned_scratch(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """Per task and adapter, its best from-scratch row (any budget): the baseline gains are over."""
    best: dict[tuple[str, str], dict] = {}
    for row in rows:
        key = (row["task"], row["adapter"])
        from_scratch = not row["pretrained"] and row["matched_to"] is None
        if from_scratch and (key not in best or row["accuracy_mean"] > best[key]["accuracy_mean"]):
            best[key] = row
    return best


def per_task(records: list[dict]) -> dict[tuple[str, str, str], dict[str, dict]]:
    """(domain, adapter, strategy) -> task -> the task's row, its gain over the tuned scratch row."""
    rows = aggregate(records)
    runs = {id(row): r for row, r in zip(rows, runs_by_row(rows, records), strict=True)}
    scratch = _tuned_scratch(rows)
    out: dict[tuple[str, str, str], dict[str, dict]] = defaultdict(dict)
    for row in rows:
        base = scratch.get((row["task"], row["adapter"]))
        if base is not None and base is not row and row["pretrained"]:
            diff = difference(runs[id(row)], runs[id(base)])
            row = {
                **row,
                "headline_gain": 100 * (row["accuracy_mean"] - base["accuracy_mean"]),
                "headline_ci": diff.ci_pts,
            }
        out[(row["domain"], row["adapter"], row["strategy"])][row["task"]] = row
    return out


def _mean(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present and len(present) == len(values) else None


def _fill(row: HeadlineRow, by_task: list[dict]) -> HeadlineRow:
    """The means of a complete row (an incomplete one keeps only its count)."""
    if not row.complete:
        return row
    gains = [t.get("headline_gain") for t in by_task]
    cis = [t.get("headline_ci") for t in by_task]
    row.accuracy = statistics.fmean(t["accuracy_mean"] for t in by_task)
    row.gain_pts = _mean(gains)
    if row.gain_pts is not None and all(cis):
        half = math.sqrt(sum(((hi - lo) / 2) ** 2 for lo, hi in cis)) / len(cis)  # type: ignore[misc]
        row.gain_ci_pts = (row.gain_pts - half, row.gain_pts + half)
    row.tier1_tasks = sum(t["tier"] in (1, None) for t in by_task)
    row.trainable_share = statistics.fmean(t["trainable_params"] / t["total_params"] for t in by_task)
    row.train_flops = _mean([t["train_flops_mean"] for t in by_task])
    row.train_s = statistics.fmean(t["train_s_mean"] for t in by_task)
    row.sweep_size = max((t["sweep_size"] or 0 for t in by_task), default=0) or None
    row.sweep_s = sum(t["sweep_train_s"] or 0 for t in by_task) or None
    return row


def headline(
    records: list[dict],
    suite_tasks: dict[str, tuple[str, ...]] | None = None,
    by_task: dict[tuple[str, str, str], dict[str, dict]] | None = None,
    suite_strategies: dict[str, frozenset[str]] | None = None,
) -> tuple[Benchmark, list[HeadlineRow]]:
    """The benchmark's rows: per domain (adapter x strategy), then overall per strategy across the
    domains' backbones (the networks that have a pretrained row there), where each domain has one.
    ``by_task``: ``per_task``'s result where the caller has it already."""
    bench = benchmark_of(records, suite_tasks, suite_strategies)
    by_task = per_task(records) if by_task is None else by_task
    devices = ", ".join(sorted({(r.get("hardware") or {}).get("gpu") or "cpu" for r in records}))
    rows: list[HeadlineRow] = []
    for (domain, adapter, strategy), tasks in sorted(by_task.items()):
        need = bench.tasks.get(domain, ())
        have = [tasks[t] for t in need if t in tasks]
        row = HeadlineRow(domain, adapter, strategy, len(have), len(need), [t for t in need if t not in tasks])
        rows.append(_fill(row, have))
        row.devices = devices
    pretrained: dict[str, set[str]] = defaultdict(set)
    for (domain, adapter, _), tasks in by_task.items():
        if any(t["pretrained"] for t in tasks.values()):
            pretrained[domain].add(adapter)
    if any(len(adapters) > 1 for adapters in pretrained.values()):
        return bench, rows  # several models in a domain: no one network per domain to pool across domains
    backbones = {domain: adapters.pop() for domain, adapters in pretrained.items()}
    for strategy in sorted({s for (d, a, s) in by_task if backbones.get(d) == a}):
        rows.append(_overall(bench, by_task, backbones, strategy, devices))
    return bench, rows


def _overall(bench: Benchmark, by_task: dict, backbones: dict[str, str], strategy: str, devices: str) -> HeadlineRow:
    """One strategy's row over every domain that runs it, with each domain's backbone."""
    domains = bench.domains_running(strategy)
    have, need, missing = [], 0, []
    for domain in domains:
        tasks = by_task.get((domain, backbones.get(domain, ""), strategy), {})
        need += len(bench.tasks[domain])
        have += [tasks[t] for t in bench.tasks[domain] if t in tasks]
        missing += [t for t in bench.tasks[domain] if t not in tasks]
    adapters = " / ".join(backbones[d] for d in domains if d in backbones)
    row = HeadlineRow("all", adapters, strategy, len(have), need, missing, devices=devices)
    row.domains = () if len(domains) == len(bench.tasks) else tuple(domains)
    return _fill(row, have)
