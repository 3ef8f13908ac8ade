"""Rows of results: one per task x adapter x strategy x data budget over seeds (the latest record of
each seed), with the gain over the from-scratch baselines of the same task and budget. A baseline
is any row that did not start from pretrained weights (``pretrained`` is False): the one predicate
the tables, the report and the summary use."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from transferbench.benchmarks.results.schema import FINISHED, is_number
from transferbench.benchmarks.results.significance import Difference, difference, tiers


def latest_per_seed(records: list[dict]) -> list[dict]:
    """One record per task x adapter x strategy x data budget x seed: a rerun of the same seed
    (e.g. after a code change altered the run identity) supersedes the earlier one, so a seed is
    never counted twice in a mean."""
    latest: dict[tuple, dict] = {}
    for r in records:
        key = (
            r["task"],
            r["adapter"],
            row_strategy(r),
            r["train_examples"],
            protocol_of(r),
            r["seed"],
            r.get("config", {}).get("test_fold"),
        )
        if key not in latest or r["finished_at"] >= latest[key]["finished_at"]:
            latest[key] = r
    return list(latest.values())


def protocol_of(record: dict) -> str | None:
    """The named data protocol a run used (``--train-examples vtab-1k``), or None."""
    return (record.get("config") or {}).get("data_protocol")


# run-identity keys that size a run's inputs, and how a table shows them
INPUT_SIZES = (("image_size", "{} px"), ("max_length", "{} tokens"), ("duration_s", "{:g} s clips"))


def input_size(record: dict) -> str:
    """The run's input size as the budget columns show it (image side, token length, clip length):
    from the run identity, else the model's native preprocessing (records before it was recorded)."""
    for source in (record.get("config") or {}, record.get("preprocessing") or {}):
        for key, shown in (*INPUT_SIZES, ("input_size", "{} px")):
            if source.get(key) is not None:
                return shown.format(source[key])
    return "—"


def epochs_run(record: dict) -> int:
    """Epochs the run trained: ``--epochs``, or more where ``--min-steps`` added some."""
    return (record.get("details") or {}).get("epochs_run") or record["epochs"]


def mean_of_present(values: Iterable[Any]) -> float | None:
    """Mean of the values that were measured: None and NaN are missing, never counted as 0."""
    present = [v for v in values if is_number(v) and math.isfinite(v)]
    return statistics.fmean(present) if present else None


def budget_multiple(record: dict) -> float:
    """K of ``--scratch-budget Kx`` (1: the comparison's own budget)."""
    return float((record.get("run_spec") or {}).get("budget_multiple", 1))


def row_strategy(record: dict) -> str:
    """The strategy a row shows: its name, with the budget multiple where it trained K times over,
    or the compute it was matched to (``scratch =lora flops``)."""
    k, matched = budget_multiple(record), (record.get("run_spec") or {}).get("matched_to")
    if matched:
        return f"{record['strategy']} ={matched}"
    return record["strategy"] if k == 1 else f"{record['strategy']} {k:g}x"


def base_strategy(row: str) -> str:
    """The strategy a row label of ``row_strategy`` trains (``scratch 4x`` -> ``scratch``): what a
    suite file lists, which names no budget multiple or compute match (strategy names have no space)."""
    return row.split(" ", 1)[0]


def sweep_of(runs: list[dict]) -> dict[str, Any]:
    """What tuning a row's runs had: a validation sweep's size, axes and cost (``sweep`` in the
    records), or a probe's C search (its sweep, inside its fit and its train_s)."""
    sweeps = [r["sweep"] for r in runs if isinstance(r.get("sweep"), dict)]
    if sweeps:
        where = "first seed" if sweeps[0]["seeds"] == "first" else "each seed"
        edge = sorted({name for s in sweeps for name in _at_edge(s)})
        return {
            "sweep_size": sweeps[0]["size"],
            "sweep_axes": f"{', '.join(sweeps[0]['grid'])}, on the {where}"
            + (f"; best {', '.join(edge)} at the grid's edge" if edge else ""),
            "sweep_train_s": mean_of_present(s.get("train_s") for s in sweeps),
            "sweep_flops": mean_of_present(s.get("train_flops") for s in sweeps),
        }
    searched = [len((r.get("details") or {}).get("probe_val_accuracy_by_C") or {}) for r in runs]
    if any(searched):
        return {"sweep_size": max(searched), "sweep_axes": "C, in the fit", "sweep_train_s": None, "sweep_flops": None}
    return {"sweep_size": None, "sweep_axes": None, "sweep_train_s": None, "sweep_flops": None}


