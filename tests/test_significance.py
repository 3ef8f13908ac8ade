"""Paired comparisons of rows: the two-level bootstrap against the normal approximation it should
agree with, what pairing buys over seeds alone, the tiers, and the tables that use them."""

from __future__ import annotations

import numpy as np
import pytest
from report_records import rec

from transferbench.benchmarks.results import aggregate, validate_record
from transferbench.benchmarks.results.significance import (
    correctness_code,
    difference,
    paired_bootstrap,
    tiers,
)

N = 400


def _runs(correct: list[np.ndarray], strategy: str = "finetune") -> list[dict]:
    """Records whose per-item correctness is ``correct`` (one array per seed)."""
    out = []
    for seed, right in enumerate(correct):
        r = rec(strategy, seed, float(right.mean()))
        r.update(test_examples=len(right), test_correct=correctness_code(right.astype(int), np.ones(len(right), int)))
        out.append(r)
    return out


def _base(seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).rand(N) < 0.6


def test_one_seed_each_matches_the_normal_approximation_of_the_paired_difference():
    b = _base()
    a = b.copy()
    a[np.flatnonzero(~b)[:24]] = True  # a gets 24 more items right (6 points), never fewer
    diff = paired_bootstrap(a[None].astype(float), b[None].astype(float))
    d = a.astype(float) - b
    half = 1.96 * d.std() / np.sqrt(N) * 100
    assert diff.pts == pytest.approx(6.0)
    assert diff.ci_pts[0] == pytest.approx(6.0 - half, abs=0.25 * half)
    assert diff.ci_pts[1] == pytest.approx(6.0 + half, abs=0.25 * half)
    assert diff.p_value < 0.001 and diff.test == "paired bootstrap"


def test_identical_runs_do_not_differ():
    b = _base()[None].astype(float)
    diff = paired_bootstrap(b, b)
    assert diff.pts == 0 and diff.ci_pts == (0.0, 0.0) and diff.p_value == 1.0


def test_pairing_finds_what_one_seed_each_cannot_and_seed_spread_widens_the_interval():
    b = _base()
    a = b.copy()
    a[np.flatnonzero(~b)[:24]] = True
    # one seed a side: no spread across seeds, so Welch says nothing; the items do
    welch_only = difference(
        [{**r, "test_correct": None} for r in _runs([a])], [{**r, "test_correct": None} for r in _runs([b])]
    )
    assert welch_only.ci_pts is None and welch_only.test == "none"
    assert difference(_runs([a]), _runs([b])).p_value < 0.01
    # the same mean difference with seeds that disagree is less certain than with seeds that agree
    rng = np.random.RandomState(1)
    noisy = [np.where(rng.rand(N) < 0.15, ~a, a) for _ in range(3)]
    steady = [a, a, a]
    wide, narrow = difference(_runs(noisy), _runs([b, b, b])), difference(_runs(steady), _runs([b, b, b]))
    assert wide.ci_pts[1] - wide.ci_pts[0] > narrow.ci_pts[1] - narrow.ci_pts[0]


def test_two_equal_stand_ins_are_not_separated_and_a_strong_one_is():
    rng = np.random.RandomState(3)
    weak, equal_a, equal_b = ([rng.rand(N) < p for _ in range(3)] for p in (0.5, 0.7, 0.7))
    same = difference(_runs(equal_a), _runs(equal_b))  # the same rate, each item drawn apart
    assert same.p_value >= 0.05 and same.ci_pts[0] < 0 < same.ci_pts[1]
    strong = difference(_runs(equal_a), _runs(weak))
    assert strong.p_value < 0.001 and strong.ci_pts[0] > 0


def test_tiers_group_the_rows_not_shown_to_differ_from_the_best():
    b = _base()
    better, tied = b.copy(), b.copy()
    better[np.flatnonzero(~b)[:40]] = True  # +10 points
    tied[np.flatnonzero(~b)[:41]] = True  # one item more than `better`
    rows = [_runs([b]), _runs([better]), _runs([tied])]
    means = [r[0]["metrics"]["accuracy"] for r in rows]
    assert tiers(means, rows) == [2, 1, 1]


def test_the_table_uses_the_paired_test_where_records_carry_per_item_correctness():
    b = _base()
    a = b.copy()
    a[np.flatnonzero(~b)[:24]] = True
    records = _runs([a], "finetune") + _runs([b], "scratch")
    rows = {r["strategy"]: r for r in aggregate(records)}
    assert rows["finetune"]["gain_test"] == "paired bootstrap" and rows["finetune"]["gain_ci_pts"][0] > 0
    assert (rows["finetune"]["tier"], rows["scratch"]["tier"]) == (1, 2)
    older = [{k: v for k, v in r.items() if k != "test_correct"} for r in records]
    assert {r["strategy"]: r["gain_ci_pts"] for r in aggregate(older)}["finetune"] is None  # 1 seed: no interval


def test_a_correctness_field_of_the_wrong_length_is_refused():
    (record,) = _runs([_base()])
    assert validate_record(record) is None
    assert "one bit per test example (391)" in validate_record({**record, "test_examples": N - 9})
    assert "test_correct" in validate_record({**record, "test_correct": "not base64!"})
