"""The adapter contract, checked over every registered adapter (HEAR-style)."""

import pytest

from transferbench.adapters import ADAPTERS
from transferbench.adapters.contract import applicable_checks, check_adapter

CASES = [(name, check) for name in ADAPTERS.names() for check in applicable_checks(name)]


@pytest.mark.parametrize(("adapter", "check"), CASES, ids=[f"{a}-{c}" for a, c in CASES])
def test_contract(adapter, check, tmp_path):
    check_adapter(adapter, tmp_path, checks=(check,))


def test_every_adapter_is_covered_in_every_domain():
    domains = {ADAPTERS.get(name).domain for name in ADAPTERS.names()}
    assert {"vision", "text"} <= domains <= {"vision", "text", "audio"}
    assert {name for name, _ in CASES} == set(ADAPTERS.names())
