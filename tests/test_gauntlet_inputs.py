"""The second gauntlet: inputs real users bring that used to end in a traceback or, worse, in a
published wrong number. Each case names the class it stands for; each ends in one line naming the
file or option (exit 2), or runs when the input is valid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from transferbench.benchmarks.cli import main

QUIET = ["--min-steps", "0", "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--no-progress"]
TFIDF = ["run", "--task", "csv", "--adapter", "tfidf-logreg", "--strategy", "scratch", *QUIET]
IMAGES = ["run", "--task", "imagefolder", "--adapter", "resnet18", "--strategy", "linear-probe", *QUIET]
AUDIO = ["run", "--task", "audiofolder", "--adapter", "logmel-cnn", "--strategy", "scratch", *QUIET]


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("transferbench: error: ")]
    assert len(lines) == 1, err
    return lines[0]


def _csv(root: Path, train: str, test: str, *, bom: bool = False) -> Path:
    root.mkdir(parents=True)
    prefix = b"\xef\xbb\xbf" if bom else b""
    (root / "train.csv").write_bytes(prefix + train.encode())
    (root / "test.csv").write_bytes(prefix + test.encode())
    return root


def _images(root: Path, classes: dict[str, int], test_classes: dict[str, int]) -> Path:
    for split, counts in (("train", classes), ("test", test_classes)):
        for cls, n in counts.items():
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                value = (hash(cls) + 40 * i) % 256
                Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(root / split / cls / f"{i}.png")
    return root


TRAIN_ROWS = "text,label\n" + "".join(f"good nice film {i},pos\nbad awful film {i},neg\n" for i in range(8))
TEST_ROWS = "text,label\n" + "".join(f"good nice {i},pos\nbad awful {i},neg\n" for i in range(8))


def test_csv_with_byte_order_mark_is_valid_input(tmp_path, capsys):
    """Class: a spreadsheet's "CSV UTF-8" (BOM first); the header must read as `text`, not '\\ufefftext'."""
    data = _csv(tmp_path / "csv", TRAIN_ROWS, TEST_ROWS, bom=True)
    out = tmp_path / "out"
    assert main([*TFIDF, "--data-dir", str(data), "--out", str(out)]) == 0, capsys.readouterr().err
    record = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert record["status"] == "ok" and record["class_names"] == ["neg", "pos"]


