"""``transferbench report --html``: one self-contained, interactive page per result set (``report``:
report.html) and for the index of published sets (``index``: index.html), drawn by ``figures`` in
the shared ``frame`` (plotly.js's basic bundle, vendored in ``assets/``, inlined once per page)."""

from transferbench.benchmarks.reporting.html.figures import require_plotly
from transferbench.benchmarks.reporting.html.index import INDEX_FILE, published_sets, write_html_index
from transferbench.benchmarks.reporting.html.report import PAGE_FILE, render_page, write_html_report

__all__ = [
    "INDEX_FILE",
    "PAGE_FILE",
    "published_sets",
    "render_page",
    "require_plotly",
    "write_html_index",
    "write_html_report",
]
