"""Audio tasks (Free Spoken Digit digits/speakers, Speech Commands, ESC-50, any audio folder) and
the audio pipeline.

Decoding uses soundfile (libsndfile ships in its wheel), so WAV/FLAC/OGG need no system FFmpeg;
hub datasets are read with ``Audio(decode=False)`` and decoded the same way. Every clip is mixed to
mono and resampled once to the adapter's rate; the pipeline crops/pads to the task's fixed duration
and passes an ``attention_mask`` marking real samples.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferbench.adapters.base import Batch
from transferbench.errors import DataError
from transferbench.tasks.base import Split, TaskConfig, TaskData, check_data_dir, register_task
from transferbench.tasks.hub import check_columns, class_names_of, load_hub_split

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg"}


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


def _fsdd_label(part: int) -> Any:
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


def _esc50_items(root: Path, test_fold: int) -> tuple[list, list]:
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise DataError(f"--data-dir {root}: no meta/esc50.csv; expected the ESC-50 layout (meta/esc50.csv, audio/)")
    train, test = [], []
    with open(meta, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            path = (root / "audio" / row["filename"]).resolve()
            if not path.is_relative_to(root.resolve()):
                raise DataError(f"{meta}: file name {row['filename']!r} points outside --data-dir")
            (test if int(row["fold"]) == test_fold else train).append((path, row["category"]))
    return train, test


def load_audio(config: TaskConfig, data_dir: str | None, rate: int) -> TaskData:
    stats = DecodeStats()
    if config.builtin is not None and not data_dir:
        if config.options.get("sample_rate", rate) != rate:
            raise DataError(
                f"task {config.name!r} is generated at {config.options['sample_rate']} Hz; this adapter needs {rate} Hz"
            )
        x_train, y_train, x_test, y_test, names = config.builtin()
        return TaskData(
            config.name,
            "audio",
            names,
            Split(x_train, y_train),
            Split(x_test, y_test),
            source=config.options.get("source", "builtin"),
            test_split=config.test_split,
        )
    if data_dir and config.name == "esc50":
        root = Path(data_dir)
        if not root.is_dir():
            raise DataError(f"--data-dir {root}: does not exist")
        train_items, test_items = _esc50_items(root, config.options.get("test_fold", 5))
        source = str(root)
    elif data_dir:
        root = check_data_dir(data_dir, (config.train_split, config.test_split))
        label_of = _fsdd_label(config.options["label_part"]) if "label_part" in config.options else None
        train_items = _scan_folder(root, config.train_split, label_of)
        test_items = _scan_folder(root, config.test_split, label_of)
        source = str(root)
    else:
        import datasets

        items = []
        for role, split in (("train", config.train_split), ("test", config.test_split)):
            ds = load_hub_split(config.hub_path, config.hub_config, split, (config.input_column, config.label_column))
            check_columns(ds, (config.input_column, config.label_column), config.hub_path)
            names = class_names_of(ds, config.label_column)
            ds = ds.cast_column(config.input_column, datasets.Audio(decode=False))
            if "fold" in config.options and "fold" in ds.column_names:
                keep = [i for i, f in enumerate(ds["fold"]) if (f == config.options["test_fold"]) == (role == "test")]
                ds = ds.select(keep)
            items.append(
                [
                    (
                        (a.get("bytes") or a.get("path"), a.get("path") or f"{config.hub_path}[{split}][{i}]"),
                        names[y] if names else str(y),
                    )
                    for i, (a, y) in enumerate(zip(ds[config.input_column], ds[config.label_column], strict=True))
                ]
            )
        train_items, test_items = items
        source = f"hf://{config.hub_path}"
    train_waves, train_labels = _decode_items(train_items, rate, stats)
    test_waves, test_labels = _decode_items(test_items, rate, stats)
    if "label_map" in config.options:  # e.g. the 12-class Speech Commands protocol
        train_labels, test_labels = ([config.options["label_map"](x) for x in ls] for ls in (train_labels, test_labels))
    train_y, test_y, names = _ids(train_labels, test_labels, source)
    notes = stats.notes(rate) + ([config.test_note] if config.test_note else [])
    return TaskData(
        config.name,
        "audio",
        names,
        Split(train_waves, train_y),
        Split(test_waves, test_y),
        source=source,
        test_split=config.test_split,
        notes=notes,
    )


class AudioPipeline:
    """Batches of ``{"input_values", "attention_mask", "labels", "index"}`` of ``duration_s`` seconds:
    long clips are cropped (randomly in training, centred otherwise), short ones zero-padded."""

    def __init__(self, split: Split, *, rate: int, duration_s: float, train: bool, device: torch.device) -> None:
        self.waves, self.train, self.device = split.inputs, train, device
        self.length = round(rate * duration_s)
        self.labels = torch.as_tensor(split.labels, device=device)

    def __len__(self) -> int:
        return len(self.waves)

    def unaugmented(self) -> AudioPipeline:
        view = object.__new__(AudioPipeline)
        view.__dict__.update(self.__dict__, train=False)
        return view

    def _collate(self, idx: np.ndarray, gen: torch.Generator | None) -> Batch:
        values = torch.zeros(len(idx), self.length)
        mask = torch.zeros(len(idx), self.length, dtype=torch.long)
        for row, i in enumerate(idx):
            wave = self.waves[i]
            if len(wave) > self.length:
                spare = len(wave) - self.length
                start = torch.randint(0, spare + 1, (1,), generator=gen).item() if self.train and gen else spare // 2
                wave = wave[start : start + self.length]
            values[row, : len(wave)] = torch.from_numpy(wave)
            mask[row, : len(wave)] = 1
        index = torch.as_tensor(idx, device=self.device)
        return {
            "input_values": values.to(self.device),
            "attention_mask": mask.to(self.device),
            "labels": self.labels[index],
            "index": index,
        }

    def batches(
        self, batch_size: int, *, shuffle: bool, gen: torch.Generator | None = None, drop_last: bool = False
    ) -> Iterator[Batch]:
        n = len(self)
        order = torch.randperm(n, generator=gen).numpy() if shuffle else np.arange(n)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for start in range(0, stop, batch_size):
            yield self._collate(order[start : start + batch_size], gen if shuffle else None)


register_task(
    TaskConfig(
        name="fsdd-digits",
        domain="audio",
        loader="dir",
        test_split="test",
        target_accuracy=0.9,
        description="Free Spoken Digit Dataset, which digit (10 classes): --data-dir with {train,test}/<digit>/"
        "<digit>_<speaker>_<index>.wav; recordings 0-4 are the official test set",
        options={"label_part": 0, "duration_s": 1.0},
    )
)
register_task(
    TaskConfig(
        name="fsdd-speakers",
        domain="audio",
        loader="dir",
        test_split="test",
        target_accuracy=0.9,
        description="Free Spoken Digit Dataset, who is speaking (6 speakers); same layout and split as fsdd-digits",
        options={"label_part": 1, "duration_s": 1.0},
    )
)
register_task(
    TaskConfig(
        name="speech-commands",
        domain="audio",
        loader="hub-or-dir",
        hub_path="google/speech_commands",
        hub_config="v0.02",
        input_column="audio",
        label_column="label",
        test_split="test",
        target_accuracy=0.8,
        description="Google Speech Commands v2, 35 words (hub google/speech_commands v0.02; needs the 'hub-audio' "
        "extra), or --data-dir in audiofolder layout",
        options={"duration_s": 1.0},
    )
)
SPEECH_COMMANDS_10 = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def _speech_commands_12(label: str) -> str:
    """The 12-class protocol (Warden 2018): ten command words, silence, and every other word as unknown."""
    return label if label in SPEECH_COMMANDS_10 or label == "_silence_" else "_unknown_"


register_task(
    TaskConfig(
        name="speech-commands-12",
        domain="audio",
        loader="hub-or-dir",
        hub_path="google/speech_commands",
        hub_config="v0.02",
        input_column="audio",
        label_column="label",
        test_split="test",
        target_accuracy=0.8,
        description="Speech Commands v2, 12-class protocol: 10 words + _silence_ + _unknown_ (all other words)",
        options={"duration_s": 1.0, "label_map": _speech_commands_12},
    )
)

register_task(
    TaskConfig(
        name="esc50",
        domain="audio",
        loader="hub-or-dir",
        hub_path="ashraq/esc50",
        input_column="audio",
        label_column="category",
        train_split="train",
        test_split="train",
        target_accuracy=0.5,
        description="ESC-50 environmental sounds, 50 classes, fold 5 as test (hub ashraq/esc50, or --data-dir with the "
        "official meta/esc50.csv + audio/ layout)",
        test_note="ESC-50 has no test split: fold 5 is held out as test, folds 1-4 train",
        options={"duration_s": 5.0, "test_fold": 5, "fold": True},
    )
)
register_task(
    TaskConfig(
        name="audiofolder",
        domain="audio",
        loader="dir",
        description="any audio classification folder: --data-dir DIR with train/<class>/* and test/<class>/* "
        "(WAV/FLAC/OGG)",
        options={"duration_s": 1.0},
    )
)
