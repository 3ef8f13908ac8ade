import pytest

from transferbench.adapters import ADAPTERS
from transferbench.benchmarks.strategies import STRATEGIES
from transferbench.benchmarks.suites import SUITES
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
