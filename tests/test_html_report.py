"""`transferbench report --html` without a browser: the page's table is the aggregated rows, every row
has its provenance, the Pareto front is right, the page is deterministic, self-contained and names no
folder of the machine, and a missing plotly is one line. tests/test_html_browser.py opens it."""

from __future__ import annotations

import builtins
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_records import sample_records, write_results

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.reporting.html import figures as html_figures
from transferbench.benchmarks.reporting.html import frame
from transferbench.benchmarks.reporting.html import report as html_report
from transferbench.benchmarks.results import aggregate, columns_for, runs_by_row

pytest.importorskip("plotly", reason="the HTML report needs plotly: pip install 'transferbench[report]'")

MACHINE_FOLDERS = ("/work/", "/tmp/", "/root", "/home", "/private/var", "C:\\")


class Page(HTMLParser):
    """What a test reads off a page: the headline table's rows (cells' text and sort keys, row
    attributes), the provenance panels' text, plot divs, figure JSON, external references."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.panels: dict[str, str] = {}
        self.plots: list[str] = []
        self.figures: dict[str, dict] = {}
        self.external: list[str] = []
        self._table = self._panel = self._script = None
        self._depth = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        for key in ("src", "href"):
            if key in a and re.match(r"[a-z]+://|//", a[key] or ""):
                self.external.append(a[key])
        if tag == "table":
            self._table = a.get("id")
        if tag == "tr" and self._table == "headline" and "data-row" in a:
            self.rows.append({"attrs": a, "cells": [], "keys": []})
        if tag == "td" and self._table == "headline" and self.rows:
            self.rows[-1]["keys"].append(a.get("data-sort"))
            self.rows[-1]["cells"].append("")
        if tag == "div" and "plot" in (a.get("class") or "").split():
            self.plots.append(a["id"])
        if tag == "div" and a.get("class") == "prov":
            self._panel, self._depth = a["id"], 0
            self.panels[self._panel] = ""
        if self._panel and tag == "div":
            self._depth += 1
        if tag == "script" and a.get("type") == "application/json":
            self._script = a["id"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        if tag == "div" and self._panel:
            self._depth -= 1
            self._panel = None if self._depth == 0 else self._panel
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script:
            self.figures[self._script] = json.loads(data)
        if self._table == "headline" and self.rows and self.rows[-1]["cells"]:
            self.rows[-1]["cells"][-1] += data
        if self._panel:
            self.panels[self._panel] += data


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_results(tmp_path_factory.mktemp("html") / "sample-set", sample_records())


@pytest.fixture(scope="module")
def page(results_dir: Path) -> str:
    assert main(["report", str(results_dir), "--html"]) == 0
    return (results_dir / "report.html").read_text(encoding="utf-8")


def test_pareto_front_on_a_hand_example():
    points = [(1.0, 1.0), (2.0, 3.0), (3.0, 2.0), (4.0, 5.0), (4.0, 4.0), (0.5, 0.0), (5.0, 5.0)]
    # (3, 2) is beaten by (2, 3); (4, 4) by (4, 5); (5, 5) costs more than (4, 5) for the same gain
    assert html_figures.pareto_front(points) == [5, 0, 1, 3]
    assert html_figures.pareto_front([(1.0, 1.0), (1.0, 1.0)]) == [0]
    assert html_figures.pareto_front([]) == []


def test_the_plotted_front_is_the_front_of_the_plotted_rows():
    rows = aggregate(sample_records())
    figure = html_figures.gain_vs_cost(list(enumerate(rows)))
    for task in ("sst2", "digits"):
        points, front = (
            next(t for t in figure["data"] if t["name"] == name) for name in (task, f"Pareto front: {task}")
        )
        pairs = list(zip(points["x"], points["y"], strict=True))
        assert [pairs[i] for i in html_figures.pareto_front(pairs)] == list(zip(front["x"], front["y"], strict=True))
    # the largest digits budget only (200 examples), and transfer rows only: scratch has no gain over itself
    digits = next(t for t in figure["data"] if t["name"] == "digits")
    assert sorted(rows[n]["strategy"] for n in digits["customdata"]) == ["finetune", "linear-probe"]
    assert {rows[n]["train_examples"] for n in digits["customdata"]} == {200}


def test_the_table_is_the_aggregated_rows_with_their_provenance(page: str):
    records = sample_records()
    rows = aggregate(records)
    parsed = Page(page)
    assert [(r["cells"][0], r["cells"][1], r["cells"][2]) for r in parsed.rows] == [
        (r["task"], r["adapter"], r["strategy"]) for r in rows
    ]
    headers = [c.header for c in columns_for(rows)]
    accuracy, gain = headers.index("accuracy (mean ± std, n)"), headers.index("gain vs scratch, pts [95% CI]")
    assert [float(r["keys"][accuracy]) for r in parsed.rows] == pytest.approx([r["accuracy_mean"] for r in rows])
    # a scratch row has no gain over itself: its key is empty, which sorts last either way
    assert [r["keys"][gain] for r in parsed.rows if r["cells"][2] == "scratch"] == [""] * 4
    runs = runs_by_row(rows, records)
    for n, (row, row_runs) in enumerate(zip(parsed.rows, runs, strict=True)):
        assert row["attrs"]["data-row"] == str(n)
        panel = parsed.panels[f"prov-{n}"]
        for record in row_runs:
            for fact in (
                record["run_id"],
                record["git_commit"],
                record["versions"]["torch"],
                record["hardware"]["cpu"],
            ):
                assert fact in panel
            for fact in (record["run_id"], record["git_commit"][:12], record["hardware"]["cpu"]):  # on hover
                assert fact in row["attrs"]["title"]
    assert sum(len(r) for r in runs) == len(records)


def test_every_plot_has_its_figure_and_each_point_names_a_table_row(page: str):
    parsed = Page(page)
    assert parsed.plots == [
        "plot-gain-vs-cost",
        "plot-accuracy-vs-params",
        "plot-curves-digits",
        "plot-curves-sst2",
        "plot-data-efficiency-digits",
    ]
    for plot in parsed.plots:
        traces = parsed.figures[f"{plot}-data"]["data"]
        assert traces and all(t["x"] for t in traces)
        assert all(0 <= n < len(parsed.rows) for t in traces for n in t.get("customdata", []))
    curves = parsed.figures["plot-curves-sst2-data"]["data"]
    assert len(curves) == 7  # one line per run that the table counts


def test_the_page_is_self_contained_deterministic_and_names_no_machine_folder(results_dir: Path, page: str):
    parsed = Page(page)
    assert parsed.external == []
    assert "default-src 'none'" in page  # the browser itself refuses any request the page could make
    assert page.count("plotly.js (basic - minified) v") == 1  # the basic bundle inlined once, however many plots
    assert "plotly.js v" not in page  # and not the full one
    for folder in (*MACHINE_FOLDERS, str(results_dir), str(results_dir.parent)):
        assert folder not in page
    assert "../shared/data" not in page
    assert "local folder &#x27;sst2&#x27;, data fingerprint 40fae0e443c2758f" in page  # as report.md names it
    assert main(["report", str(results_dir), "--html"]) == 0
    assert (results_dir / "report.html").read_text(encoding="utf-8") == page
    # a function of the records, not of their order in the file
    assert html_report.render_page("sample-set", list(reversed(sample_records()))) == html_report.render_page(
        "sample-set", sample_records()
    )


def test_a_set_without_scratch_says_why_it_has_no_gain_plot(tmp_path: Path):
    lora = [r for r in sample_records() if r["strategy"] == "lora"]
    parsed_text = html_report.render_page("lora-only", lora)
    parsed = Page(parsed_text)
    assert "plot-gain-vs-cost" not in parsed.plots
    assert "No gain to plot: no row of this set has a from-scratch row" in parsed_text


def test_index_page_links_every_set_including_grouped_ones(tmp_path: Path):
    root = tmp_path / "results"
    write_results(root / "set-a", sample_records()[:7])
    write_results(root / "group" / "variant-1", sample_records()[7:])
    (root / "not-a-set").mkdir()
    assert main(["report", str(root / "set-a"), "--html"]) == 0
    assert main(["report", "--index", str(root), "--html"]) == 0
    index = (root / "index.html").read_text(encoding="utf-8")
    assert '<a href="set-a/report.html">set-a</a>' in index
    assert "group/variant-1" in index and "group/variant-1/report.html" not in index  # no page yet: no dead link
    assert "not-a-set" not in index
    assert (root / "README.md").is_file() and Page(index).figures["plot-every-set-data"]["data"]
    for folder in MACHINE_FOLDERS:
        assert folder not in index


def test_without_plotly_html_is_one_line_and_nothing_is_written(tmp_path: Path, monkeypatch, capsys):
    folder = write_results(tmp_path / "set", sample_records())
    real_import = builtins.__import__

    def no_plotly(name, *args, **kwargs):
        if name == "plotly" or name.startswith("plotly."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_plotly)
    assert main(["report", str(folder), "--html"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "transferbench: error: --html needs plotly: pip install 'transferbench[report]'"
    )
    assert not (folder / "report.md").exists() and not (folder / "report.html").exists()


def test_a_set_whose_runs_all_failed_still_has_a_page_that_says_so():
    failed = {k: v for k, v in sample_records()[0].items() if k not in ("metrics", "time", "throughput", "params")}
    failed.update(status="failed", status_detail="RuntimeError: the worker died", val_accuracy_per_epoch=[])
    text = html_report.render_page("all-failed", [failed])
    parsed = Page(text)
    assert parsed.rows == [] and parsed.plots == []
    assert "failed RuntimeError: the worker died" in text and "No finished runs." in text


def test_the_vendored_basic_bundle_matches_the_plotly_that_validates_the_figures():
    """The figures are checked by the plotly Python package against its own plotly.js; the page draws
    them with the vendored basic bundle: the two must share a major version (assets/README.md)."""
    from plotly.offline import get_plotlyjs_version

    vendored = re.search(r"plotly\.js \(basic - minified\) v(\d+)\.(\d+)\.(\d+)", frame.plotly_js()[:300])
    assert vendored, "assets/plotly-basic.min.js does not start with plotly.js's basic banner"
    assert vendored.group(1) == get_plotlyjs_version().split(".")[0]
    assets = Path(frame.__file__).parent / "assets"
    readme = (assets / "README.md").read_text(encoding="utf-8")
    assert f"plotly.js **{'.'.join(vendored.groups())}**" in readme
    assert hashlib.sha256((assets / frame.PLOTLY_JS).read_bytes()).hexdigest() in readme  # the file as packed


def test_a_trace_the_basic_bundle_cannot_draw_is_refused_before_a_page_is_written():
    layout = html_figures.layout("t", "x", "y", log_x=False)
    assert html_figures.figure([{"type": "scatter", "x": [1], "y": [2]}], layout)["data"][0]["type"] == "scatter"
    with pytest.raises(ValueError, match=r"\['scattergl'\] are not in the plotly.js basic bundle"):
        html_figures.figure([{"type": "scattergl", "x": [1], "y": [2]}], layout)
