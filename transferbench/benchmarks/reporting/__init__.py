"""Reports of result sets: one set's report (``report``: Markdown, CSV, ``plots``), the cross-task
``summary`` and the ``index`` of published sets. Consumers import from here."""

from transferbench.benchmarks.reporting.index import not_run_here, write_index
from transferbench.benchmarks.reporting.plots import plot
from transferbench.benchmarks.reporting.report import cross_domain_section, load_results, markdown, report, to_csv
from transferbench.benchmarks.reporting.summary import cross_task, device_kind, summary_csv, summary_markdown

__all__ = [
    "cross_domain_section",
    "cross_task",
    "device_kind",
    "load_results",
    "markdown",
    "not_run_here",
    "plot",
    "report",
    "summary_csv",
    "summary_markdown",
    "to_csv",
    "write_index",
]
