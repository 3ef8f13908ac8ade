"""Headless Chromium for the HTML pages, the way the browser tests and the page-load benchmark open
them: Debian's chromium and chromium-driver (or the binaries $TRANSFERBENCH_CHROMIUM and
$TRANSFERBENCH_CHROMEDRIVER name), driven by selenium, offline, with a fresh profile."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("TRANSFERBENCH_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("TRANSFERBENCH_CHROMEDRIVER", "/usr/bin/chromedriver"))
# what keeps Chromium from reaching Google's hosts by itself, and lets it run as root in a container
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=1400,1000",
)


def missing() -> str | None:
    """Why headless Chromium cannot be driven here, or None."""
    for path, what in ((CHROMIUM, "Chromium"), (CHROMEDRIVER, "chromedriver")):
        if not path.is_file():
            return f"needs {what} at {path} (Debian: apt-get install chromium chromium-driver)"
    for module, extra in (("selenium", "test"), ("plotly", "report")):
        if importlib.util.find_spec(module) is None:
            return f"needs {module} (pip install 'transferbench[{extra}]')"
    return None


def chromium(profile: Path, *, logs: bool = False) -> Any:
    """A selenium driver of headless Chromium with the fresh profile folder ``profile``; with ``logs``
    it keeps the console and network logs (what the browser tests read)."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if logs:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
