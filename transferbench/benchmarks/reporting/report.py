"""``transferbench report``: report.md (the tables of results.py plus a cross-domain summary), CSV,
plots and an index of published result sets.

Reading is results.py's ``read_results``: a torn line (not complete JSON) is always skipped with a
warning; a line that is not a transferbench record (docs/results-schema.md) is an error naming the
file and line, unless ``--skip-invalid`` (then it is skipped and counted in report.md).
"""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path
from typing import Any

from transferbench.adapters import ADAPTERS
from transferbench.benchmarks.results.store import (
    SCHEMA,
    STATUSES,
    aggregate,
    document,
    latest_per_seed,
    prepare_out_dir,
    provenance_lines,
    read_results,
    results_files,
    validate_record,
    welch_interval,
    write_atomic,
)
from transferbench.errors import UserError
from transferbench.tasks import DOMAINS

__all__ = [
    "SCHEMA",
    "STATUSES",
    "aggregate",
    "latest_per_seed",
    "load_results",
    "markdown",
    "not_run_here",
    "plot",
    "provenance_lines",
    "report",
    "to_csv",
    "validate_record",
    "welch_interval",
    "write_index",
]


def load_results(paths: list[str | Path], *, skip_invalid: bool = False) -> tuple[list[dict], list[str]]:
    """Run records from results files or folders (a folder's results.jsonl and ``--shard`` files are
    one set: ``results_files``); returns (records, skipped lines as ``file:line: why``). Torn lines
    are skipped with a warning; a line that is not a transferbench record is a UserError naming
    file:line, or (``skip_invalid``) skipped and counted."""
    records: list[dict] = []
    skipped: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_dir() and not results_files(path):
            raise UserError(
                f"report: {path} holds no results.jsonl (nor results.shard-I-of-N.jsonl files from --shard)"
            )
        if not path.exists():
            raise UserError(f"report: {path} not found (expected a results.jsonl or a directory holding one)")
        loaded = read_results(
            path, strict=not skip_invalid, validate=validate_record, hint="use --skip-invalid to report the rest"
        )
        records += loaded.records
        skipped += loaded.skipped
    return records, skipped


