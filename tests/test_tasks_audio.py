"""Audio tasks: FSDD labels from file names, decoding without FFmpeg, conversions counted, bad files named."""

import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from transferbench.errors import DataError
from transferbench.tasks import TASKS, load_task
from transferbench.tasks.audio import AudioPipeline
from transferbench.tasks.base import Split


@pytest.fixture
def small_fsdd(tmp_path, fsdd_like):
    """Two digits x the first recordings of each speaker, in the fixture's layout."""
    src = fsdd_like
    root = tmp_path / "fsdd"
    for split, per in (("train", 3), ("test", 1)):
        for digit in ("3", "7"):
            (root / split / digit).mkdir(parents=True)
            files = sorted((src / split / digit).iterdir())
            by_speaker = {}
            for f in files:
                by_speaker.setdefault(f.stem.split("_")[1], []).append(f)
            for speaker_files in by_speaker.values():
                for f in speaker_files[:per]:
                    shutil.copy(f, root / split / digit / f.name)
    return root


def test_fsdd_digits_and_speakers_take_labels_from_file_names(small_fsdd):
    digits = load_task(TASKS.get("fsdd-digits"), str(small_fsdd))
    speakers = load_task(TASKS.get("fsdd-speakers"), str(small_fsdd))
    assert digits.class_names == ["3", "7"]
    assert speakers.class_names == sorted(speakers.class_names) and len(speakers.class_names) == 6
    assert len(digits.train) == len(speakers.train) == 2 * 6 * 3
    assert all(w.dtype == np.float32 and w.ndim == 1 for w in digits.train.inputs)
    assert any("resampled" in n and "16000 Hz" in n for n in digits.notes)  # FSDD is 8 kHz


def test_stereo_and_other_rates_are_converted_and_counted(small_fsdd):
    t = np.linspace(0, 0.5, 22050 // 2, dtype=np.float32)
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1)
    sf.write(small_fsdd / "train" / "3" / "3_extra_0.wav", stereo, 22050)
    sf.write(small_fsdd / "train" / "3" / "3_extra_1.flac", stereo[:, 0], 44100)
    data = load_task(TASKS.get("fsdd-digits"), str(small_fsdd))
    assert any("mixed 1 multi-channel clips down to mono" in n for n in data.notes)
    assert any(f"resampled {len(data.train) + len(data.test)} clips" in n for n in data.notes)
    lengths = {len(w) for w in data.train.inputs}
    assert 8000 in lengths  # both 0.5 s clips (22.05 and 44.1 kHz) became 8000 samples at 16 kHz


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("3_bad_0.wav", b"RIFF\x00\x00\x00\x00WAVEjunk", "3_bad_0.wav: not a readable audio file"),
        ("3_bad_0.mp4", b"\x00\x00\x00\x18ftypmp42", "unsupported audio format .mp4"),
        ("3_bad_0.wav", "zero", "3_bad_0.wav: zero-length clip"),
        ("3_bad_0.wav", "truncated", "3_bad_0.wav: not a readable audio file"),
        ("badname.wav", "copy", "badname.wav: file name is not <digit>_<speaker>_<index>.wav"),
    ],
)
def test_bad_audio_files_are_named(small_fsdd, name, payload, message):
    target = small_fsdd / "train" / "3" / name
    good = next((small_fsdd / "train" / "3").iterdir())
    if payload == "zero":
        sf.write(target, np.zeros(0, dtype=np.float32), 8000)
    elif payload == "truncated":
        target.write_bytes(good.read_bytes()[:30])
    elif payload == "copy":
        shutil.copy(good, target)
    else:
        target.write_bytes(payload)
    with pytest.raises(DataError, match=message):
        load_task(TASKS.get("fsdd-digits"), str(small_fsdd))


