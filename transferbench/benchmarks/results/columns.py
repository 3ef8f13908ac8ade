"""The columns of THE results table: header, alignment, the cell's text and what the column sorts by,
in one list, so results.md, report.md and the HTML page's sortable table cannot fall out of step.

A column with ``shown_if`` appears only where some row measured it (pipeline efficiency is measured
on CUDA by default; calibration and FLOPs exist only in records written since they were recorded;
tiers need two rows to compare): a column of dashes would say nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def _seconds(s: float) -> str:
    return f"{s:.1f}" if s < 10 else f"{s:.0f}"


def flops_text(flops: float | None) -> str:
    """FLOPs with an SI prefix (1.2 TF, 340 GF), or — where not counted."""
    if flops is None:
        return "—"
    for scale, unit in ((1e18, "EF"), (1e15, "PF"), (1e12, "TF"), (1e9, "GF"), (1e6, "MF"), (1e3, "kF")):
        if flops >= scale:
            return f"{flops / scale:.3g} {unit}"
    return f"{flops:.3g} F"


def _fmt_gain(row: dict, name: str = "gain") -> str:
    gain, ci = row[f"{name}_pts"], row[f"{name}_ci_pts"]
    if gain is None:
        return "—"
    shown = f"{gain:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else f"{gain:+.1f}"
    if ci and row.get(f"{name}_test") == "welch":  # the tables' legend: paired bootstrap unless marked
        shown += " (Welch)"
    if name == "gain_best":  # the own-scratch column already says when there is no interval
        return f"{shown} vs {row['best_scratch']}"
    if ci:
        return shown
    return f"{shown} ({'1 seed' if row['n_seeds'] < 2 else 'no spread across seeds'}: no interval)"


def _span(values: list[int]) -> str:
    """One budget value, or the range when seeds differ (e.g. steps after an OOM retry)."""
    if not values:
        return "—"
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def data_budget(row: dict) -> str:
    """The training-set size a row shows: N, or N with the protocol that chose them."""
    n = str(row["train_examples"])
    return f"{n} ({row['data_protocol']})" if row.get("data_protocol") else n


def trainable_share(row: dict) -> str:
    share = 100 * row["trainable_params"] / row["total_params"] if row["total_params"] else 0.0
    return f"{share:.2g}%" if share < 10 else f"{share:.0f}%"


def _accuracy(r: dict) -> str:
    flag = f" ⚠ near chance ({r['near_chance_runs']}/{r['n_seeds']} seeds)" if r["near_chance_runs"] else ""
    return f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f} (n={r['n_seeds']}){flag}"


def _time_to_target(r: dict) -> str:
    """Mean seconds to the validation target; when only some seeds got there, how many did (a mean over
    the fast seeds alone would read as if every seed had)."""
    shown = "—" if r["time_to_target_s"] is None else f"{r['time_to_target_s']:.0f}s"
    reached = r.get("target_reached_runs", r["n_seeds"])
    if r["time_to_target_s"] is not None and reached < r["n_seeds"]:
        shown += f", {reached}/{r['n_seeds']} seeds"
    return shown + (f" (≥{r['target_accuracy']:.2f})" if r["target_accuracy"] else "")


def _sweep(r: dict) -> str:
    """The tuning a row had, as VTAB's hyper_sweep_size: how many settings were tried, over what."""
    return "—" if r["sweep_size"] is None else f"{r['sweep_size']} ({r['sweep_axes']})"


def _sweep_cost(r: dict) -> str:
    """The whole sweep's training (every point's), in seconds and FLOPs where counted."""
    if r["sweep_train_s"] is None:
        return "in train s" if r["sweep_size"] else "—"
    flops = f", {flops_text(r['sweep_flops'])}" if r.get("sweep_flops") else ""
    return f"{_seconds(r['sweep_train_s'])} s{flops}"


def _leading_number(text: str) -> float | None:
    match = re.match(r"\d+(\.\d+)?", text)
    return float(match.group()) if match else None


