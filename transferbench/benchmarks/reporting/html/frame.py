"""The frame every HTML page of the report shares: the document with plotly.js inlined, the style, the
script that sorts tables, opens provenance panels and draws the plots, and the sortable table itself.

Why it is written out here instead of plotly's ``to_html``: ``to_html`` names each plot by a random
id (regenerating a page would churn git) and fetches plotly.js from a CDN unless told otherwise; this
frame is deterministic, inlines plotly.js once for every plot of the page, and its
Content-Security-Policy (``default-src 'none'``) makes the browser refuse any request the page
might make, so "works offline, from a file" is enforced rather than hoped for.

The plotly.js inlined is the *basic* distribution (scatter, bar and pie traces), vendored in
``assets/`` (its README says which version, and why that one): a quarter of the full bundle that the
plotly Python package ships, and all the report draws (every figure is a scatter trace).
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

import transferbench

PLOTLY_JS = "plotly-basic.min.js"
# no network at all: scripts and styles inline only, images from data:/blob: (plotly's PNG download)
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:"

STYLE = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2328;
  margin: 0 auto; max-width: 1500px; padding: 0.5rem 1.5rem 3rem; line-height: 1.4; }
h1 { font-size: 1.5rem; margin-bottom: 0.3rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
h3 { font-size: 1rem; margin: 0.3rem 0; }
.note { color: #57606a; }
.table-wrap { overflow-x: auto; max-height: 75vh; border: 1px solid #d0d7de; border-radius: 6px; }
table { border-collapse: collapse; font-size: 12.5px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e6e8eb; text-align: left; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable thead th { position: sticky; top: 0; background: #f3f5f7; cursor: pointer; user-select: none;
  z-index: 1; }
table.sortable thead th:hover { background: #e4e9ee; }
th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 0.8em; }
th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 0.8em; }
tbody tr:hover { background: #f2f7ff; }
tr[data-row] { cursor: pointer; }
tr.selected, tr.selected:hover { background: #dbe9ff; }
.prov { border: 1px solid #d0d7de; border-radius: 6px; padding: 0.5rem 1rem; background: #f8f9fa; margin-top: 0.8rem; }
.prov dl { display: grid; grid-template-columns: max-content auto; gap: 2px 1rem; font-size: 13px; }
.prov dt { font-weight: 600; } .prov dd { margin: 0; overflow-wrap: anywhere; }
table.runs { font-size: 12px; }
.plot { width: 100%; min-height: 460px; }
a { color: #0550ae; }
"""

SCRIPT = """
(function () {
  "use strict";
  function showProvenance(n) {
    var panel = document.getElementById("prov-" + n);
    if (!panel) { return false; }
    document.querySelectorAll(".prov").forEach(function (el) { el.hidden = el !== panel; });
    document.querySelectorAll("tr[data-row]").forEach(function (tr) {
      tr.classList.toggle("selected", tr.getAttribute("data-row") === String(n));
    });
    var hint = document.getElementById("prov-hint");
    if (hint) { hint.hidden = true; }
    return true;
  }
  function key(tr, col) {
    var td = tr.cells[col];
    return td.hasAttribute("data-sort") ? td.getAttribute("data-sort") : td.textContent.trim();
  }
  function sortBy(table, th, col) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var numeric = th.getAttribute("data-type") === "num", body = table.tBodies[0];
    var rows = Array.prototype.map.call(body.rows, function (tr, i) { return [key(tr, col), i, tr]; });
    rows.sort(function (a, b) {
      if (a[0] === "" || b[0] === "") {  // not measured: last, whichever the direction
        return a[0] === b[0] ? a[1] - b[1] : (a[0] === "" ? 1 : -1);
      }
      var d = numeric ? parseFloat(a[0]) - parseFloat(b[0]) : a[0].localeCompare(b[0]);
      return (ascending ? d : -d) || a[1] - b[1];
    });
    rows.forEach(function (r) { body.appendChild(r[2]); });
  }
  function onActivate(el, action) {
    el.addEventListener("click", action);
    el.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); action(); }
    });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, col) {
      onActivate(th, function () { sortBy(table, th, col); });
    });
  });
  document.querySelectorAll("tr[data-row]").forEach(function (tr) {
    onActivate(tr, function () { showProvenance(tr.getAttribute("data-row")); });
  });
  var drawn = Array.prototype.map.call(document.querySelectorAll("div.plot"), function (div) {
    var figure = JSON.parse(document.getElementById(div.id + "-data").textContent);
    var config = {displaylogo: false, responsive: true};
    return Plotly.newPlot(div, figure.data, figure.layout, config).then(function (gd) {
      gd.on("plotly_click", function (event) {
        var point = event.points[0];
        if (point && point.customdata !== undefined && showProvenance(point.customdata)) {
          document.getElementById("prov-" + point.customdata).scrollIntoView({block: "nearest"});
        }
      });
    });
  });
  Promise.all(drawn).then(function () {
    window.transferbenchDrawnMs = performance.now();
    document.body.setAttribute("data-ready", "true");
  });
})();
"""


NUM = ' class="num"'


def json_script(element_id: str, data: Any) -> str:
    """``data`` as an inert JSON block; every ``<`` escaped so no value can close the script element."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return f'<script type="application/json" id="{html.escape(element_id)}">{text}</script>'


def _sort_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float):
        return f"{value:.12g}"
    return str(value)


def sortable_table(
    table_id: str, headers: list[str], kinds: list[str], rows: Sequence[tuple[int | None, list[str], list[Any], str]]
) -> str:
    """A table sorted by clicking its headers: each row is (row number or None, cells as HTML (the
    caller escapes), sort keys, tooltip). A row with a number opens its provenance panel ``prov-N``; a cell's key is
    its ``data-sort`` (empty: not measured, sorted last); ``kinds`` says "num" or "text" per column."""
    head = "".join(
        f'<th scope="col" tabindex="0" data-type="{kind}">{html.escape(h)}</th>'
        for h, kind in zip(headers, kinds, strict=True)
    )
    lines = []
    for number, cells, keys, tooltip in rows:
        attrs = f' data-row="{number}" tabindex="0"' if number is not None else ""
        attrs += f' title="{html.escape(tooltip)}"' if tooltip else ""
        tds = "".join(
            f'<td{NUM if kind == "num" else ""} data-sort="{html.escape(_sort_value(k))}">{c}</td>'
            for c, k, kind in zip(cells, keys, kinds, strict=True)
        )
        lines.append(f"<tr{attrs}>{tds}</tr>")
    body = "\n".join(lines)
    return f'<table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'


def document(title: str, body: str) -> str:
    """A whole page: ``body`` in the shared frame, plotly.js inlined before it is used."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="transferbench {html.escape(transferbench.__version__)}">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n"
        f"<script>{plotly_js()}</script>\n</head>\n<body>\n{body}\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


@functools.cache
def plotly_js() -> str:
    """The vendored plotly.js basic bundle (``assets/plotly-basic.min.js``), read once per process."""
    return resources.files(__package__).joinpath("assets", PLOTLY_JS).read_text(encoding="utf-8")
