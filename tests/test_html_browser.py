"""The HTML report in a real browser: headless Chromium, driven by selenium over Debian's chromium
and chromium-driver. A page of a small results file (real published records, tests/report_records.py)
must load with no console error and no network request, show one table row per aggregated row,
reorder its rows by the column clicked, open a row's provenance on click, and draw every plot's traces.

Without the browser (or selenium, or plotly) these tests skip and say why; with
TRANSFERBENCH_REQUIRE_BROWSER=1 (.ci/run sets it) they fail instead, so CI cannot skip them silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_records import sample_records, write_results

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.reporting.html import frame
from transferbench.benchmarks.reporting.html.headless import chromium, missing
from transferbench.benchmarks.results import aggregate

LOCAL_SCHEMES = ("file:", "data:", "blob:")

pytestmark = pytest.mark.browser


def _skip_or_fail() -> None:
    why = missing()
    if why is None:
        return
    if os.environ.get("TRANSFERBENCH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"TRANSFERBENCH_REQUIRE_BROWSER=1 but the browser test {why}")
    pytest.skip(f"the browser test {why}")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _skip_or_fail()
    folder = write_results(tmp_path_factory.mktemp("browser") / "sample-set", sample_records())
    assert main(["report", str(folder), "--html", "--no-plots"]) == 0
    return folder / "report.html"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _skip_or_fail()
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"), logs=True)  # a fresh profile
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def opened(browser: Any, page: Path) -> Any:
    """The page, loaded afresh and drawn (every plot's newPlot resolved); the logs start at this load."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get("about:blank")
    browser.get_log("browser"), browser.get_log("performance")  # what came before this page
    browser.get(page.as_uri())
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")
    return browser


def test_no_console_error_and_no_network_request(opened: Any):
    severe = [e for e in opened.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    events = [json.loads(e["message"])["message"] for e in opened.get_log("performance")]
    urls = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    assert urls and urls[0].startswith("file:")  # the log did record the page's own load
    assert [u for u in urls if not u.startswith(LOCAL_SCHEMES)] == []
    sockets = [e for e in events if e["method"].startswith("Network.webSocket")]
    assert sockets == []


def _column(driver: Any, header: str) -> tuple[int, list[str]]:
    """(index, each row's sort key in the order shown) of the headline table's column ``header``."""
    headers = driver.execute_script(
        "return Array.from(document.querySelectorAll('#headline thead th')).map(th => th.textContent)"
    )
    col = headers.index(header)
    keys = driver.execute_script(
        "return Array.from(document.querySelectorAll('#headline tbody tr'))"
        ".map(tr => tr.cells[arguments[0]].getAttribute('data-sort'))",
        col,
    )
    return col, keys


def test_the_table_has_a_row_per_aggregated_row(opened: Any):
    rows = aggregate(sample_records())
    shown = opened.execute_script(
        "return Array.from(document.querySelectorAll('#headline tbody tr'))"
        ".map(tr => Array.from(tr.cells).slice(0, 3).map(td => td.textContent))"
    )
    assert shown == [[r["task"], r["adapter"], r["strategy"]] for r in rows]


def _click_header(driver: Any, col: int) -> None:
    driver.find_elements("css selector", "#headline thead th")[col].click()


def test_clicking_a_header_sorts_by_it_and_again_reverses(opened: Any):
    col, before = _column(opened, "accuracy (mean ± std, n)")
    _click_header(opened, col)
    _, ascending = _column(opened, "accuracy (mean ± std, n)")
    assert ascending == sorted(before, key=float) and ascending != before
    _click_header(opened, col)
    assert _column(opened, "accuracy (mean ± std, n)")[1] == sorted(before, key=float, reverse=True)
    # not measured (a scratch row's gain over itself) stays last in both directions
    col, _ = _column(opened, "gain vs scratch, pts [95% CI]")
    for _ in range(2):
        _click_header(opened, col)
        keys = _column(opened, "gain vs scratch, pts [95% CI]")[1]
        measured = [k for k in keys if k]
        assert keys == measured + [""] * (len(keys) - len(measured))
        assert measured in (sorted(measured, key=float), sorted(measured, key=float, reverse=True))
    col, _ = _column(opened, "adapter")
    _click_header(opened, col)
    adapters = _column(opened, "adapter")[1]
    assert adapters == sorted(adapters)


def test_clicking_a_row_or_a_point_opens_its_provenance(opened: Any):
    records = [r for r in sample_records() if r["strategy"] == "lora"]
    row = next(tr for tr in opened.find_elements("css selector", "#headline tbody tr") if "lora" in tr.text.split())
    assert records[0]["run_id"] in row.get_attribute("title")  # on hover
    row.click()
    panel = opened.find_element("id", f"prov-{row.get_attribute('data-row')}")
    assert panel.is_displayed() and all(r["run_id"] in panel.text for r in records)
    assert len([p for p in opened.find_elements("css selector", ".prov") if p.is_displayed()]) == 1
    opened.execute_script(
        "document.getElementById('plot-gain-vs-cost').emit('plotly_click', {points: [{customdata: 0}]})"
    )
    assert opened.find_element("id", "prov-0").is_displayed() and not panel.is_displayed()


def test_every_plot_has_drawn_its_traces(opened: Any):
    plots = opened.execute_script(
        "return Array.from(document.querySelectorAll('div.plot')).map(gd => ({"
        "id: gd.id, traces: (gd.data || []).length,"
        "drawn: gd.querySelectorAll('.scatterlayer .trace').length,"
        "marks: gd.querySelectorAll('.scatterlayer .trace path, .scatterlayer .trace .point').length}))"
    )
    assert [p["id"] for p in plots] == [
        "plot-gain-vs-cost",
        "plot-accuracy-vs-params",
        "plot-curves-digits",
        "plot-curves-sst2",
        "plot-data-efficiency-digits",
    ]
    for plot in plots:
        assert plot["traces"] > 0 and plot["drawn"] == plot["traces"] and plot["marks"] > 0, plot
    # drawn by the vendored basic bundle (scatter, bar and pie only), not plotly's full one
    assert opened.execute_script("return Plotly.version") == frame.plotly_js().split(" v", 1)[1].split()[0]
    assert opened.execute_script("return Object.keys(Plotly.PlotSchema.get().traces).sort()") == [
        "bar",
        "pie",
        "scatter",
    ]
