"""The bad-input gauntlet: every case must end with exit status 2 and one short line that names
the offending file, option or field and what was expected, with no traceback, and must leave an
existing results file untouched. Add new cases to CASES."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from report_records import rec
from safetensors.torch import save_file

from transferbench.benchmarks.cli import main

# an earlier run's record: every case must leave it untouched
SEED_LINE = json.dumps(rec("scratch", 0, 0.5, task="earlier")) + "\n"


class _Evil:
    def __reduce__(self):
        return (os.system, ("true",))


def _imagefolder(root: Path, src: Path) -> Path:
    for split, n in (("train", 6), ("test", 2)):
        for cls in ("cat", "ship"):
            (root / split / cls).mkdir(parents=True)
            for f in sorted((src / split / cls).iterdir())[:n]:
                shutil.copy(f, root / split / cls / f.name)
    return root


def _break(kind: str, root: Path) -> None:
    cat = root / "train" / "cat"
    sample = next(cat.iterdir()).read_bytes()
    if kind == "no-test":
        shutil.rmtree(root / "test")
    elif kind == "empty-class":
        for f in cat.iterdir():
            f.unlink()
    elif kind == "extra-test-class":
        (root / "test" / "dog").mkdir()
        (root / "test" / "dog" / "a.png").write_bytes(sample)
    elif kind == "corrupt":
        (cat / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    elif kind == "truncated":
        (cat / "truncated.png").write_bytes(sample[: len(sample) // 2])
    elif kind == "zero-byte":
        (cat / "zero.png").write_bytes(b"")
    elif kind == "symlink-escape":
        (cat / "escape.png").symlink_to(Path("/etc/hostname"))
    elif kind == "wrong-extension":
        (cat / "notes.png").write_text("this is text, not a PNG")


def _weights(kind: str, path: Path) -> Path:
    if kind == "list":
        torch.save([1, 2, 3], path)
    elif kind == "wrong-shapes":
        save_file({"conv1.weight": torch.zeros(3, 3, 1, 1)}, str(path))
    elif kind == "pickle":
        with open(path, "wb") as fh:
            pickle.dump({"w": _Evil()}, fh)
    return path


def _csv_dir(kind: str, root: Path) -> Path:
    root.mkdir()
    train, test = "sentence,label\ngood film,1\nbad film,0\nfine,1\nawful,0\n", "sentence,label\nok,1\nmeh,0\n"
    if kind == "missing-column":
        train = train.replace("sentence,", "review,")
    elif kind == "bad-encoding":
        train = train + "caf\xe9,1\n"
    elif kind == "empty-text":
        train = 'sentence,label\n"",1\n"  ",0\n'
    elif kind == "unknown-label":
        train = train.replace("good film,1", "good film,pos")
    elif kind == "unseen-test-label":
        test = test + "what,2\n"
    elif kind == "empty-file":
        train = ""
    (root / "train.csv").write_bytes(train.encode("latin-1"))
    (root / "validation.csv").write_text(test)
    return root


def _audio_dir(kind: str, root: Path) -> Path:
    import numpy as np
    import soundfile as sf

    for split in ("train", "test"):
        for cls in ("hum", "buzz"):
            (root / split / cls).mkdir(parents=True)
            for i in range(2):
                sf.write(root / split / cls / f"{cls}{i}.wav", np.random.RandomState(i).randn(1600) * 0.1, 16000)
    hum = root / "train" / "hum"
    if kind == "corrupt-audio":
        (hum / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    elif kind == "zero-length-audio":
        sf.write(hum / "empty.wav", np.zeros(0), 16000)
    elif kind == "unsupported-audio":
        (hum / "clip.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A ")
    elif kind == "empty-audio-class":
        for f in hum.iterdir():
            f.unlink()
    return root


BASE = [
    "run",
    "--min-steps",
    "0",  # these cases test errors, not budgets
    "--task",
    "imagefolder",
    "--adapter",
    "resnet18",
    "--strategy",
    "linear-probe",
    "--epochs",
    "1",
    "--batch-size",
    "4",
    "--image-size",
    "16",
    "--device",
    "cpu",
    "--no-progress",
]
TEXT = [
    "run",
    "--min-steps",
    "0",  # these cases test errors, not budgets
    "--task",
    "sst2",
    "--adapter",
    "minilm-l6",
    "--strategy",
    "linear-probe",
    "--epochs",
    "1",
    "--batch-size",
    "2",
    "--no-progress",
    "--device",
    "cpu",
]
AUDIO = [
    "run",
    "--min-steps",
    "0",  # these cases test errors, not budgets
    "--task",
    "audiofolder",
    "--adapter",
    "logmel-cnn",
    "--strategy",
    "scratch",
    "--epochs",
    "1",
    "--batch-size",
    "2",
    "--no-progress",
    "--device",
    "cpu",
]
DIGITS = [
    "run",
    "--min-steps",
    "0",  # these cases test errors, not budgets
    "--task",
    "digits",
    "--adapter",
    "efficientnet-lite0",
    "--epochs",
    "1",
    "--image-size",
    "16",
    "--no-progress",
    "--max-train-examples",
    "40",
]

# (id, argv with {data}/{weights}/{file} placeholders, folder breakage, weights kind, expected fragment)
CASES = [
    (
        "unknown-task",
        ["run", "--task", "cifar11", "--adapter", "resnet18"],
        None,
        None,
        "Did you mean: cifar10",
    ),
    (
        "unknown-adapter",
        ["run", "--task", "digits", "--adapter", "resnet19"],
        None,
        None,
        "Did you mean: resnet18",
    ),
    ("unknown-strategy", [*DIGITS, "--strategy", "finetun"], None, None, "Did you mean: finetune"),
    ("unknown-suite", ["run", "--suite", "quik"], None, None, "Did you mean: quick"),
    ("unknown-list", ["list", "adaptors"], None, None, "did you mean adapters"),
    ("empty-strategy", [*DIGITS, "--strategy", ","], None, None, "--strategy is empty"),
    ("task-without-adapter", ["run", "--task", "digits"], None, None, "needs both --task and --adapter"),
    (
        "suite-and-task",
        ["run", "--suite", "quick", "--task", "digits"],
        None,
        None,
        "--suite/--config cannot be combined",
    ),
    ("missing-data-dir", [*BASE, "--data-dir", "{tmp}/nowhere"], None, None, "nowhere: does not exist"),
    ("data-dir-is-file", [*BASE, "--data-dir", "{file}"], None, None, "is not a directory"),
    ("folder-task-no-data-dir", BASE, None, None, "pass --data-dir"),
    (
        "hub-offline",
        ["run", "--task", "cifar10", "--adapter", "resnet18", "--no-progress"],
        None,
        None,
        "offline, pass --data-dir",
    ),
    ("no-test-split", [*BASE, "--data-dir", "{data}"], "no-test", None, "no test/ folder"),
    (
        "empty-class-folder",
        [*BASE, "--data-dir", "{data}"],
        "empty-class",
        None,
        "cat: class folder has no image",
    ),
    (
        "test-class-not-in-train",
        [*BASE, "--data-dir", "{data}"],
        "extra-test-class",
        None,
        "classes dog are not in",
    ),
    ("corrupt-image", [*BASE, "--data-dir", "{data}"], "corrupt", None, "corrupt.png: not a readable image"),
    (
        "truncated-image",
        [*BASE, "--data-dir", "{data}"],
        "truncated",
        None,
        "truncated.png: not a readable image",
    ),
    ("zero-byte-image", [*BASE, "--data-dir", "{data}"], "zero-byte", None, "zero.png: not a readable image"),
    (
        "wrong-extension",
        [*BASE, "--data-dir", "{data}"],
        "wrong-extension",
        None,
        "notes.png: not a readable image",
    ),
    ("path-escapes-data-dir", [*BASE, "--data-dir", "{data}"], "symlink-escape", None, "escape.png: points outside"),
    (
        "weights-missing",
        [*BASE, "--data-dir", "{data}", "--weights", "{tmp}/absent.pth"],
        None,
        None,
        "absent.pth: file not found",
    ),
    (
        "weights-not-state-dict",
        [*BASE, "--data-dir", "{data}", "--weights", "{weights}"],
        None,
        "list",
        "expected a state dict",
    ),
    (
        "weights-wrong-shapes",
        [*BASE, "--data-dir", "{data}", "--weights", "{weights}"],
        None,
        "wrong-shapes",
        "not a state dict for ResNet",
    ),
    (
        "weights-unsafe-pickle",
        [*BASE, "--data-dir", "{data}", "--weights", "{weights}"],
        None,
        "pickle",
        "refused by torch.load(weights_only=True)",
    ),
    ("zero-epochs", [*DIGITS, "--epochs", "0"], None, None, "--epochs: expected an integer of at least 1, got 0"),
    ("negative-epochs", [*DIGITS, "--epochs", "-3"], None, None, "--epochs: expected an integer of at least 1"),
    (
        "negative-min-steps",
        [*DIGITS, "--min-steps", "-1"],
        None,
        None,
        "--min-steps: expected an integer of at least 0",
    ),
    (
        "zero-batch-size",
        [*DIGITS, "--batch-size", "0"],
        None,
        None,
        "--batch-size: expected an integer of at least 1",
    ),
    ("batch-larger-than-data", [*DIGITS, "--batch-size", "512"], None, None, "larger than the"),
    ("zero-lr", [*DIGITS, "--lr", "0"], None, None, "--lr: expected a finite number above 0"),
    ("negative-lr", [*DIGITS, "--lr", "-0.1"], None, None, "--lr: expected a finite number above 0"),
    ("seeds-not-integers", [*DIGITS, "--seeds", "a,b"], None, None, "--seeds: expected integers like 0,1,2"),
    ("seeds-duplicated", [*DIGITS, "--seeds", "1,1"], None, None, "at least 0 (distinct), got [1, 1]"),
    ("tiny-image-size", [*DIGITS, "--image-size", "2"], None, None, "--image-size: expected an integer of at least 8"),
    (
        "zero-train-examples",
        [*DIGITS, "--max-train-examples", "0"],
        None,
        None,
        "--max-train-examples: expected an integer of at least 1",
    ),
    ("bad-freeze-policy", [*DIGITS, "--freeze", "last-x"], None, None, "freeze policy 'last-x' is not valid"),
    (
        "freeze-too-deep",
        [*DIGITS, "--strategy", "partial", "--freeze", "last-99"],
        None,
        None,
        "has only 18 blocks",
    ),
    ("no-cuda", [*DIGITS, "--device", "cuda"], None, None, "CUDA is not available"),
    ("bad-device", [*DIGITS, "--device", "tpu9"], None, None, "--device 'tpu9' is not valid"),
    ("bad-amp", [*DIGITS, "--amp", "fp8"], None, None, "--amp: expected one of auto, off, bf16, fp16, got 'fp8'"),
    (
        "csv-missing-column",
        [*TEXT, "--data-dir", "{csv}"],
        "missing-column",
        None,
        "no column 'sentence'; columns present: review, label",
    ),
    ("csv-bad-encoding", [*TEXT, "--data-dir", "{csv}"], "bad-encoding", None, "train.csv:"),
    ("csv-all-text-empty", [*TEXT, "--data-dir", "{csv}"], "empty-text", None, "no rows with text in column"),
    (
        "csv-unknown-label",
        [*TEXT, "--data-dir", "{csv}"],
        "unknown-label",
        None,
        "label 'pos' (data row 1) is not one of 0, 1 or negative, positive",
    ),
    ("csv-unseen-test-label", [*TEXT, "--data-dir", "{csv}"], "unseen-test-label", None, "label '2' (data row 3)"),
    ("csv-empty-file", [*TEXT, "--data-dir", "{csv}"], "empty-file", None, "train.csv: file is empty"),
    ("csv-missing-file", [*TEXT, "--data-dir", "{tmp}"], None, None, "no train.csv"),
    (
        "domain-mismatch",
        ["run", "--task", "digits", "--adapter", "minilm-l6"],
        None,
        None,
        "'minilm-l6' is a text adapter but task 'digits' is vision",
    ),
    (
        "classical-not-scratch",
        [*TEXT, "--adapter", "tfidf-logreg", "--strategy", "finetune"],
        None,
        None,
        "runs with --strategy scratch only",
    ),
    (
        "text-option-on-vision",
        [*DIGITS, "--max-length", "32"],
        None,
        None,
        "--max-length does not apply to adapter 'efficientnet-lite0'",
    ),
    ("zero-max-length", [*TEXT, "--max-length", "0"], None, None, "--max-length: expected an integer of at least 1"),
    (
        "model-path-not-a-model",
        [*TEXT, "--data-dir", "{csv}", "--model-path", "{tmp}"],
        "ok",
        None,
        "no config.json; expected a save_pretrained() directory",
    ),
    ("audio-corrupt", [*AUDIO, "--data-dir", "{audio}"], "corrupt-audio", None, "broken.wav: not a readable audio"),
    ("audio-zero-length", [*AUDIO, "--data-dir", "{audio}"], "zero-length-audio", None, "empty.wav: zero-length clip"),
    (
        "audio-unsupported-format",
        [*AUDIO, "--data-dir", "{audio}"],
        "unsupported-audio",
        None,
        "clip.m4a: unsupported audio format .m4a",
    ),
    ("audio-empty-class", [*AUDIO, "--data-dir", "{audio}"], "empty-audio-class", None, "hum: class folder is empty"),
    (
        "logmel-cnn-has-no-weights",
        [*AUDIO, "--data-dir", "{audio}", "--strategy", "finetune"],
        "ok",
        None,
        "logmel-cnn has no published pretrained weights",
    ),
    ("out-is-a-file", [*DIGITS, "--out", "{file}"], None, None, "exists and is not a directory"),
    ("out-not-writable", [*DIGITS, "--out", "/proc/transferbench-out"], None, None, "not writable"),
]


@pytest.mark.parametrize(("argv", "breakage", "weights", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_clear_line(argv, breakage, weights, expected, tmp_path, capsys, cifar10_like):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text(SEED_LINE)
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("x")
    data = tmp_path / "data"
    if any("{data}" in a for a in argv):
        _imagefolder(data, cifar10_like)
        if breakage:
            _break(breakage, data)
    audio_dir = tmp_path / "audio"
    if any("{audio}" in a for a in argv):
        _audio_dir(breakage or "ok", audio_dir)
    suffix = ".safetensors" if weights == "wrong-shapes" else ".pth"
    csv_dir = tmp_path / "csv"
    if any("{csv}" in a for a in argv):
        _csv_dir(breakage or "ok", csv_dir)
    weights_path = _weights(weights, tmp_path / f"w{suffix}") if weights else None
    args = [
        a.format(tmp=tmp_path, data=data, file=a_file, weights=weights_path, csv=csv_dir, audio=audio_dir) for a in argv
    ]
    if "--out" not in args and args[0] == "run":
        args += ["--out", str(out)]
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]  # progress bars may come first
    errors = [line for line in lines if line.startswith("transferbench: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert expected in errors[0], errors[0]
    assert (out / "results.jsonl").read_text() == SEED_LINE


def test_disk_full_while_writing_keeps_earlier_results(tmp_path, capsys, monkeypatch):
    """A failed append (ENOSPC) is a clear error; the records already there stay intact."""
    from transferbench.benchmarks.results import store as results

    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text(SEED_LINE)

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(results.os, "write", full)
    code = main([*DIGITS, "--strategy", "linear-probe", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and "results.jsonl" in err
    assert (out / "results.jsonl").read_text() == SEED_LINE


def test_gauntlet_is_large_enough():
    assert len(CASES) + 1 >= 30
