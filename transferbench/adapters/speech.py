"""Transformers speech encoders (wav2vec2, HuBERT) and the Audio Spectrogram Transformer, loaded
through :func:`transferbench.adapters.hf.load_transformers`, the loader the text encoders share, so
options such as ``trust_remote_code`` mean the same in both domains. Their family kind is
``transformer``: the strategies' transformer recipes apply (strategies.builtin)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferbench import testing
from transferbench.adapters.audio import RATE, AudioAdapter, masked_standardize
from transferbench.adapters.base import Adapter, register_adapter
from transferbench.adapters.hf import HF_OPTIONS, blocks_and_rest, load_transformers, transformer_blocks
from transferbench.adapters.peft_targets import TRANSFORMER_LAYERS
from transferbench.inputs import Batch, Preprocessing


class TransformersAudioAdapter(AudioAdapter):
    """An audio model from transformers, loaded with its feature extractor through the loader the
    text encoders share (:func:`load_transformers`); the extractor says the sample rate."""

    def __init__(
        self, source: str, *, pretrained: bool, weights: str | None = None, trust_remote_code: bool = False, **kw: Any
    ) -> None:
        loaded = load_transformers(
            source,
            preprocessor="feature-extractor",
            pretrained=pretrained,
            weights=weights,
            trust_remote_code=trust_remote_code,
        )
        self.extractor = loaded.preprocessor
        rate = getattr(self.extractor, "sampling_rate", RATE)
        features = self.features_from(self.extractor)
        prep = Preprocessing("audio", "input_values", sample_rate=rate, features=features)
        super().__init__(loaded.model, loaded.config.hidden_size, prep, **kw)

    @abstractmethod
    def features_from(self, extractor: Any) -> str:
        """What the model computes from the waveform, as recorded in ``preprocessing.features``."""


class SpeechEncoderAdapter(TransformersAudioAdapter):
    """A transformers speech encoder (wav2vec2, HuBERT): waveform normalised per clip as its feature
    extractor says -> hidden states -> masked mean over frames."""

    def __init__(self, source: str, **kw: Any) -> None:
        super().__init__(source, **kw)
        self.normalize = bool(getattr(self.extractor, "do_normalize", True))
        self.pass_mask = bool(getattr(self.extractor, "return_attention_mask", False))

    def features_from(self, extractor: Any) -> str:
        return "raw waveform, per-clip normalised"

    def embed(self, batch: Batch) -> torch.Tensor:
        wave, mask = batch["input_values"], batch["attention_mask"]
        if self.normalize:
            wave = masked_standardize(wave, mask.to(wave.dtype), 1e-7)
        hidden = self.backbone(wave, attention_mask=mask if self.pass_mask else None).last_hidden_state
        frames = self.backbone._get_feat_extract_output_lengths(mask.sum(1)).clamp(max=hidden.shape[1])
        keep = (torch.arange(hidden.shape[1], device=hidden.device)[None] < frames[:, None]).to(hidden.dtype)
        return (hidden * keep[..., None]).sum(1) / keep.sum(1, keepdim=True).clamp(min=1)

    def blocks(self) -> list[nn.Module]:
        net = self.backbone
        front = nn.ModuleList([net.feature_extractor, net.feature_projection])
        return blocks_and_rest(net, [front, *net.encoder.layers])


class SpectrogramTransformerAdapter(TransformersAudioAdapter):
    """The Audio Spectrogram Transformer: its feature extractor turns each clip's real samples into
    Kaldi-style log-mel filterbanks (on the CPU, inside ``forward_features``), the transformer's
    pooled output (mean of the CLS and distillation tokens) is the feature."""

    window_s = 10.24  # AudioSet's 10-s clips: its feature extractor crops to 1024 frames of 10 ms

    def features_from(self, extractor: Any) -> str:
        return f"log-mel filterbank, {getattr(extractor, 'num_mel_bins', '?')} bins (AST feature extractor)"

    def embed(self, batch: Batch) -> torch.Tensor:
        wave, mask = batch["input_values"], batch["attention_mask"]
        clips = [w[: int(n)].float().cpu().numpy() for w, n in zip(wave, mask.sum(1), strict=True)]
        fbank = self.extractor(clips, sampling_rate=self.preprocessing.sample_rate, return_tensors="pt")
        return self.backbone(fbank["input_values"].to(wave.device)).pooler_output

    def blocks(self) -> list[nn.Module]:
        return transformer_blocks(self.backbone)


def _hub_speech(
    name: str,
    hub_id: str,
    adapter: type[TransformersAudioAdapter],
    description: str,
    tiny: Callable[[Path], dict[str, Any]],
    aliases: tuple[str, ...] = (),
) -> None:
    """Register a speech transformer whose weights come from ``hub_id`` unless ``--model-path`` says where."""

    @register_adapter(
        name,
        domain="audio",
        aliases=aliases,
        sample_rate=RATE,
        window_s=adapter.window_s,
        description=description,
        pretrained_source=f"hub {hub_id} or --model-path",
        options=HF_OPTIONS,
        tiny=tiny,
        recipe_kind="transformer",
        peft_targets=TRANSFORMER_LAYERS,
    )
    def build(*, model_path: str | None = None, **kw: Any) -> Adapter:
        return adapter(model_path or hub_id, **kw)


_hub_speech(
    "ast",
    "MIT/ast-finetuned-audioset-10-10-0.4593",
    SpectrogramTransformerAdapter,
    "Audio Spectrogram Transformer (AudioSet, 87M), 768-d pooled",
    testing.tiny_ast,
    aliases=("audio-spectrogram-transformer",),
)
_hub_speech(
    "wav2vec2-base",
    "facebook/wav2vec2-base",
    SpeechEncoderAdapter,
    "wav2vec 2.0 base (95M), 768-d mean-pooled",
    testing.tiny_wav2vec2,
)
_hub_speech(
    "hubert-base",
    "facebook/hubert-base-ls960",
    SpeechEncoderAdapter,
    "HuBERT base (95M), 768-d mean-pooled",
    testing.tiny_hubert,
)