def test_pipeline_crops_pads_and_masks():
    waves = [np.ones(100, dtype=np.float32), np.ones(40, dtype=np.float32) * 2]
    split = Split(waves, np.array([0, 1]))
    pipe = AudioPipeline(split, rate=100, duration_s=0.5, train=False, device=torch.device("cpu"))
    batch = next(pipe.batches(2, shuffle=False))
    assert batch["input_values"].shape == (2, 50)
    assert batch["attention_mask"].sum(1).tolist() == [50, 40]
    assert batch["input_values"][1, 40:].abs().sum() == 0
    train = AudioPipeline(split, rate=100, duration_s=0.5, train=True, device=torch.device("cpu"))
    ramp = Split([np.arange(100, dtype=np.float32) + 1], np.array([0]))
    train = AudioPipeline(ramp, rate=100, duration_s=0.5, train=True, device=torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    starts = {next(train.batches(1, shuffle=True, gen=gen))["input_values"][0, 0].item() for _ in range(20)}
    assert len(starts) > 1  # training crops move; evaluation crops are centred:
    assert next(train.unaugmented().batches(1, shuffle=False))["input_values"][0, 0].item() == 26


def _tone_folder(root, layout):
    rng = np.random.RandomState(0)
    for split, label in layout:
        (root / split / label).mkdir(parents=True, exist_ok=True)
        sf.write(
            root / split / label / f"{label}-{len(list((root / split / label).iterdir()))}.wav",
            rng.randn(16000).astype(np.float32) * 0.1,
            16000,
        )


def test_speech_commands_local_folder_and_12_class_protocol(tmp_path):
    _tone_folder(tmp_path, [(s, w) for s in ("train", "test") for w in ("yes", "go", "bed", "_silence_", "tree")])
    full = load_task(TASKS.get("speech-commands"), str(tmp_path))
    assert full.class_names == ["_silence_", "bed", "go", "tree", "yes"]
    twelve = load_task(TASKS.get("speech-commands-12"), str(tmp_path))
    assert twelve.class_names == ["_silence_", "_unknown_", "go", "yes"]
    assert np.bincount(twelve.train.labels).tolist() == [1, 2, 1, 1]  # bed and tree became _unknown_


def test_esc50_official_layout_holds_out_fold_5(tmp_path):
    (tmp_path / "meta").mkdir()
    (tmp_path / "audio").mkdir()
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target, category in ((0, "dog"), (1, "rain")):
            name = f"{fold}-{target}-A-0.wav"
            sf.write(tmp_path / "audio" / name, np.zeros(8000, dtype=np.float32) + 0.01 * (target + 1), 44100)
            rows.append(f"{name},{fold},{target},{category},True,{target},A")
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    data = load_task(TASKS.get("esc50"), str(tmp_path))
    assert (len(data.train), len(data.test)) == (8, 2)
    assert data.class_names == ["dog", "rain"]
    assert any("fold 5 is held out" in n for n in data.notes)
    assert any("resampled 10 clips to 16000 Hz" in n for n in data.notes)


def test_esc50_other_folds_and_cross_validation_flag(tmp_path, capsys):
    from transferbench.benchmarks.cli.parser import build_parser as _build_parser
    from transferbench.benchmarks.cli.run import specs_from_args as _specs_from_args
    from transferbench.benchmarks.plan.resolve import resolve
    from transferbench.benchmarks.plan.spec import RunSpec

    args = _build_parser().parse_args(
        [
            "run",
            "--task",
            "esc50",
            "--adapter",
            "logmel-cnn",
            "--strategy",
            "scratch",
            "--test-fold",
            "all",
            "--data-dir",
            str(tmp_path),
        ]
    )
    specs, _, _ = _specs_from_args(args)
    assert [s.options["test_fold"] for s in specs] == [1, 2, 3, 4, 5]
    config = resolve(RunSpec.create("esc50", "logmel-cnn", "scratch", data_dir=str(tmp_path), test_fold=2)).task
    assert config.keys.folds.test_fold == 2 and "fold 2 is held out" in config.test_note


def test_cmvn_normalises_each_clip_and_band_over_its_real_frames():
    from transferbench.adapters.audio import cmvn

    torch.manual_seed(0)
    x = torch.randn(2, 50, 4) * 3 - 10  # log-mel-like: far from zero mean, unit variance
    lengths = torch.tensor([50, 20])
    out = cmvn(x, lengths)
    for clip, n in enumerate(lengths.tolist()):
        real = out[clip, :n]
        assert torch.allclose(real.mean(0), torch.zeros(4), atol=1e-5)
        assert torch.allclose(real.std(0, unbiased=False), torch.ones(4), atol=1e-3)
    assert torch.all(out[1, 20:] == 0)  # padding stays silent


def test_scratch_speaker_encoder_gets_normalised_log_mel_and_the_pretrained_one_power_mel():
    from transferbench.adapters import ADAPTERS

    spec = ADAPTERS.get("speaker-encoder")
    scratch = spec.create(num_classes=3, pretrained=False)
    assert "CMVN" in scratch.preprocessing.features
    assert spec.revision >= 2  # the CMVN change is part of every run's identity
    batch = scratch.example_batch(2, seconds=0.5)
    assert scratch(batch).shape == (2, 3)
    pretrained = spec.create(num_classes=3, pretrained=True)
    assert pretrained.preprocessing.features.startswith("power mel")
