"""Text classification tasks (SST-2, any CSV) and the text data pipeline.

Texts are tokenised once per run by the adapter's own tokenizer (truncated to its max length);
batches are bucketed by length and padded dynamically to their longest member, so CPU runs are not
dominated by padding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferbench.configfile import decode_utf8
from transferbench.errors import DataError
from transferbench.inputs import Batch, Tokenizes
from transferbench.options import Option
from transferbench.tasks.base import HUB_COPY_EXPECTED, Split, TaskConfig, TaskData, builtin_task_data, task_data
from transferbench.tasks.domain import Domain, register_domain
from transferbench.tasks.hub import check_columns, class_names_of, hub_source, load_hub_split, load_local, read_as
from transferbench.tasks.pipeline import Pipeline


def _string_features(path: Path) -> Any:
    import csv

    import datasets

    with open(path, encoding="utf-8-sig", newline="") as fh:  # -sig: spreadsheets' "CSV UTF-8" starts with a BOM
        header = next(csv.reader(fh), [])
    if len(set(header)) != len(header) or not all(h.strip() for h in header):
        raise DataError(f"{path}: header row {header!r} has empty or repeated column names")
    return datasets.Features({name: datasets.Value("string") for name in header})


def _find_csv(root: Path, names: tuple[str, ...], role: str) -> Path:
    for name in names:
        if (root / name).is_file():
            return root / name
    raise DataError(
        f"--data-dir {root}: no {' or '.join(names)} ({role} split; columns e.g. sentence,label), {HUB_COPY_EXPECTED}"
    )


def _rows(ds: Any, text_col: str, label_col: str, where: str) -> tuple[list[str], list[Any], int]:
    """Texts and raw labels; rows with empty text are dropped and counted, missing labels are errors."""
    texts, labels, empty = [], [], 0
    for i, (text, label) in enumerate(zip(ds[text_col], ds[label_col], strict=True)):
        if label is None or (isinstance(label, float) and math.isnan(label)) or str(label).strip() == "":
            raise DataError(f"{where} row {i + 2}: empty {label_col!r}; every row needs a label")
        if text is None or not str(text).strip():
            empty += 1
            continue
        texts.append(str(text))
        labels.append(label)
    return texts, labels, empty


def _label_ids(train: list[Any], test: list[Any], config: TaskConfig, where: dict[str, str]) -> tuple:
    """Class ids and names. A task with fixed class names (SST-2) needs labels that are ids in range
    or those names; otherwise labels (strings or integers) are mapped to ids in sorted order and the names recorded."""
    if config.class_names:
        names = list(config.class_names)
        # a local copy may write a label as its id (the hub's ClassLabel) or as its name (SentEval's CSVs)
        by_text = {**{str(i): i for i in range(len(names))}, **{n: i for i, n in enumerate(names)}}
        out = []
        for split, values in (("train", train), ("test", test)):
            ids = []
            for i, value in enumerate(values):
                as_id = by_text.get(
                    str(value).strip().removesuffix(".0") if isinstance(value, float) else str(value).strip()
                )
                if as_id is None:
                    raise DataError(
                        f"{where[split]}: label {value!r} (data row {i + 1}) is not one of "
                        f"{', '.join(map(str, range(len(names))))} or {', '.join(names)}"
                    )
                ids.append(as_id)
            out.append(np.array(ids, dtype=np.int64))
        return out[0], out[1], names

    def key(v: Any) -> str:
        return str(v).strip().removesuffix(".0") if isinstance(v, float) else str(v).strip()

    train_keys, test_keys = [key(v) for v in train], [key(v) for v in test]
    numeric = all(k.lstrip("-").isdigit() for k in train_keys)
    names = sorted(set(train_keys), key=(lambda k: int(k)) if numeric else None)
    unseen = sorted(set(test_keys) - set(names))
    if unseen:
        raise DataError(
            f"{where['test']}: labels {', '.join(map(repr, unseen[:5]))} never occur in "
            f"{where['train']}; a model cannot learn classes it never saw"
        )
    index = {n: i for i, n in enumerate(names)}
    return (
        np.array([index[k] for k in train_keys], dtype=np.int64),
        np.array([index[k] for k in test_keys], dtype=np.int64),
        names,
    )


def load_text(
    config: TaskConfig, data_dir: str | None, text_column: str | None = None, label_column: str | None = None
) -> TaskData:
    text_col = text_column or config.input_column
    label_col = label_column or config.label_column
    if config.builtin is not None and not data_dir:
        return builtin_task_data(config)
    config, data_dir, layout = read_as(config, data_dir, "csv")
    if data_dir:
        root = Path(data_dir)
        if not root.is_dir():
            raise DataError(f"--data-dir {root}: {'does not exist' if not root.exists() else 'is not a directory'}")
        train_file = _find_csv(root, ("train.csv",), "training")
        test_names = (f"{config.test_split}.csv", "test.csv", "validation.csv")
        test_file = _find_csv(root, tuple(dict.fromkeys(test_names)), "evaluation")
        for f in (train_file, test_file):
            if not decode_utf8(f, DataError).strip():
                raise DataError(f"{f}: file is empty; expected a header row ({text_col},{label_col}) and data rows")
        # every column as a string (empty cells as ""), one file at a time so errors name the file
        splits = tuple(
            load_local(
                "csv", {"train": str(f)}, features=_string_features(f), keep_default_na=False, encoding="utf-8-sig"
            )["train"]
            for f in (train_file, test_file)
        )
        where = {"train": str(train_file), "test": str(test_file)}
        source, test_split = str(root), test_file.stem
    else:
        splits = tuple(
            load_hub_split(config.hub_path, config.hub_config, s, (text_col, label_col))
            for s in (config.train_split, config.test_split)
        )
        source, test_split = hub_source(config), config.test_split
        where = {"train": f"{source} [{config.train_split}]", "test": f"{source} [{config.test_split}]"}
    for ds_split, role in zip(splits, ("train", "test"), strict=True):
        check_columns(ds_split, (text_col, label_col), where[role])
    train_texts, train_raw, empty_train = _rows(splits[0], text_col, label_col, where["train"])
    test_texts, test_raw, empty_test = _rows(splits[1], text_col, label_col, where["test"])
    if not train_texts or not test_texts:
        raise DataError(f"{where['train' if not train_texts else 'test']}: no rows with text in column {text_col!r}")
    hub_names = class_names_of(splits[0], label_col) if not data_dir else None
    if hub_names:
        config = dataclasses.replace(config, class_names=tuple(hub_names))
    train_y, test_y, names = _label_ids(train_raw, test_raw, config, where)
    notes = [
        f"dropped {n} rows with empty text from {where[role]}"
        for n, role in ((empty_train, "train"), (empty_test, "test"))
        if n
    ]
    if config.test_note:
        notes.append(config.test_note)
    return task_data(
        config, names, (train_texts, train_y), (test_texts, test_y), source, notes, test_split=test_split, layout=layout
    )


class TextPipeline(Pipeline):
    """Batches of ``{"input_ids", "attention_mask", "labels", "index"}``, bucketed by length and
    padded to their longest member (on CUDA, to a multiple of 8 for the tensor cores). The model
    tokenises (it owns its tokenizer: ``Tokenizes``), once per process for the same texts
    (``encoded``). The token ids sit padded in one tensor on the device, so a batch is one gather
    there: nothing is built row by row on the host while the device waits."""

    def __init__(self, split: Split, model: Tokenizes, *, device: torch.device, bucket: int = 50) -> None:
        super().__init__(split.labels, device=device)
        ids = encoded(model, split.inputs)
        self.lengths = np.array([len(x) for x in ids], dtype=np.int64)
        self.pad_id, self.bucket = model.pad_id, bucket
        self.ids = _padded(ids, self.pad_id).to(device)
        self.lengths_on_device = torch.from_numpy(self.lengths).to(device)
        self.multiple = 8 if device.type == "cuda" else 1

    def collate(self, idx: Any, gen: torch.Generator | None) -> Batch:
        rows = np.asarray(idx)
        width = int(self.lengths[rows].max())  # from the host's copy of the lengths: no device read
        width = min(-(-width // self.multiple) * self.multiple, self.ids.shape[1])
        index = torch.from_numpy(rows).to(self.device, non_blocking=True)
        ids = self.ids[index, :width].long()
        mask = (torch.arange(width, device=self.device) < self.lengths_on_device[index, None]).long()
        return self.with_targets({"input_ids": ids, "attention_mask": mask}, index)

    def groups(self, batch_size: int, *, shuffle: bool, gen: torch.Generator | None, drop_last: bool) -> list:
        n = len(self)
        if not shuffle:  # evaluation: sort by length for tight padding; "index" restores order
            order = np.argsort(self.lengths, kind="stable")
            return [order[i : i + batch_size] for i in range(0, n, batch_size)]
        # shuffle, then sort within pools of `bucket` batches, then shuffle the batches
        perm = torch.randperm(n, generator=gen).numpy()
        pool = batch_size * self.bucket
        groups = []
        for start in range(0, n, pool):
            chunk = perm[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            groups += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        if drop_last:
            groups = [g for g in groups if len(g) == batch_size]
        return [groups[i] for i in torch.randperm(len(groups), generator=gen).tolist()]


def _padded(ids: list[list[int]], pad_id: int) -> torch.Tensor:
    """The token ids as one int32 tensor [N, longest], padded with ``pad_id``."""
    width = max((len(x) for x in ids), default=1) or 1
    table = np.full((len(ids), width), pad_id, dtype=np.int32)
    for row, tokens in enumerate(ids):
        table[row, : len(tokens)] = tokens
    return torch.from_numpy(table)


_ENCODED: OrderedDict[tuple, list[list[int]]] = OrderedDict()


def encoded(model: Tokenizes, texts: Any) -> list[list[int]]:
    """``model.encode(texts)``, once per process for the same model and texts: every seed, strategy
    and sweep point of a matrix that shares a split shares its tokens. A model without an
    ``encoding_key`` (what its tokens depend on) is tokenised every time."""
    key = getattr(model, "encoding_key", None)
    if key is None:
        return model.encode(texts)
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()
    full = (key, len(texts), digest)
    if full not in _ENCODED:
        _ENCODED[full] = model.encode(texts)
        while len(_ENCODED) > 16:
            _ENCODED.popitem(last=False)
    _ENCODED.move_to_end(full)
    return _ENCODED[full]


TEXT_COLUMN = Option("text_column", str, "text: the column holding the text", default_text="the task's")
LABEL_COLUMN = Option("label_column", str, "text: the column holding the label", default_text="the task's")


class TextDomain(Domain):
    """Texts kept as strings, tokenised per run by the model's own tokenizer."""

    name = "text"
    reference_task = "sst2"
    options = (TEXT_COLUMN, LABEL_COLUMN)
    default_input_column = "text"

    def load(self, config: TaskConfig, data_dir: str | None, settings: dict[str, Any]) -> TaskData:
        return load_text(config, data_dir, settings.get("text_column"), settings.get("label_column"))

    def load_settings(self, options: dict[str, Any], config: TaskConfig, adapter: Any) -> dict[str, Any]:
        return {"text_column": options.get("text_column"), "label_column": options.get("label_column")}

    def input_settings(
        self, options: dict[str, Any], config: TaskConfig, adapter: Any, data: TaskData
    ) -> dict[str, Any]:
        if "max_length" not in adapter.option_names:  # a classical model reads the raw text
            return {}
        return {
            "max_length": options.get("max_length") or 128,
            "pooling": options.get("pooling") or "mean",
            "model_path": options.get("model_path"),
            "trust_remote_code": bool(options.get("trust_remote_code")),
        }

    def pipelines(self, splits, model, config, settings, device, channels_last=False) -> list[Pipeline]:
        return [TextPipeline(split, model, device=device) for split in splits]

    def example_shape(self, settings: dict[str, Any], model: Any) -> dict[str, int]:
        seq_len = settings.get("max_length") or 128
        return {"seq_len": min(seq_len, model.preprocessing.max_length or seq_len)}

    def synthetic_split(self, n: int, num_classes: int, settings: dict[str, Any]) -> Split:
        words = ("the", "film", "was", "not", "good", "at", "all", "a", "fine", "cast")
        texts = [" ".join(words[(i + j) % len(words)] for j in range(3 + i % 7)) for i in range(n)]
        return Split(texts, np.arange(n, dtype=np.int64) % num_classes)


register_domain(TextDomain())
