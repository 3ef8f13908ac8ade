"""Audio adapters: the audio contract (features from the waveform, windows for long clips), the GE2E
speaker encoder whose weights ship in the ``resemblyzer`` wheel, and a log-mel CNN built to be a
strong from-scratch baseline (the transformers speech encoders are ``speech``'s).

Every audio adapter takes ``{"input_values": [B, T] mono waveform at preprocessing.sample_rate,
"attention_mask": [B, T]}`` and computes its own features inside ``forward_features``, so each model
gets the input it can learn from (recorded as ``preprocessing.features``). The transformers models
load through :func:`transferbench.adapters.hf.load_transformers`, the loader the text encoders
share, so options such as ``trust_remote_code`` mean the same in both domains.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from abc import abstractmethod
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from transferbench.adapters.base import Adapter, register_adapter
from transferbench.adapters.weights import load_into, load_state_dict_file
from transferbench.errors import WeightsError
from transferbench.inputs import Batch, Preprocessing

RATE = 16_000


class AudioAdapter(Adapter):
    """An audio model. ``embed`` maps a batch of clips to features; ``forward_features`` adds what
    every audio model shares: a backbone trained on clips of ``window_s`` seconds (the GE2E encoder's
    1.6-s partials, AST's 10.24-s AudioSet clips) embeds a longer clip in windows of that length,
    ``window_hop`` of a window apart (HEAR's timestamp embeddings), and the window embeddings are pooled
    (``pool_windows``: their mean). Feeding it the whole clip instead asks for something it never saw:
    the speaker encoder's probe on 5-s clips scored 0.61 where 1.6-s windows averaged reached 0.78."""

    domain = "audio"
    window_s: float | None = None  # None: any clip length (the model was trained on varied lengths)
    window_hop: float = 0.5  # of a window: 50% overlap
    min_coverage: float = 0.75  # a last window is kept only if this much of it is real samples (resemblyzer)
    window_pooling: str = "mean"

    def __init__(self, backbone: nn.Module, num_features: int, preprocessing: Preprocessing, **kw: Any) -> None:
        if self.window_s is not None:  # recorded with every run (the run identity has it where it applies)
            preprocessing = dataclasses.replace(
                preprocessing,
                window_s=self.window_s,
                window_hop_s=round(self.window_s * self.window_hop, 6),
                window_pooling=self.window_pooling,
            )
        super().__init__(backbone, num_features, preprocessing, **kw)

    @abstractmethod
    def embed(self, batch: Batch) -> torch.Tensor:
        """Features [B, D] of clips no longer than the window (or of any length without one)."""

    def whole_clip(self, batch: Batch) -> Batch:
        """What is computed over the whole clip before it is cut in windows (nothing by default)."""
        return batch

    def pool_windows(self, embeddings: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """One feature per clip from its windows' ``embeddings`` [B, K, D] where ``keep`` [B, K] is 1."""
        weights = keep.to(embeddings.dtype)[..., None]
        return (embeddings * weights).sum(1) / weights.sum(1).clamp(min=1)

    def forward_features(self, batch: Batch) -> torch.Tensor:
        batch = self.whole_clip(batch)
        width = None if self.window_s is None else round(self.window_s * self.preprocessing.sample_rate)
        if width is None or batch["input_values"].shape[1] <= width:
            return self.embed(batch)
        windows, keep = split_windows(batch, width, max(1, round(width * self.window_hop)), self.min_coverage)
        embeddings = self.embed(windows)
        full = embeddings.new_zeros(keep.numel(), embeddings.shape[1])
        full[keep.flatten()] = embeddings
        return self.pool_windows(full.view(*keep.shape, -1), keep)

    def example_batch(self, batch_size: int = 2, seconds: float = 0.5) -> Batch:
        n = int(self.preprocessing.sample_rate * seconds)
        values = torch.randn(batch_size, n) * 0.1
        mask = torch.ones(batch_size, n, dtype=torch.long)
        mask[0, n // 2 :] = 0  # the first clip is padded
        values[0, n // 2 :] = 0
        return {"input_values": values, "attention_mask": mask}


def split_windows(batch: Batch, width: int, hop: int, min_coverage: float) -> tuple[Batch, torch.Tensor]:
    """The clips of ``batch`` cut in windows of ``width`` samples, ``hop`` apart: a batch of the
    windows worth embedding (those starting inside a clip; after the first, only with at least
    ``min_coverage`` real samples) and ``keep`` [B, K], which windows of each clip those are."""
    values, mask = batch["input_values"], batch["attention_mask"]
    count = 1 + -(-max(values.shape[1] - width, 0) // hop)
    padded = width + hop * (count - 1)
    values = F.pad(values, (0, padded - values.shape[1]))
    mask = F.pad(mask, (0, padded - mask.shape[1]))
    value_windows, mask_windows = values.unfold(1, width, hop), mask.unfold(1, width, hop)  # [B, K, width]
    real = mask_windows.sum(2)
    keep = real > 0
    keep[:, 1:] &= real[:, 1:] >= min_coverage * width
    return {"input_values": value_windows[keep], "attention_mask": mask_windows[keep]}, keep


def _mel(n_mels: int, *, window_ms: float = 25, hop_ms: float = 10, slaney: bool = False) -> nn.Module:
    import torchaudio

    kwargs = {"mel_scale": "slaney", "norm": "slaney", "pad_mode": "constant"} if slaney else {}
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=RATE,
        n_fft=int(RATE * window_ms / 1000),
        hop_length=int(RATE * hop_ms / 1000),
        n_mels=n_mels,
        **kwargs,
    )


def _frames(mask: torch.Tensor, hop: int) -> torch.Tensor:
    """Number of spectrogram frames (centred STFT) covering each clip's real samples."""
    return mask.sum(1) // hop + 1


def masked_standardize(x: torch.Tensor, keep: torch.Tensor, eps: float) -> torch.Tensor:
    """Mean- and variance-normalise ``x`` over dim 1, counting only where ``keep`` is 1 (the real
    samples or frames of each clip, not its padding); padded positions come out as zeros."""
    n = keep.sum(1, keepdim=True).clamp(min=1)
    mean = (x * keep).sum(1, keepdim=True) / n
    var = (((x - mean) * keep) ** 2).sum(1, keepdim=True) / n
    return (x - mean) / torch.sqrt(var + eps) * keep


def cmvn(features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Per-clip, per-band mean and variance normalisation over each clip's real frames
    (``features`` [B, frames, bands]); padded frames come out as zeros.

    Why: raw log-mel values sit around -10 with a spread of a few units, and an LSTM trained from
    random init on them does not learn (measured on spoken digits: training loss flat at ln 10,
    test accuracy 0.10). Speech recognisers normalise the same way before their first layer."""
    keep = torch.arange(features.shape[1], device=features.device)[None] < lengths[:, None].to(features.device)
    return masked_standardize(features, keep.to(features.dtype)[..., None], 1e-5)


# --- log-mel CNN -------------------------------------------------------------------------------
class ConvBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2)
        )


class LogMelCNN(AudioAdapter):
    """64-band log-mel (25 ms / 10 ms) -> BatchNorm over bands -> 4 conv blocks (3x3 conv, BN, ReLU,
    2x2 max-pool; 16-32-64-128 channels) -> mean over frequency, mean + max over time -> 128-d, with
    SpecAugment-style frequency and time masking while training. Compact on purpose: small audio
    datasets are where a from-scratch CNN is at its best, and it should be cheap to run."""

    def __init__(self, *, pretrained: bool, weights: str | None, **kw: Any) -> None:
        import torchaudio

        net = nn.ModuleDict(
            {
                "bands": nn.BatchNorm2d(64),
                "block1": ConvBlock(1, 16),
                "block2": ConvBlock(16, 32),
                "block3": ConvBlock(32, 64),
                "block4": ConvBlock(64, 128),
            }
        )
        if pretrained:
            if not weights:
                raise WeightsError(
                    "logmel-cnn has no published pretrained weights: use --strategy scratch, or pass --weights PATH"
                )
            load_into(net, load_state_dict_file(weights), source=weights)
        prep = Preprocessing("audio", "input_values", sample_rate=RATE, features="log-mel 64 bands, 25/10 ms")
        super().__init__(net, 128, prep, **kw)
        self.melspec = _mel(64)
        # SpecAugment on the band-normalised log-mel (a masked cell becomes the band's mean), masks drawn
        # per clip. Masking raw dB values with 0 paints loud stripes instead, and the model learned nothing.
        self.spec_augment = nn.Sequential(
            torchaudio.transforms.FrequencyMasking(8, iid_masks=True),
            torchaudio.transforms.TimeMasking(10, iid_masks=True),
        )

    def embed(self, batch: Batch) -> torch.Tensor:
        with torch.autocast(batch["input_values"].device.type, enabled=False):
            log_mel = torch.log(self.melspec(batch["input_values"].float()) + 1e-6)  # [B, mels, frames], per clip
        x = self.backbone["bands"](log_mel.unsqueeze(2)).transpose(1, 2)  # BatchNorm per band -> [B, 1, mels, frames]
        if self.training:
            x = self.spec_augment(x)
        for name in ("block1", "block2", "block3", "block4"):
            x = self.backbone[name](x)
        x = x.mean(dim=2)  # over frequency
        return x.mean(dim=2) + x.amax(dim=2)

    def blocks(self) -> list[nn.Module]:
        b = self.backbone
        return [nn.ModuleList([b["bands"], b["block1"]]), b["block2"], b["block3"], b["block4"]]


@register_adapter(
    "logmel-cnn",
    domain="audio",
    aliases=("cnn",),
    sample_rate=RATE,
    description="compact 4-block CNN on torchaudio log-mel spectrograms with SpecAugment; the from-scratch "
    "audio baseline",
    pretrained_source="none (train with --strategy scratch) or --weights",
    # 3e-3: on FSDD digits (seed 0, 5 epochs) 1e-3 reached 0.927 and needed 15 epochs for 0.987.
    recipes={"scratch": {"lr": 3e-3, "weight_decay": 0.01}},
)
def logmel_cnn(**kw: Any) -> Adapter:
    kw.setdefault("drop_rate", 0.2)
    return LogMelCNN(**kw)


# --- GE2E speaker encoder (resemblyzer) --------------------------------------------------------
RESEMBLYZER_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"


def resemblyzer_weights_path() -> str:
    spec = importlib.util.find_spec("resemblyzer")  # located, not imported: it would import webrtcvad
    if spec is None or spec.origin is None:
        raise WeightsError("speaker-encoder needs the package resemblyzer (pip install resemblyzer), or --weights")
    return str(Path(spec.origin).parent / "pretrained.pt")


class SpeakerEncoder(AudioAdapter):
    """Resemblyzer's GE2E encoder: 3 LSTM layers (256) over 40-band mel frames (25 ms / 10 ms),
    last hidden state -> Dense(256) + ReLU -> L2-normalised 256-d embedding. The three layers are
    separate modules (the same computation as one 3-layer LSTM) so they can be frozen one by one.

    Inputs: the pretrained weights were trained on power mel spectrograms of clips normalised to
    -30 dBFS, so that is what they get. A randomly initialised LSTM learns poorly from power mels
    (measured: 0.26 vs 0.96 on spoken digits), so the scratch model gets log-mel input instead,
    mean- and variance-normalised per clip and band (``cmvn``): without that it stayed at chance."""

    window_s = 1.6  # GE2E trains on 160-frame partials (1.6 s) and embeds utterances in them, 50% apart

    def __init__(self, *, pretrained: bool, weights: str | None, **kw: Any) -> None:
        net = nn.ModuleDict(
            {
                "lstm0": nn.LSTM(40, 256, batch_first=True),
                "lstm1": nn.LSTM(256, 256, batch_first=True),
                "lstm2": nn.LSTM(256, 256, batch_first=True),
                "linear": nn.Linear(256, 256),
            }
        )
        if pretrained:
            path = weights or resemblyzer_weights_path()
            state = load_state_dict_file(path, expected_sha256=None if weights else RESEMBLYZER_SHA256)
            load_into(net, _from_resemblyzer(state), source=path)
        self.log_mel = not pretrained
        features = (
            "log-mel 40 bands, per-clip CMVN (scratch input)"
            if self.log_mel
            else "power mel 40 bands, -30 dBFS (as pretrained)"
        )
        super().__init__(net, 256, Preprocessing("audio", "input_values", sample_rate=RATE, features=features), **kw)
        self.melspec = _mel(40, slaney=True)

    def whole_clip(self, batch: Batch) -> Batch:
        """resemblyzer's volume normalisation (increase only) to -30 dBFS, over the whole clip as
        resemblyzer does before cutting partials (pretrained input only)."""
        if self.log_mel:
            return batch
        wave, mask = batch["input_values"].float(), batch["attention_mask"]
        with torch.autocast(wave.device.type, enabled=False):
            power = (wave**2).sum(1) / mask.sum(1).clamp(min=1)
            gain = torch.pow(10.0, (-30 - 10 * torch.log10(power.clamp(min=1e-10))) / 20).clamp(min=1.0)
        return {**batch, "input_values": wave * gain[:, None]}

    window_pooling = "mean, L2-normalised (resemblyzer's utterance embedding)"

    def pool_windows(self, embeddings: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """resemblyzer's utterance embedding: the mean of the partials' embeddings, L2-normalised."""
        mean = super().pool_windows(embeddings, keep)
        return mean / mean.norm(dim=1, keepdim=True).clamp(min=1e-6)

    def embed(self, batch: Batch) -> torch.Tensor:
        wave, mask = batch["input_values"].float(), batch["attention_mask"]
        with torch.autocast(wave.device.type, enabled=False):
            mels = self.melspec(wave).transpose(1, 2)  # [B, frames, 40]
            lengths = _frames(mask, 160).clamp(max=mels.shape[1])
            if self.log_mel:
                mels = cmvn(torch.log(mels + 1e-6), lengths)
        lengths = lengths.cpu()
        x = nn.utils.rnn.pack_padded_sequence(mels, lengths, batch_first=True, enforce_sorted=False)
        for name in ("lstm0", "lstm1", "lstm2"):
            x, (hidden, _) = self.backbone[name](x)
        embedding = F.relu(self.backbone["linear"](hidden[-1]))
        return embedding / embedding.norm(dim=1, keepdim=True).clamp(min=1e-6)

    def blocks(self) -> list[nn.Module]:
        b = self.backbone
        return [b["lstm0"], b["lstm1"], b["lstm2"], b["linear"]]


def _from_resemblyzer(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """resemblyzer's keys (one 3-layer LSTM) -> ours (three 1-layer LSTMs); ours pass through."""
    out = {}
    for key, value in state.items():
        if key.startswith("similarity_"):
            continue  # GE2E loss parameters, not part of the encoder
        if key.startswith("lstm.") and key[-3:-1] == "_l":
            param, layer = key[len("lstm.") : -3], key[-1]
            out[f"lstm{layer}.{param}_l0"] = value
        else:
            out[key] = value
    return out


@register_adapter(
    "speaker-encoder",
    domain="audio",
    aliases=("resemblyzer", "ge2e"),
    sample_rate=RATE,
    window_s=SpeakerEncoder.window_s,
    revision=2,  # 2: the scratch model's log-mel input gets per-clip CMVN
    offline_pretrained=True,
    description="GE2E speaker encoder (1.42M, 3-layer LSTM on mels), 256-d; weights ship in the resemblyzer wheel",
    pretrained_source="resemblyzer wheel pretrained.pt (sha256-verified) or --weights",
    recipes={"finetune": {"lr": 1e-3, "backbone_lr_scale": 0.1}, "scratch": {"lr": 2e-3, "weight_decay": 0.01}},
)
def speaker_encoder(**kw: Any) -> Adapter:
    return SpeakerEncoder(**kw)