def _training_rate(record: dict) -> float | None:
    """Training samples/s; none for a probe whose features came from the feature cache (records
    written before the runner stopped reporting one carry a rate of reading the cache)."""
    if ((record.get("details") or {}).get("feature_cache") or {}).get("train") == "hit":
        return None
    return record["throughput"].get("train_samples_per_s")


def _at_edge(sweep: dict[str, Any]) -> list[str]:
    """The numeric options whose winning value is the lowest or highest the sweep tried: a best value
    on the grid's edge says the optimum may lie past it (the table says so)."""
    winner = sweep.get("winner") or {}
    return [
        name
        for name, tried in sweep["grid"].items()
        if len(tried) > 1 and all(is_number(v) for v in tried) and winner.get(name) in (min(tried), max(tried))
    ]


def _row(key: tuple, runs: list[dict]) -> dict[str, Any]:
    domain, task, adapter, strategy, n_train, protocol = key
    acc = [r["metrics"]["accuracy"] for r in runs]
    pipeline = [(r.get("details") or {}).get("pipeline_efficiency", {}).get("ratio") for r in runs]
    return {
        "domain": domain,
        "task": task,
        "adapter": adapter,
        "strategy": strategy,
        "train_examples": n_train,
        "data_protocol": protocol,
        # the budget every row shows: what a comparison holds fixed
        "epochs": sorted({epochs_run(r) for r in runs}),
        "steps": sorted({r["steps"] for r in runs if is_number(r.get("steps"))}),
        "input_size": input_size(runs[0]),
        # fitted in one pass (probe, classical model): epochs and steps do not apply
        "closed_form": all(str(r["throughput"].get("excluded", "")).startswith("closed-form") for r in runs),
        "pretrained": runs[0]["pretrained"],
        "n_seeds": len(runs),
        "accuracies": acc,
        "accuracy_mean": statistics.fmean(acc),
        "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
        "macro_f1_mean": statistics.fmean(r["metrics"]["macro_f1"] for r in runs),
        # calibration and cost where the records measured them (older records did not: None)
        "ece_mean": mean_of_present(r["metrics"].get("ece") for r in runs),
        "nll_mean": mean_of_present(r["metrics"].get("nll") for r in runs),
        "train_flops_mean": mean_of_present(r.get("train_flops") for r in runs),
        "tier": None,
        "budget_multiple": budget_multiple(runs[0]),
        "matched_to": (runs[0].get("run_spec") or {}).get("matched_to"),
        **sweep_of(runs),
        "near_chance_runs": sum(r["status"] == "near-chance" for r in runs),
        "train_s_mean": statistics.fmean(r["time"]["train_s"] for r in runs),
        "train_samples_per_s": mean_of_present(_training_rate(r) for r in runs),
        "pipeline_efficiency": mean_of_present(pipeline),
        # a mean over the seeds that reached the target: the count says how many did
        "time_to_target_s": mean_of_present(r["time"].get("time_to_target_s") for r in runs),
        "target_reached_runs": sum(is_number(r["time"].get("time_to_target_s")) for r in runs),
        "target_accuracy": runs[0]["time"].get("target_accuracy"),
        "trainable_params": runs[0]["params"]["trainable"],
        "total_params": runs[0]["params"]["total"],
        "val_curves": [r["val_accuracy_per_epoch"] for r in runs],
        "chance": max((r["metrics"].get("majority_class_accuracy") or 0) for r in runs),
    }


