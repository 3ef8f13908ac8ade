"""Vision tasks (CIFAR-10, any imagefolder, scikit-learn's bundled digits) and the vision data
pipeline.

Images are decoded once into one uint8 tensor (CIFAR-10's 50k images are 150 MB) and kept on the
training device; each batch is augmented (random crop with padding, optional flip), resized to the
run's image size and normalised as the adapter says, all as tensor ops on that device, so the
loader does not starve a GPU.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from transferbench.errors import DataError
from transferbench.inputs import Batch, Preprocessing
from transferbench.options import Option, option
from transferbench.tasks.base import (
    BUILTIN_DATA,
    Split,
    TaskConfig,
    TaskData,
    builtin_task_data,
    check_data_dir,
    stratified_split,
    task_data,
)
from transferbench.tasks.domain import Domain, register_domain
from transferbench.tasks.hub import (
    check_columns,
    class_names_of,
    hub_source,
    load_hub_split,
    load_local,
    read_as,
)
from transferbench.tasks.pipeline import Pipeline

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def decode_image(source: Any, name: str) -> np.ndarray:
    """RGB uint8 HxWx3 from a path, bytes or a datasets image dict; DataError naming the file."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, dict):
        source = source.get("bytes") or source.get("path")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img.load()
            rgb = img.convert("RGB")
    except Image.DecompressionBombError:
        raise DataError(
            f"{name}: decodes to more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels (a decompression bomb?); "
            "refusing to decode it"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        detail = str(exc).replace(f"'{name}'", "").replace(str(name), "").strip(" :")
        raise DataError(f"{name}: not a readable image ({type(exc).__name__}: {detail[:100]})") from None
    array = np.asarray(rgb, dtype=np.uint8)
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"{name}: image has zero size")
    return array


def stack_images(arrays: list[np.ndarray], size: int) -> tuple[torch.Tensor, str | None]:
    """One uint8 [N, 3, H, W] tensor. Equal-sized images are kept at native size; mixed sizes are
    resized (shorter side to ``size``, centre crop) once here, and a note says so."""
    shapes = {a.shape for a in arrays}
    if len(shapes) == 1:
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous(), None
    from PIL import Image

    out = []
    for a in arrays:
        img = Image.fromarray(a)
        scale = size / min(img.size)
        img = img.resize((max(size, round(img.width * scale)), max(size, round(img.height * scale))), Image.BILINEAR)
        left, top = (img.width - size) // 2, (img.height - size) // 2
        out.append(np.asarray(img.crop((left, top, left + size, top + size))))
    note = f"images of {len(shapes)} different sizes were resized to {size}x{size} (centre crop) when decoded"
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous(), note


def _decode_dataset(ds: Any, config: TaskConfig, size: int, where: str) -> tuple[torch.Tensor, np.ndarray, str | None]:
    import datasets

    ds = ds.cast_column(config.input_column, datasets.Image(decode=False))
    arrays = []
    for i, item in enumerate(ds[config.input_column]):
        name = item.get("path") or f"{where} row {i}"
        arrays.append(decode_image(item, name))
    images, note = stack_images(arrays, size)
    return images, np.asarray(ds[config.label_column], dtype=np.int64), note


