"""Provenance recorded with every result: versions, git commit, hardware, date."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import transferbench

_PACKAGES = (
    "torch",
    "torchvision",
    "torchaudio",
    "transformers",
    "datasets",
    "evaluate",
    "scikit-learn",
    "numpy",
)


def config_hash(config: dict[str, Any]) -> str:
    """Stable short hash of a JSON-able config (key order does not matter)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@cache
def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "transferbench": transferbench.__version__}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


# What decides the numbers a run produces. Result sets and docs inside the checkout are not code:
# appending a record to results/<set>/results.jsonl must not stamp the next run ``+dirty``.
CODE_PATHS = ("transferbench", "pyproject.toml", "requirements")


@cache
def git_commit() -> str:
    """The commit of the transferbench source tree (``+dirty`` when its code has local changes),
    or 'unknown' when running from an installed copy outside a git checkout. Cached: commands that
    write records call it when they start, so a commit made while a long run goes on is not
    credited with that run's results."""
    if os.environ.get("TRANSFERBENCH_GIT_COMMIT"):  # a copy whose .git is absent or not its own says so
        return os.environ["TRANSFERBENCH_GIT_COMMIT"]
    here = Path(__file__).resolve()
    root = next(p.parent for p in here.parents if p.name == "transferbench")  # the checkout holding the package
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def device_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "device": device,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return info


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def stamp(device: str) -> dict[str, Any]:
    """What every measured record ends with: versions, the hardware it ran on, when it finished."""
    return {"versions": versions(), "hardware": device_info(device), "finished_at": now_utc()}
