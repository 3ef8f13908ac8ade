"""Audio tasks (Free Spoken Digit digits/speakers, Speech Commands, ESC-50, any audio folder) and
the audio pipeline.

Decoding uses soundfile (libsndfile ships in its wheel), so WAV/FLAC/OGG need no system FFmpeg;
hub datasets are read with ``Audio(decode=False)`` and decoded the same way. Every clip is mixed to
mono and resampled once to the adapter's rate; the pipeline crops/pads to the task's fixed duration
and passes an ``attention_mask`` marking real samples.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferbench.errors import DataError, UserError
from transferbench.inputs import Batch
from transferbench.options import Option, option
from transferbench.tasks.base import (
    Split,
    TaskConfig,
    TaskData,
    builtin_task_data,
    check_data_dir,
    task_data,
)
from transferbench.tasks.domain import Domain, register_domain
from transferbench.tasks.hub import class_names_of, hub_source, load_hub_split, read_as
from transferbench.tasks.pipeline import Pipeline

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg"}


@dataclass(frozen=True)
class FoldLayout:
    """A data set that ships as one pool with a fold column (ESC-50): one fold is held out as test,
    the others train. Local copies list their files in a metadata CSV (``meta_file``, paths in
    ``file_column`` relative to ``file_dir``); hub copies carry the fold as a column."""

    num_folds: int = 5
    test_fold: int = 5
    fold_column: str = "fold"
    meta_file: str | None = None
    file_dir: str = ""
    file_column: str = "filename"


@dataclass(frozen=True)
class AudioKeys:
    """What an audio task file may say besides the common keys."""

    # declared, so a task file's value is checked as the same flag's is
    duration_s: float | None = option(
        None, "the clip length the pipeline crops/pads to (else: from the data)", low=0, low_open=True, high=600
    )
    sample_rate: int | None = option(None, "a builtin data set: the rate it is generated at", low=1)
    label_from_filename: int | None = option(None, 'label = this "_"-separated part of the file stem (FSDD)', low=0)
    keep_labels: tuple[str, ...] | None = None  # other labels become other_label (Speech Commands 12)
    other_label: str = "_unknown_"
    folds: FoldLayout | None = None  # fold-based data (ESC-50)

    def map_label(self, label: str) -> str:
        """The protocol's label for a raw one (identity unless ``keep_labels`` folds the rest)."""
        if self.keep_labels is None or label in self.keep_labels:
            return label
        return self.other_label


DURATION = Option(
    "duration",
    float,
    "audio: clip length in seconds that clips are cropped/padded to",
    low=0,
    low_open=True,
    high=600,
    default_text="the task's, else the 99th percentile of the training clips, rounded up to 0.1 s, at most 10 s",
)
TEST_FOLD = Option("test_fold", int, "fold-based tasks (esc50): the fold held out as test", low=1, default_text="5")


class DecodeStats:
    """What decoding had to convert, reported with the results rather than done silently."""

    def __init__(self) -> None:
        self.stereo = 0
        self.resampled = 0

    def notes(self, rate: int) -> list[str]:
        out = []
        if self.stereo:
            out.append(f"mixed {self.stereo} multi-channel clips down to mono")
        if self.resampled:
            out.append(f"resampled {self.resampled} clips to {rate} Hz")
        return out


def decode_audio(source: Any, name: str, rate: int, stats: DecodeStats) -> np.ndarray:
    """Mono float32 at ``rate`` Hz from a path or bytes; DataError naming the file otherwise."""
    import soundfile as sf

    suffix = Path(name).suffix.lower()
    if isinstance(source, str | Path) and suffix not in AUDIO_EXTENSIONS:
        raise DataError(
            f"{name}: unsupported audio format {suffix or '(none)'}; expected "
            f"{', '.join(sorted(AUDIO_EXTENSIONS))} (decoded with soundfile, no FFmpeg)"
        )
    try:
        data, file_rate = sf.read(
            io.BytesIO(source) if isinstance(source, bytes) else source, dtype="float32", always_2d=True
        )
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError, TypeError) as exc:
        raise DataError(f"{name}: not a readable audio file ({str(exc).splitlines()[0][:120]})") from None
    if data.shape[0] == 0:
        raise DataError(f"{name}: zero-length clip (no samples)")
    if data.shape[1] > 1:
        stats.stereo += 1
    wave = data.mean(axis=1)
    if not np.isfinite(wave).all():
        raise DataError(f"{name}: audio holds NaN or infinite samples")
    if file_rate != rate:
        import torchaudio.functional as AF

        stats.resampled += 1
        wave = AF.resample(torch.from_numpy(wave), file_rate, rate).numpy()
    return np.ascontiguousarray(wave, dtype=np.float32)


