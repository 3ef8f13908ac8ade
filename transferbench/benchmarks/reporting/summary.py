"""The cross-task summary of every published set pooled (one reader, one aggregator): one row per
adapter x strategy, one column per task x data budget x input size x device (results/summary.csv and
the table in results/README.md)."""

from __future__ import annotations

import csv
import io
import statistics
from typing import Any

from transferbench.benchmarks.results import aggregate


def device_kind(record: dict) -> str:
    """ "CPU" or the GPU's name: results from different devices are different columns (AMP and kernels
    differ, and so, slightly, do accuracies), never averaged together."""
    return (record.get("hardware") or {}).get("gpu") or "CPU"


def _rows_by_device(records: list[dict]) -> list[tuple[tuple, dict]]:
    """(column key, aggregated row) for every device's records, aggregated apart; a column is task x
    data budget x device x input size."""
    by_device: dict[str, list[dict]] = {}
    for r in records:
        by_device.setdefault(device_kind(r), []).append(r)
    keyed = [
        (
            (
                row["task"],
                row["train_examples"],
                row["data_protocol"] or f"{row['train_examples']} ex",
                device,
                row["input_size"],
            ),
            row,
        )
        for device, group in sorted(by_device.items())
        for row in aggregate(group)
    ]
    sizes: dict[tuple, set[str]] = {}
    for key, _ in keyed:
        sizes.setdefault(key[:4], set()).add(key[4])
    return [((*key[:4], _size_column(key[4], sizes[key[:4]])), row) for key, row in keyed]


def _size_column(size: str, sizes: set[str]) -> str:
    """A row's input size, or for a model without one (classical) the task's only size, if it has one."""
    if size != "—":
        return size
    sized = sizes - {"—"}
    return next(iter(sized)) if len(sized) == 1 else ""


def _label(column: tuple) -> str:
    task, _, budget, device, size = column
    return f"{task} ({budget}{', ' + size if size else ''}, {device})"


def cross_task(records: list[dict]) -> tuple[list[str], list[dict[str, Any]]]:
    """VTAB-style summary of every published set pooled (one reader, one aggregator): one row per
    adapter x strategy, one column per task x data budget x input size x device, and the mean over
    the columns the row has (``columns``: how many, since means over
    different tasks do not compare)."""
    keyed = _rows_by_device(records)
    columns = [_label(c) for c in sorted({c for c, _ in keyed})]
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for column, r in keyed:
        entry = table.setdefault((r["adapter"], r["strategy"]), {"adapter": r["adapter"], "strategy": r["strategy"]})
        entry[_label(column)] = r
    out = []
    for key in sorted(table):
        entry = table[key]
        accs = [entry[c]["accuracy_mean"] for c in columns if c in entry]
        out.append({**entry, "mean": statistics.fmean(accs), "columns": len(accs)})
    return columns, out


def summary_csv(columns: list[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["adapter", "strategy", *columns, "mean", "columns"])
    for r in rows:
        cells = [f"{r[c]['accuracy_mean']:.4f}" if c in r else "" for c in columns]
        writer.writerow([r["adapter"], r["strategy"], *cells, f"{r['mean']:.4f}", r["columns"]])
    return buffer.getvalue()


def summary_markdown(columns: list[str], rows: list[dict]) -> list[str]:
    """The cross-task table for results/README.md: test accuracy mean ± std (n seeds) per cell."""

    def cell(r: dict) -> str:
        return f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f} ({r['n_seeds']})"

    lines = [
        "## Every published set, one table",
        "",
        "Test accuracy, mean ± std (seeds), of every result set above pooled: one row per adapter × strategy, "
        "one column per task at a data budget, input size and device, and the mean over the columns a row has "
        "(a mean over fewer columns does not compare with one over more). The "
        "same numbers as CSV: [summary.csv](summary.csv).",
        "",
        "| adapter | strategy | " + " | ".join(columns) + " | mean (columns) |",
        "|---|---|" + "---:|" * (len(columns) + 1),
    ]
    for r in rows:
        cells = [cell(r[c]) if c in r else "—" for c in columns]
        mean = f"{r['mean']:.3f} ({r['columns']})"
        lines.append(f"| {r['adapter']} | {r['strategy']} | " + " | ".join(cells) + f" | {mean} |")
    return [*lines, ""]
