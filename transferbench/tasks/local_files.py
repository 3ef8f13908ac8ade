"""A local copy of a data set is what its files hold: their revision and the ``datasets`` cache
folder a load of them uses both come from the files' contents.

Why: ``datasets.load_dataset(DIR)`` caches a folder with a dataset card under the folder's *name*
and a hash of the card alone (datasets 5.2 ``load.py``: the card's ``configs:`` patterns, never the
files they match), so a second folder of the same name (``~/a/data`` after ``~/b/data``), or a folder
whose files changed, was served the first one's cached rows, and its record repeated their
fingerprint. Other layouts key on paths and modification times, which ``cp -p``, ``rsync -a`` and
tar keep. So every load of local files gets a cache folder of its own, named by the folder's path
and a sha256 of its files' names and bytes (a 100 MB copy hashes in about 0.1 s), and the record's
``data_revision`` is that content hash (``files:<sha256>``), never the cache's say-so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from transferbench.registry import slug


def cache_root() -> Path:
    """transferbench's own cache: ``$TRANSFERBENCH_CACHE_DIR``, else ``~/.cache/transferbench``."""
    return Path(os.environ.get("TRANSFERBENCH_CACHE_DIR") or Path.home() / ".cache" / "transferbench")


def data_files(root: Path) -> list[Path]:
    """Every file of a local copy, hidden ones (``.cache/`` of a hub download, ``.DS_Store``) left out."""
    if root.is_file():
        return [root]
    found = (p for p in root.rglob("*") if p.is_file())
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts))


def content_digest(root: str | Path) -> str:
    """sha256 over the relative names and the bytes of the files under ``root`` (or of one file)."""
    path = Path(root).resolve()
    listing = tuple((str(f.relative_to(path)) if path.is_dir() else f.name, *_stat(f)) for f in data_files(path))
    return _digest(str(path), listing)


def _stat(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


@lru_cache(maxsize=32)
def _digest(root: str, listing: tuple[tuple[str, int, int], ...]) -> str:
    """Hashed once per process for the same listing (names, sizes, mtimes): a matrix loads a task's
    train and test splits and each of its load keys without reading every byte again."""
    base = Path(root)
    digest = hashlib.sha256()
    for name, _, _ in listing:
        digest.update(name.encode() + b"\0")
        digest.update(_file_sha256(base / name if base.is_dir() else base))
    return digest.hexdigest()


def _file_sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def revision(root: str | Path) -> str:
    """A local copy's data revision, for the record: ``files:`` and the content digest (16 hex)."""
    return f"files:{content_digest(root)[:16]}"


def datasets_cache(files: Iterable[str | Path]) -> str:
    """The ``cache_dir`` for one ``load_dataset`` of local ``files`` (folders or files): named by
    their absolute paths (image and audio caches store paths) and their contents. An older cache of
    the same paths (the files changed since) is removed, so changed copies do not pile up."""
    paths = sorted(str(Path(f).resolve()) for f in files)
    where = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:12]
    what = hashlib.sha256("\n".join(content_digest(p) for p in paths).encode()).hexdigest()[:16]
    parent = cache_root() / "datasets"
    prefix = f"{slug(Path(paths[0]).name)}-{where}-"
    for stale in parent.glob(f"{prefix}*"):
        if stale.name != prefix + what:
            shutil.rmtree(stale, ignore_errors=True)
    return str(parent / (prefix + what))
