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
        (TASKS, "cifr10", "cifar10"),
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


def test_every_transformer_encoder_trains_with_the_strategies_transformer_recipes():
    """A transformer trained at the CNN rate (2e-3) from scratch collapses to chance: every
    transformers adapter, text and speech alike, must resolve each strategy's transformer recipe."""
    from transferbench.benchmarks.plan.resolve import resolve
    from transferbench.benchmarks.plan.spec import RunSpec
    from transferbench.benchmarks.strategies import KIND_RECIPES

    encoders = [n for n in ADAPTERS.names() if ADAPTERS.get(n).recipe_kind == "transformer"]
    assert {"minilm-l6", "bert-base-uncased", "wav2vec2-base", "hubert-base", "ast"} <= set(encoders)
    tasks = {"text": "sst2", "audio": "speech-commands"}
    for name in encoders:
        for strategy, by_kind in KIND_RECIPES.items():
            if ADAPTERS.get(name).recipes.get(strategy):
                continue  # the adapter's own tuning comes last
            spec = RunSpec(task=tasks[ADAPTERS.get(name).domain], adapter=name, strategy=strategy, data_dir="d")
            try:
                resolved = resolve(spec).strategy
            except Exception:  # a strategy that does not apply to this adapter (no PEFT target, ...)
                continue
            for key, value in by_kind["transformer"].items():
                assert getattr(resolved, key) == value, (name, strategy, key)


def test_the_speech_transformers_fine_tune_at_transformer_rates_in_every_strategy():
    """wav2vec2 once got CNN rates under lp-ft and partial (its table had no entry for them)."""
    from transferbench.benchmarks.plan.resolve import resolve
    from transferbench.benchmarks.plan.spec import RunSpec

    for strategy in ("finetune", "lp-ft", "partial", "llrd", "gradual-unfreeze"):
        resolved = resolve(RunSpec("speech-commands", "wav2vec2-base", strategy, data_dir="d")).strategy
        assert (resolved.lr, resolved.backbone_lr_scale) == (5e-4, 0.1), strategy


def test_list_adapters_shows_recipe_overrides(capsys):
    from transferbench.benchmarks.cli import main

    assert main(["list", "adapters"]) == 0
    out = capsys.readouterr().out
    assert "logmel-cnn" in out and "scratch lr=0.003" in out