@pytest.mark.parametrize(
    ("train", "test", "expected"),
    [
        ("text,label\n" + "one text,a\n" * 12, "text,label\nx,a\n", "needs at least 2 classes in training; found 'a'"),
        (
            # integer labels of a task with fixed class names (SST-2 layout): 1 never occurs in train
            "sentence,label\n" + "a bad film,0\n" * 12,
            "sentence,label\na good film,1\na bad one,0\n",
            "needs at least 2 classes",
        ),
    ],
    ids=["single-class-csv", "fixed-names-one-class"],
)
def test_too_few_classes_is_one_line(tmp_path, capsys, train, test, expected):
    """Class: a data set that cannot be a classification task (was a scikit-learn traceback)."""
    task = "sst2" if train.startswith("sentence") else "csv"
    data = _csv(tmp_path / "csv", train, test)
    if task == "sst2":
        (data / "test.csv").rename(data / "validation.csv")
    argv = [*TFIDF, "--task", task, "--data-dir", str(data), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert expected in _error(capsys)


def test_test_class_without_training_examples_is_refused_for_integer_labels(tmp_path, capsys):
    """Class: a test label that training never shows, where the names are fixed (SST-2's 0/1): the
    run used to train a class with no examples and publish its accuracy."""
    train = "sentence,label\n" + "".join(f"a bad film {i},0\na dull film {i},0\n" for i in range(6))
    train += "".join(f"a fine film {i},1\n" for i in range(0))
    data = _csv(tmp_path / "sst2", train + "ok,0\n", "sentence,label\ngood,1\nbad,0\n")
    (data / "test.csv").rename(data / "validation.csv")
    argv = [*TFIDF, "--task", "sst2", "--data-dir", str(data), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "needs at least 2 classes" in _error(capsys)
    three = "sentence,label\n" + "".join(f"bad {i},0\ngood {i},1\n" for i in range(6))
    data3 = _csv(tmp_path / "three", three, "text,label\nx,0\n")
    # a csv task whose test split holds an integer label that train lacks
    (data3 / "test.csv").write_text("sentence,label\nx,0\ny,1\nz,7\n")
    argv = [*TFIDF, "--data-dir", str(data3), "--text-column", "sentence", "--out", str(tmp_path / "o3")]
    assert main(argv) == 2
    assert "'7'" in _error(capsys)


def test_image_test_class_missing_from_train_is_refused(tmp_path, capsys):
    data = _images(tmp_path / "img", {"a": 4, "b": 4}, {"a": 1, "b": 1})
    (data / "train" / "b").rename(data / "train" / "c")
    argv = [*IMAGES, "--data-dir", str(data), "--image-size", "16", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "not in" in _error(capsys)


def test_single_class_image_folder_is_one_line(tmp_path, capsys):
    data = _images(tmp_path / "img", {"a": 6}, {"a": 2})
    argv = [*IMAGES, "--data-dir", str(data), "--image-size", "16", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "needs at least 2 classes in training; found 'a'" in _error(capsys)


def test_decompression_bomb_is_one_line_naming_the_file(tmp_path, capsys):
    """Class: an image whose decoded size is absurd for its file size (PIL's DecompressionBombError)."""
    data = _images(tmp_path / "img", {"a": 4, "b": 4}, {"a": 1, "b": 1})
    bomb = data / "train" / "a" / "bomb.png"
    Image.new("1", (40_000, 40_000)).save(bomb)  # ~200 kB on disk, 1.6 gigapixels decoded
    argv = [*IMAGES, "--data-dir", str(data), "--image-size", "16", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    line = _error(capsys)
    assert "bomb.png" in line and "decompression bomb" in line


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--lr", "inf"),
        ("--lr", "nan"),
        ("--lr", "0"),
        ("--backbone-lr-scale", "inf"),
        ("--backbone-lr-scale", "-0.5"),
        ("--weight-decay", "-1"),
        ("--weight-decay", "nan"),
        ("--warmup-fraction", "1.5"),
        ("--target-accuracy", "1.2"),
        ("--target-accuracy", "inf"),
        ("--duration", "0"),
        ("--duration", "inf"),
    ],
)
def test_float_options_must_be_finite_and_in_range(tmp_path, capsys, option, value):
    """Class: every float option is finite and in range, refused before any data loads."""
    argv = ["run", "--task", "digits", "--adapter", "efficientnet-lite0", "--out", str(tmp_path / "out")]
    if option == "--duration":
        argv = [*AUDIO, "--data-dir", str(tmp_path / "not-read"), "--out", str(tmp_path / "out")]
    assert main([*argv, option, value]) == 2
    line = _error(capsys)
    assert option in line and "finite number" in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--task", "fsdd-digits", "--adapter", "logmel-cnn", "--model-path", "x"], "--model-path does not apply"),
        (["--task", "fsdd-digits", "--adapter", "speaker-encoder", "--model-path", "x"], "--model-path does not"),
        (["--task", "digits", "--adapter", "efficientnet-lite0", "--pooling", "cls"], "--pooling does not apply"),
        (["--task", "sst2", "--adapter", "minilm-l6", "--image-size", "32"], "--image-size applies to vision"),
        (["--task", "digits", "--adapter", "efficientnet-lite0", "--duration", "2"], "--duration applies to audio"),
    ],
    ids=["model-path-logmel", "model-path-speaker", "pooling-on-vision", "image-size-on-text", "duration-on-vision"],
)
def test_options_an_adapter_or_domain_does_not_read_are_refused_before_loading(tmp_path, capsys, argv, expected):
    """Class: an option the adapter or the task's domain does not take (was a TypeError after loading)."""
    missing = tmp_path / "never-read"  # validation happens first: the folder is never looked at
    assert main(["run", *argv, "--data-dir", str(missing), "--out", str(tmp_path / "out")]) == 2
    assert expected in _error(capsys)


def _clips(root: Path, seconds: float, n: int = 6, rate: int = 16_000) -> Path:
    for split, count in (("train", n), ("test", 2)):
        for cls, freq in (("low", 220.0), ("high", 880.0)):
            (root / split / cls).mkdir(parents=True)
            for i in range(count):
                t = np.arange(int(rate * seconds * (1 + 0.1 * (i % 2)))) / rate
                sf.write(root / split / cls / f"{i}.wav", 0.3 * np.sin(2 * np.pi * freq * t), rate)
    return root


def test_audio_clip_length_comes_from_the_data_and_is_recorded(tmp_path, capsys):
    """Class: a silent crop. 3-second clips used to be cut to 1 s; the default now covers them."""
    data = _clips(tmp_path / "clips", 3.0)
    out = tmp_path / "out"
    assert main([*AUDIO, "--data-dir", str(data), "--out", str(out)]) == 0, capsys.readouterr().err
    record = json.loads((out / "results.jsonl").read_text().splitlines()[-1])
    assert record["config"]["duration_s"] == 3.3  # 99th percentile of 3.0 / 3.3 s clips, rounded up
    assert record["inputs"]["clips"]["train"] == {"cropped": 0, "padded": 6}  # of 12 train clips, 6 are 3.0 s
    out1 = tmp_path / "out1"
    assert main([*AUDIO, "--data-dir", str(data), "--duration", "1", "--out", str(out1)]) == 0
    record = json.loads((out1 / "results.jsonl").read_text().splitlines()[-1])
    assert record["config"]["duration_s"] == 1.0 and record["inputs"]["clips"]["test"]["cropped"] == 4


def test_no_progress_silences_datasets_bars(tmp_path, capsys):
    """Class: output a user asked not to see (datasets' bars, and "Downloading" for local files)."""
    data = _csv(tmp_path / "csv", TRAIN_ROWS, TEST_ROWS)
    assert main([*TFIDF, "--data-dir", str(data), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "Generating" not in captured.err and "Downloading" not in captured.err


def _immutable(path: Path) -> None:
    import subprocess

    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here (needs root on a filesystem with attributes)")


def test_unwritable_results_file_is_refused_before_training(tmp_path, capsys):
    """Class: an output that cannot take the record (read-only, immutable): refused up front, not
    after the training it was meant to record."""
    import subprocess

    data = _csv(tmp_path / "csv", TRAIN_ROWS, TEST_ROWS)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text("")
    _immutable(out / "results.jsonl")
    try:
        assert main([*TFIDF, "--data-dir", str(data), "--out", str(out)]) == 2
        line = _error(capsys)
        assert "results.jsonl: cannot be appended to" in line and "loaded" not in capsys.readouterr().out
    finally:
        subprocess.run(["chattr", "-i", str(out / "results.jsonl")], check=False)


def test_a_record_the_results_file_refuses_after_training_is_kept_for_the_next_run(tmp_path, capsys, monkeypatch):
    """Class: the results file fails between the check and the append (disk, permissions): the
    finished record is kept, the error says where, and the next run on the same --out adds it."""
    from transferbench.benchmarks.results import store as results

    monkeypatch.setenv("TRANSFERBENCH_PENDING_DIR", str(tmp_path / "pending"))
    data = _csv(tmp_path / "csv", TRAIN_ROWS, TEST_ROWS)
    out = tmp_path / "out"
    real_append = results.append_record

    def refuse_main_file(path, record):
        if Path(path).parent == out:
            raise results.UserError(f"results file {path}: could not append a record (Read-only file system)")
        real_append(path, record)

    monkeypatch.setattr(results, "append_record", refuse_main_file)
    argv = [*TFIDF, "--data-dir", str(data), "--out", str(out), "--resume"]
    assert main(argv) == 2
    line = _error(capsys)
    assert "Read-only file system" in line and "the finished record is kept in" in line
    monkeypatch.setattr(results, "append_record", real_append)
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "added 1 finished records" in printed and "skip csv/tfidf-logreg/scratch/seed0" in printed
    assert len((out / "results.jsonl").read_text().splitlines()) == 1
    assert not list((tmp_path / "pending").iterdir())
