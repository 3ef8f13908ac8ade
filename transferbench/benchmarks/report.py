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
from transferbench.benchmarks.results import (
    RESULTS_FILE,
    SCHEMA,
    STATUSES,
    aggregate,
    document,
    latest_per_seed,
    prepare_out_dir,
    provenance_lines,
    read_results,
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
    """Run records from results.jsonl files (or directories holding one); returns (records, skipped
    lines as ``file:line: why``). Torn lines are skipped with a warning; a line that is not a
    transferbench record is a UserError naming file:line, or (``skip_invalid``) skipped and counted."""
    records: list[dict] = []
    skipped: list[str] = []
    for given in paths:
        path = Path(given)
        path = path / RESULTS_FILE if path.is_dir() else path
        if not path.is_file():
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
    "n_seeds",
    "accuracy_mean",
    "accuracy_std",
    "macro_f1_mean",
    "gain_pts",
    "gain_ci_low_pts",
    "gain_ci_high_pts",
    "near_chance_runs",
    "train_s_mean",
    "train_samples_per_s",
    "pipeline_efficiency",
    "time_to_target_s",
    "trainable_params",
    "total_params",
)


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        ci = r["gain_ci_pts"] or (None, None)
        writer.writerow({**r, "gain_ci_low_pts": ci[0], "gain_ci_high_pts": ci[1]})
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


def _plot_gain_vs_examples(rows: list[dict], swept: list[str], out: Path) -> Path:
    fig, ax = _pyplot().subplots(figsize=(6.5, 4.5))
    for task in swept:
        gains = [r for r in rows if r["task"] == task and r["gain_pts"] is not None]
        for key in sorted({(r["adapter"], r["strategy"]) for r in gains}):
            rs = sorted((r for r in gains if (r["adapter"], r["strategy"]) == key), key=lambda r: r["train_examples"])
            ax.plot(
                [r["train_examples"] for r in rs],
                [r["gain_pts"] for r in rs],
                marker="o",
                label=f"{task}/{key[0]}/{key[1]}",
            )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training examples (log)")
    ax.set_ylabel("gain over scratch, accuracy points")
    ax.set_title("what transfer buys, by data budget")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, out / "gain_vs_examples.png")


def plot(rows: list[dict], out: Path) -> list[Path]:
    """PNG plots: accuracy by strategy per task; accuracy vs training seconds; validation curves;
    transfer gain against labelled examples where a task was swept over data budgets."""
    tasks = sorted({r["task"] for r in rows})
    largest = {t: max(r["train_examples"] for r in rows if r["task"] == t) for t in tasks}
    full = [r for r in rows if r["train_examples"] == largest[r["task"]]]
    written = [
        _plot_accuracy_by_strategy(full, tasks, out),
        _plot_accuracy_vs_cost(full, tasks, out),
        _plot_validation_curves(full, tasks, out),
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


def write_index(results_dir: str | Path) -> Path:
    """results/README.md: one entry per published result set (a folder with a results.jsonl)."""
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
    for path in sorted(root.glob("*/results.jsonl")):
        records, _ = load_results([path], skip_invalid=True)
        if not records:
            continue

        tasks, adapters, strategies = (
            ", ".join(sorted({str(r[k]) for r in records})) for k in ("task", "adapter", "strategy")
        )

        devices = ", ".join(sorted({r["hardware"].get("gpu") or r["hardware"].get("cpu", "?") for r in records}))
        commits = ", ".join(sorted({r["git_commit"][:12] for r in records}))
        lines.append(
            f"| [{path.parent.name}]({path.parent.name}/) | {len(records)} | {tasks} | "
            f"{adapters} | {strategies} | {devices} | {commits} | "
            f"{max(r['finished_at'] for r in records)[:10]} |"
        )
    for path in sorted(root.glob("*/*.md")):
        if path.parent.name == "throughput" or path.name == "report.md":
            lines.append(f"\n- [{path.parent.name}/{path.name}]({path.parent.name}/{path.name})")
    lines += [
        "",
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
