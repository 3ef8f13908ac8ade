"""Results files: append-only JSON Lines, and the Markdown table derived from them.

Each finished run is one JSON object on one line, written with a single ``write`` on an
``O_APPEND`` descriptor and fsync'd, so a killed process can at worst leave a torn *last* line;
readers skip such a line with a warning and the next append starts on a fresh line. Derived files
(results.md) are rewritten atomically (temp file + rename).
"""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import tempfile
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

from transferbench.benchmarks import faults
from transferbench.errors import UserError

RESULTS_FILE = "results.jsonl"
TABLE_FILE = "results.md"


def prepare_out_dir(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UserError(f"--out {out}: not writable ({exc.strerror or exc})") from None
    return out


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record as one fsync'd line. Never rewrites what is already there."""
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:  # a torn last line (killed mid-write) must not swallow this record
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    line = "\n" + line
        data = line.encode()
        if faults.armed("append"):  # tests: die after writing half a line
            os.write(fd, data[: len(data) // 2])
            os.fsync(fd)
            os.kill(os.getpid(), signal.SIGKILL)
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)
    except OSError as exc:
        raise UserError(f"results file {path}: could not append a record ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """All complete records of a results.jsonl; a torn or invalid line is skipped with a warning."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                warnings.warn(
                    f"{path}:{number}: skipped a line that is not complete JSON (a torn write?)", stacklevel=2
                )
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def write_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per task x adapter x strategy (x train_examples): accuracy mean ± std over seeds
    and the gain over the scratch row of the same task, adapter and data budget."""
    from transferbench.benchmarks.report import latest_per_seed

    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in latest_per_seed(records):
        if r.get("status") in ("ok", "near-chance"):
            groups[(r["task"], r["adapter"], r["strategy"], r.get("train_examples"))].append(r)
    rows = []
    for (task, adapter, strategy, n_train), runs in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        acc_mean, acc_std = _mean_std([r["metrics"]["accuracy"] for r in runs])
        f1_mean, _ = _mean_std([r["metrics"]["macro_f1"] for r in runs])
        rows.append(
            {
                "task": task,
                "adapter": adapter,
                "strategy": strategy,
                "train_examples": n_train,
                "seeds": sorted(r["seed"] for r in runs),
                "accuracy_mean": acc_mean,
                "accuracy_std": acc_std,
                "macro_f1_mean": f1_mean,
                "near_chance": sum(r.get("status") == "near-chance" for r in runs),
                "train_s_mean": statistics.fmean(r["time"]["train_s"] for r in runs),
                "train_samples_per_s": statistics.fmean(r["throughput"]["train_samples_per_s"] or 0 for r in runs),
                "trainable_params": runs[0]["params"]["trainable"],
                "total_params": runs[0]["params"]["total"],
            }
        )
    scratch = {(r["task"], r["adapter"], r["train_examples"]): r for r in rows if r["strategy"] == "scratch"}
    for row in rows:
        base = scratch.get((row["task"], row["adapter"], row["train_examples"]))
        row["gain_over_scratch_pts"] = (
            None
            if base is None or row["strategy"] == "scratch"
            else 100 * (row["accuracy_mean"] - base["accuracy_mean"])
        )
    return rows


def markdown_table(records: list[dict[str, Any]]) -> str:
    rows = summarize(records)
    failed = [r for r in records if r.get("status") not in ("ok", "near-chance")]
    lines = [
        "| task | adapter | strategy | train ex. | seeds | accuracy (mean ± std) | macro-F1 | gain vs scratch (pts) "
        "| train s | train samples/s | trainable / total params |",
        "|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        gain = "—" if r["gain_over_scratch_pts"] is None else f"{r['gain_over_scratch_pts']:+.1f}"
        flag = f" ⚠ near chance ({r['near_chance']}/{len(r['seeds'])} seeds)" if r["near_chance"] else ""
        speed = r["train_samples_per_s"]
        lines.append(
            f"| {r['task']} | {r['adapter']} | {r['strategy']} | {r['train_examples']} | {len(r['seeds'])} "
            f"| {r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f}{flag} | {r['macro_f1_mean']:.3f} | {gain} "
            f"| {r['train_s_mean']:.1f} | {'—' if not speed or math.isnan(speed) else f'{speed:.0f}'} "
            f"| {_millions(r['trainable_params'])} / {_millions(r['total_params'])} |"
        )
    for r in failed:
        lines.append(
            f"| {r['task']} | {r['adapter']} | {r['strategy']} | {r.get('train_examples')} | seed {r['seed']} "
            f"| **{r['status']}** {r.get('status_detail', '')} | | | | | |"
        )
    return "\n".join(lines) + "\n"


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def provenance_lines(records: list[dict[str, Any]]) -> str:
    """Where the numbers came from: versions, commits, devices, dates across the records."""
    if not records:
        return ""

    def distinct(key):
        return sorted({json.dumps(r.get(key), sort_keys=True) for r in records})

    commits = sorted({r.get("git_commit", "unknown") for r in records})
    devices = sorted(
        {(r.get("hardware") or {}).get("gpu") or (r.get("hardware") or {}).get("cpu", "?") for r in records}
    )
    dates = sorted(r.get("finished_at", "") for r in records)
    version_sets = [json.loads(v) for v in distinct("versions")]
    return (
        f"- runs: {len(records)}; finished {dates[0]} … {dates[-1]}\n"
        f"- git commit: {', '.join(commits)}\n"
        f"- devices: {', '.join(map(str, devices))}\n"
        + "".join(f"- versions: {', '.join(f'{k} {v}' for k, v in sorted(vs.items()))}\n" for vs in version_sets)
        + "- every record in results.jsonl carries its full config and config_hash\n"
    )


def write_table(out_dir: str | Path) -> str:
    out_dir = Path(out_dir)
    records = read_records(out_dir / RESULTS_FILE)
    text = "# transferbench results\n\n" + markdown_table(records) + "\n## Provenance\n\n" + provenance_lines(records)
    write_atomic(out_dir / TABLE_FILE, text)
    return text
