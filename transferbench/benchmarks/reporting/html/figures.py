"""The plotly figures of the HTML report (``report.py``, ``index.py``): pure functions from aggregated
rows (``results.aggregate``) and records to plotly figure JSON, so a page is a function of its records.

plotly is imported lazily: it is an optional extra (``transferbench[report]``), and the Markdown, CSV
and PNG report must work without it. The page draws with plotly.js's basic bundle (``frame.py``),
which has the scatter, bar and pie traces only: ``figure`` refuses any other (every figure here is
a scatter). Every point carries ``customdata`` = the number of its row in the page's headline
table, so clicking a point can show that row's provenance.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from typing import Any

from transferbench.benchmarks.results import data_budget
from transferbench.errors import UserError

PLOTLY_MISSING = "--html needs plotly: pip install 'transferbench[report]'"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
# plotly's own qualitative palette, fixed here so a colour means the same group in every figure of a page
PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880", "#ff97ff", "#fecb52")

# the trace types of the plotly.js basic bundle the pages inline (assets/README.md)
BASIC_TRACES = ("scatter", "bar", "pie")

Numbered = list[tuple[int, dict[str, Any]]]  # (row number in the headline table, aggregated row)


def require_plotly() -> None:
    """Fail in one line, before anything is written, when the optional plotly is not installed."""
    try:
        import plotly  # noqa: F401  (lazy: an optional extra)
    except ImportError:
        raise UserError(PLOTLY_MISSING) from None


def _go() -> Any:
    require_plotly()
    import plotly.graph_objects as go

    return go


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, gain) points no other point beats (at most the cost and at least the
    gain, better in one), cheapest first: the choices worth making when cheaper and better both
    count. Of equal points the first is kept."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def full_budget(numbered: Numbered) -> Numbered:
    """The rows at each task's largest data budget: the budget the cost plots compare (as reporting/plots.py's PNGs)."""
    largest: dict[str, int] = {}
    for _, r in numbered:
        largest[r["task"]] = max(largest.get(r["task"], 0), r["train_examples"])
    return [(n, r) for n, r in numbered if r["train_examples"] == largest[r["task"]]]


def swept_tasks(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Tasks run at more than one data budget: the ones a data-efficiency curve can be drawn for."""
    budgets: dict[str, set[int]] = {}
    for r in rows:
        budgets.setdefault(r["task"], set()).add(r["train_examples"])
    return sorted(task for task, sizes in budgets.items() if len(sizes) > 1)


def _name(r: dict[str, Any]) -> str:
    return f"{r['adapter']}/{r['strategy']}"


def _hover(r: dict[str, Any], *lines: str) -> str:
    """Hover text of a row: what it is, the given lines, and where its provenance is."""
    head = f"<b>{html.escape(_name(r))}</b><br>{html.escape(r['task'])}, {html.escape(data_budget(r))} train examples"
    seeds = f"n={r['n_seeds']} seed{'s' if r['n_seeds'] > 1 else ''}"
    return "<br>".join([head, *lines, seeds, "<i>click: provenance</i>"])


def _labels(points: Numbered) -> dict[str, Any]:
    """Each point named beside it (its strategy, or adapter/strategy where a set has several adapters);
    the hover text has the numbers."""
    several = len({r["adapter"] for _, r in points}) > 1
    return {
        "mode": "markers+text",
        "text": [html.escape(_name(r) if several else r["strategy"]) for _, r in points],
        "textposition": "top center",
        "textfont": {"size": 10, "color": "#444"},
        "hoverinfo": "text",
    }


def _gain_text(r: dict[str, Any]) -> str:
    ci = r["gain_ci_pts"]
    return f"gain {r['gain_pts']:+.1f} pts" + (f" [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else " (no interval)")


def _error(values: list[float], lows: list[float], highs: list[float]) -> dict[str, Any] | None:
    """Asymmetric error bars (plotly's error_y), or None where no point has one."""
    plus = [h - v for v, h in zip(values, highs, strict=True)]
    minus = [v - lo for v, lo in zip(values, lows, strict=True)]
    if not any(plus) and not any(minus):
        return None
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "thickness": 1.2, "width": 3}


