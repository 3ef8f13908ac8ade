"""A result set's pictures (PNG, matplotlib imported lazily): accuracy by strategy, accuracy against
cost and against trainable parameters, validation curves, and the gain against labelled examples
where a task was swept over data budgets."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any


def pyplot() -> Any:
    import matplotlib  # lazy: matplotlib is heavy and only needed for plots

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _task_panels(full: list[dict], tasks: list[str], key: str) -> tuple[Any, list[tuple[Any, str, list[dict]]]]:
    """One panel per task, with that task's rows sorted by ``key``."""
    fig, panels = _per_task_figure(tasks)
    return fig, [
        (ax, task, sorted((r for r in full if r["task"] == task), key=lambda r: r[key])) for ax, task in panels
    ]


def _per_task_figure(tasks: list[str]) -> tuple[Any, list[tuple[Any, str]]]:
    """One panel per task, side by side."""
    fig, axes = pyplot().subplots(1, len(tasks), figsize=(4.5 * len(tasks), 4), squeeze=False)
    return fig, list(zip(axes[0], tasks, strict=True))


def _label_points(ax: Any, rows: list[dict], x_key: str) -> None:
    """Each point named adapter/strategy, alternately above and below so neighbours stay legible."""
    for i, r in enumerate(rows):
        ax.annotate(
            f"{r['adapter']}/{r['strategy']}",
            (r[x_key], r["accuracy_mean"]),
            fontsize=7,
            xytext=(5, 6 if i % 2 == 0 else -11),
            textcoords="offset points",
        )


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
    fig, panels = _task_panels(full, tasks, "train_s_mean")
    for ax, task, rs in panels:
        for r in rs:
            ax.scatter(r["train_s_mean"], r["accuracy_mean"], color="tab:blue" if r["pretrained"] else "tab:gray")
        _label_points(ax, rs, "train_s_mean")
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
    ticker = pyplot().matplotlib.ticker
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
    fig, axes = pyplot().subplots(1, 2, figsize=(12, 4.5), sharey=True)
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
    fig, panels = _task_panels(full, tasks, "trainable_params")
    for ax, task, rs in panels:
        for r in rs:
            ax.errorbar(
                r["trainable_params"],
                r["accuracy_mean"],
                yerr=r["accuracy_std"] if r["n_seeds"] > 1 else None,
                fmt="o",
                capsize=3,
                color="tab:blue" if r["pretrained"] else "tab:gray",
            )
        _label_points(ax, rs, "trainable_params")
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
    pyplot().close(fig)
    tmp.replace(path)
    return path