def _optional(value: Any, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _get(key: str) -> Callable[[dict], Any]:
    return lambda r: r[key]


def _budget_text(r: dict, key: str, closed_form: str) -> str:
    """A budget cell: what a closed-form fit shows instead, or the span of values over seeds."""
    return closed_form if r["closed_form"] else _span(r[key])


def _budget(r: dict, key: str) -> int | None:
    return None if r["closed_form"] or not r[key] else max(r[key])


@dataclass(frozen=True)
class Column:
    header: str
    align: str  # Markdown: "---" left, "---:" right
    cell: Callable[[dict], str]
    sort: Callable[[dict], Any]  # None: not measured (the page sorts it last either way)
    shown_if: str | None = None  # a row key: the column appears where some row has it (not None)
    kind: str = "num"  # how the HTML page sorts it: "num" or "text"


COLUMNS: tuple[Column, ...] = (
    Column("task", "---", lambda r: r["task"], lambda r: r["task"], kind="text"),
    Column("adapter", "---", lambda r: r["adapter"], lambda r: r["adapter"], kind="text"),
    Column("strategy", "---", lambda r: r["strategy"], lambda r: r["strategy"], kind="text"),
    Column("train ex.", "---:", data_budget, lambda r: r["train_examples"]),
    Column("epochs", "---:", lambda r: "—" if r["closed_form"] else _span(r["epochs"]), lambda r: _budget(r, "epochs")),
    Column(
        "steps",
        "---:",
        lambda r: "closed form" if r["closed_form"] else _span(r["steps"]),
        lambda r: _budget(r, "steps"),
    ),
    Column("input", "---:", lambda r: r["input_size"], lambda r: _leading_number(r["input_size"])),
    Column("accuracy (mean ± std, n)", "---", _accuracy, lambda r: r["accuracy_mean"]),
    Column("tier", "---:", lambda r: _optional(r["tier"], "d"), lambda r: r["tier"], shown_if="tier"),
    Column("macro-F1", "---:", lambda r: f"{r['macro_f1_mean']:.3f}", lambda r: r["macro_f1_mean"]),
    Column("ECE", "---:", lambda r: _optional(r["ece_mean"], ".3f"), lambda r: r["ece_mean"], shown_if="ece_mean"),
    Column("NLL", "---:", lambda r: _optional(r["nll_mean"], ".3f"), lambda r: r["nll_mean"], shown_if="nll_mean"),
    Column("gain vs scratch, pts [95% CI]", "---", _fmt_gain, lambda r: r["gain_pts"]),
    Column("gain vs best scratch, pts", "---", lambda r: _fmt_gain(r, "gain_best"), lambda r: r["gain_best_pts"]),
    Column("train s", "---:", lambda r: _seconds(r["train_s_mean"]), lambda r: r["train_s_mean"]),
    Column(
        "train FLOPs",
        "---:",
        lambda r: flops_text(r["train_flops_mean"]),
        lambda r: r["train_flops_mean"],
        shown_if="train_flops_mean",
    ),
    Column("sweep", "---:", _sweep, lambda r: r["sweep_size"], shown_if="sweep_size"),
    Column("sweep cost", "---:", _sweep_cost, lambda r: r["sweep_train_s"], shown_if="sweep_size"),
    Column(
        "train samples/s",
        "---:",
        lambda r: _optional(r["train_samples_per_s"], ".0f"),
        lambda r: r["train_samples_per_s"],
    ),
    Column(
        "pipeline eff.",
        "---:",
        lambda r: _optional(r["pipeline_efficiency"], ".2f"),
        lambda r: r["pipeline_efficiency"],
        shown_if="pipeline_efficiency",
    ),
    Column("time to target", "---:", _time_to_target, lambda r: r["time_to_target_s"]),
    Column(
        "trainable / total params",
        "---:",
        lambda r: f"{_millions(r['trainable_params'])} / {_millions(r['total_params'])}",
        lambda r: r["trainable_params"],
    ),
    Column(
        "trainable share",
        "---:",
        trainable_share,
        lambda r: r["trainable_params"] / r["total_params"] if r["total_params"] else None,
    ),
)


def columns_for(rows: list[dict]) -> list[Column]:
    """The columns a table of ``rows`` shows: every column, less optional ones no row measured."""
    return [c for c in COLUMNS if c.shown_if is None or any(r.get(c.shown_if) is not None for r in rows)]


def row_cells(r: dict, columns: list[Column]) -> list[str]:
    """One aggregated row's cells (the HTML page shows the same text)."""
    return [c.cell(r) for c in columns]
