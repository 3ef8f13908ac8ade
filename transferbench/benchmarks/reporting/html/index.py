"""``transferbench report --index RESULTS_DIR --html``: ``RESULTS_DIR/index.html``, every published
result set with a link to its page, and the cross-set summary of ``results/README.md``
(``summary.cross_task``, the same pool: the sets one folder down), as sortable tables, with accuracy
against trainable parameters across the sets.

Sets grouped in a folder (``sst2-lora-budget-minilm-l6/*``: runs that share a cell and would supersede
each other in one set) are listed and linked too, but stay out of the summary, as in README.md.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from transferbench.benchmarks.reporting.benchmark import HEADERS, benchmark_headline, headline_cells, sort_keys
from transferbench.benchmarks.reporting.html import figures as figs
from transferbench.benchmarks.reporting.html.frame import document, json_script, sortable_table
from transferbench.benchmarks.reporting.html.report import PAGE_FILE, quietly
from transferbench.benchmarks.reporting.report import load_results
from transferbench.benchmarks.reporting.summary import cross_task
from transferbench.benchmarks.results import aggregate, data_budget, results_files, write_atomic
from transferbench.errors import UserError

INDEX_FILE = "index.html"


def published_sets(root: Path) -> list[Path]:
    """Folders under ``root`` holding run files: one level down, or two where a folder groups sets."""
    sets: list[Path] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if results_files(folder):
            sets.append(folder)
        else:
            sets += sorted(sub for sub in folder.iterdir() if sub.is_dir() and results_files(sub))
    return sets


def _set_row(root: Path, path: Path, records: list[dict], page_file: str) -> tuple[None, list[str], list[Any], str]:
    name = path.relative_to(root).as_posix()
    link = f'<a href="{html.escape(name)}/{page_file}">{html.escape(name)}</a>' if (path / page_file).exists() else name
    values = [
        len(records),
        *(", ".join(sorted({str(r[k]) for r in records})) for k in ("task", "adapter", "strategy")),
        ", ".join(sorted({r["hardware"].get("gpu") or r["hardware"].get("cpu", "?") for r in records})),
        ", ".join(sorted({r["git_commit"][:12] for r in records})),
        max(r["finished_at"] for r in records)[:10],
    ]
    cells = [link, *(html.escape(str(v)) for v in values)]
    return None, cells, [name, *values], ""


def _summary_table(records: list[dict]) -> str:
    """summary.py's cross-task table: accuracy mean ± std (seeds) per adapter x strategy and column."""
    columns, rows = cross_task(records)
    body = []
    for r in rows:
        cells = [r["adapter"], r["strategy"]]
        cells += [
            f"{r[c]['accuracy_mean']:.3f} ± {r[c]['accuracy_std']:.3f} ({r[c]['n_seeds']})" if c in r else "—"
            for c in columns
        ]
        cells.append(f"{r['mean']:.3f} ({r['columns']})")
        keys = [r["adapter"], r["strategy"], *(r[c]["accuracy_mean"] if c in r else None for c in columns), r["mean"]]
        body.append((None, [html.escape(c) for c in cells], keys, ""))
    headers = ["adapter", "strategy", *columns, "mean (columns)"]
    return sortable_table("summary", headers, ["text", "text"] + ["num"] * (len(columns) + 1), body)


def _accuracy_figure(pool: list[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """Accuracy against trainable parameters of every row of every set: one trace per task."""
    if not pool:
        return None
    traces = []
    for i, task in enumerate(sorted({r["task"] for _, r in pool})):
        points = [(name, r) for name, r in pool if r["task"] == task]
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": task,
                "x": [r["trainable_params"] for _, r in points],
                "y": [r["accuracy_mean"] for _, r in points],
                "marker": {
                    "color": figs.PALETTE[i % len(figs.PALETTE)],
                    "size": 9,
                    "symbol": ["circle" if r["pretrained"] else "x" for _, r in points],
                    "line": {"width": 1, "color": "#333"},
                },
                "text": [
                    f"<b>{html.escape(r['adapter'])}/{html.escape(r['strategy'])}</b><br>set {html.escape(name)}<br>"
                    f"{html.escape(data_budget(r))} train examples, {r['input_size']}<br>"
                    f"accuracy {r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f}, n={r['n_seeds']}"
                    for name, r in points
                ],
                "hoverinfo": "text",
            }
        )
    layout = figs.layout(
        "Every set: accuracy against trainable parameters (circles pretrained, crosses from scratch)",
        "trainable parameters (log)",
        "test accuracy",
        log_x=True,
    )
    return figs.figure(traces, layout)


