"""Markdown: the one table of aggregated rows and the sections both results.md and report.md are
built from, and ``write_table``, which rewrites a folder's results.md from its records."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from transferbench.atomic import write_atomic
from transferbench.benchmarks.results.aggregate import aggregate, failed_runs
from transferbench.benchmarks.results.columns import columns_for, row_cells
from transferbench.benchmarks.results.store import TABLE_FILE, read_results


def table(rows: list[dict]) -> str:
    """THE Markdown table of aggregated rows (``aggregate``): results.md and report.md both use it,
    with the columns of ``columns.columns_for`` (a value that was not measured shows as —)."""
    columns = columns_for(rows)
    lines = [[c.header for c in columns], [c.align for c in columns]]
    lines += [row_cells(r, columns) for r in rows]
    return "".join("| " + " | ".join(cells) + " |\n" for cells in lines)


# a local path: absolute (POSIX, ~, Windows, UNC), ./ or ../ relative, or one word holding a separator
_LOCAL_PATH = re.compile(r"(/|~|\.\.?([/\\]|$)|[A-Za-z]:[/\\]|\\\\)|\S*[/\\]\S*$")


def public_source(record: dict) -> str:
    """``data_source`` as a published report shows it: a hub source (``hf://...``) or a built-in
    description as it is; a local folder by its name and the data's content fingerprint
    (``config.data_fingerprint``), never the path on the machine that ran it."""
    source = str(record.get("data_source") or "?")
    if "://" in source or not _LOCAL_PATH.match(source):
        return source
    name = re.split(r"[/\\]", source.rstrip("/\\"))[-1]
    shown = "a local folder" if name in ("", ".", "..", "~") else f"local folder {name!r}"
    fingerprint = (record.get("config") or {}).get("data_fingerprint")
    return shown + (f", data fingerprint {fingerprint}" if fingerprint else "")


GAIN_LEGEND = (
    "Gain intervals: a paired bootstrap over test items and seeds; marked (Welch): Welch's interval across "
    "seed accuracies, for records without per-item results. Tier 1: the best row and every row not shown "
    "to differ from it at 5%."
)


def task_sections(rows: list[dict], records: list[dict]) -> list[str]:
    """Per task: heading, test split and data sources, and ``table`` of its rows."""
    out = []
    for task in sorted({r["task"] for r in rows}):
        task_rows = [r for r in rows if r["task"] == task]
        task_records = [r for r in records if r["task"] == task]
        sources = "; ".join(sorted({public_source(r) for r in task_records}))
        out += [
            f"## {task} ({task_rows[0]['domain']})",
            "",
            f"Test split: {task_records[0].get('test_split', '?')} ({task_records[0]['test_examples']} examples); "
            f"data: {sources}.",
            "",
            table(task_rows),
            *([GAIN_LEGEND, ""] if any(r.get("gain_pts") is not None for r in task_rows) else []),
        ]
    return out


def failed_section(records: list[dict]) -> list[str]:
    failed = failed_runs(records)
    if not failed:
        return []
    return [
        "## Runs that did not finish",
        "",
        *(
            f"- {r['task']}/{r['adapter']}/{r['strategy']}/{r['train_examples']} examples/seed {r['seed']}: "
            f"**{r['status']}** {r.get('status_detail') or ''}".rstrip()
            for r in failed
        ),
        "",
    ]


def skipped_section(skipped: list[str]) -> list[str]:
    """Skipped lines, each named by folder/file:line (``Skipped.public``), never the full path."""
    if not skipped:
        return []
    return [f"## Skipped lines ({len(skipped)})", "", *(f"- {getattr(s, 'public', s)}" for s in skipped), ""]


def provenance_lines(records: list[dict[str, Any]]) -> str:
    """Where the numbers came from: versions, commits, devices, dates across the records."""
    if not records:
        return ""
    commits = sorted({r.get("git_commit", "unknown") for r in records})
    devices = sorted(
        {(r.get("hardware") or {}).get("gpu") or (r.get("hardware") or {}).get("cpu", "?") for r in records}
    )
    dates = sorted(r.get("finished_at", "") for r in records)
    version_sets = [json.loads(v) for v in sorted({json.dumps(r.get("versions"), sort_keys=True) for r in records})]
    return (
        f"- runs: {len(records)}; finished {dates[0]} … {dates[-1]}\n"
        f"- git commit: {', '.join(commits)}\n"
        f"- devices: {', '.join(map(str, devices))}\n"
        + "".join(f"- versions: {', '.join(f'{k} {v}' for k, v in sorted(vs.items()))}\n" for vs in version_sets)
        + "- every record in results.jsonl carries its full config and config_hash\n"
    )


def document(title: str, rows: list[dict], records: list[dict], skipped: list[str], extra: Iterable[str] = ()) -> str:
    """A results document: per-task tables, ``extra`` sections, failed runs, skipped lines, provenance."""
    out = [f"# {title}", ""]
    out += task_sections(rows, records) or ["No finished runs.", ""]
    out += [*extra, *failed_section(records), *skipped_section(skipped)]
    out += ["## Provenance", "", provenance_lines(records)]
    return "\n".join(out).rstrip("\n") + "\n"


def write_table(out_dir: str | Path) -> str:
    """Rewrite ``out_dir/results.md`` from the folder's run files, results.jsonl and any shard files
    as one set (read leniently); returns its text. Shards finishing at once each rewrite it whole
    (temp + rename), so it is never torn and the last one to finish sees every shard's records."""
    out_dir = Path(out_dir)
    loaded = read_results(out_dir)
    text = document("transferbench results", aggregate(loaded.records), loaded.records, loaded.skipped)
    write_atomic(out_dir / TABLE_FILE, text)
    return text
