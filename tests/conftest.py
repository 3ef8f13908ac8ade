"""Shared fixtures. Tests never touch the network: the hub is forced offline."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TRANSFERBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"fixture data {path} not present (set TRANSFERBENCH_SHARED_DATA)")
    return path


@pytest.fixture
def small_imagefolder(tmp_path: Path) -> Path:
    """A copy of a few CIFAR-10 fixture images per class for 3 classes, imagefolder layout."""
    src = shared("cifar10")
    root = tmp_path / "imgs"
    for split, n in (("train", 12), ("test", 4)):
        for cls in ("airplane", "cat", "ship"):
            (root / split / cls).mkdir(parents=True)
            for f in sorted((src / split / cls).iterdir())[:n]:
                shutil.copy(f, root / split / cls / f.name)
    return root
