"""Provenance: the commit a record names is the code that ran, and only code makes it +dirty."""

import shutil
import subprocess
from pathlib import Path

import pytest

from transferbench.benchmarks.results import provenance

REPO = Path(__file__).resolve().parents[1]
MODULE = Path(provenance.__file__).resolve().relative_to(REPO)  # where it sits in the package


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A git checkout holding a copy of provenance.py where the package sits in this repo."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    root = tmp_path / "repo"
    module = root / MODULE
    module.parent.mkdir(parents=True)
    shutil.copy(Path(provenance.__file__), module)
    (root / "results").mkdir()
    (root / "results" / "results.jsonl").write_text("{}\n")

    def git(*args):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.setattr(provenance, "__file__", str(module))
    monkeypatch.delenv("TRANSFERBENCH_GIT_COMMIT", raising=False)
    provenance.git_commit.cache_clear()
    yield root
    provenance.git_commit.cache_clear()


def test_appending_to_a_result_set_does_not_make_the_commit_dirty(checkout):
    with (checkout / "results" / "results.jsonl").open("a") as f:
        f.write("{}\n")
    commit = provenance.git_commit()
    assert len(commit) == 40 and not commit.endswith("+dirty")


def test_a_code_change_makes_the_commit_dirty(checkout):
    module = checkout / MODULE
    module.write_text(module.read_text() + "\n# changed\n")
    assert provenance.git_commit().endswith("+dirty")


def test_the_environment_names_the_commit_of_a_copy(checkout, monkeypatch):
    monkeypatch.setenv("TRANSFERBENCH_GIT_COMMIT", "51362d4")
    assert provenance.git_commit() == "51362d4"
