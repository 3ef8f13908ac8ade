"""One feature cache: the frozen features a probe fits on, computed once per (weights revision,
preprocessing, data revision, split, pooling) and reused by the linear probe, LP-FT's first stage,
every sweep point and every seed, in this run and later ones.

Why on disk: a probe's cost is nearly all its feature extraction, and s3prl's "save the upstream
output" and HEAR's "cache embeddings" are among their users' most asked-for features. The key is
the run's identity less what cannot change the features (strategy, seed, budget, head, sweep), plus
the weights' revision, the preprocessing, the device type, the mixed precision and the torch
version; any change of any of them is another file, so a stale feature is never read. A run whose
weights have no known revision is not cached (its features could change under the same name).

Each entry is one ``.npy`` (float32, read without pickle) and a ``.json`` of its key, written to a
temporary file in the same folder and renamed into place: concurrent runs and shards writing the
same entry each rename a complete file, and a reader never sees half of one. A file that cannot be
read is computed again. ``--no-cache`` bypasses it, ``--cache-dir`` moves it (default
``features/`` under ``$TRANSFERBENCH_CACHE_DIR``, else ``~/.cache/transferbench/features``).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transferbench.atomic import write_atomic
from transferbench.tasks.local_files import cache_root

HIT, MISS = "hit", "miss"
# identity keys that do not change what the frozen backbone computes
NOT_FEATURES = ("strategy", "seed", "budget", "head", "compile", "channels_last", "sweep", "distributed")


def default_dir() -> Path:
    """``features/`` in transferbench's cache (``$TRANSFERBENCH_CACHE_DIR``, else ~/.cache/transferbench)."""
    return cache_root() / "features"


@dataclass(frozen=True)
class FeatureCache:
    """The entries of one run's features: ``key`` is everything but the split."""

    folder: Path
    key: Mapping[str, Any]

    @classmethod
    def for_run(cls, folder: Path, identity: Mapping[str, Any], **more: Any) -> FeatureCache:
        key = {k: v for k, v in identity.items() if k not in NOT_FEATURES}
        return cls(folder, {**key, **more})

    def path(self, split: str) -> Path:
        digest = hashlib.sha256(json.dumps({**self.key, "split": split}, sort_keys=True, default=str).encode())
        name = digest.hexdigest()
        return self.folder / name[:2] / f"{name}.npy"

    def get(self, split: str, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, str]:
        """The split's features and whether they were a cache ``hit`` or a ``miss`` (computed now)."""
        path = self.path(split)
        if path.is_file():
            try:
                return np.load(path, allow_pickle=False), HIT
            except (OSError, ValueError, EOFError):
                pass  # not a complete entry (another process's crash, a foreign file): computed again
        features = np.ascontiguousarray(compute(), dtype=np.float32)
        self._write(path, features, split)
        return features, MISS

    def _write(self, path: Path, features: np.ndarray, split: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            np.save(buffer, features, allow_pickle=False)
            write_atomic(path, buffer.getvalue())
            meta = json.dumps({**self.key, "split": split, "shape": list(features.shape)}, default=str, indent=1)
            write_atomic(path.with_suffix(".json"), meta)
        except OSError:
            pass  # a cache that cannot be written costs speed, never the run