def cross_domain_section(rows: list[dict]) -> list[str]:
    """Best pretrained row against the best scratch row of each domain."""
    out = [
        "## Cross-domain summary",
        "",
        "Best transfer (pretrained) row against the best scratch row of each domain, with the training time each took.",
        "",
        "| domain | best transfer | accuracy | train s | best scratch | accuracy | train s |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for domain in sorted({r["domain"] for r in rows}):
        cells = []
        for pretrained in (True, False):
            candidates = [r for r in rows if r["domain"] == domain and r["pretrained"] == pretrained]
            best = max(candidates, key=lambda r: r["accuracy_mean"]) if candidates else None
            cells += (
                ["—"] * 3
                if best is None
                else [
                    f"{best['task']}/{best['adapter']}/{best['strategy']}",
                    f"{best['accuracy_mean']:.3f}",
                    f"{best['train_s_mean']:.0f}",
                ]
            )
        out.append(f"| {domain} | " + " | ".join(cells) + " |")
    return [*out, ""]


def markdown(rows: list[dict], records: list[dict], skipped: list[str]) -> str:
    """report.md: the same document as results.md (results.py ``document``) plus the cross-domain summary."""
    return document("transferbench report", rows, records, skipped, extra=cross_domain_section(rows))


CSV_FIELDS = (
    "domain",
    "task",
    "adapter",
    "strategy",
    "train_examples",
    "data_protocol",
    "epochs",
    "steps",
    "input_size",
    "n_seeds",
    "accuracy_mean",
    "accuracy_std",
    "macro_f1_mean",
    "gain_pts",
    "gain_ci_low_pts",
    "gain_ci_high_pts",
    "gain_best_pts",
    "gain_best_ci_low_pts",
    "gain_best_ci_high_pts",
    "best_scratch",
    "near_chance_runs",
    "train_s_mean",
    "train_samples_per_s",
    "pipeline_efficiency",
    "time_to_target_s",
    "trainable_params",
    "total_params",
    "trainable_share",
)


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        ci, best = r["gain_ci_pts"] or (None, None), r["gain_best_ci_pts"] or (None, None)
        share = r["trainable_params"] / r["total_params"] if r["total_params"] else None
        budget = {k: ";".join(map(str, r[k])) for k in ("epochs", "steps")} if not r["closed_form"] else {}
        writer.writerow(
            {
                **r,
                "epochs": budget.get("epochs", ""),
                "steps": budget.get("steps", "closed-form"),
                "gain_ci_low_pts": ci[0],
                "gain_ci_high_pts": ci[1],
                "gain_best_ci_low_pts": best[0],
                "gain_best_ci_high_pts": best[1],
                "trainable_share": share,
            }
        )
    return buffer.getvalue()


def _pyplot() -> Any:
    import matplotlib  # lazy: matplotlib is heavy and only needed for plots

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _per_task_figure(tasks: list[str]) -> tuple[Any, list[tuple[Any, str]]]:
    """One panel per task, side by side."""
    fig, axes = _pyplot().subplots(1, len(tasks), figsize=(4.5 * len(tasks), 4), squeeze=False)
    return fig, list(zip(axes[0], tasks, strict=True))


def _plot_accuracy_by_strategy(full: list[dict], tasks: list[str], out: Path) -> Path:
    fig, panels = _per_task_figure(tasks)
    for ax, task in panels:
        rs = [r for r in full if r["task"] == task]
        labels = [f"{r['adapter']}\n{r['strategy']}" for r in rs]
        colors = ["tab:blue" if r["pretrained"] else "tab:gray" for r in rs]
        ax.bar(
            range(len(rs)),
            [r["accuracy_mean"] for r in rs],
            yerr=[r["accuracy_std"] for r in rs],
            color=colors,
            capsize=4,
        )
        ax.set_xticks(range(len(rs)), labels, rotation=45, ha="right", fontsize=8)
        for i, r in enumerate(rs):
            ax.text(
                i, r["accuracy_mean"] + r["accuracy_std"] + 0.01, f"{r['accuracy_mean']:.3f}", ha="center", fontsize=8
            )
        chance = max(r["chance"] for r in rs)
        if chance:
            ax.axhline(chance, color="tab:red", ls="--", lw=1, label=f"majority class {chance:.2f}")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{task} (blue: pretrained, grey: from scratch)", fontsize=9)
        ax.set_ylabel("test accuracy (mean ± std over seeds)")
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, out / "accuracy_by_strategy.png")


def _plot_accuracy_vs_cost(full: list[dict], tasks: list[str], out: Path) -> Path:
    fig, panels = _per_task_figure(tasks)
    for ax, task in panels:
        rs = sorted((r for r in full if r["task"] == task), key=lambda r: r["train_s_mean"])
        for i, r in enumerate(rs):
            ax.scatter(r["train_s_mean"], r["accuracy_mean"], color="tab:blue" if r["pretrained"] else "tab:gray")
            ax.annotate(
                f"{r['adapter']}/{r['strategy']}",
                (r["train_s_mean"], r["accuracy_mean"]),
                fontsize=7,
                xytext=(5, 6 if i % 2 == 0 else -11),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        ax.set_xlabel("training time, device-seconds (log)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{task}: accuracy vs cost", fontsize=9)
        ax.margins(x=0.35, y=0.15)
        ax.grid(alpha=0.3)
    return _save(fig, out / "accuracy_vs_cost.png")


def _plot_validation_curves(full: list[dict], tasks: list[str], out: Path) -> Path:
    fig, panels = _per_task_figure(tasks)
    for ax, task in panels:
        fitted = 0
        for r in (r for r in full if r["task"] == task):
            curves = [c for c in r["val_curves"] if len(c) > 1]
            label = f"{r['adapter']}/{r['strategy']}"
            if curves:
                length = min(map(len, curves))
                mean = [statistics.fmean(c[i] for c in curves) for i in range(length)]
                ax.plot(range(1, length + 1), mean, marker="o", label=label)
            elif r["val_curves"] and r["val_curves"][0]:  # a fitted probe: one validation score
                ax.axhline(
                    statistics.fmean(c[0] for c in r["val_curves"]),
                    ls=("--", ":", "-.")[fitted % 3],
                    lw=1.2,
                    color=f"C{(fitted + 5) % 10}",
                    label=f"{label} (fitted once)",
                )
                fitted += 1
        ax.set_title(task)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy (mean over seeds)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(fig, out / "validation_curves.png")


def _plain(v: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:g}{suffix}"
    return f"{v:g}"


def _plain_log_axis(axis: Any) -> None:
    """Log scale with plain numbers (100, 10k, 1M), not 10^2 notation."""
    ticker = _pyplot().matplotlib.ticker
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: _plain(v)))
    axis.set_minor_formatter(ticker.NullFormatter())