def _scan_folder(root: Path, split: str, label_of: Any = None) -> list[tuple[Path, str]]:
    """(file, label) pairs from ``root/split/<class>/*`` (or labels from file names via ``label_of``)."""
    inside = root.resolve()
    items = []
    folders = sorted(p for p in (root / split).iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root / split}: no class folders; expected {split}/<class>/<audio files>")
    for folder in folders:
        files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
        if not files:
            raise DataError(f"{folder}: class folder is empty")
        for f in files:
            if not f.resolve().is_relative_to(inside):
                raise DataError(f"{f}: points outside --data-dir {root}; refusing to read it")
            items.append((f, label_of(f) if label_of else folder.name))
    return items


def _filename_label(part: int) -> Any:
    def label(path: Path) -> str:
        pieces = path.stem.split("_")
        if len(pieces) != 3:
            raise DataError(f"{path}: file name is not <digit>_<speaker>_<index>.wav")
        return pieces[part]

    return label


def _decode_items(items: list[tuple[Any, str]], rate: int, stats: DecodeStats) -> tuple[list[np.ndarray], list[str]]:
    waves, labels = [], []
    for source, label in items:
        name = str(source) if not isinstance(source, tuple) else source[1]
        waves.append(decode_audio(source if not isinstance(source, tuple) else source[0], name, rate, stats))
        labels.append(label)
    return waves, labels


