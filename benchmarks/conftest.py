"""pytest-benchmark suites: figures, not tests. Run with `tox -e bench` (JSON lands in results/throughput/)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
