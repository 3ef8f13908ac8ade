"""The adapter contract, checked over every registered adapter (HEAR-style)."""

import pytest

from transferbench.adapters import ADAPTERS
from transferbench.adapters.contract import CHECKS, check_adapter


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("adapter", ADAPTERS.names())
def test_contract(adapter, check, tmp_path):
    check_adapter(adapter, tmp_path, checks=(check,))


def test_every_domain_is_declared():
    for name in ADAPTERS.names():
        assert ADAPTERS.get(name).domain in ("vision", "text", "audio")
