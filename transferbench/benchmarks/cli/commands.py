"""``transferbench list``, ``report``, ``export``, ``bench`` and ``validate``. Listings show each entry's
declared options with their values, from the same declarations that make the flags."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from transferbench.adapters import ADAPTERS
from transferbench.adapters.families import family_of
from transferbench.benchmarks.cli.parser import LISTABLE
from transferbench.benchmarks.execution.throughput import BenchConfig, bench, compare_bare, compare_merged
from transferbench.benchmarks.plan.catalog import catalog
from transferbench.benchmarks.plan.suites import SUITES
from transferbench.benchmarks.reporting import (
    RECORDS_FILE,
    export_results,
    published_sets,
    push_to_hub,
    report,
    require_plotly,
    write_html_index,
    write_html_report,
    write_index,
)
from transferbench.benchmarks.results import append_record, prepare_out_dir, provenance
from transferbench.benchmarks.strategies import KIND_RECIPES, STRATEGIES
from transferbench.errors import UserError
from transferbench.options import shown
from transferbench.registry import Registry, suggest
from transferbench.tasks import DOMAINS, TASKS


def cmd_report(args: argparse.Namespace) -> None:
    if args.html:
        require_plotly()  # one line before anything is written, not after the Markdown
    if args.sets and not args.index:
        raise UserError("--sets needs --index RESULTS_DIR: it rewrites the report of every set the index lists")
    if args.index:
        for folder in published_sets(Path(args.index)) if args.sets else []:
            _report_one(args, [str(folder)], folder)
        print(f"wrote {write_index(args.index)}")
        if args.html:
            print(f"wrote {write_html_index(args.index)}")
        if not args.paths:
            return
    if not args.paths:
        raise UserError("report needs at least one results.jsonl (or directory), or --index RESULTS_DIR")
    first = Path(args.paths[0])
    _report_one(args, args.paths, args.out or (first if first.is_dir() else first.parent))


def _report_one(args: argparse.Namespace, paths: list[str], out: str | Path) -> None:
    """One set's report (Markdown, CSV, plots, and with --html its page) from ``paths`` into ``out``."""
    summary = report(paths, out, skip_invalid=args.skip_invalid, plots=not args.no_plots)
    print(f"{summary['records']} records -> " + ", ".join(str(f) for f in summary["files"]))
    if summary["skipped"]:
        print(f"skipped {len(summary['skipped'])} lines: " + "; ".join(summary["skipped"][:5]))
    if args.html:
        print(f"wrote {write_html_report(paths, out, skip_invalid=args.skip_invalid)}")


def cmd_export(args: argparse.Namespace) -> None:
    written = export_results(
        args.paths, args.out, repo_id=args.push, license=args.license, skip_invalid=args.skip_invalid
    )
    models = sum(1 for p in written if p.name == "README.md" and p.parent.parent.name == "models")
    leaderboard = sum(1 for p in written if p.parent.name == ".eval_results")
    print(
        f"wrote {args.out}: {RECORDS_FILE}, README.md (dataset card), {models} model cards, {leaderboard} .eval_results"
    )
    if not leaderboard:
        print(
            "no .eval_results files: no record read a hub dataset at a known commit (local copies cannot be named so)"
        )
    if args.push:
        print(f"pushed: {push_to_hub(args.out, args.push)}")


def _bench_lines(cfg: BenchConfig, record: dict[str, Any], kind: str) -> list[str]:
    where = record["hardware"].get("gpu") or record["hardware"]["cpu"]
    setup = f"batch {cfg.batch_size}, {record['setup']['input']}, amp {record['setup']['amp']} on {where}"
    if kind == "bare":
        return [
            f"{record['adapter']} train step, {setup}:",
            f"  transferbench {record['ours']['samples_per_s']:.1f} samples/s, "
            f"bare loop {record['bare']['samples_per_s']:.1f} samples/s, ratio {record['ratio']:.3f}",
        ]
    if kind == "merged":
        return [
            f"{record['adapter']} inference with LoRA on {record['wrapped_modules']} layers, {setup}:",
            f"  merged {record['merged']['samples_per_s']:.1f} samples/s, unmerged "
            f"{record['unmerged']['samples_per_s']:.1f} samples/s, ratio {record['ratio']:.3f}",
        ]
    lines = ["| adapter | mode | batch | input | amp | samples/s | step ms (median, p10-p90) | peak GiB |"]
    lines.append("|---|---|---:|---|---|---:|---|---:|")
    for mode, r in record["results"].items():
        peak = "—" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.2f}"
        lines.append(
            f"| {record['adapter']} | {mode} | {r['batch_size']} | {record['setup']['input']} "
            f"| {record['setup']['amp']} | {r['samples_per_s']:.1f} | {r['step_ms_median']:.1f} "
            f"({r['step_ms_p10']:.1f}-{r['step_ms_p90']:.1f}) | {peak} |"
        )
        if r["oom_halvings"]:
            lines.append(f"  note: out of memory at batch {cfg.batch_size}; halved {r['oom_halvings']}x")
    return lines