def layout(title: str, x_title: str, y_title: str, *, log_x: bool) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "template": "plotly_white",
        "font": {"family": FONT, "size": 12},
        "height": 460,
        "margin": {"l": 70, "r": 20, "t": 50, "b": 60},
        "hovermode": "closest",
        "legend": {"font": {"size": 11}},
        "xaxis": {"title": {"text": x_title}, "type": "log" if log_x else "linear", "zeroline": False},
        "yaxis": {"title": {"text": y_title}, "zeroline": False},
    }


def figure(traces: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    """Validated by plotly (a misspelt property fails here, not silently in the browser), as plain JSON;
    a trace the basic bundle cannot draw (``scattergl``, ``heatmap``, ...) fails here too."""
    other = sorted({t.get("type", "scatter") for t in traces} - set(BASIC_TRACES))
    if other:
        raise ValueError(f"trace types {other} are not in the plotly.js basic bundle the page inlines")
    fig = _go().Figure(data=traces, layout=layout)
    return json.loads(fig.to_json())


def _markers(name: str, color: str, points: Numbered, **extra: Any) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "markers",
        "name": name,
        "legendgroup": name,
        "marker": {"color": color, "size": 10, "line": {"width": 1, "color": "#333"}},
        "customdata": [n for n, _ in points],
        **extra,
    }


def gain_vs_cost(numbered: Numbered) -> dict[str, Any] | None:
    """Gain over the same architecture from scratch against training seconds at each task's full
    budget, with each task's Pareto front (most gain for least time). None without a gain to show
    (a set with no scratch row)."""
    rows = [(n, r) for n, r in full_budget(numbered) if r["gain_pts"] is not None]
    if not rows:
        return None
    traces = []
    for i, task in enumerate(sorted({r["task"] for _, r in rows})):
        color, points = PALETTE[i % len(PALETTE)], [(n, r) for n, r in rows if r["task"] == task]
        gains = [r["gain_pts"] for _, r in points]
        cis = [r["gain_ci_pts"] or (r["gain_pts"], r["gain_pts"]) for _, r in points]
        trace = _markers(task, color, points)
        trace.update(
            x=[r["train_s_mean"] for _, r in points],
            y=gains,
            error_y=_error(gains, [c[0] for c in cis], [c[1] for c in cis]),
            hovertext=[_hover(r, _gain_text(r), f"train {r['train_s_mean']:.1f} s") for _, r in points],
            **_labels(points),
        )
        traces.append({k: v for k, v in trace.items() if v is not None})
        front = [points[j][1] for j in pareto_front([(r["train_s_mean"], r["gain_pts"]) for _, r in points])]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"Pareto front: {task}",
                "legendgroup": task,
                "x": [r["train_s_mean"] for r in front],
                "y": [r["gain_pts"] for r in front],
                "line": {"color": color, "dash": "dash", "width": 1.5, "shape": "hv"},
                "hoverinfo": "skip",
            }
        )
    frame = layout(
        "What transfer buys against what it costs",
        "training time, seconds (log)",
        "gain over own scratch, accuracy points",
        log_x=True,
    )
    frame["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 0, "y1": 0, "line": {"width": 1}}]
    return figure(traces, frame)


def accuracy_vs_trainable(numbered: Numbered, title: str = "Accuracy against trainable parameters") -> dict | None:
    """Test accuracy (± std over seeds) against trainable parameters (log) at each task's full budget,
    pretrained rows as circles and from-scratch rows as crosses: what parameter-efficient methods promise."""
    rows = full_budget(numbered)
    if not rows:
        return None
    traces = []
    for i, task in enumerate(sorted({r["task"] for _, r in rows})):
        for pretrained, label, symbol in ((True, "pretrained", "circle"), (False, "from scratch", "x")):
            points = [(n, r) for n, r in rows if r["task"] == task and r["pretrained"] == pretrained]
            if not points:
                continue
            trace = _markers(f"{task}: {label}", PALETTE[i % len(PALETTE)], points)
            trace["marker"]["symbol"] = symbol
            trace.update(
                x=[r["trainable_params"] for _, r in points],
                y=[r["accuracy_mean"] for _, r in points],
                error_y={"type": "data", "array": [r["accuracy_std"] for _, r in points], "thickness": 1.2, "width": 3},
                hovertext=[_hover(r, _accuracy_text(r), f"{r['trainable_params']:,} trainable") for _, r in points],
                **_labels(points),
            )
            traces.append(trace)
    return figure(traces, layout(title, "trainable parameters (log)", "test accuracy", log_x=True))


def _accuracy_text(r: dict[str, Any]) -> str:
    return f"accuracy {r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f}"


def _curve_x(record: dict[str, Any]) -> list[int]:
    """The epochs at which a run validated: ``details.val_epochs`` where --min-steps added epochs, else 1..n."""
    curve = record["val_accuracy_per_epoch"]
    given = (record.get("details") or {}).get("val_epochs")
    if isinstance(given, list) and len(given) == len(curve):
        return given
    return list(range(1, len(curve) + 1))


def _run_key(r: dict[str, Any]) -> tuple[str, str, int]:
    return (r["adapter"], r["strategy"], r["train_examples"])


def _run_trace(n: int, r: dict[str, Any], label: str, color: str, *, first: bool, last_epoch: int) -> dict:
    """One run's validation curve; the first seed of a row carries the legend entry of them all. A run
    fitted once (a probe, a classical model) has one validation score: a dashed level across the epochs."""
    curve = r["val_accuracy_per_epoch"]
    once = len(curve) == 1
    x = [1, last_epoch] if once and last_epoch > 1 else _curve_x(r)
    y = curve * len(x) if once else curve
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "name": label + (" (fitted once)" if once else ""),
        "legendgroup": label,
        "showlegend": first,
        "x": x,
        "y": y,
        "customdata": [n] * len(x),
        "line": {"color": color, "width": 1.5, "dash": "dash" if once else "solid"},
        "marker": {"color": color, "size": 5, "symbol": "diamond" if once else "circle"},
        "text": [f"<b>{html.escape(label)}</b>, seed {r['seed']}<br>run {html.escape(r['run_id'])}"] * len(x),
        "hovertemplate": "%{text}<br>epoch %{x}: %{y:.3f}<br><i>click: provenance</i><extra></extra>",
    }


