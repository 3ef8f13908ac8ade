#!/usr/bin/env bash
# Set up ./.venv if needed, then run the embedded default comparison (the offline `quick` suite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
exec .venv/bin/transferbench run "$@"
