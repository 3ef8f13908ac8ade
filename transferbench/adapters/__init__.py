"""Adapters: one contract (:class:`Adapter`) and the registry of implementations."""

from transferbench.adapters import audio, classical, text, vision  # noqa: F401  (registers the adapters)
from transferbench.adapters.base import ADAPTERS, Adapter, AdapterSpec, FreezePolicy, Preprocessing, make_head

__all__ = ["ADAPTERS", "Adapter", "AdapterSpec", "FreezePolicy", "Preprocessing", "make_head"]
