"""Loading through Hugging Face ``datasets``: hub ids for users with network, local folders and
files (imagefolder, csv, audiofolder) for everyone else. Both go through ``load_dataset``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transferbench.errors import DataError
from transferbench.tasks.base import TaskConfig, TaskData
from transferbench.tasks.local_files import datasets_cache

_show_hub_progress = True


def set_progress(show: bool) -> None:
    """Whether hub downloads show datasets' progress bars (``--no-progress`` turns them off)."""
    global _show_hub_progress
    _show_hub_progress = show


@contextmanager
def _progress_bars(show: bool) -> Iterator[None]:
    """datasets' own bars, on or off for one load (they say "Downloading data" even for local files)."""
    from datasets import utils as hf_tqdm  # lazy: datasets costs seconds to import

    was_disabled = hf_tqdm.are_progress_bars_disabled()
    (hf_tqdm.enable_progress_bars if show else hf_tqdm.disable_progress_bars)()
    try:
        yield
    finally:
        (hf_tqdm.disable_progress_bars if was_disabled else hf_tqdm.enable_progress_bars)()


def is_hub_copy(data_dir: str | Path) -> bool:
    """A folder as ``huggingface-cli download --repo-type dataset NAME --local-dir DIR`` leaves it:
    a dataset card declaring configs/features, or parquet/arrow data files."""
    root = Path(data_dir)
    if not root.is_dir():
        return False
    card = root / "README.md"
    if card.is_file() and card.read_text(encoding="utf-8", errors="replace").startswith("---"):
        head = card.read_text(encoding="utf-8", errors="replace").split("---")[1]
        if "configs:" in head or "dataset_info:" in head:
            return True
    return any(root.glob("*.parquet")) or any(root.glob("*/*.parquet")) or any(root.glob("*/*.arrow"))


def as_hub_copy(config: TaskConfig, data_dir: str | None) -> TaskConfig | None:
    """The task read through its hub code path from a local copy of the hub dataset, if
    ``data_dir`` is one (the same builder and column checks as the hub, not a second loader)."""
    if not data_dir or not is_hub_copy(data_dir):
        return None
    return dataclasses.replace(config, hub_path=str(Path(data_dir)))


def read_as(config: TaskConfig, data_dir: str | None, local_layout: str) -> tuple[TaskConfig, str | None, str]:
    """(config, data_dir, layout) a loader reads with: a hub copy turns into the hub code path
    (data_dir None, hub_path the folder); otherwise the domain's local layout or the hub."""
    copy = as_hub_copy(config, data_dir)
    if copy is not None:
        return copy, None, "hub-copy"
    return config, data_dir, local_layout if data_dir else "hub"


def hub_source(config: TaskConfig) -> str:
    """Where hub data came from: ``hf://id``, or the local copy's folder."""
    return config.hub_path if Path(config.hub_path or "").is_dir() else f"hf://{config.hub_path}"


def load_hub_split(hub_path: str, config: str | None, split: str, columns: tuple[str, ...]) -> Any:
    import datasets

    local = {"cache_dir": datasets_cache([hub_path])} if Path(hub_path).is_dir() else {}  # local_files says why
    try:
        with _progress_bars(_show_hub_progress):
            ds = datasets.load_dataset(hub_path, config, split=split, **local)
    except Exception as exc:  # offline, unknown id, or no such split: all need the same advice
        raise DataError(
            f"could not load split {split!r} of {hub_path!r} from the Hugging Face hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}); "
            f"offline, pass --data-dir with a local copy"
        ) from None
    check_columns(ds, columns, f"{hub_path} [{split}]")
    return ds


def load_local(
    builder: str, split_files: dict[str, Any] | None = None, data_dir: str | None = None, **builder_kwargs: Any
) -> Any:
    import datasets

    read = list(split_files.values()) if split_files is not None else [data_dir]
    cache_dir = datasets_cache(read)  # named by these files' paths and contents (local_files says why)
    try:
        with _progress_bars(False):  # local files: nothing is downloaded, and it takes a moment
            if split_files is not None:
                return datasets.load_dataset(builder, data_files=split_files, cache_dir=cache_dir, **builder_kwargs)
            return datasets.load_dataset(builder, data_dir=data_dir, cache_dir=cache_dir, **builder_kwargs)
    except Exception as exc:
        where = ", ".join(map(str, split_files.values())) if split_files else data_dir
        raise DataError(
            f"{where}: datasets could not read it as {builder} ({str(exc).splitlines()[0][:200]})"
        ) from None


def check_columns(ds: Any, columns: tuple[str, ...], where: str) -> None:
    present = list(ds.column_names)
    missing = [c for c in columns if c not in present]
    if missing:
        raise DataError(f"{where}: no column {', '.join(map(repr, missing))}; columns present: {', '.join(present)}")


def class_names_of(ds: Any, label_column: str) -> list[str] | None:
    feature = ds.features.get(label_column)
    return list(feature.names) if hasattr(feature, "names") else None


def dataset_revision(data: TaskData) -> str:
    """What identifies the data a run read: a local copy's files (``files:``, their content hash,
    from the files themselves: ``local_files``); the hub commit of a hub dataset (as the local hub
    cache records it after the load; no network); else the content fingerprint of the decoded data."""
    if data.revision:
        return data.revision
    if data.layout == "hub" and data.source.startswith("hf://"):
        from huggingface_hub import constants  # lazy: only hub datasets need it
        from huggingface_hub.file_download import repo_folder_name

        repo = data.source.removeprefix("hf://")
        ref = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo, repo_type="dataset") / "refs" / "main"
        if ref.is_file():
            return f"hf:{repo}@{ref.read_text().strip()}"
    return f"content:{data.fingerprint()}"