def cmd_bench(args: argparse.Namespace) -> None:
    provenance.git_commit()  # read at start, as `run` does
    cfg = BenchConfig(**{f.name: getattr(args, f.name) for f in fields(BenchConfig) if hasattr(args, f.name)})
    out = prepare_out_dir(args.out) if args.out else None
    kind = "bare" if args.compare_bare else "merged" if args.merged else "steps"
    record = {"bare": compare_bare, "merged": compare_merged, "steps": bench}[kind](cfg)
    print("\n".join(_bench_lines(cfg, record, kind)))
    if out is not None:
        append_record(out / "bench.jsonl", record)
        print(f"-> {out / 'bench.jsonl'}")


def _describe_strategy(strategy: Any) -> str:
    values = ", ".join(f"{o.name}={shown(getattr(strategy, o.name))}" for o in strategy.options())
    kinds = KIND_RECIPES.get(strategy.name, {})
    recipes = "; ".join(
        f"{kind}: " + (", ".join(f"{k}={v:g}" for k, v in r.items()) or "as is") for kind, r in kinds.items()
    )
    return f"{strategy.description}\n      applies to: {strategy.scope()}\n      options: {values}" + (
        f"\n      recipes by family kind: {recipes}" if recipes else ""
    )


def _describe_adapter(spec: Any) -> str:
    family = family_of(spec)
    text = f"[{spec.domain}] {spec.description}; pretrained: {spec.pretrained_source}"
    text += f"; family: {family}" if family else ""
    text += f"; recipes: {spec.recipe_kind}"
    if spec.options:
        text += "\n      options: " + ", ".join(o.name for o in spec.options)
    if spec.recipes:
        own = "; ".join(f"{s} " + ", ".join(f"{k}={v:g}" for k, v in r.items()) for s, r in spec.recipes.items())
        text += f"\n      its own tuning: {own}"
    return text


def _describe_domain(domain: Any) -> str:
    keys = ", ".join(f.name for f in fields(domain.task_keys)) or "none"
    options = ", ".join(o.name for o in (*domain.options, *domain.all_task_options)) or "none"
    return f"run options: {options}; task-file keys of its own: {keys}"


def _list_options() -> None:
    print("options:")
    for _, declared in sorted(catalog().items()):
        print(f"  {declared.option.flag}\n      {declared.option.describe()} [{declared.applies_to()}]")


def cmd_list(what: str) -> None:
    registries: dict[str, tuple[Registry, Any]] = {
        "tasks": (TASKS, lambda t: f"[{t.domain}] {t.description}"),
        "adapters": (ADAPTERS, _describe_adapter),
        "strategies": (STRATEGIES, _describe_strategy),
        "suites": (SUITES, lambda s: s.description),
        "domains": (DOMAINS, _describe_domain),
    }
    if what != "all" and what not in LISTABLE:
        hint = suggest(what, list(LISTABLE))
        raise UserError(
            f"cannot list {what!r}"
            + (f"; did you mean {hint[0]}?" if hint else "")
            + f" Expected one of: {', '.join(LISTABLE)}"
        )
    for kind in LISTABLE if what == "all" else (what,):
        if kind == "options":
            _list_options()
            continue
        registry, describe = registries[kind]
        print(f"{kind}:")
        for name in registry.names():
            aliases = registry.aliases_of(name)
            alias_text = f" (aliases: {', '.join(aliases)})" if aliases else ""
            print(f"  {name}{alias_text}\n      {describe(registry.get(name))}")
        for prefix, description in registry.families().items():
            print(f"  {prefix}:<name>\n      {description}")
