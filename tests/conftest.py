"""Shared fixtures. Tests never touch the network: the hub is forced offline.

Two kinds of data:

- generated stand-ins (``cifar10_like``, ``sst2_like``, ``fsdd_like``, ``small_imagefolder``), written at
  test time by tests/fixtures/data.py in the layouts of ../shared/data. Every test of how data is read
  uses these, so a plain clone runs them.
- the real datasets in ../shared/data (``shared(name)``), only for the slow tests that assert accuracy
  floors, which mean nothing on synthetic data. Without them those tests skip and say why; with
  TRANSFERBENCH_REQUIRE_SHARED=1 (CI) they fail instead, so they cannot be skipped silently.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fixtures.data import make_cifar10_like, make_fsdd_like, make_sst2_like
from matrix_cells import one_thread

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TRANSFERBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared(name: str) -> Path:
    """The real dataset ``name`` from ../shared/data (or $TRANSFERBENCH_SHARED_DATA); skips when absent."""
    path = SHARED_DATA / name
    if not path.exists():
        why = (
            f"needs the real {name} data at {path}: this test asserts accuracy on real data, which synthetic "
            "fixtures cannot stand in for (get ../shared/data, see its README, or set TRANSFERBENCH_SHARED_DATA)"
        )
        if os.environ.get("TRANSFERBENCH_REQUIRE_SHARED") == "1":
            pytest.fail(f"TRANSFERBENCH_REQUIRE_SHARED=1 but it {why}")
        pytest.skip(why)
    return path


@pytest.fixture(scope="session")
def cifar10_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CIFAR-10 layout, ``{train,test}/<class>/NNNN.png`` (10 classes, 12 train / 4 test each). Read-only."""
    return make_cifar10_like(tmp_path_factory.mktemp("cifar10-like"))


@pytest.fixture(scope="session")
def sst2_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SST-2 layout, ``train.csv`` (4000 rows, 1853/2147) + ``validation.csv`` (872 rows, 428/444). Read-only."""
    return make_sst2_like(tmp_path_factory.mktemp("sst2-like"))


@pytest.fixture(scope="session")
def fsdd_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FSDD layout, ``{train,test}/<digit>/<digit>_<speaker>_<index>.wav``, 8 kHz, 6 speakers. Read-only."""
    return make_fsdd_like(tmp_path_factory.mktemp("fsdd-like"))


@pytest.fixture
def small_imagefolder(tmp_path: Path, cifar10_like: Path) -> Path:
    """A copy of a few CIFAR-10-like images per class for 3 classes, imagefolder layout (safe to modify)."""
    src = cifar10_like
    root = tmp_path / "imgs"
    for split, n in (("train", 12), ("test", 4)):
        for cls in ("airplane", "cat", "ship"):
            (root / split / cls).mkdir(parents=True)
            for f in sorted((src / split / cls).iterdir())[:n]:
                shutil.copy(f, root / split / cls / f.name)
    return root


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory):
    """transferbench's cache (the datasets caches of local copies, the feature cache) in a folder of
    this session's."""
    os.environ["TRANSFERBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("transferbench-cache"))
    yield


@pytest.fixture(autouse=True)
def _one_torch_thread(request: pytest.FixtureRequest):
    """Tiny models run faster on one thread than on two that wait for each other (seconds against
    milliseconds on a loaded 2-core machine); the slow real-data tests keep torch's default."""
    if request.node.get_closest_marker("slow") is not None:
        yield
        return
    with one_thread():
        yield


@pytest.fixture(scope="session")
def serial_matrix(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """tests/matrix_cells.py's six cells run serially once: (their folder, their records). Read-only."""
    from matrix_cells import run_serial

    out = tmp_path_factory.mktemp("serial-matrix")
    return out, run_serial(out)
