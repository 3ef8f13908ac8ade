"""Strategies: how a pretrained (or random) model is adapted; one registered entry each.

``base`` holds the contract and the registry, ``probing``, ``modern`` and ``peft`` the strategy
classes, ``builtin`` the ten registered recipes, ``contract`` the validator any strategy passes.
A plugin imports what it needs from here: ``from transferbench.benchmarks.strategies import
Strategy, register_strategy``.
"""

from transferbench.benchmarks.strategies import builtin  # noqa: F401  (registers the built-in strategies)
from transferbench.benchmarks.strategies.base import (
    KIND_RECIPES,
    STRATEGIES,
    FromScratch,
    PretrainedStrategy,
    Strategy,
    applicable_adapters,
    block_names,
    has_pretrained_weights,
    head_names,
    option_owners,
    recipe_for,
    register_strategy,
)
from transferbench.benchmarks.strategies.builtin import FINETUNE_RECIPE
from transferbench.benchmarks.strategies.modern import BitFit, GradualUnfreeze, LayerwiseDecay
from transferbench.benchmarks.strategies.peft import IA3, LoRA, PeftStrategy
from transferbench.benchmarks.strategies.probing import LinearProbe, ProbeThenFinetune

__all__ = [
    "FINETUNE_RECIPE",
    "IA3",
    "KIND_RECIPES",
    "STRATEGIES",
    "BitFit",
    "FromScratch",
    "GradualUnfreeze",
    "LayerwiseDecay",
    "LinearProbe",
    "LoRA",
    "PeftStrategy",
    "PretrainedStrategy",
    "ProbeThenFinetune",
    "Strategy",
    "applicable_adapters",
    "block_names",
    "has_pretrained_weights",
    "head_names",
    "option_owners",
    "recipe_for",
    "register_strategy",
]
