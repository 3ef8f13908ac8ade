"""Sweeps selected on validation: which points a sweep has, what each point's run is, and which
point wins.

A sweep is asked for as ``--sweep lr=1e-4,3e-4,1e-3`` (any declared option; several make a grid),
``sweep: {lr: [1e-4, 3e-4]}`` in a matrix file, or ``default``: the strategy's own sweep, declared
with it (``Strategy.default_sweep``: learning rates at 1/3, 1 and 3 times the recipe's for the
strategies that train by gradient). Every point is a plain run (its run id is the run's with those values) that
trains on train and validates, never testing; the winner is the point with the best validation
accuracy after its last epoch (ties: the earlier point of the grid), and only the winner is tested.
``sweep_seeds`` says on which seeds: ``first`` sweeps the first seed and runs the winner on every
seed (VTAB's protocol), ``all`` sweeps each seed for itself.

A grid whose lowest or highest value wins alone has not bracketed its optimum: the tuned row may be
tuned short, and which row that is decides who a comparison favours (in transferbench-1k version 1,
fine-tuning's and LoRA's best rate was the highest tried on most text tasks, the speaker encoder from
scratch its lowest). ``sweep_widen`` (default 2) therefore extends a one-option numeric grid past such
an edge, one value at a time, continuing the grid's own step (x3 for the default sweep), at most that
many values per side and never outside the option's declared range, as the probe's C search does.

A closed-form probe fits its head without a learning rate: its C search (``c_search``) is its sweep,
so ``default`` gives it none, and sweeping an option such a run does not read is skipped, said aloud.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from transferbench.benchmarks.plan.catalog import catalog
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.errors import UserError
from transferbench.registry import suggest

DEFAULT = "default"
# options a closed-form linear probe does not read (its head is fitted by logistic regression)
UNREAD_BY_PROBE = ("lr", "backbone_lr_scale", "weight_decay", "optimizer", "warmup_fraction", "grad_clip")


@dataclass(frozen=True)
class SweepRole:
    """What a run is to a sweep: one of its points (trains and validates; its last checkpoint is kept
    for the final), or the final run of its winner (``resume_from``: the point whose last checkpoint
    it continues from, on the seed that was swept; None: it trains afresh, on another seed)."""

    kind: str  # "point" | "final"
    name: str  # the sweep's name: its points' tracker group
    resume_from: str | None = None


@dataclass(frozen=True)
class Grid:
    """The sweep's axes, in the order given: option name -> the values tried."""

    axes: tuple[tuple[str, tuple[Any, ...]], ...]

    @property
    def size(self) -> int:
        return math.prod(len(values) for _, values in self.axes)

    def points(self) -> list[dict[str, Any]]:
        """Every combination, the first axis slowest (the order ties are broken in)."""
        names = [name for name, _ in self.axes]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(v for _, v in self.axes))]

    def to_dict(self) -> dict[str, list[Any]]:
        return {name: list(values) for name, values in self.axes}

    def extended(self, value: Any) -> Grid:
        """A one-axis grid with ``value`` tried after the others (earlier points keep their index)."""
        ((name, values),) = self.axes
        return Grid(((name, (*values, value)),))

    def added_to(self, base: Grid) -> dict[str, list[Any]]:
        """The values this one-axis grid tries that ``base`` does not (what widening added), by option."""
        ((name, values),) = self.axes
        return {name: [v for v in values if v not in base.axes[0][1]]}


def past_edge(grid: Grid, points: list[dict[str, Any]], base: Grid, limit: int) -> Any | None:
    """The next value to try when the sweep's lone winner is its lowest or highest value: one grid step
    past it (the ratio of the two outermost values on that side, so x3 for the default sweep), while
    fewer than ``limit`` values were added on that side and the option's declaration allows it; None
    otherwise (a tie with an inner value, several axes, values that are not positive numbers)."""
    if len(grid.axes) != 1 or limit < 1:
        return None
    ((name, tried),) = grid.axes
    if len(tried) < 2 or not all(_positive_number(v) for v in tried):
        return None
    best = winner(points)
    if best is None:
        return None
    if [p["val_accuracy"] for p in _scored(points)].count(best["val_accuracy"]) > 1:
        return None  # the edge does not win alone
    ordered, value = sorted(tried), best["values"][name]
    asked, added = base.axes[0][1], grid.added_to(base)[name]
    if value == ordered[-1] and sum(v > max(asked) for v in added) < limit:
        step = ordered[-1] / ordered[-2]
    elif value == ordered[0] and sum(v < min(asked) for v in added) < limit:
        step = ordered[0] / ordered[1]
    else:
        return None
    nxt = round(value * step) if all(isinstance(v, int) for v in tried) else _nudge(value * step)
    declared = catalog()[name].option
    if nxt in tried or declared.problem(nxt) is not None:
        return None  # past the option's declared range: the edge stays (the report flags it)
    return declared.check(nxt)


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def parse_flag(texts: list[str]) -> str | dict[str, tuple[Any, ...]]:
    """``--sweep`` values: ``default``, or ``name=v1,v2`` (repeatable), each value checked by the
    option's declaration."""
    if [t.strip().lower() for t in texts] == [DEFAULT]:
        return DEFAULT
    axes: dict[str, tuple[Any, ...]] = {}
    for text in texts:
        name, sep, values = text.partition("=")
        if not sep or not values.strip():
            raise UserError(f"--sweep {text!r}: expected default or OPTION=V1,V2,... e.g. --sweep lr=1e-4,3e-4,1e-3")
        opt = _declared(name.strip().replace("-", "_"), "--sweep")
        axes[opt.name] = tuple(opt.from_text(v) for v in values.split(","))
    return checked(axes, "--sweep")


