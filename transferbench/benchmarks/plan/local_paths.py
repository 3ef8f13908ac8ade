"""Local paths in a run's identity, made machine-independent.

A run may name a local file or folder: ``--adapter hf:/home/me/bert``, ``--weights /data/w.pth``,
``--model-path /models/minilm``. Its identity goes into every record, and records get published,
so an absolute path would publish the machine's folders and give the same run a different id on
every machine. In the identity such a path becomes its last part (the adapter ``hf:./bert``),
and the content hash of what it names (``local_revisions``) keeps two folders of one name apart.
Identities without absolute paths are unchanged.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from transferbench.adapters.families import file_revision, folder_revision

# identity fields that may hold a local path, besides the adapter's name
PATH_FIELDS = ("weights", "model_path")


def portable_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """``identity`` with every absolute path cut to its last part, and what it named hashed."""
    out, revisions = dict(identity), {}
    family, sep, rest = str(identity["adapter"]).partition(":")
    if sep and Path(rest).is_absolute():
        out["adapter"] = f"{family}:./{Path(rest).name}"
        revisions["adapter"] = content_revision(rest)
    for key in PATH_FIELDS:
        value = identity.get(key)
        if value and Path(value).expanduser().is_absolute():
            out[key] = Path(value).name
            revisions[key] = content_revision(str(Path(value).expanduser()))
    return {**out, "local_revisions": revisions} if revisions else out


def content_revision(path: str) -> str | None:
    """The sha256 of a file, or of a save_pretrained() folder's weights; None if there is none."""
    target = Path(path)
    if not target.exists():
        return None
    stat = target.stat()
    return _cached_revision(str(target), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _cached_revision(path: str, mtime_ns: int, size: int) -> str | None:
    """Hashing gigabytes once per plan cell would be slow; the key changes when the file does."""
    target = Path(path)
    return folder_revision(target) if target.is_dir() else file_revision(target)


def public_location(source: str) -> str:
    """Where data came from, as a record shows it: a local folder's absolute path as ``./name`` (the
    record's data fingerprint says what it held), anything else (a hub source, a relative path, a
    built-in dataset's description) as it is."""
    return f"./{Path(source).name}" if Path(source).is_absolute() else source
