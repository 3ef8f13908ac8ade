"""Is one row better than another? Paired over the test items where the records say which items each
run got right (``test_correct``), across seeds otherwise.

Both sides of a comparison were tested on the same items, so the difference is paired by item: a
two-level bootstrap resamples the test items (the same draw for both sides: that is the pairing) and,
within each side, its seeds (two strategies' seed 0 share nothing, so seeds are not paired). The
interval so covers both what another test set and what other seeds would have given; a t-interval
over 3 seed means covers only the second, and with 3 seeds barely that. Records without per-item
correctness (written before it was recorded) fall back to Welch's interval over seed accuracies.

Tiers: within one task and data budget, tier 1 is the best row and every row whose difference from it
is not significant at 5% (two-sided); tier 2 the same over the rows left, and so on. No correction
for the number of comparisons is made: a tie means "not shown to differ", never "the same".
"""

from __future__ import annotations

import base64
import functools
import math
import statistics
from dataclasses import dataclass

import numpy as np

RESAMPLES = 10_000
LEVEL = 0.95


def correctness_code(predictions: np.ndarray, references: np.ndarray) -> str:
    """Which test items a run got right, as base64 of a bit per item (in the split's order): what a
    paired test of two runs on the same items needs, in 1/8 byte per item."""
    bits = np.packbits((np.asarray(predictions) == np.asarray(references)).astype(np.uint8))
    return base64.b64encode(bits.tobytes()).decode("ascii")


def correctness_of(code: str, n: int) -> np.ndarray:
    """The per-item correctness ``correctness_code`` wrote (bool [n])."""
    bits = np.frombuffer(base64.b64decode(code), dtype=np.uint8)
    return np.unpackbits(bits)[:n].astype(bool)


@dataclass(frozen=True)
class Difference:
    """mean(a) - mean(b) in accuracy points, its 95% interval, a two-sided p-value, and the test."""

    pts: float
    ci_pts: tuple[float, float] | None
    p_value: float | None
    test: str  # "paired bootstrap" | "welch" | "none"


def correctness_matrix(runs: list[dict]) -> np.ndarray | None:
    """[seeds, items] of 0/1 from the runs' ``test_correct``; None if any run lacks it or the runs
    were tested on different numbers of items."""
    runs = sorted(runs, key=lambda r: (r["seed"], r.get("run_id", "")))  # not the files' order: same draws
    sizes = {r.get("test_examples") for r in runs}
    if len(sizes) != 1 or any(not r.get("test_correct") for r in runs):
        return None
    n = sizes.pop()
    return np.stack([correctness_of(r["test_correct"], n) for r in runs]).astype(np.float64)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> Difference:
    """The two-level paired bootstrap of mean(a) - mean(b) for correctness matrices [seeds, items].

    Resampling items only sees each item's pattern (its 0/1 across every seed of both sides), and
    with a few seeds there are at most 2**seeds distinct patterns: drawing n items uniformly is
    drawing n patterns with their frequencies, so the item counts are one multinomial over the
    patterns, not over the n items. Same distribution, but a 10,000-item test set costs what a
    64-item one does (the index recomputes hundreds of these)."""
    rng = np.random.default_rng(seed)
    n = a.shape[1]
    patterns, freq = np.unique(np.concatenate([a, b]).T, axis=0, return_counts=True)  # [k, seeds]
    pa, pb = patterns[:, : len(a)], patterns[:, len(a) :]
    counts = rng.multinomial(n, freq / n, size=resamples)  # [r, k]: how often each pattern is drawn
    seeds_a = rng.multinomial(len(a), np.full(len(a), 1 / len(a)), size=resamples) / len(a)
    seeds_b = rng.multinomial(len(b), np.full(len(b), 1 / len(b)), size=resamples) / len(b)
    hits_a, hits_b = counts @ pa, counts @ pb  # [r, seeds]: each seed's correct items in the draw
    d = ((seeds_a * hits_a).sum(1) - (seeds_b * hits_b).sum(1)) / n
    lo, hi = np.quantile(d, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    p = min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean()))
    observed = a.mean() - b.mean()
    return Difference(100 * observed, (100 * lo, 100 * hi), float(p), "paired bootstrap")