def _headline_section(path: Path, records: list[dict]) -> str:
    """A benchmark's headline table (``reporting.benchmark``), sortable, linking its Markdown."""
    found = benchmark_headline(records)
    if found is None:
        return ""
    bench, rows = found
    body = [(None, [html.escape(c) for c in headline_cells(r)], sort_keys(r), "") for r in rows]
    kinds = ["text", "text", "text", *["num"] * (len(HEADERS) - 3)]
    name = html.escape(path.name)
    return (
        f'<section id="headline-{name}"><h2><a href="{name}/headline.md">{html.escape(bench.label)}: headline</a>'
        f"</h2><p>Means over every task of a domain (overall: every domain); a row without all of them shows its "
        f'count and no mean. <a href="{name}/headline.md">The rules and missing tasks.</a></p><div class="table-wrap">'
        + sortable_table(f"headline-{name}-table", HEADERS, kinds, body)
        + "</div></section>"
    )


def index_body(root: Path, page_file: str) -> str:
    """The index page's body (warnings about torn lines are the caller's to silence)."""
    sets, pool, top_level, headlines = [], [], [], []
    for path in published_sets(root):
        records, _ = load_results([path], skip_invalid=True)
        if not records:
            continue
        headlines.append(_headline_section(path, records))
        sets.append(_set_row(root, path, records, page_file))
        pool += [(path.relative_to(root).as_posix(), r) for r in aggregate(records)]
        top_level += records if path.parent == root else []
    headers = ["result set", "runs", "tasks", "adapters", "strategies", "device", "git commit", "finished"]
    kinds = ["text", "num", *["text"] * 6]
    figure = _accuracy_figure(pool)
    plot = (
        ""
        if figure is None
        else f'<div class="plot" id="plot-every-set"></div>{json_script("plot-every-set-data", figure)}'
    )
    intro = (
        f"{len(sets)} result sets, {sum(r[2][1] for r in sets)} records. Each set's page (click its name) has its "
        "sortable table, its plots and every row's provenance. Accuracies compare across machines; seconds only "
        "within one set."
    )
    same = (
        'The same index as Markdown: <a href="README.md">README.md</a>; the summary as CSV: '
        '<a href="summary.csv">summary.csv</a>.'
    )
    return "\n".join(
        [
            f"<header><h1>transferbench: published results</h1><p>{html.escape(intro)}</p><p>{same}</p></header>",
            *(h for h in headlines if h),
            '<section id="sets"><h2>Result sets</h2><div class="table-wrap">',
            sortable_table("sets", headers, kinds, sets),
            "</div></section>",
            '<section id="summary"><h2>Every published set, one table</h2><p>Test accuracy, mean ± std (seeds), of '
            "the sets one folder down pooled: one row per adapter × strategy, one column per task at a data budget, "
            'input size and device, and the mean over the columns a row has.</p><div class="table-wrap">',
            _summary_table(top_level),
            "</div></section>",
            f'<section id="every-set"><h2>Accuracy against trainable parameters</h2>{plot}</section>',
        ]
    )


def write_html_index(results_dir: str | Path) -> Path:
    """``results_dir/index.html``: every published set with a link to its page, and the cross-set summary."""
    figs.require_plotly()
    root = Path(results_dir)
    if not root.is_dir():
        raise UserError(f"report --index: {root} is not a directory")
    body = quietly(lambda: index_body(root, PAGE_FILE))
    page = root / INDEX_FILE
    write_atomic(page, document("transferbench: published results", body))
    return page
