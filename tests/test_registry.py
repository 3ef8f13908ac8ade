import pytest

from transferbench.adapters import ADAPTERS
from transferbench.benchmarks.plan.suites import SUITES
from transferbench.benchmarks.strategies.base import STRATEGIES
from transferbench.errors import UserError
from transferbench.registry import Registry
from transferbench.tasks import TASKS


def test_aliases_and_case_resolve_to_canonical_names():
    assert ADAPTERS.canonical("ResNet-18") == "resnet18"
    assert ADAPTERS.canonical("efficientnet_lite0") == "efficientnet-lite0"
    assert STRATEGIES.canonical("fine-tune") == "finetune"
    assert TASKS.canonical("CIFAR-10") == "cifar10"


@pytest.mark.parametrize(
    ("registry", "typo", "expected"),
    [
        (ADAPTERS, "resnet51", "resnet50"),
        (ADAPTERS, "efficentnet-lite0", "efficientnet-lite0"),
        (STRATEGIES, "finetnue", "finetune"),
        (TASKS, "cifar100", "cifar10"),
        (SUITES, "quik", "quick"),
    ],
)
def test_unknown_names_suggest_the_closest(registry, typo, expected):
    with pytest.raises(UserError) as info:
        registry.get(typo)
    message = str(info.value)
    assert f"Did you mean: {expected}" in message
    assert all(name in message for name in registry.names())


def test_duplicate_registration_is_a_bug():
    reg = Registry("thing")
    reg.add("a", 1, aliases=("b",))
    with pytest.raises(ValueError):
        reg.add("b", 2)


def test_every_transformer_text_encoder_trains_with_the_transformer_recipe():
    """A transformer trained at the CNN rate (2e-3) from scratch collapses to chance: the recipe
    must be what every transformers text adapter resolves, not a table nobody reads."""
    from transferbench.adapters.text import TRANSFORMER_RECIPES
    from transferbench.benchmarks.execution.runner import RunSpec, resolved_strategy

    text = [n for n in ADAPTERS.names() if ADAPTERS.get(n).domain == "text" and not ADAPTERS.get(n).classical]
    assert "minilm-l6" in text and "bert-base-uncased" in text
    for name in text:
        for strategy, recipe in TRANSFORMER_RECIPES.items():
            resolved = resolved_strategy(RunSpec(task="sst2", adapter=name, strategy=strategy))
            for key, value in recipe.items():
                assert getattr(resolved, key) == value, (name, strategy, key)


def test_list_adapters_shows_recipe_overrides(capsys):
    from transferbench.benchmarks.cli import main

    assert main(["list", "adapters"]) == 0
    out = capsys.readouterr().out
    assert "logmel-cnn" in out and "scratch lr=0.003" in out
