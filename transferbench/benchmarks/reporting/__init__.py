"""Reports of result sets: one set's report (``report``: Markdown, CSV, ``plots``), the cross-task
``summary``, the ``index`` of published sets, their interactive pages (``html``: report.html,
index.html) and the hub ``export`` (parquet and cards, ``export_cards``). Consumers import from here."""

from transferbench.benchmarks.reporting.export import RECORDS_FILE, export_results, push_to_hub
from transferbench.benchmarks.reporting.html import (
    published_sets,
    require_plotly,
    write_html_index,
    write_html_report,
)
from transferbench.benchmarks.reporting.index import not_run_here, write_index
from transferbench.benchmarks.reporting.plots import plot
from transferbench.benchmarks.reporting.report import cross_domain_section, load_results, markdown, report, to_csv
from transferbench.benchmarks.reporting.summary import cross_task, device_kind, summary_csv, summary_markdown

__all__ = [
    "RECORDS_FILE",
    "cross_domain_section",
    "cross_task",
    "device_kind",
    "export_results",
    "load_results",
    "markdown",
    "not_run_here",
    "plot",
    "published_sets",
    "push_to_hub",
    "report",
    "require_plotly",
    "summary_csv",
    "summary_markdown",
    "to_csv",
    "write_html_index",
    "write_html_report",
    "write_index",
]
