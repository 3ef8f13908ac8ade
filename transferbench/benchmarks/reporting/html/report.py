"""``transferbench report DIR --html``: one self-contained page per result set (``report.html``; the
index of published sets, ``index.html``, is ``index.py``'s).

Why a page beside the Markdown: readers look at results in a browser, and a table they can sort and
plots they can hover answer "which row is cheapest for its gain" faster than report.md. The page is
built from the same rows (``results.aggregate``) and cell text (``results.table``) as report.md, so
the two never disagree. It works offline and from a file: plotly.js (its basic bundle, vendored) is
inlined once, the sorting is a few lines of vanilla JavaScript, there are no fonts or CDNs to fetch,
and a Content-Security-Policy forbids the page any network request. It is deterministic (no
generation time; every value comes from the records), so regenerating unchanged records does not
churn git, and it names no folder of the machine that made it (data sources as
``results.public_source`` shows them).
"""

from __future__ import annotations

import html
import json
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from transferbench.benchmarks.reporting.html import figures as figs
from transferbench.benchmarks.reporting.html.figures import Numbered
from transferbench.benchmarks.reporting.html.frame import document, json_script, sortable_table
from transferbench.benchmarks.reporting.report import load_results
from transferbench.benchmarks.results import (
    RESULTS_FILE,
    aggregate,
    columns_for,
    failed_runs,
    provenance_lines,
    public_source,
    row_cells,
    runs_by_row,
    write_atomic,
)
from transferbench.errors import UserError

PAGE_FILE = "report.html"


def _distinct(values: list[Any]) -> list[Any]:
    return [json.loads(v) for v in sorted({json.dumps(v, sort_keys=True) for v in values})]


def _versions(runs: list[dict]) -> str:
    return "; ".join(
        ", ".join(f"{k} {v}" for k, v in sorted(vs.items())) for vs in _distinct([r["versions"] for r in runs])
    )


def _hardware(runs: list[dict]) -> str:
    return "; ".join(
        ", ".join(f"{k} {v}" for k, v in sorted(hw.items())) for hw in _distinct([r["hardware"] for r in runs])
    )


def _recipe(runs: list[dict]) -> str:
    """The strategy recipe as the run identity holds it: description, learning rate, weight decay."""
    parts = []
    for strategy in _distinct([(r.get("config") or {}).get("strategy") or {} for r in runs]):
        extra = [f"{k.replace('_', ' ')} {strategy[k]}" for k in ("lr", "weight_decay") if k in strategy]
        parts.append(strategy.get("description", "") + (f" ({', '.join(extra)})" if extra else ""))
    return "; ".join(p for p in parts if p) or "—"


def _hover_title(runs: list[dict]) -> str:
    """A row's provenance in one line (the row's tooltip); the panel a click opens has all of it."""
    commits = ", ".join(sorted({r["git_commit"][:12] for r in runs}))
    devices = ", ".join(sorted({r["hardware"].get("gpu") or r["hardware"].get("cpu", "?") for r in runs}))
    data = ", ".join(sorted({r.get("data_revision") or "not recorded" for r in runs}))
    ids = ", ".join(r["run_id"] for r in runs)
    return f"runs {ids}; git commit {commits}; {devices}; data revision {data}. Click for the full provenance."


def _run_table(runs: list[dict]) -> str:
    head = "seed", "run id", "config hash", "git commit", "finished", "status", "test accuracy", "train s"
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                r["seed"],
                r["run_id"],
                r.get("config_hash", "—"),
                r["git_commit"],
                r["finished_at"],
                r["status"],
                f"{r['metrics']['accuracy']:.4f}",
                f"{r['time']['train_s']:.1f}",
            )
        )
        + "</tr>"
        for r in runs
    )
    header = "".join(f"<th>{h}</th>" for h in head)
    return f'<table class="runs"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>'


def _provenance_panel(n: int, row: dict[str, Any], runs: list[dict]) -> str:
    """Where a row's numbers came from: data, code, versions, machine, recipe and every run behind it."""
    first = runs[0]
    facts = {
        "data": "; ".join(sorted({public_source(r) for r in runs})),
        "data revision": ", ".join(sorted({r.get("data_revision") or "not recorded" for r in runs})),
        "test split": f"{first.get('test_split', '?')} ({first['test_examples']} examples)",
        "git commit": ", ".join(sorted({r["git_commit"] for r in runs})),
        "versions": _versions(runs),
        "hardware": _hardware(runs),
        "recipe": _recipe(runs),
    }
    dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts.items())
    title = f"{row['task']} / {row['adapter']} / {row['strategy']}, {row['train_examples']} train examples"
    return (
        f'<div class="prov" id="prov-{n}" hidden><h3>{html.escape(title)}</h3><dl>{dl}</dl>{_run_table(runs)}'
        "<p>Each run's full config (its identity, hashed into the run id) is its line in results.jsonl.</p></div>"
    )


def headline_table(rows: list[dict], runs: list[list[dict]]) -> tuple[str, str]:
    """The sortable table (``results.table``'s columns and cell text, one line per row) and the
    provenance panels its rows open."""
    columns = columns_for(rows)
    headers = [c.header for c in columns]
    body = []
    for n, (row, row_runs) in enumerate(zip(rows, runs, strict=True)):
        cells, keys = row_cells(row, columns), [c.sort(row) for c in columns]
        body.append((n, [html.escape(c) for c in cells], keys, _hover_title(row_runs)))
    kinds = [c.kind for c in columns]
    panels = "".join(_provenance_panel(n, row, r) for n, (row, r) in enumerate(zip(rows, runs, strict=True)))
    return sortable_table("headline", headers, kinds, body), panels


