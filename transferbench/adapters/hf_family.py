"""``hf:<hub id or local save_pretrained() dir>``: any transformers encoder, e.g.
``hf:google-bert/bert-base-uncased`` or ``hf:/models/my-bert``.

Everything loads through :func:`transferbench.adapters.hf.load_transformers`, the loader of the
curated text and audio adapters (``trust_remote_code`` off unless asked; unreadable weights named
in one line). The domain follows from the model's preprocessor, read before building (a JSON file:
no code runs): a feature extractor with a sampling rate makes it audio (wav2vec2-style speech
encoders and the Audio Spectrogram Transformer; other audio models are refused), image processors
are refused (use ``timm:`` or ``torchvision:``), anything else is a text encoder with its tokenizer.
``hf-encoder --model-path DIR`` stays what it was; ``hf:DIR`` is the same model under its own name.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from transferbench.adapters.base import ADAPTERS, Adapter
from transferbench.adapters.families import FamilySpec, file_revision, transformers_revision
from transferbench.adapters.hf import MODEL_PATH, TRUST_REMOTE_CODE, local_folder
from transferbench.adapters.peft_targets import TRANSFORMER_LAYERS
from transferbench.adapters.speech import SpectrogramTransformerAdapter, SpeechEncoderAdapter
from transferbench.adapters.text import TEXT_OPTIONS, TextEncoderAdapter
from transferbench.errors import UserError

# Speech encoders with wav2vec2's layout (feature_extractor, feature_projection, encoder.layers),
# which SpeechEncoderAdapter pools; the AST has its own adapter.
SPEECH_MODEL_TYPES = frozenset({"wav2vec2", "hubert", "wavlm", "data2vec-audio", "unispeech", "unispeech-sat"})
AUDIO_ADAPTERS: dict[str, type[Adapter]] = {
    **dict.fromkeys(SPEECH_MODEL_TYPES, SpeechEncoderAdapter),
    "audio-spectrogram-transformer": SpectrogramTransformerAdapter,
}
HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


def model_json(source: str, filename: str) -> dict[str, Any]:
    """A JSON file of the model (``config.json``, ``preprocessor_config.json``), {} when it has none
    or it cannot be fetched: the load itself then reports what is wrong, in one line."""
    local = local_folder(source)
    try:
        if local is not None:
            path = local / filename
        else:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(source, filename))
        return json.loads(path.read_text()) if path.is_file() else {}
    except Exception:  # not in the repo, offline, no such repo: all mean "nothing to go on" here
        return {}


def build(adapter: type[Adapter], source: str, *, pretrained: bool, weights: str | None = None, **kw: Any) -> Adapter:
    """The adapter, with the revision of what it loaded (``model.weights_revision``): the hub
    commit or the folder's weights hash, or the sha256 of ``--weights``; None from scratch."""
    model = adapter(source, pretrained=pretrained, weights=weights, **kw)
    revision = (file_revision(weights) if weights else transformers_revision(source)) if pretrained else None
    model.weights_revision = revision
    return model


def _audio_spec(name: str, source: str, preprocessor: dict[str, Any]) -> FamilySpec:
    model_type = model_json(source, "config.json").get("model_type", "?")
    if model_type not in AUDIO_ADAPTERS:
        raise UserError(
            f"hf:{source} is a {model_type!r} audio model; the hf family takes "
            f"{', '.join(sorted(AUDIO_ADAPTERS))} audio models"
        )
    return FamilySpec(
        name=name,
        domain="audio",
        build=functools.partial(build, AUDIO_ADAPTERS[model_type], source),
        description=f"transformers {model_type} audio encoder {source}, mean-pooled",
        pretrained_source=f"{source} (from_pretrained) or --weights",
        offline_pretrained=False,
        sample_rate=int(preprocessor["sampling_rate"]),
        options=(TRUST_REMOTE_CODE,),
        recipe_kind="transformer",
        peft_targets=TRANSFORMER_LAYERS,
        family="hf",
        model=source,
    )


def _text_spec(name: str, source: str) -> FamilySpec:
    return FamilySpec(
        name=name,
        domain="text",
        build=functools.partial(build, TextEncoderAdapter, source),
        description=f"transformers text encoder {source} (AutoModel + AutoTokenizer), pooled",
        pretrained_source=f"{source} (from_pretrained) or --weights",
        offline_pretrained=False,
        example_shape={"seq_len": 12},
        options=tuple(o for o in TEXT_OPTIONS if o is not MODEL_PATH),  # the name says where the model is
        recipe_kind="transformer",
        peft_targets=TRANSFORMER_LAYERS,
        family="hf",
        model=source,
    )


def resolve(rest: str) -> tuple[str, FamilySpec]:
    """A local directory (canonical: its absolute path) or a hub id ``owner/name`` -> its spec."""
    local = local_folder(rest)  # a directory without config.json is refused here
    if local is None and not HUB_ID.fullmatch(rest):
        raise UserError(f"hf:{rest}: not a local save_pretrained() directory and not a hub id (owner/name)")
    source = str(local.resolve()) if local is not None else rest
    preprocessor = model_json(source, "preprocessor_config.json")
    if "sampling_rate" in preprocessor:
        return source, _audio_spec(f"hf:{source}", source, preprocessor)
    if "image_processor_type" in preprocessor or "image_mean" in preprocessor:
        raise UserError(f"hf:{source} is a vision model; use a timm: or torchvision: name for vision backbones")
    return source, _text_spec(f"hf:{source}", source)


ADAPTERS.add_family("hf", resolve, description="hub id or dir of a transformers encoder, e.g. hf:prajjwal1/bert-tiny")
