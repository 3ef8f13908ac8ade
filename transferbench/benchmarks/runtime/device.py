"""Where a run executes: device and mixed-precision choice, synchronisation, seeding, OOM detection.

Kept apart from the runner and the training loop so that both, and ``bench``, use one copy and
neither imports the other.
"""

from __future__ import annotations

import random
from contextlib import AbstractContextManager

import numpy as np
import torch

from transferbench.errors import UserError

AMP_MODES = ("auto", "off", "bf16", "fp16")


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA where present, else the CPU; a named device must exist here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not valid: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    return device


def resolve_amp(amp: str, device: torch.device) -> str:
    """``auto`` is bf16 on GPUs that support it and off elsewhere (CPU autocast is slower here)."""
    if amp not in AMP_MODES:
        raise UserError(f"--amp {amp!r} is not valid: expected one of {', '.join(AMP_MODES)}")
    if amp == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "off"
    return amp


def autocast(device: torch.device, amp: str) -> AbstractContextManager:
    if amp == "off":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def sync(device: torch.device) -> None:
    """Wait for queued device work, so a timer read afterwards measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> dict[str, float | str | None]:
    """Peak accelerator memory since ``reset_peak_memory`` (CUDA's allocator); elsewhere None and why,
    never a made-up figure (host RSS would mix in the data, the interpreter and other libraries)."""
    if device.type == "cuda":
        return {"peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30}
    return {"peak_memory_gib": None, "peak_memory_note": f"not measured on {device.type}: CUDA only"}
