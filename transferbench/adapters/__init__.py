"""Adapters: one contract (:class:`Adapter`) and the registry of implementations."""

# Importing these registers the curated adapters and the model families (timm:, torchvision:, hf:).
from transferbench.adapters import (  # noqa: F401
    audio,
    classical,
    hf_family,
    speech,
    text,
    timm_family,
    torchvision_family,
    vision,
)
from transferbench.adapters.base import ADAPTERS, Adapter, AdapterSpec, FreezePolicy, Preprocessing, make_head

__all__ = ["ADAPTERS", "Adapter", "AdapterSpec", "FreezePolicy", "Preprocessing", "make_head"]
