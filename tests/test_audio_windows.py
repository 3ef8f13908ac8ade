"""Audio encoders on clips longer than they were trained on: an adapter declares its window, a longer
clip is embedded in windows 50% apart and their embeddings pooled, for every strategy; the window is
recorded, and part of the run identity exactly when it applies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferbench.adapters import ADAPTERS
from transferbench.adapters.audio import split_windows
from transferbench.tasks import DOMAINS, TaskConfig, TaskData
from transferbench.tasks.audio import AudioKeys
from transferbench.tasks.base import Split

RATE = 16_000


@pytest.fixture(scope="module")
def encoder():
    return ADAPTERS.get("speaker-encoder").create(num_classes=3, pretrained=True).eval()


def _batch(seconds: float, real: list[float]) -> dict:
    n = round(seconds * RATE)
    gen = torch.Generator().manual_seed(0)
    values, mask = torch.zeros(len(real), n), torch.zeros(len(real), n, dtype=torch.long)
    for row, length in enumerate(real):
        m = round(length * RATE)
        values[row, :m] = 0.1 * torch.randn(m, generator=gen)
        mask[row, :m] = 1
    return {"input_values": values, "attention_mask": mask}


@torch.no_grad()
def test_a_clip_within_the_window_is_embedded_as_before(encoder):
    batch = _batch(1.0, [1.0, 0.6])
    assert torch.equal(encoder.forward_features(batch), encoder.embed(encoder.whole_clip(batch)))


@torch.no_grad()
def test_a_long_clip_is_the_normalised_mean_of_its_windows(encoder):
    batch = _batch(4.0, [4.0, 2.0])
    got = encoder.forward_features(batch)
    whole = encoder.whole_clip(batch)
    width, hop = round(1.6 * RATE), round(0.8 * RATE)
    for row, real in enumerate((4.0, 2.0)):
        starts = [s for s in range(0, round(4.0 * RATE), hop) if s < real * RATE]
        # resemblyzer's rule: after the first, a window needs 75% real samples
        starts = [s for i, s in enumerate(starts) if i == 0 or min(width, real * RATE - s) >= 0.75 * width]
        parts = []
        for s in starts:
            piece = {k: torch.nn.functional.pad(v[row : row + 1, s : s + width], (0, 0)) for k, v in whole.items()}
            if piece["input_values"].shape[1] < width:
                pad = width - piece["input_values"].shape[1]
                piece = {k: torch.nn.functional.pad(v, (0, pad)) for k, v in piece.items()}
            parts.append(encoder.embed(piece)[0])
        mean = torch.stack(parts).mean(0)
        assert torch.allclose(got[row], mean / mean.norm(), atol=1e-5)
        assert len(parts) == (4 if real == 4.0 else 2)


def test_split_windows_keeps_windows_with_enough_real_samples():
    batch = _batch(3.0, [3.0, 1.0, 1.7])
    windows, keep = split_windows(batch, width=16_000, hop=8_000, min_coverage=0.75)
    # windows start at 0, 0.5, 1.0, 1.5, 2.0 s; a 1.0-s clip keeps the first only; 1.7 s: 0 and 0.5 (0.7 < 0.75)
    assert keep.tolist() == [[True] * 5, [True, False, False, False, False], [True, True, False, False, False]]
    assert windows["input_values"].shape == (int(keep.sum()), 16_000)


def _settings(adapter: str, seconds: float) -> dict:
    data = TaskData(
        "t",
        "audio",
        ["a", "b"],
        Split([np.zeros(100, np.float32)] * 2, np.array([0, 1])),
        Split([], np.array([], np.int64)),
        "x",
        "test",
    )
    config = TaskConfig("t", "audio", "t", loader="dir", keys=AudioKeys(duration_s=seconds))
    return DOMAINS.get("audio").input_settings({}, config, ADAPTERS.get(adapter), data)


def test_the_window_joins_the_run_identity_only_where_it_applies():
    assert "window_s" not in _settings("speaker-encoder", 1.0)  # FSDD's clips: ids unchanged
    assert _settings("speaker-encoder", 5.0)["window_s"] == 1.6
    assert "window_s" not in _settings("logmel-cnn", 5.0)  # a model for any length has no window


def test_the_window_and_pooling_are_recorded_with_the_model(encoder):
    prep = encoder.preprocessing.to_dict()
    assert prep["window_s"] == 1.6 and prep["window_hop_s"] == 0.8 and "mean" in prep["window_pooling"]
    assert "window_s" not in ADAPTERS.get("logmel-cnn").create(num_classes=2, pretrained=False).preprocessing.to_dict()
