"""Size and load time of the published HTML pages (results/*/report.html, results/*/*/report.html and
results/index.html) in headless Chromium, the way tests/test_html_browser.py opens them: from the file,
offline. Each page is loaded 3 times in a fresh tab; the record keeps the median of the browser's own
navigation timing (``loadEventEnd``) and of the time until every plot has drawn (``data-ready``).

    .venv/bin/python benchmarks/html_page_load.py   # appends to results/throughput/html-pages.jsonl

A benchmark, not a test: the figures depend on the machine (the record names it).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from transferbench.benchmarks.reporting.html.headless import chromium, missing
from transferbench.benchmarks.results import provenance
from transferbench.benchmarks.results.store import append_record

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "results" / "throughput" / "html-pages.jsonl"
LOADS = 3


def _load(driver, page: Path) -> tuple[float, float]:
    """(navigation load ms, ms until the page says every plot drew) of one fresh load."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get("about:blank")
    start = time.perf_counter()
    driver.get(page.as_uri())
    WebDriverWait(driver, 120, poll_frequency=0.01).until(
        lambda d: d.execute_script("return document.body.dataset.ready") == "true"
    )
    ready_ms = 1000 * (time.perf_counter() - start)
    timing = driver.execute_script("const t = performance.timing; return t.loadEventEnd - t.navigationStart")
    return float(timing), ready_ms


def main() -> int:
    why = missing()
    if why:
        print(f"html_page_load: {why}", file=sys.stderr)
        return 1
    import tempfile

    pages = sorted(
        {*ROOT.glob("results/*/report.html"), *ROOT.glob("results/*/*/report.html"), ROOT / "results" / "index.html"}
    )
    with tempfile.TemporaryDirectory() as profile:
        driver = chromium(Path(profile))
        try:
            for page in pages:
                loads = [_load(driver, page) for _ in range(LOADS)]
                record = {
                    "page": str(page.relative_to(ROOT)),
                    "bytes": page.stat().st_size,
                    "load_ms_median": statistics.median(load for load, _ in loads),
                    "ready_ms_median": statistics.median(r for _, r in loads),
                    "loads": LOADS,
                    "browser": driver.capabilities.get("browserVersion"),
                    "git_commit": provenance.git_commit(),
                    **provenance.stamp("cpu"),
                }
                append_record(OUT, record)
                print(
                    f"{record['page']}: {record['bytes'] / 1e6:.2f} MB, load {record['load_ms_median']:.0f} ms, "
                    f"drawn {record['ready_ms_median']:.0f} ms"
                )
        finally:
            driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
