#!/usr/bin/env bash
# The executor overhead benchmark (benchmarks/executor_overhead.py): one 6-cell matrix (digits,
# efficientnet-lite0 finetune + scratch, seeds 0-2) run serially, on Ray one cell at a time and on Ray
# two cells at a time, each as a whole `transferbench run`; wall times, the ratio Ray one-at-a-time /
# serial (target <= 1.05) and the hardware go to results/executors/executors.{json,md}. About ten
# minutes on 2 cores: run it on a quiet machine (other load skews the comparison).
#
#   bash scripts/bench-executors.sh                 # the default matrix
#   bash scripts/bench-executors.sh --repeats 3     # medians of three interleaved rounds
#   bash scripts/bench-executors.sh --out /tmp/x --epochs 1 --max-train-examples 32 --image-size 16  # a smoke test
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" benchmarks/executor_overhead.py "$@"
