"""Tiny stand-ins for hub models, for tests: small transformers models written with
``save_pretrained`` into a work dir and loaded back through the same ``from_pretrained`` path the
hub uses, so the contract tests exercise the real loading code offline and in seconds.

Each factory takes a work dir and returns the adapter options that point at the model it wrote
(``{"model_path": ...}``); registry entries name theirs as ``AdapterSpec.tiny``. A factory writes
its folder once per work dir and seeds torch itself, so the tiny weights are the same every time.

This module imports nothing from ``transferbench.adapters``: the adapters import it to name their
factories, and the reverse would be a cycle. transformers is imported only when a factory runs.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

SPEECH_RATE = 16_000  # what the speech encoders take (adapters.audio.RATE; a test checks they agree)


def tiny_bert(workdir: Path) -> dict[str, Any]:
    """A 2-layer BERT and a word-level vocab, saved with save_pretrained and loaded back through
    the same from_pretrained path the hub uses (contract tests)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = Path(workdir) / "tiny-bert"
    if not (path / "config.json").exists():
        path.mkdir(parents=True, exist_ok=True)
        words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film", "plot", "a", "not", "very"]
        # vocab= (a dict), not vocab_file=: transformers 5 ignores vocab_file and keeps only the 5
        # special tokens, so every word would be [UNK] and no test could learn from the text
        vocab = {w: i for i, w in enumerate(words + [f"w{i}" for i in range(52)])}
        BertTokenizerFast(vocab=vocab).save_pretrained(path)
        config = BertConfig(
            vocab_size=64,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
            max_position_embeddings=64,
        )
        torch.manual_seed(0)
        BertModel(config).save_pretrained(path)
    return {"model_path": str(path)}


def tiny_ast(workdir: Path) -> dict[str, Any]:
    """A 2-layer AST on 16 mel bins, saved with save_pretrained and reloaded through from_pretrained."""
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    path = Path(workdir) / "tiny-ast"
    if not (path / "config.json").exists():
        config = ASTConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
            num_mel_bins=16,
            max_length=64,
            frequency_stride=10,
            time_stride=10,
        )
        torch.manual_seed(0)
        ASTModel(config).save_pretrained(path)
        ASTFeatureExtractor(num_mel_bins=16, max_length=64).save_pretrained(path)
    return {"model_path": str(path)}


def tiny_speech_encoder(kind: str, workdir: Path) -> dict[str, Any]:
    """A 2-layer wav2vec2 (``kind="wav2vec2"``) or HuBERT (``"hubert"``) saved with save_pretrained
    and reloaded through from_pretrained."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    path = Path(workdir) / f"tiny-{kind}"
    if not (path / "config.json").exists():
        config_cls, model_cls = (Wav2Vec2Config, Wav2Vec2Model) if kind == "wav2vec2" else (HubertConfig, HubertModel)
        config = config_cls(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
            conv_dim=(16, 16, 16),
            conv_stride=(5, 4, 4),
            conv_kernel=(10, 8, 4),
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
            vocab_size=8,
        )
        torch.manual_seed(0)
        model_cls(config).save_pretrained(path)
        Wav2Vec2FeatureExtractor(sampling_rate=SPEECH_RATE, do_normalize=True).save_pretrained(path)
    return {"model_path": str(path)}


def tiny_wav2vec2(workdir: Path) -> dict[str, Any]:
    """:func:`tiny_speech_encoder` for wav2vec 2.0."""
    return tiny_speech_encoder("wav2vec2", workdir)


def tiny_hubert(workdir: Path) -> dict[str, Any]:
    """:func:`tiny_speech_encoder` for HuBERT."""
    return tiny_speech_encoder("hubert", workdir)


def corrupt_file(path: Path, size: int = 4096, seed: int = 0) -> Path:
    """Overwrite ``path`` with ``size`` random bytes (a torn download, a file from elsewhere), for
    tests of what a user sees when a weights file is unreadable."""
    path.write_bytes(random.Random(seed).randbytes(size))
    return path
