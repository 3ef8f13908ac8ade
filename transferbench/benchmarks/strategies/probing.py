"""Strategies that fit a linear probe: the probe itself, and LP-FT (a probe, then fine-tuning from it).

The probe's regularisation search (``c_search``) is an option of both: ``--c-search 1e-4,1e-3,1e-2``
gives its starting grid (the limits it may widen to stay), ``c_search: {grid: [...], limits: [...]}``
in a matrix file both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from transferbench.benchmarks.strategies.base import Strategy
from transferbench.benchmarks.training.budget import Budget
from transferbench.benchmarks.training.loop import FitRun, TrainOutcome
from transferbench.benchmarks.training.probe import PROBE_C_SEARCH, CSearch, fit_linear_probe
from transferbench.errors import UserError
from transferbench.options import option


def _grid(text: str) -> CSearch:
    try:
        grid = tuple(sorted(float(part) for part in text.split(",")))
    except ValueError:
        raise UserError(f"--c-search: expected C values like 0.001,0.01,0.1,1, got {text!r}") from None
    return CSearch(grid=grid, limits=PROBE_C_SEARCH.limits)


def _search_problem(search: CSearch) -> str | None:
    low, high = search.limits
    if not search.grid or any(not c > 0 for c in search.grid) or not 0 < low <= min(search.grid):
        return f"expected positive C values within the limits, got grid {search.grid} and limits {search.limits}"
    if max(search.grid) > high:
        return f"the grid {search.grid} reaches past the upper limit {high:g}"
    return None


C_SEARCH_HELP = "the probe's C grid (logistic regression), widened a decade at a time past a lone winning edge"


@dataclass(frozen=True)
class LinearProbe(Strategy):
    """A closed-form probe on cached frozen features; with an MLP head, the head is trained."""

    closed_form_head: ClassVar[bool] = True
    default_sweep: ClassVar[dict[str, tuple[float, ...]]] = {}  # its C search is its sweep
    c_search: CSearch = option(PROBE_C_SEARCH, C_SEARCH_HELP, parse=_grid, validator=_search_problem)

    def progress_steps(self, budget: Budget, num_examples: int, head: str) -> int:
        return len(self.c_search.grid) if head == "linear" else super().progress_steps(budget, num_examples, head)

    def fit(self, run: FitRun) -> TrainOutcome:
        if run.head != "linear":
            return super().fit(run)
        probe = fit_linear_probe(run, self.c_search)
        if run.target is not None and probe.val_accuracy[0] >= run.target:
            probe.time_to_target_s = probe.train_s  # a probe reaches its accuracy when the fit ends
        return probe


@dataclass(frozen=True)
class ProbeThenFinetune(Strategy):
    """LP-FT: fit a linear probe, then train everything from it; the probe's time counts as training."""

    head_init: ClassVar[str] = "probe"
    c_search: CSearch = option(PROBE_C_SEARCH, C_SEARCH_HELP, parse=_grid, validator=_search_problem)

    def check(self, adapter: Any, head: str) -> None:
        super().check(adapter, head)
        if head != "linear":
            raise UserError(f"strategy {self.name!r} fits a linear probe: it needs --head linear")

    def fit(self, run: FitRun) -> TrainOutcome:
        probe = fit_linear_probe(run, self.c_search)
        outcome = super().fit(run)
        outcome.train_s += probe.train_s
        outcome.train_flops = (outcome.train_flops or 0) + probe.train_flops
        if outcome.time_to_target_s is not None:
            outcome.time_to_target_s += probe.train_s
        outcome.extra.update(
            probe_C=probe.extra["probe_C"],
            probe_val_accuracy=probe.val_accuracy[0],
            feature_cache=probe.extra["feature_cache"],
        )
        return outcome
