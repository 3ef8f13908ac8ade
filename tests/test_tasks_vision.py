"""Vision tasks: imagefolder through datasets, sklearn digits, splits and the tensor pipeline."""

import numpy as np
import pytest
import torch

from transferbench.errors import DataError, UserError
from transferbench.inputs import Preprocessing
from transferbench.tasks import TASKS, load_task, resolve_task
from transferbench.tasks.base import Split, stratified_split, subsample
from transferbench.tasks.vision import VisionPipeline


def test_imagefolder_loads_through_datasets(small_imagefolder):
    data = load_task(TASKS.get("imagefolder"), str(small_imagefolder))
    assert data.class_names == ["airplane", "cat", "ship"]
    assert data.train.inputs.shape == (36, 3, 32, 32) and data.train.inputs.dtype == torch.uint8
    assert data.test.inputs.shape == (12, 3, 32, 32)
    assert np.bincount(data.train.labels).tolist() == [12, 12, 12]
    assert len(data.fingerprint()) == 16


def test_fingerprint_tracks_content(small_imagefolder):
    a = load_task(TASKS.get("imagefolder"), str(small_imagefolder))
    victim = sorted((small_imagefolder / "train" / "cat").iterdir())[0]
    other = sorted((small_imagefolder / "train" / "ship").iterdir())[0]
    victim.write_bytes(other.read_bytes())
    b = load_task(TASKS.get("imagefolder"), str(small_imagefolder))
    assert a.fingerprint() != b.fingerprint()


def test_mixed_sizes_are_resized_and_noted(small_imagefolder):
    from PIL import Image

    Image.new("RGB", (50, 40), "red").save(small_imagefolder / "train" / "cat" / "big.png")
    data = load_task(TASKS.get("imagefolder"), str(small_imagefolder), image_size=32)
    assert data.train.inputs.shape[1:] == (3, 32, 32)
    assert any("resized" in note for note in data.notes)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no_test", r"no test/ folder"),
        ("empty_class", r"cat: class folder has no image files"),
        ("corrupt", r"broken\.png: not a readable image"),
        ("zero_byte", r"empty\.png: not a readable image"),
        ("extra_test_class", r"classes dog are not in .*train"),
    ],
)
def test_bad_image_folders_name_the_problem(small_imagefolder, breakage, message):
    root = small_imagefolder
    if breakage == "no_test":
        import shutil

        shutil.rmtree(root / "test")
    elif breakage == "empty_class":
        for f in (root / "train" / "cat").iterdir():
            f.unlink()
    elif breakage == "corrupt":
        good = next((root / "train" / "cat").iterdir()).read_bytes()
        (root / "train" / "cat" / "broken.png").write_bytes(good[: len(good) // 3])
    elif breakage == "zero_byte":
        (root / "test" / "ship" / "empty.png").write_bytes(b"")
    elif breakage == "extra_test_class":
        (root / "test" / "dog").mkdir()
        import shutil

        shutil.copy(next((root / "test" / "cat").iterdir()), root / "test" / "dog" / "x.png")
    with pytest.raises(DataError, match=message):
        load_task(TASKS.get("imagefolder"), str(root))


def test_non_image_files_are_counted_not_silently_dropped(small_imagefolder):
    (small_imagefolder / "train" / "cat" / "notes.txt").write_text("hello")
    data = load_task(TASKS.get("imagefolder"), str(small_imagefolder))
    assert any("ignored 1 non-image files" in note for note in data.notes)


def test_folder_tasks_need_a_data_dir():
    with pytest.raises(UserError, match="--data-dir"):
        resolve_task("imagefolder", None)


def test_offline_hub_failure_says_what_to_do():
    with pytest.raises(DataError, match=r"uoft-cs/cifar10.*--data-dir"):
        load_task(TASKS.get("cifar10"), None)


def test_digits_is_real_bundled_data():
    data = load_task(TASKS.get("digits"), None)
    assert len(data.train) + len(data.test) == 1797
    assert data.train.inputs.shape[1:] == (3, 8, 8)
    assert set(np.unique(data.test.labels)) == set(range(10))


def test_stratified_split_is_disjoint_balanced_and_seeded():
    labels = np.repeat(np.arange(4), 25)
    keep, held = stratified_split(labels, 0.2, seed=0)
    assert not set(keep) & set(held) and len(keep) + len(held) == 100
    assert np.bincount(labels[held]).tolist() == [5, 5, 5, 5]
    assert np.array_equal(held, stratified_split(labels, 0.2, seed=0)[1])
    assert not np.array_equal(held, stratified_split(labels, 0.2, seed=1)[1])
    picked = subsample(labels, 10, seed=0)
    assert len(picked) == 10 and np.bincount(labels[picked]).max() - np.bincount(labels[picked]).min() <= 1
    assert len(subsample(labels, 3, seed=0, per_class=True)) == 12


def test_pipeline_normalises_resizes_and_augments():
    images = torch.full((6, 3, 8, 8), 255, dtype=torch.uint8)
    images[:, :, :, :4] = 0  # left half black: a flip is visible
    prep = Preprocessing("vision", "pixel_values", input_size=16, mean=(0.5,) * 3, std=(0.5,) * 3)
    split = Split(images, np.arange(6) % 2)
    plain = VisionPipeline(split, prep, image_size=16, train=False, flip=True, device=torch.device("cpu"))
    batch = next(plain.batches(4, shuffle=False))
    x = batch["pixel_values"]
    assert x.shape == (4, 3, 16, 16) and batch["labels"].tolist() == [0, 1, 0, 1]
    assert x.min() == -1 and x.max() == 1  # (0 - .5)/.5 and (1 - .5)/.5
    aug = VisionPipeline(split, prep, image_size=16, train=True, flip=True, device=torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    seen = torch.cat([b["pixel_values"] for _ in range(5) for b in aug.batches(6, shuffle=True, gen=gen)])
    assert seen.shape[1:] == (3, 16, 16)
    left_bright = (seen[:, 0, :, :4].mean(dim=(1, 2)) > 0).sum()
    assert 0 < left_bright < len(seen)  # some flipped, some not
    assert aug.unaugmented().train is False and aug.train is True
