"""What flows between tasks and models: a batch, the input a model expects, and the tokenizer hook.

Tasks and models both import this module and nothing of each other, so loading a task never
imports a model family (and the reverse). It imports neither torch nor any model library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

# A batch is a dict of tensors: the model's inputs (``pixel_values``; ``input_ids`` +
# ``attention_mask``; ``input_values`` + ``attention_mask``), plus ``labels`` and ``index`` (the
# examples' positions in their split, so predictions can be put back in order).
Batch = dict[str, Any]


@dataclass(frozen=True)
class Preprocessing:
    """What the backbone expects as input. Tasks read this; they never hard-code it."""

    domain: str
    input_key: str
    input_size: int | None = None  # vision: native square input size in pixels
    mean: tuple[float, ...] | None = None  # vision: per-channel mean on [0, 1] pixels
    std: tuple[float, ...] | None = None
    sample_rate: int | None = None  # audio: Hz the backbone was trained at
    max_length: int | None = None  # text: longest token sequence the backbone accepts
    features: str | None = None  # audio: what the model computes from the waveform (recorded)
    window_s: float | None = None  # audio: the clip length the backbone was trained on; longer clips are windowed
    window_hop_s: float | None = None  # audio: how far apart those windows start
    window_pooling: str | None = None  # audio: how window embeddings become one clip embedding

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@runtime_checkable
class Tokenizes(Protocol):
    """A model that owns its tokenizer (text adapters): the text pipeline tokenises through it."""

    pad_id: int

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, truncated to the model's max length."""
        ...
