"""``transferbench report``: one result set's report.md (the tables of ``results.markdown`` plus a
cross-domain summary), report.csv and plots (``plots``).

Reading is ``results.read_results``: a torn line (not complete JSON) is always skipped with a
warning; a line that is not a transferbench record (docs/results-schema.md) is an error naming the
file and line, unless ``--skip-invalid`` (then it is skipped and counted in report.md).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from transferbench.benchmarks.reporting.benchmark import write_headline
from transferbench.benchmarks.reporting.plots import plot
from transferbench.benchmarks.results import (
    aggregate,
    document,
    prepare_out_dir,
    read_results,
    results_files,
    validate_record,
    write_atomic,
)
from transferbench.errors import UserError


def load_results(paths: list[str | Path], *, skip_invalid: bool = False) -> tuple[list[dict], list[str]]:
    """Run records from results files or folders (a folder's results.jsonl and ``--shard`` files are
    one set: ``results_files``); returns (records, skipped lines as ``file:line: why``). Torn lines
    are skipped with a warning; a line that is not a transferbench record is a UserError naming
    file:line, or (``skip_invalid``) skipped and counted."""
    records: list[dict] = []
    skipped: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_dir() and not results_files(path):
            raise UserError(
                f"report: {path} holds no results.jsonl (nor results.shard-I-of-N.jsonl files from --shard)"
            )
        if not path.exists():
            raise UserError(f"report: {path} not found (expected a results.jsonl or a directory holding one)")
        loaded = read_results(
            path, strict=not skip_invalid, validate=validate_record, hint="use --skip-invalid to report the rest"
        )
        records += loaded.records
        skipped += loaded.skipped
    return records, skipped


def cross_domain_section(rows: list[dict]) -> list[str]:
    """Best pretrained row against the best scratch row of each domain."""
    out = [
        "## Cross-domain summary",
        "",
        "Best transfer (pretrained) row against the best scratch row of each domain, with the training time each took.",
        "",
        "| domain | best transfer | accuracy | train s | best scratch | accuracy | train s |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for domain in sorted({r["domain"] for r in rows}):
        cells = []
        for pretrained in (True, False):
            candidates = [r for r in rows if r["domain"] == domain and r["pretrained"] == pretrained]
            best = max(candidates, key=lambda r: r["accuracy_mean"]) if candidates else None
            cells += (
                ["—"] * 3
                if best is None
                else [
                    f"{best['task']}/{best['adapter']}/{best['strategy']}",
                    f"{best['accuracy_mean']:.3f}",
                    f"{best['train_s_mean']:.0f}",
                ]
            )
        out.append(f"| {domain} | " + " | ".join(cells) + " |")
    return [*out, ""]


def markdown(rows: list[dict], records: list[dict], skipped: list[str]) -> str:
    """report.md: the same document as results.md (results.py ``document``) plus the cross-domain summary."""
    return document("transferbench report", rows, records, skipped, extra=cross_domain_section(rows))


CSV_FIELDS = (
    "domain",
    "task",
    "adapter",
    "strategy",
    "train_examples",
    "data_protocol",
    "epochs",
    "steps",
    "input_size",
    "n_seeds",
    "accuracy_mean",
    "accuracy_std",
    "macro_f1_mean",
    "gain_pts",
    "gain_ci_low_pts",
    "gain_ci_high_pts",
    "gain_test",
    "tier",
    "gain_best_pts",
    "gain_best_ci_low_pts",
    "gain_best_ci_high_pts",
    "best_scratch",
    "near_chance_runs",
    "train_s_mean",
    "train_flops_mean",
    "sweep_size",
    "sweep_axes",
    "sweep_train_s",
    "sweep_flops",
    "budget_multiple",
    "ece_mean",
    "nll_mean",
    "train_samples_per_s",
    "pipeline_efficiency",
    "time_to_target_s",
    "target_reached_runs",
    "trainable_params",
    "total_params",
    "trainable_share",
)


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        ci, best = r["gain_ci_pts"] or (None, None), r["gain_best_ci_pts"] or (None, None)
        share = r["trainable_params"] / r["total_params"] if r["total_params"] else None
        budget = {k: ";".join(map(str, r[k])) for k in ("epochs", "steps")} if not r["closed_form"] else {}
        writer.writerow(
            {
                **r,
                "epochs": budget.get("epochs", ""),
                "steps": budget.get("steps", "closed-form"),
                "gain_ci_low_pts": ci[0],
                "gain_ci_high_pts": ci[1],
                "gain_best_ci_low_pts": best[0],
                "gain_best_ci_high_pts": best[1],
                "trainable_share": share,
            }
        )
    return buffer.getvalue()


def report(paths: list[str | Path], out: str | Path, *, skip_invalid: bool = False, plots: bool = True) -> dict:
    """report.md, report.csv and (``plots``) PNGs in ``out`` from the records of ``paths``."""
    records, skipped = load_results(paths, skip_invalid=skip_invalid)
    if not records:
        raise UserError(f"report: no valid records in {', '.join(map(str, paths))}")
    out = prepare_out_dir(out)
    rows = aggregate(records)
    write_atomic(out / "report.md", markdown(rows, records, skipped))
    write_atomic(out / "report.csv", to_csv(rows))
    images = plot(rows, out) if plots and rows else []
    headline = write_headline(records, out, plots=plots)  # a versioned benchmark's set: its headline too
    return {
        "rows": rows,
        "records": len(records),
        "skipped": skipped,
        "files": [out / "report.md", out / "report.csv", *images, *headline],
    }