def _error_bars(rows: list[dict], name: str) -> list[list[float]] | None:
    """Asymmetric error bars from the 95% intervals (zero where a row has none: n = 1)."""
    lows, highs = [], []
    for r in rows:
        ci = r[f"{name}_ci_pts"]
        lows.append(r[f"{name}_pts"] - ci[0] if ci else 0.0)
        highs.append(ci[1] - r[f"{name}_pts"] if ci else 0.0)
    return [lows, highs] if any(lows) or any(highs) else None


def _plot_gain_vs_examples(rows: list[dict], swept: list[str], out: Path) -> Path:
    """Gain over the same architecture from scratch, and over the task's strongest scratch row, by
    data budget; error bars are 95% intervals across seeds where n > 1."""
    fig, axes = _pyplot().subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, name, title in (
        (axes[0], "gain", "over the same architecture from scratch"),
        (axes[1], "gain_best", "over the task's strongest scratch row"),
    ):
        for task in swept:
            gains = [r for r in rows if r["task"] == task and r[f"{name}_pts"] is not None and r["pretrained"]]
            for key in sorted({(r["adapter"], r["strategy"]) for r in gains}):
                rs = sorted(
                    (r for r in gains if (r["adapter"], r["strategy"]) == key), key=lambda r: r["train_examples"]
                )
                ax.errorbar(
                    [r["train_examples"] for r in rs],
                    [r[f"{name}_pts"] for r in rs],
                    yerr=_error_bars(rs, name),
                    marker="o",
                    capsize=3,
                    label=f"{task}/{key[0]}/{key[1]}",
                )
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xscale("log")
        _plain_log_axis(ax.xaxis)
        ax.set_xlabel("labelled training examples (log)")
        ax.set_ylabel("gain, accuracy points")
        ax.set_title(f"what transfer buys: {title}", fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(fig, out / "gain_vs_examples.png")


def _plot_accuracy_vs_trainable(full: list[dict], tasks: list[str], out: Path) -> Path:
    """What parameter-efficient methods promise, per task: accuracy against trainable parameters."""
    fig, panels = _per_task_figure(tasks)
    for ax, task in panels:
        rs = sorted((r for r in full if r["task"] == task), key=lambda r: r["trainable_params"])
        for i, r in enumerate(rs):
            ax.errorbar(
                r["trainable_params"],
                r["accuracy_mean"],
                yerr=r["accuracy_std"] if r["n_seeds"] > 1 else None,
                fmt="o",
                capsize=3,
                color="tab:blue" if r["pretrained"] else "tab:gray",
            )
            ax.annotate(
                f"{r['adapter']}/{r['strategy']}",
                (r["trainable_params"], r["accuracy_mean"]),
                fontsize=7,
                xytext=(5, 6 if i % 2 == 0 else -11),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        _plain_log_axis(ax.xaxis)
        ax.set_xlabel("trainable parameters (log)")
        ax.set_ylabel("test accuracy (± std over seeds where n > 1)")
        ax.set_title(f"{task}: accuracy vs trainable parameters", fontsize=9)
        ax.margins(x=0.35, y=0.15)
        ax.grid(alpha=0.3)
    return _save(fig, out / "accuracy_vs_trainable_params.png")


def plot(rows: list[dict], out: Path) -> list[Path]:
    """PNG plots: accuracy by strategy per task; accuracy vs training seconds; validation curves;
    accuracy vs trainable parameters; transfer gain against labelled examples where a task was swept
    over data budgets."""
    tasks = sorted({r["task"] for r in rows})
    largest = {t: max(r["train_examples"] for r in rows if r["task"] == t) for t in tasks}
    full = [r for r in rows if r["train_examples"] == largest[r["task"]]]
    written = [
        _plot_accuracy_by_strategy(full, tasks, out),
        _plot_accuracy_vs_cost(full, tasks, out),
        _plot_validation_curves(full, tasks, out),
        _plot_accuracy_vs_trainable(full, tasks, out),
    ]
    swept = [t for t in tasks if len({r["train_examples"] for r in rows if r["task"] == t}) > 1]
    if swept:
        written.append(_plot_gain_vs_examples(rows, swept, out))
    return written


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    _pyplot().close(fig)
    tmp.replace(path)
    return path


def report(paths: list[str | Path], out: str | Path, *, skip_invalid: bool = False, plots: bool = True) -> dict:
    """report.md, report.csv and (``plots``) PNGs in ``out`` from the records of ``paths``."""
    records, skipped = load_results(paths, skip_invalid=skip_invalid)
    if not records:
        raise UserError(f"report: no valid records in {', '.join(map(str, paths))}")
    out = prepare_out_dir(out)
    rows = aggregate(records)
    write_atomic(out / "report.md", markdown(rows, records, skipped))
    write_atomic(out / "report.csv", to_csv(rows))
    images = plot(rows, out) if plots and rows else []
    return {
        "rows": rows,
        "records": len(records),
        "skipped": skipped,
        "files": [out / "report.md", out / "report.csv", *images],
    }


def not_run_here() -> list[str]:
    """Commands for every adapter whose pretrained weights need the network (no offline copy ships)."""
    commands = []
    for name in ADAPTERS.names():
        spec = ADAPTERS.get(name)
        task = DOMAINS.get(spec.domain).reference_task if spec.domain in DOMAINS else None
        hub_only = not spec.offline_pretrained and not spec.classical and not spec.pretrained_source.startswith("none")
        if hub_only and task:
            commands.append(f"transferbench run --task {task} --adapter {name} --seeds 0,1,2")
    return commands


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


def write_index(results_dir: str | Path) -> Path:
    """results/README.md: one entry per published result set (a folder with a results.jsonl), and the
    cross-task table of them all, also written as results/summary.csv."""
    root = Path(results_dir)
    lines = [
        "# Published results",
        "",
        "Each folder holds one result set: `results.jsonl` (one record per run, with config, versions, git "
        "commit and hardware) and its tables. Regenerate this index with `tox -e report`. Accuracies compare "
        "across machines; seconds and samples/s only within one set (same machine, same load)"
        + (": see [NOTES.md](NOTES.md) for how these were measured." if (root / "NOTES.md").exists() else "."),
        "",
        "| result set | runs | tasks | adapters | strategies | device | git commit | finished |",
        "|---|---:|---|---|---|---|---|---|",
    ]
    published: list[dict] = []
    for path in sorted(folder for folder in root.iterdir() if folder.is_dir() and results_files(folder)):
        records, _ = load_results([path], skip_invalid=True)
        if not records:
            continue
        published += records

        tasks, adapters, strategies = (
            ", ".join(sorted({str(r[k]) for r in records})) for k in ("task", "adapter", "strategy")
        )

        devices = ", ".join(sorted({r["hardware"].get("gpu") or r["hardware"].get("cpu", "?") for r in records}))
        commits = ", ".join(sorted({r["git_commit"][:12] for r in records}))
        lines.append(
            f"| [{path.name}]({path.name}/) | {len(records)} | {tasks} | "
            f"{adapters} | {strategies} | {devices} | {commits} | "
            f"{max(r['finished_at'] for r in records)[:10]} |"
        )
    for path in sorted(root.glob("*/*.md")):
        if path.parent.name == "throughput" or path.name == "report.md":
            lines.append(f"\n- [{path.parent.name}/{path.name}]({path.parent.name}/{path.name})")
    columns, summary = cross_task(published)
    lines += ["", *summary_markdown(columns, summary)]
    write_atomic(root / "summary.csv", summary_csv(columns, summary))
    lines += [
        "## Not run here",
        "",
        "These machines cannot reach the Hugging Face hub or download.pytorch.org, so rows whose pretrained "
        "weights come from there are not in any result set above. On a connected machine:",
        "",
    ]
    lines += [f"- `{command}`" for command in [*not_run_here(), "transferbench run --suite seed-vgg16-cifar10"]]
    index = root / "README.md"
    write_atomic(index, "\n".join(lines) + "\n")
    return index