def _ids(train: list[str], test: list[str], where: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    numeric = all(x.lstrip("-").isdigit() for x in train)
    names = sorted(set(train), key=(lambda x: int(x)) if numeric else None)
    unseen = sorted(set(test) - set(names))
    if unseen:
        raise DataError(f"{where}: test labels {', '.join(unseen[:5])} have no training examples")
    index = {n: i for i, n in enumerate(names)}
    return (
        np.array([index[x] for x in train], dtype=np.int64),
        np.array([index[x] for x in test], dtype=np.int64),
        names,
    )


def _fold_items(root: Path, config: TaskConfig) -> tuple[list, list]:
    """(file, label) pairs of a fold-based local copy, read from its metadata CSV."""
    folds = config.keys.folds
    assert folds is not None and folds.meta_file is not None
    meta = root / folds.meta_file
    if not meta.is_file():
        raise DataError(
            f"--data-dir {root}: no {folds.meta_file}; expected the {config.name} layout "
            f"({folds.meta_file}, {folds.file_dir or '.'}/)"
        )
    train, test = [], []
    with open(meta, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            path = (root / folds.file_dir / row[folds.file_column]).resolve()
            if not path.is_relative_to(root.resolve()):
                raise DataError(f"{meta}: file name {row[folds.file_column]!r} points outside --data-dir")
            held_out = int(row[folds.fold_column]) == folds.test_fold
            (test if held_out else train).append((path, row[config.label_column]))
    return train, test


def _local_items(config: TaskConfig, data_dir: str) -> tuple[list, list]:
    """(file, label) pairs of a local copy: a fold layout's metadata, or class folders."""
    keys = config.keys
    if keys.folds is not None and keys.folds.meta_file is not None:
        root = Path(data_dir)
        if not root.is_dir():
            raise DataError(f"--data-dir {root}: does not exist")
        return _fold_items(root, config)
    root = check_data_dir(data_dir, (config.train_split, config.test_split))
    label_of = _filename_label(keys.label_from_filename) if keys.label_from_filename is not None else None
    return _scan_folder(root, config.train_split, label_of), _scan_folder(root, config.test_split, label_of)


def _hub_items(config: TaskConfig) -> tuple[list, list]:
    """((bytes or path, name), label) pairs of a hub dataset, decoded later with soundfile."""
    import datasets

    items = []
    for role, split in (("train", config.train_split), ("test", config.test_split)):
        ds = load_hub_split(config.hub_path, config.hub_config, split, (config.input_column, config.label_column))
        names = class_names_of(ds, config.label_column)
        ds = ds.cast_column(config.input_column, datasets.Audio(decode=False))
        folds = config.keys.folds
        if folds is not None and folds.fold_column in ds.column_names:
            held = [f == folds.test_fold for f in ds[folds.fold_column]]
            ds = ds.select([i for i, h in enumerate(held) if h == (role == "test")])
        labels = [names[y] if names else str(y) for y in ds[config.label_column]]
        pairs = zip(ds[config.input_column], labels, strict=True)
        items.append(
            [
                (
                    (a.get("bytes") or a.get("path"), a.get("path") or f"{config.hub_path}[{split}][{i}]"),
                    label,
                )
                for i, (a, label) in enumerate(pairs)
            ]
        )
    return items[0], items[1]


def load_audio(config: TaskConfig, data_dir: str | None, rate: int) -> TaskData:
    keys = config.keys
    if config.builtin is not None and not data_dir:
        if (keys.sample_rate or rate) != rate:
            raise DataError(f"task {config.name!r} is generated at {keys.sample_rate} Hz; this adapter needs {rate} Hz")
        return builtin_task_data(config)
    local_layout = "fold-metadata" if keys.folds and keys.folds.meta_file else "audiofolder"
    config, data_dir, layout = read_as(config, data_dir, local_layout)
    stats = DecodeStats()
    train_items, test_items = _local_items(config, data_dir) if data_dir else _hub_items(config)
    source = str(Path(data_dir)) if data_dir else hub_source(config)
    train_waves, train_labels = _decode_items(train_items, rate, stats)
    test_waves, test_labels = _decode_items(test_items, rate, stats)
    train_labels, test_labels = [keys.map_label(x) for x in train_labels], [keys.map_label(x) for x in test_labels]
    train_y, test_y, names = _ids(train_labels, test_labels, source)
    notes = stats.notes(rate) + ([config.test_note] if config.test_note else [])
    return task_data(config, names, (train_waves, train_y), (test_waves, test_y), source, notes, layout=layout)


class AudioPipeline(Pipeline):
    """Batches of ``{"input_values", "attention_mask", "labels", "index"}`` of ``duration_s`` seconds:
    long clips are cropped (randomly in training, centred otherwise), short ones zero-padded. The
    clips sit zero-padded in one tensor on the device, so a batch is one gather there; only the
    random crop offsets of the (few) clips longer than the duration are drawn on the host, in the
    order and from the generator a per-clip loop drew them."""

    def __init__(self, split: Split, *, rate: int, duration_s: float, train: bool, device: torch.device) -> None:
        super().__init__(split.labels, device=device, train=train)
        self.length = round(rate * duration_s)
        self.sizes = np.array([len(w) for w in split.inputs], dtype=np.int64)
        table = np.zeros((len(self.sizes), max(int(self.sizes.max(initial=0)), self.length)), dtype=np.float32)
        for row, wave in enumerate(split.inputs):
            table[row, : len(wave)] = wave
        self.waves = torch.from_numpy(table).to(device)
        self.positions = torch.arange(self.length, device=device)

    def _starts(self, rows: np.ndarray, gen: torch.Generator | None) -> np.ndarray:
        spare = np.maximum(self.sizes[rows] - self.length, 0)
        starts = spare // 2
        if self.train and gen is not None:
            for k in np.flatnonzero(spare):
                starts[k] = int(torch.randint(0, int(spare[k]) + 1, (1,), generator=gen))
        return starts

    def collate(self, idx: torch.Tensor, gen: torch.Generator | None) -> Batch:
        rows = np.asarray(idx)
        starts = self._starts(rows, gen)
        real = np.minimum(self.sizes[rows], self.length)
        index = torch.from_numpy(rows).to(self.device, non_blocking=True)
        offsets = torch.from_numpy(starts).to(self.device, non_blocking=True)
        keep = self.positions < torch.from_numpy(real).to(self.device, non_blocking=True)[:, None]
        columns = (offsets[:, None] + self.positions).clamp(max=self.waves.shape[1] - 1)
        values = self.waves[index[:, None], columns] * keep
        return self.with_targets({"input_values": values, "attention_mask": keep.long()}, index)


# The data-driven clip length: long enough for all but the longest 1% of training clips (so a
# few outliers do not multiply everyone's padding), in 0.1 s steps, at most MAX_DEFAULT_DURATION_S.
DURATION_PERCENTILE = 99
MAX_DEFAULT_DURATION_S = 10.0


def default_duration(data: TaskData, rate: int) -> float:
    """The clip length a task without a fixed one gets: the 99th percentile of its training
    clips' lengths, rounded up to 0.1 s, capped at 10 s (recorded as ``duration_s``)."""
    lengths = np.array([len(w) for w in data.train.inputs]) / rate
    seconds = math.ceil(float(np.percentile(lengths, DURATION_PERCENTILE)) * 10 - 1e-6) / 10
    return min(max(seconds, 0.1), MAX_DEFAULT_DURATION_S)


class AudioDomain(Domain):
    """Clips decoded once with soundfile at the model's rate; cropped/padded per batch."""

    name = "audio"
    reference_task = "speech-commands"
    options = (DURATION,)
    task_keys = AudioKeys
    default_input_column = "audio"
    all_task_options = (TEST_FOLD,)

    def task_options(self, config: TaskConfig) -> tuple[Option, ...]:
        return (TEST_FOLD,) if self.keys(config).folds is not None else ()

    def with_task_options(self, config: TaskConfig, values: dict[str, Any]) -> TaskConfig:
        """The held-out fold of a fold-based task (``--test-fold``), within its folds."""
        fold = values.get("test_fold")
        keys = self.keys(config)
        if fold is None or keys.folds is None:
            return config
        if not 1 <= fold <= keys.folds.num_folds:
            raise UserError(f"--test-fold: expected a fold of 1-{keys.folds.num_folds}, got {fold}")
        note = f"{config.name} has no test split: fold {fold} is held out as test, the others train"
        folds = dataclasses.replace(keys.folds, test_fold=fold)
        return dataclasses.replace(config, keys=dataclasses.replace(keys, folds=folds), test_note=note)

    def load(self, config: TaskConfig, data_dir: str | None, settings: dict[str, Any]) -> TaskData:
        return load_audio(config, data_dir, settings.get("sample_rate") or 16_000)

    def load_settings(self, options: dict[str, Any], config: TaskConfig, adapter: Any) -> dict[str, Any]:
        return {"sample_rate": adapter.sample_rate}

    def input_settings(
        self, options: dict[str, Any], config: TaskConfig, adapter: Any, data: TaskData
    ) -> dict[str, Any]:
        duration = (
            options.get("duration") or self.keys(config).duration_s or default_duration(data, adapter.sample_rate)
        )
        settings = {"sample_rate": adapter.sample_rate, "duration_s": duration, "model_path": options.get("model_path")}
        window = getattr(adapter, "window_s", None)
        if window is not None and duration > window:  # only then is the clip windowed (and the run different)
            settings["window_s"] = window
        return settings

    def input_notes(self, data: TaskData, settings: dict[str, Any]) -> dict[str, Any]:
        length = round(settings["sample_rate"] * settings["duration_s"])
        counts = {}
        for role, split in (("train", data.train), ("test", data.test)):
            sizes = np.array([len(w) for w in split.inputs])
            counts[role] = {"cropped": int((sizes > length).sum()), "padded": int((sizes < length).sum())}
        windowed = {"windowed_at_s": settings["window_s"]} if "window_s" in settings else {}
        return {"clip_s": settings["duration_s"], "clips": counts, **windowed}

    def pipelines(self, splits, model, config, settings, device, channels_last=False) -> list[Pipeline]:
        rate, duration = settings["sample_rate"], settings["duration_s"]
        return [
            AudioPipeline(split, rate=rate, duration_s=duration, train=i == 0, device=device)
            for i, split in enumerate(splits)
        ]

    def example_shape(self, settings: dict[str, Any], model: Any) -> dict[str, int]:
        return {}

    def synthetic_split(self, n: int, num_classes: int, settings: dict[str, Any]) -> Split:
        rate = settings.get("sample_rate") or 16_000
        rng = np.random.RandomState(0)
        waves = [(0.1 * rng.randn(int(rate * (0.5 + 0.1 * (i % 5))))).astype(np.float32) for i in range(n)]
        return Split(waves, np.arange(n, dtype=np.int64) % num_classes)


register_domain(AudioDomain())