def checked(value: Any, where: str) -> str | dict[str, tuple[Any, ...]]:
    """A sweep as a matrix file or the command line gives it: ``default`` or option -> values."""
    if value == DEFAULT:
        return DEFAULT
    if not isinstance(value, Mapping) or not value:
        raise UserError(f"{where}: expected default or a mapping of option -> list of values, got {value!r}")
    out = {}
    for name, values in value.items():
        opt = _declared(str(name), where)
        if not isinstance(values, list | tuple) or not values:
            raise UserError(f"{where}: {name}: expected a list of values to try, got {values!r}")
        out[opt.name] = tuple(opt.check(v, f"{where}: {name}") for v in values)
        if len(set(map(repr, out[opt.name]))) != len(out[opt.name]):
            raise UserError(f"{where}: {name}: a value is repeated in {list(values)!r}")
    return out


def _declared(name: str, where: str) -> Any:
    known = catalog()
    unsweepable = ("seed", "sweep_seeds", "sweep_widen", "device", "data_dir", "log_to")
    if name not in known or name in unsweepable:
        hint = suggest(name, [k for k in known if k not in unsweepable])
        raise UserError(
            f"{where}: {name!r} is not a sweepable option" + (f"; did you mean {hint[0]!r}?" if hint else "")
        )
    return known[name].option


def grid_for(plan: Any) -> tuple[Grid | None, str | None]:
    """The plan's sweep as a grid (``default`` resolved against its strategy's recipe), and a note
    when a sweep was asked for but does not apply to this run (None, note)."""
    asked, strategy = plan.spec.sweep, plan.strategy
    probe = strategy.closed_form_head and plan.spec.head == "linear"
    if asked is None:
        return None, None
    if plan.adapter.classical:
        return None, f"{plan.label}: {plan.adapter.name} is fitted in closed form with its own search: no sweep"
    if asked == DEFAULT:
        around = strategy.default_sweep
        if not around or probe:
            return None, None
        axes = tuple((name, tuple(_nudge(getattr(strategy, name) * f) for f in fs)) for name, fs in around.items())
        return Grid(axes), None
    if probe and (unread := [n for n in asked if n in UNREAD_BY_PROBE]):
        why = f"{plan.label}: the probe's head is fitted in closed form (its C search is its sweep)"
        return None, f"{why}: {', '.join(unread)} is not read, no sweep"
    taken = {o.name for o in strategy.options()}
    kinds = catalog()
    skipped = [n for n in asked if kinds[n].kind == "strategy" and n not in taken]
    axes = tuple((n, tuple(v)) for n, v in asked.items() if n not in skipped)
    note = f"{plan.label}: strategy {strategy.name} has no {', '.join(skipped)}: not swept" if skipped else None
    return (Grid(axes) if axes else None), note


def _nudge(value: float) -> float:
    """A multiple of a recipe value, to 3 significant digits (1e-3/3 -> 0.000333, not 0.00033333...)."""
    return float(f"{value:.3g}")


def point_spec(spec: RunSpec, values: Mapping[str, Any]) -> RunSpec:
    """The run of one point: the spec with those values set where each option lives, no sweep."""
    kinds = catalog()
    run = {k: v for k, v in values.items() if kinds[k].kind == "run"}
    budget = {k: v for k, v in values.items() if kinds[k].kind == "budget"}
    options = {k: v for k, v in values.items() if kinds[k].kind not in ("run", "budget")}
    return dataclasses.replace(
        spec,
        **run,
        budget=dataclasses.replace(spec.budget, **budget) if budget else spec.budget,
        options={**spec.options, **options},
        sweep=None,
    )


def winner(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The point record with the best validation accuracy (ties: the earliest in the grid); None
    when no point finished (every one diverged, ran out of memory or failed)."""
    scored = _scored(points)
    if not scored:
        return None
    return max(scored, key=lambda p: (p["val_accuracy"], -p["index"]))


def _scored(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points that finished with a validation score (not diverged, out of memory or failed)."""
    return [p for p in points if p.get("status") == "ok" and p.get("val_accuracy") is not None]