def _section(anchor: str, title: str, intro: str, figure: dict[str, Any] | None, why_not: str) -> str:
    if figure is None:
        return (
            f'<section id="{anchor}"><h2>{html.escape(title)}</h2><p class="note">{html.escape(why_not)}</p></section>'
        )
    plot = f'<div class="plot" id="plot-{anchor}"></div>{json_script(f"plot-{anchor}-data", figure)}'
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2><p>{html.escape(intro)}</p>{plot}</section>'


def plot_sections(rows: list[dict], runs: list[list[dict]]) -> list[str]:
    """The page's plots, each with what it shows, or why a set cannot show it."""
    numbered: Numbered = list(enumerate(rows))
    per_run = [(n, r) for n, row_runs in enumerate(runs) for r in row_runs]
    out = [
        _section(
            "gain-vs-cost",
            "Gain against cost",
            "Gain in accuracy points over the same architecture trained from scratch (95% interval across "
            "seeds where there are two or more) against training seconds, at each task's largest data budget. "
            "The dashed line is each task's Pareto front: no other row gains more for less time.",
            figs.gain_vs_cost(numbered),
            "No gain to plot: no row of this set has a from-scratch row of the same architecture and budget.",
        ),
        _section(
            "accuracy-vs-params",
            "Accuracy against trainable parameters",
            "Test accuracy (± std over seeds) against the parameters each strategy trains, at each task's largest "
            "data budget; circles start from pretrained weights, crosses from scratch.",
            figs.accuracy_vs_trainable(numbered),
            "No finished runs.",
        ),
    ]
    for task in sorted({r["task"] for r in rows}):
        out.append(
            _section(
                f"curves-{_slug(task)}",
                f"Validation curves: {task}",
                "Validation accuracy after each epoch of every run the table counts (one line per seed; click a "
                "legend entry to hide a row's seeds). A run fitted once (a probe) is a dashed level.",
                figs.validation_curves(task, per_run),
                "No run recorded a validation curve.",
            )
        )
    for task in figs.swept_tasks(rows):
        out.append(
            _section(
                f"data-efficiency-{_slug(task)}",
                f"Data efficiency: {task}",
                "Test accuracy (± std over seeds) against the number of labelled training examples.",
                figs.data_efficiency(task, numbered),
                "Run at one data budget only.",
            )
        )
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _notes(records: list[dict], skipped: list[Any]) -> str:
    """Runs that did not finish, skipped lines, and where the numbers came from (as report.md lists them)."""
    items = [
        f"{r['task']}/{r['adapter']}/{r['strategy']}/{r['train_examples']} examples/seed {r['seed']}: "
        f"{r['status']} {r.get('status_detail') or ''}".strip()
        for r in failed_runs(records)
    ]
    out = ""
    if items:
        out += "<h3>Runs that did not finish</h3><ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"
    if skipped:
        lines = [str(getattr(s, "public", s)) for s in skipped]
        out += (
            f"<h3>Skipped lines ({len(lines)})</h3><ul>"
            + "".join(f"<li>{html.escape(s)}</li>" for s in lines)
            + "</ul>"
        )
    facts = [line.removeprefix("- ") for line in provenance_lines(records).splitlines() if line]
    out += "<h3>Provenance</h3><ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in facts) + "</ul>"
    return f'<section id="notes"><h2>Notes</h2>{out}</section>'


def render_page(name: str, records: list[dict], skipped: Sequence[Any] = (), *, beside_records: bool = True) -> str:
    """The page of one result set from its records (and the lines skipped reading them);
    ``beside_records``: the page sits next to the set's results.jsonl, so it links it."""
    rows = aggregate(records)
    runs = runs_by_row(rows, records)
    table_html, panels = headline_table(rows, runs)
    counted = sum(map(len, runs))
    tasks = ", ".join(sorted({r["task"] for r in records}))
    intro = (
        f"{len(records)} records ({counted} counted: the latest of each seed that finished), tasks: {tasks}. "
        "Click a column header to sort by it (again to reverse); hover a row for its provenance, click it for all of "
        "it. Hover a point for its numbers; click it for its row's provenance."
    )
    same = 'The same rows as Markdown: <a href="report.md">report.md</a>, as CSV: <a href="report.csv">report.csv</a>'
    same += '; every record: <a href="results.jsonl">results.jsonl</a>.' if beside_records else "."
    body = [
        f'<header><p class="note">transferbench report</p><h1>{html.escape(name)}</h1>'
        f"<p>{html.escape(intro)}</p><p>{same}</p></header>",
        '<section id="results"><h2>Results</h2><div class="table-wrap">',
        table_html,
        '</div><div id="provenance"><p id="prov-hint" class="note">Click a row for its provenance.</p>',
        panels,
        "</div></section>",
        *plot_sections(rows, runs),
        _notes(records, list(skipped)),
    ]
    return document(f"transferbench report: {name}", "\n".join(body))


def quietly(load: Callable[[], Any]) -> Any:
    """Read records a second time without repeating the torn-line warnings the Markdown report gave."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load()


def write_html_report(paths: list[str | Path], out: str | Path, *, skip_invalid: bool = False) -> Path:
    """``out/report.html`` from the records of ``paths`` (read as ``transferbench report`` reads them)."""
    figs.require_plotly()
    records, skipped = quietly(lambda: load_results(paths, skip_invalid=skip_invalid))
    if not records:
        raise UserError(f"report --html: no valid records in {', '.join(map(str, paths))}")
    out = Path(out)
    page = out / PAGE_FILE
    beside = (out / RESULTS_FILE).is_file()
    write_atomic(page, render_page(out.absolute().name, records, skipped, beside_records=beside))
    return page