def _counted_groups(records: list[dict]) -> dict[tuple, list[dict]]:
    """The records the rows count (the latest of each seed, finished runs only), by row key."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in latest_per_seed(records):
        if r["status"] in FINISHED:
            key = (r["domain"], r["task"], r["adapter"], row_strategy(r), r["train_examples"], protocol_of(r))
            groups[key].append(r)
    return groups


def runs_by_row(rows: list[dict], records: list[dict]) -> list[list[dict]]:
    """The records each row of ``aggregate(records)`` was computed from, by seed: what a row's
    provenance (the HTML report, the hub export's cards) and its validation curves show."""
    groups = _counted_groups(records)
    keys = (
        tuple(row[k] for k in ("domain", "task", "adapter", "strategy", "train_examples", "data_protocol"))
        for row in rows
    )
    return [sorted(groups.get(key, []), key=lambda r: r["seed"]) for key in keys]


def aggregate(records: list[dict]) -> list[dict[str, Any]]:
    """One row per task x adapter x strategy x train_examples over seeds (the latest record of each
    seed; failed runs are left out), with the gain over the scratch row of the same task, adapter
    and data budget and over the best scratch row (``results.significance``: a paired bootstrap over
    test items and seeds, Welch across seeds for records without per-item correctness), and each
    row's tier among the rows of its task and budget."""
    groups = sorted(_counted_groups(records).items(), key=lambda kv: (*kv[0][:5], kv[0][5] or ""))
    rows = [_row(key, runs) for key, runs in groups]
    runs_of = {id(row): runs for row, (_, runs) in zip(rows, groups, strict=True)}
    for same in _comparisons(rows):
        scratch = [b for b in same if not b["pretrained"]]  # the baselines: every row not from pretrained weights
        best = max(scratch, key=lambda b: b["accuracy_mean"], default=None)
        for row in same:  # its own baseline: the same architecture from scratch at the same budget
            own = next((b for b in scratch if b["adapter"] == row["adapter"] and _own_budget(b)), None)
            _set_gain(row, own, "gain", runs_of)
            _set_gain(row, best, "gain_best", runs_of)
            row["best_scratch"] = None if best is None else _baseline_name(best)
        ranked = tiers([r["accuracy_mean"] for r in same], [runs_of[id(r)] for r in same])
        for row, tier in zip(same, ranked, strict=True):
            row["tier"] = tier if len(same) > 1 else None
    return rows


def _own_budget(row: dict) -> bool:
    """A from-scratch row at the comparison's own budget (not K times it, nor matched to another's)."""
    return row["budget_multiple"] == 1 and row["matched_to"] is None


def _baseline_name(row: dict) -> str:
    """How "gain vs best scratch" names its baseline: the adapter, and its budget where it is not the
    comparison's own (``minilm-l6 scratch 4x``)."""
    plain = _own_budget(row) and row["strategy"] == "scratch"
    return row["adapter"] if plain else f"{row['adapter']} {row['strategy']}"


def _comparisons(rows: list[dict]) -> list[list[dict]]:
    """The rows compared with each other: one task, data budget and protocol."""
    by: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        by[(row["task"], row["train_examples"], row["data_protocol"] or "")].append(row)
    return list(by.values())


def _set_gain(row: dict, base: dict | None, name: str, runs_of: dict[int, list[dict]]) -> None:
    """``row[name + "_pts"]``: accuracy over ``base`` in points, its 95% interval in
    ``row[name + "_ci_pts"]`` and the test that gave it in ``row[name + "_test"]`` (None without a
    base, for the base itself, or where no interval can be had: one seed and no per-item data)."""
    row[f"{name}_pts"] = row[f"{name}_ci_pts"] = row[f"{name}_test"] = None
    if base is None or base is row:
        return
    diff: Difference = difference(runs_of[id(row)], runs_of[id(base)])
    row[f"{name}_pts"] = 100 * (row["accuracy_mean"] - base["accuracy_mean"])
    row[f"{name}_ci_pts"] = diff.ci_pts
    row[f"{name}_test"] = None if diff.ci_pts is None else diff.test


def failed_runs(records: list[dict]) -> list[dict]:
    """The latest record of each cell and seed whose status is not one of FINISHED."""
    return [r for r in latest_per_seed(records) if r["status"] not in FINISHED]