def _welch_t(a: list[float], b: list[float]) -> tuple[float, float, float] | None:
    """Welch's (difference, standard error, degrees of freedom); None with fewer than 2 values per
    side, or when neither side varies (a zero-width interval from two identical seeds would claim
    certainty that two seeds cannot give)."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return None
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return statistics.fmean(a) - statistics.fmean(b), se, df


def _t_interval(diff: float, se: float, df: float, level: float) -> tuple[float, float]:
    from scipy.stats import t  # lazy: scipy is slow to import and only needed here

    half = t.ppf(0.5 + level / 2, df) * se
    return diff - half, diff + half


def welch_interval(a: list[float], b: list[float], level: float = LEVEL) -> tuple[float, float] | None:
    """Confidence interval of mean(a) - mean(b) (Welch's t); None where ``_welch_t`` is."""
    t_stat = _welch_t(a, b)
    return None if t_stat is None else _t_interval(*t_stat, level)


def welch(a: list[float], b: list[float]) -> Difference:
    """Welch's t over seed accuracies: its interval and two-sided p-value where there is one. The
    p-value comes from the interval's t statistic (scipy's ttest_ind computes it again and warns
    about precision when a side's seeds agree to the last digit)."""
    pts = 100 * (statistics.fmean(a) - statistics.fmean(b))
    t_stat = _welch_t(a, b)
    if t_stat is None:
        return Difference(pts, None, None, "none")
    from scipy.stats import t

    diff, se, df = t_stat
    lo, hi = _t_interval(diff, se, df, LEVEL)
    return Difference(pts, (100 * lo, 100 * hi), float(2 * t.sf(abs(diff) / se, df)), "welch")


def difference(runs_a: list[dict], runs_b: list[dict]) -> Difference:
    """Row a against row b: paired where both carry per-item correctness on the same items."""
    return _difference(_key(runs_a), _key(runs_b))


def _key(runs: list[dict]) -> tuple:
    """What a comparison reads from each run, hashable: the index and a set's tables compare the
    same rows several times, and the bootstrap is seeded, so one answer per pair is enough."""
    return tuple(
        (r["seed"], r.get("run_id", ""), r.get("test_examples"), r.get("test_correct") or "", r["metrics"]["accuracy"])
        for r in runs
    )


@functools.lru_cache(maxsize=4096)
def _difference(key_a: tuple, key_b: tuple) -> Difference:
    runs_a, runs_b = ([_as_run(k) for k in key] for key in (key_a, key_b))
    a, b = correctness_matrix(runs_a), correctness_matrix(runs_b)
    if a is not None and b is not None and a.shape[1] == b.shape[1]:
        return paired_bootstrap(a, b)
    return welch([r["metrics"]["accuracy"] for r in runs_a], [r["metrics"]["accuracy"] for r in runs_b])


def _as_run(key: tuple) -> dict:
    seed, run_id, examples, correct, accuracy = key
    return {
        "seed": seed,
        "run_id": run_id,
        "test_examples": examples,
        "test_correct": correct,
        "metrics": {"accuracy": accuracy},
    }


def tiers(means: list[float], runs: list[list[dict]], alpha: float = 1 - LEVEL) -> list[int]:
    """Each row's tier (1 = best) among rows of one comparison: ``means`` their accuracies, ``runs``
    their records. A row without an interval against the tier's best (one seed, no per-item data)
    stays in that tier: it was not shown to be worse."""
    tier_of = [0] * len(means)
    left = sorted(range(len(means)), key=lambda i: -means[i])
    tier = 1
    while left:
        best, rest = left[0], left[1:]
        tier_of[best] = tier
        worse = []
        for i in rest:
            p = difference(runs[best], runs[i]).p_value
            if p is not None and p < alpha:
                worse.append(i)
            else:
                tier_of[i] = tier
        left, tier = worse, tier + 1
    return tier_of
