#!/usr/bin/env bash
# Create (or reuse) ./.venv with the pinned torch stack and transferbench installed editable.
# Needs only python3 (>= 3.10) and access to PyPI. Re-runs are no-ops until the pins change.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${TRANSFERBENCH_VENV:-.venv}"
STAMP="$VENV/.transferbench-setup"
WANT="$(cat pyproject.toml requirements/constraints.txt | python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  exit 0
fi
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check uv
fi
UV="$(command -v uv || echo "python3 -m uv")"
# tox 4.67, run without tox.ini's `venv_redirect = false`, leaves a PEP-832 redirect FILE named .venv
# (one line: the path of a tox env). It is not ours to keep, and a virtualenv cannot be made over it.
if [[ -f "$VENV" ]]; then
  if [[ "$(wc -l < "$VENV")" -le 1 ]] && grep -q '\.tox' "$VENV"; then
    echo "setup-env: removing $VENV, a tox redirect file (-> $(cat "$VENV")), to create the virtualenv there" >&2
    rm -f "$VENV"
  else
    echo "setup-env: $VENV is a file, not a virtualenv; move it away or set TRANSFERBENCH_VENV" >&2
    exit 1
  fi
fi
[[ -x "$VENV/bin/python" ]] || $UV venv --quiet --python "$(command -v python3)" "$VENV"
# uv ignores pip's config, so the constraints file is what pins torch to the tested build.
# --compile-bytecode: every later interpreter (tests start many) reads .pyc instead of recompiling
# transformers and torch, also where PYTHONDONTWRITEBYTECODE is set
VIRTUAL_ENV="$VENV" $UV pip install --quiet --compile-bytecode -c requirements/constraints.txt -e ".[test,ray,report,trackers]"
echo "$WANT" > "$STAMP"