def _scan_imagefolder(root: Path, split: str) -> tuple[list[str], int]:
    """Class names of ``root/split`` and the number of files that are not images; empty class
    folders are an error (datasets would silently drop the class)."""
    classes, ignored = [], 0
    inside = root.resolve()
    for folder in sorted(p for p in (root / split).iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = [f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")]
        for f in files:  # a symlink must not smuggle in files from outside the data dir
            if not f.resolve().is_relative_to(inside):
                raise DataError(f"{f}: points outside --data-dir {root} (to {f.resolve()}); refusing to read it")
        images = [f for f in files if f.suffix.lower() in IMAGE_EXTENSIONS]
        ignored += len(files) - len(images)
        if not images:
            raise DataError(f"{folder}: class folder has no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        classes.append(folder.name)
    if not classes:
        raise DataError(f"{root / split}: no class folders; expected {split}/<class>/<image files>")
    return classes, ignored


def _imagefolder_splits(config: TaskConfig, data_dir: str, notes: list[str]) -> tuple[dict, TaskConfig, str]:
    """train/test datasets of a local ``train/<class>/*`` + ``test/<class>/*`` folder, checked first."""
    root = check_data_dir(data_dir, (config.train_split, config.test_split))
    train_classes, ignored_train = _scan_imagefolder(root, config.train_split)
    test_classes, ignored_test = _scan_imagefolder(root, config.test_split)
    if len(train_classes) < 2:  # datasets would drop the label column of a one-class folder
        found = ", ".join(map(repr, train_classes))
        raise DataError(f"{root}: task {config.name!r} needs at least 2 classes in training; found {found}")
    unknown = sorted(set(test_classes) - set(train_classes))
    if unknown:
        raise DataError(
            f"{root / config.test_split}: classes {', '.join(unknown)} are not in {root / config.train_split}; "
            "every test class needs training examples"
        )
    if ignored_train + ignored_test:
        notes.append(f"ignored {ignored_train + ignored_test} non-image files under {root}")
    ds = load_local("imagefolder", data_dir=str(root))
    splits = {
        config.train_split: ds["train"],
        config.test_split: ds[config.test_split if config.test_split in ds else "test"],
    }
    return splits, dataclasses.replace(config, input_column="image", label_column="label"), str(root)


def load_vision(config: TaskConfig, data_dir: str | None, image_size: int) -> TaskData:
    notes: list[str] = []
    if config.builtin is not None and not data_dir:
        return builtin_task_data(config)
    config, data_dir, layout = read_as(config, data_dir, "imagefolder")
    if data_dir:
        splits, input_config, source = _imagefolder_splits(config, data_dir, notes)
    else:
        splits = {
            s: load_hub_split(config.hub_path, config.hub_config, s, (config.input_column, config.label_column))
            for s in (config.train_split, config.test_split)
        }
        input_config, source = config, hub_source(config)
    train_ds, test_ds = splits[config.train_split], splits[config.test_split]
    for ds, split in ((train_ds, config.train_split), (test_ds, config.test_split)):
        check_columns(ds, (input_config.input_column, input_config.label_column), f"{source} [{split}]")
    class_names = class_names_of(train_ds, input_config.label_column)
    if class_names is None:
        raise DataError(f"{source}: label column {input_config.label_column!r} has no class names")
    train_x, train_y, note_a = _decode_dataset(train_ds, input_config, image_size, f"{source} [{config.train_split}]")
    test_x, test_y, note_b = _decode_dataset(test_ds, input_config, image_size, f"{source} [{config.test_split}]")
    notes += [n for n in (note_a, note_b) if n]
    if train_x.shape[2:] != test_x.shape[2:]:
        raise DataError(
            f"{source}: train images are {tuple(train_x.shape[2:])} but test images {tuple(test_x.shape[2:])}"
        )
    return task_data(config, class_names, (train_x, train_y), (test_x, test_y), source, notes, layout=layout)


class VisionPipeline(Pipeline):
    """Batches of ``{"pixel_values", "labels", "index"}`` from a decoded split, on ``device``."""

    def __init__(
        self,
        split: Split,
        prep: Preprocessing,
        *,
        image_size: int,
        train: bool,
        flip: bool,
        device: torch.device,
        channels_last: bool = False,
    ) -> None:
        super().__init__(split.labels, device=device, train=train)
        self.images = split.inputs.to(device)
        self.image_size, self.flip, self.channels_last = image_size, flip, channels_last
        self.mean = torch.tensor(prep.mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(prep.std, device=device).view(1, 3, 1, 1)

    def _augment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Random crop after reflect-padding by 1/8 of the side (4 px at 32 px), plus flips."""
        b, _, h, w = x.shape
        pad = max(1, h // 8)
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen).to(x.device)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]
        x = padded[torch.arange(b, device=x.device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
        if self.flip:
            flip = (torch.rand(b, generator=gen) < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x

    def transform(self, images: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        x = images.float().div_(255)
        if self.train and gen is not None:
            x = self._augment(x, gen)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(
                x,
                size=(self.image_size, self.image_size),
                mode="bilinear",
                antialias=x.shape[-1] > self.image_size,
                align_corners=False,
            )
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def collate(self, idx: torch.Tensor, gen: torch.Generator | None) -> Batch:
        idx = idx.to(self.device)
        return self.with_targets({"pixel_values": self.transform(self.images[idx], gen)}, idx)


@dataclass(frozen=True)
class VisionKeys:
    """What a vision task file may say besides the common keys."""

    flip_augment: bool = True  # horizontal flips preserve the label (not for digits or text)
    # the task's default input size, else the adapter's native one (declared: checked as --image-size is)
    image_size: int | None = option(None, "the task's default input side in pixels", low=8)


IMAGE_SIZE = Option(
    "image_size", int, "vision: input side in pixels", low=8, default_text="the task's, else the adapter's native"
)


class VisionDomain(Domain):
    """Images decoded once to one uint8 tensor; augmented, resized and normalised per batch."""

    name = "vision"
    reference_task = "cifar10"
    options = (IMAGE_SIZE,)
    task_keys = VisionKeys
    default_input_column = "image"
    contract_options = {"image_size": 32}  # noqa: RUF012

    def load(self, config: TaskConfig, data_dir: str | None, settings: dict[str, Any]) -> TaskData:
        return load_vision(config, data_dir, settings.get("image_size") or 224)

    def load_settings(self, options: dict[str, Any], config: TaskConfig, adapter: Any) -> dict[str, Any]:
        # only image folders of mixed sizes use it (resized once when decoded)
        return {"image_size": options.get("image_size") or self.keys(config).image_size or 224}

    def input_settings(
        self, options: dict[str, Any], config: TaskConfig, adapter: Any, data: TaskData
    ) -> dict[str, Any]:
        return {"image_size": options.get("image_size") or self.keys(config).image_size or adapter.input_size}

    def pipelines(self, splits, model, config, settings, device, channels_last=False) -> list[Pipeline]:
        flip = self.keys(config).flip_augment
        common = {"image_size": settings["image_size"], "flip": flip, "device": device}
        return [
            VisionPipeline(split, model.preprocessing, train=i == 0, channels_last=channels_last, **common)
            for i, split in enumerate(splits)
        ]

    def example_shape(self, settings: dict[str, Any], model: Any) -> dict[str, int]:
        return {"image_size": settings.get("image_size") or model.preprocessing.input_size or 224}

    def synthetic_split(self, n: int, num_classes: int, settings: dict[str, Any]) -> Split:
        size = settings.get("image_size") or 32
        images = torch.randint(
            0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
        )
        return Split(images, np.arange(n, dtype=np.int64) % num_classes)


register_domain(VisionDomain())

# --- registered vision tasks ---------------------------------------------------------------------


@BUILTIN_DATA.register("digits")
def sklearn_digits() -> tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray, list[str]]:
    """scikit-learn's bundled copy of the UCI optical handwritten digits (1797 real 8x8 scans):
    the real image data every fresh install has. Fixed stratified split, one third test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.round(digits.images * (255 / 16)).astype(np.uint8)  # 0..16 ink levels -> 0..255
    images = torch.from_numpy(np.repeat(pixels[:, None], 3, axis=1))  # grey -> RGB
    labels = digits.target.astype(np.int64)
    train_idx, test_idx = stratified_split(labels, 1 / 3, seed=0)
    return (
        images[train_idx],
        labels[train_idx],
        images[test_idx],
        labels[test_idx],
        [str(d) for d in range(10)],
    )
