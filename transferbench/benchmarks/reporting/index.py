"""results/README.md, the index of published result sets: one entry per set, the cross-task table
of them all (``summary``), and what the registered adapters could add with network."""

from __future__ import annotations

from pathlib import Path

from transferbench.adapters import ADAPTERS
from transferbench.benchmarks.reporting.report import load_results
from transferbench.benchmarks.reporting.summary import cross_task, summary_csv, summary_markdown
from transferbench.benchmarks.results import results_files, write_atomic
from transferbench.tasks import DOMAINS


def not_run_here(records: list[dict]) -> list[str]:
    """Commands for every adapter whose pretrained weights need the network (no offline copy ships)
    and of which ``records`` hold no run."""
    commands = []
    ran = {r["adapter"] for r in records}
    for name in ADAPTERS.names():
        spec = ADAPTERS.get(name)
        if name in ran:
            continue
        task = DOMAINS.get(spec.domain).reference_task if spec.domain in DOMAINS else None
        hub_only = not spec.offline_pretrained and not spec.classical and not spec.pretrained_source.startswith("none")
        if hub_only and task:
            commands.append(f"transferbench run --task {task} --adapter {name} --seeds 0,1,2")
    return commands


def _headlines(root: Path) -> list[str]:
    """Each versioned benchmark's headline table first (the sets' ``headline.md``, title linked)."""
    lines = []
    for path in sorted(root.glob("*/headline.md")):
        title, *body = path.read_text().splitlines()
        lines += [f"## [{title.removeprefix('# ')}]({path.parent.name}/headline.md)", *body, ""]
    return lines + (["## Result sets", ""] if lines else [])


def write_index(results_dir: str | Path) -> Path:
    """results/README.md: one entry per published result set (a folder with a results.jsonl), and the
    cross-task table of them all, also written as results/summary.csv."""
    root = Path(results_dir)
    lines = [
        "# Published results",
        "",
        "Each folder holds one result set: `results.jsonl` (one record per run, with config, versions, git "
        "commit and hardware) and its tables. Regenerate this index with `tox -e report`. Accuracies compare "
        "across machines; seconds and samples/s only within one set (same machine, same load)"
        + (": see [NOTES.md](NOTES.md) for how these were measured." if (root / "NOTES.md").exists() else "."),
        "",
        *_headlines(root),
        "| result set | runs | tasks | adapters | strategies | device | git commit | finished |",
        "|---|---:|---|---|---|---|---|---|",
    ]
    published: list[dict] = []
    for path in sorted(folder for folder in root.iterdir() if folder.is_dir() and results_files(folder)):
        records, _ = load_results([path], skip_invalid=True)
        if not records:
            continue
        published += records

        tasks, adapters, strategies = (
            ", ".join(sorted({str(r[k]) for r in records})) for k in ("task", "adapter", "strategy")
        )

        devices = ", ".join(sorted({r["hardware"].get("gpu") or r["hardware"].get("cpu", "?") for r in records}))
        commits = ", ".join(sorted({r["git_commit"][:12] for r in records}))
        lines.append(
            f"| [{path.name}]({path.name}/) | {len(records)} | {tasks} | "
            f"{adapters} | {strategies} | {devices} | {commits} | "
            f"{max(r['finished_at'] for r in records)[:10]} |"
        )
    for path in sorted(root.glob("*/*.md")):
        if path.parent.name == "throughput" or path.name == "report.md":
            lines.append(f"\n- [{path.parent.name}/{path.name}]({path.parent.name}/{path.name})")
    columns, summary = cross_task(published)
    lines += ["", *summary_markdown(columns, summary)]
    write_atomic(root / "summary.csv", summary_csv(columns, summary))
    missing = not_run_here(published)
    if missing:
        lines += [
            "## Not run here",
            "",
            "Registered adapters whose pretrained weights need a download (the hub, torchvision) and that no "
            "set above holds; on a machine with network:",
            "",
            *(f"- `{command}`" for command in missing),
        ]
    index = root / "README.md"
    write_atomic(index, "\n".join(lines) + "\n")
    return index