def validation_curves(task: str, runs: list[tuple[int, dict[str, Any]]]) -> dict[str, Any] | None:
    """Validation accuracy after each epoch of every run of ``task`` (the records the table counts:
    one line per seed, one legend entry per row, which toggles its seeds); a run fitted once is a dashed level."""
    runs = [(n, r) for n, r in runs if r["task"] == task and r["val_accuracy_per_epoch"]]
    if not runs:
        return None
    several_budgets = len({r["train_examples"] for _, r in runs}) > 1
    groups = sorted({_run_key(r) for _, r in runs})
    last_epoch = max(max(_curve_x(r)) for _, r in runs)
    traces, shown = [], set()
    for n, r in sorted(runs, key=lambda nr: (groups.index(_run_key(nr[1])), nr[1]["seed"])):
        key = _run_key(r)
        label = _name(r) + (f", {r['train_examples']} ex." if several_budgets else "")
        traces.append(
            _run_trace(
                n, r, label, PALETTE[groups.index(key) % len(PALETTE)], first=key not in shown, last_epoch=last_epoch
            )
        )
        shown.add(key)
    return figure(traces, layout(f"Validation curves per run: {task}", "epoch", "validation accuracy", log_x=False))


def data_efficiency(task: str, numbered: Numbered) -> dict[str, Any] | None:
    """Test accuracy (± std over seeds) against labelled training examples (log) for each
    adapter/strategy of a task run at several data budgets."""
    rows = [(n, r) for n, r in numbered if r["task"] == task]
    keys = sorted({(r["adapter"], r["strategy"]) for _, r in rows})
    if len({r["train_examples"] for _, r in rows}) < 2:
        return None
    traces = []
    for i, key in enumerate(keys):
        points = [(n, r) for n, r in rows if (r["adapter"], r["strategy"]) == key]
        points.sort(key=lambda nr: nr[1]["train_examples"])
        trace = _markers("/".join(key), PALETTE[i % len(PALETTE)], points)
        trace.update(
            mode="lines+markers",
            x=[r["train_examples"] for _, r in points],
            y=[r["accuracy_mean"] for _, r in points],
            error_y={"type": "data", "array": [r["accuracy_std"] for _, r in points], "thickness": 1.2, "width": 3},
            line={"color": PALETTE[i % len(PALETTE)], "dash": "solid" if points[0][1]["pretrained"] else "dot"},
            text=[_hover(r, _accuracy_text(r)) for _, r in points],
            hoverinfo="text",
        )
        traces.append(trace)
    title = f"Data efficiency: {task} (dotted: from scratch)"
    return figure(traces, layout(title, "labelled training examples (log)", "test accuracy", log_x=True))
