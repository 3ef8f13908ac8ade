"""The linear probe's C search widens past an edge that alone scores best, within its limits."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from transferbench.benchmarks.training import probe
from transferbench.benchmarks.training.probe import PROBE_C_SEARCH, CSearch, widened


def test_widened_adds_a_decade_past_a_lone_winning_edge():
    limits = (1e-6, 1e3)
    assert widened({1e-3: 0.8, 1e-2: 0.7, 1e-1: 0.6}, limits) == pytest.approx(1e-4)
    assert widened({1e-1: 0.5, 1.0: 0.6}, limits) == pytest.approx(10.0)
    assert widened({1e-3: 0.7, 1e-2: 0.8, 1e-1: 0.6}, limits) is None  # best inside: done
    assert widened({1e-3: 0.7, 1e-2: 0.7, 1e-1: 0.6}, limits) is None  # a plateau is not a trend
    assert widened({1e-6: 0.9, 1e-5: 0.8}, limits) is None  # at the limit


class _PeakedSolver:
    """Stands in for LogisticRegression: validation accuracy peaks at C = 10**peak."""

    peak = 0.0

    def __init__(self, C: float, **_: object) -> None:
        self.C = C

    def fit(self, x: np.ndarray, y: np.ndarray) -> _PeakedSolver:
        return self

    def score(self, x: np.ndarray, y: np.ndarray) -> float:
        return 1.0 - abs(math.log10(self.C) - self.peak) / 100


@pytest.mark.parametrize(
    ("peak", "best", "tried"),
    [
        (-5, 1e-5, [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]),  # widened down until the peak is inside
        (5, 1e3, [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3]),  # widened up to the limit
        (-2, 1e-2, [1e-3, 1e-2, 1e-1, 1.0]),  # inside the grid: the grid alone
    ],
)
def test_search_widens_until_the_best_is_inside(monkeypatch, peak, best, tried):
    import sklearn.linear_model

    monkeypatch.setattr(_PeakedSolver, "peak", peak)
    monkeypatch.setattr(sklearn.linear_model, "LogisticRegression", _PeakedSolver)
    run = SimpleNamespace(seed=0, progress=None)
    fits = probe._search_c(run, PROBE_C_SEARCH, *([np.zeros((2, 1)), np.zeros(2)] * 2))
    assert sorted(fits) == pytest.approx(tried)
    assert max(fits, key=lambda c: fits[c][0]) == pytest.approx(best)


def test_search_is_part_of_the_probe_recipe():
    """A different search is a different recipe, so a different run identity."""
    from transferbench.benchmarks.strategies.base import STRATEGIES

    for name in ("linear-probe", "lp-ft"):
        recipe = STRATEGIES.get(name).to_dict()
        assert recipe["c_search"] == {"grid": (1e-3, 1e-2, 1e-1, 1.0), "limits": (1e-6, 1e3)}
    narrow = STRATEGIES.get("linear-probe").with_overrides(c_search=CSearch(grid=(1.0,), limits=(1.0, 1.0)))
    assert narrow.to_dict() != STRATEGIES.get("linear-probe").to_dict()
