"""The one results module: the results file, its reader, the record schema, the aggregation over
seeds and the Markdown table that both results.md and report.md are built from.

Writing: each finished run is one JSON object on one line, written with a single ``write`` on an
``O_APPEND`` descriptor and fsync'd, so a killed process can at worst leave one torn line; the next
append starts on a fresh line, so after a resumed run the torn line sits mid-file. Derived files
(results.md, report.md) are rewritten atomically (temp file + rename).

Reading (``read_results``) applies one rule in both of its modes:

* a line that is not complete JSON is a torn write: skipped with a warning, and counted;
* a complete JSON line that is not a transferbench record (fails ``validate_record``): in strict mode
  an error naming every such ``file:line``; in lenient mode skipped and counted.

``report.py`` imports this module, never the reverse.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import statistics
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferbench.benchmarks.runtime import faults
from transferbench.errors import UserError

RESULTS_FILE = "results.jsonl"
# what `run --shard I/N` appends to: one file per shard, so array jobs sharing a folder never share a file
SHARD_FILE = "results.shard-{index}-of-{count}.jsonl"
_SHARD_NAME = re.compile(r"results\.shard-(\d+)-of-(\d+)\.jsonl")
TABLE_FILE = "results.md"
BENCH_FILES = ("bench.jsonl", "timm-reference.jsonl")  # throughput measurements, not runs
FINISHED = ("ok", "near-chance")  # runs with metrics; any other status is a failed run, everywhere
# what --resume counts as done: outcomes the recipe itself decides, which a rerun of the same identity
# repeats (a divergence is deterministic). It reruns "oom" (it depends on the device and on what else
# holds its memory) and "failed" (the cell raised, or its worker process died every time it was tried).
SETTLED = (*FINISHED, "diverged")
STATUSES = (*SETTLED, "oom", "failed")
FAILED = "failed"
NUMBER = (int, float)
# field -> (type(s), required for every status?) ; nested dicts are checked by their own rows. A
# "failed" record has the identity fields but none of the measurements (required=False).
SCHEMA: dict[str, tuple[Any, bool]] = {
    "run_id": (str, True),
    "status": (str, True),
    "task": (str, True),
    "domain": (str, True),
    "adapter": (str, True),
    "strategy": (str, True),
    "pretrained": (bool, True),
    "seed": (int, True),
    "epochs": (int, True),
    "train_examples": (int, True),
    "test_examples": (int, True),
    "metrics": (dict, False),
    "val_accuracy_per_epoch": (list, False),
    "time": (dict, False),
    "throughput": (dict, False),
    "params": (dict, False),
    "config": (dict, True),
    "versions": (dict, True),
    "git_commit": (str, True),
    "hardware": (dict, True),
    "finished_at": (str, True),
}
NESTED: dict[str, dict[str, Any]] = {
    "time": {"train_s": NUMBER, "eval_s": NUMBER},
    "params": {"total": int, "trainable": int},
}
# fields the aggregation reads where present: a number or null
OPTIONAL_NUMBERS: dict[str, tuple[str, ...]] = {
    "time": ("time_to_target_s", "target_accuracy"),
    "throughput": ("train_samples_per_s",),
    "metrics": ("majority_class_accuracy",),
}
TORN = "not complete JSON (a torn write: the process was killed while appending this line)"


# --- writing ---------------------------------------------------------------------------------


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


def pending_path(path: str | Path) -> Path:
    """Where a finished record goes when its results file refuses it: a per-results-file spool
    outside the output folder ($TRANSFERBENCH_PENDING_DIR, default ~/.cache/transferbench/pending)."""
    root = Path(os.environ.get("TRANSFERBENCH_PENDING_DIR") or Path.home() / ".cache" / "transferbench" / "pending")
    key = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:16]
    return root / f"{key}.jsonl"


def append_or_keep(path: str | Path, record: dict[str, Any]) -> None:
    """Append ``record``; if the results file refuses it after the training it records, keep it in
    :func:`pending_path` (which :func:`flush_pending` empties into the results file on the next run)
    and say so in one line. A finished run is never lost silently."""
    try:
        append_record(path, record)
    except UserError as exc:
        keep = pending_path(path)
        try:
            keep.parent.mkdir(parents=True, exist_ok=True)
            append_record(keep, record)
        except (OSError, UserError):
            raise UserError(f"{exc}; the finished record could not be kept elsewhere either") from None
        raise UserError(
            f"{exc}; the finished record is kept in {keep}, and the next run on this --out adds it "
            "(--resume then skips the run)"
        ) from None


def flush_pending(path: str | Path) -> int:
    """Move records kept by :func:`append_or_keep` into the results file; how many moved."""
    keep = pending_path(path)
    if not keep.exists():
        return 0
    kept = read_records(keep)
    for record in kept:
        append_record(path, record)
    keep.unlink()
    return len(kept)


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


# --- the record schema -----------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, NUMBER) and not isinstance(value, bool)


def validate_record(record: Any) -> str | None:
    """None if ``record`` is a transferbench run record, else what is wrong (one short phrase). A
    ``failed`` record (the cell raised, or its worker died) measured nothing: it needs the identity
    fields and a ``status_detail`` saying why, and the measurement fields only where present."""
    if not isinstance(record, dict):
        return "not a JSON object"
    failed = record.get("status") == FAILED
    for key, (kind, required) in SCHEMA.items():
        if key not in record:
            if required or not failed:
                return f"missing field {key!r}"
            continue
        if not isinstance(record[key], kind) or (kind is int and isinstance(record[key], bool)):
            return f"field {key!r} should be {getattr(kind, '__name__', 'number')}, got {type(record[key]).__name__}"
    if record["status"] not in STATUSES:
        return f"status {record['status']!r} is not one of {', '.join(STATUSES)}"
    if failed and not isinstance(record.get("status_detail"), str):
        return "a failed record needs status_detail (what went wrong)"
    for key, fields in NESTED.items():
        for sub, kind in fields.items():
            if key in record and (not isinstance(record[key].get(sub), kind) or isinstance(record[key].get(sub), bool)):
                return f"field {key}.{sub} should be a number"
    for key, subs in OPTIONAL_NUMBERS.items():
        for sub in subs:
            value = record.get(key, {}).get(sub)
            if value is not None and not _is_number(value):
                return f"field {key}.{sub} should be a number or null"
    if not isinstance(record.get("details", {}), dict):
        return "field 'details' should be dict"
    if record["status"] in FINISHED:
        for metric in ("accuracy", "macro_f1"):
            value = record["metrics"].get(metric)
            if not _is_number(value) or not 0 <= value <= 1:
                return f"metrics.{metric} should be a number in [0, 1], got {value!r}"
    return None


def validate_bench_record(record: Any) -> str | None:
    """None if ``record`` is a throughput record (``transferbench bench``, benchmarks/timm_reference.py)."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for key, kind in (("finished_at", str), ("hardware", dict), ("versions", dict)):
        if not isinstance(record.get(key), kind):
            return f"missing field {key!r}"
    pairs = (("ours", "bare"), ("merged", "unmerged"))  # --compare-bare, --merged
    if not isinstance(record.get("results"), dict) and not any(
        all(isinstance(record.get(k), dict) for k in pair) for pair in pairs
    ):
        return "missing field 'results' (or 'ours' and 'bare' of --compare-bare, 'merged' and 'unmerged' of --merged)"
    return None


def _validator_for(path: Path) -> Callable[[Any], str | None]:
    """What a file holds is named by the file: bench.jsonl holds throughput records, the rest runs."""
    return validate_bench_record if path.name in BENCH_FILES else validate_record


# --- reading ---------------------------------------------------------------------------------


class Skipped(str):
    """One skipped line. As a string, ``file:line: why`` with the path as given (for the terminal);
    ``public`` names the file by its folder and name only (for published Markdown)."""

    path: Path
    line: int
    why: str
    torn: bool

    def __new__(cls, path: Path, line: int, why: str, *, torn: bool) -> Skipped:
        note = super().__new__(cls, f"{path}:{line}: {why}")
        note.path, note.line, note.why, note.torn = path, line, why, torn
        return note

    @property
    def public(self) -> str:
        return f"{public_file(self.path)}:{self.line}: {self.why}"


@dataclass
class Loaded:
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)  # torn and foreign lines, in file order

    @property
    def torn(self) -> list[Skipped]:
        return [s for s in self.skipped if s.torn]

    @property
    def foreign(self) -> list[Skipped]:
        """Complete JSON lines that are not transferbench records."""
        return [s for s in self.skipped if not s.torn]


def public_file(path: str | Path) -> str:
    """A results file named without the machine's folders: ``set-a/results.jsonl``."""
    path = Path(path).absolute()
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _listing(problems: list[Skipped], limit: int = 5) -> str:
    shown = "; ".join(problems[:limit])
    return shown + (f"; and {len(problems) - limit} more" if len(problems) > limit else "")


def shard_file(index: int, count: int) -> str:
    """The file shard ``index`` of ``count`` (``run --shard I/N``, 1-based) appends to."""
    return SHARD_FILE.format(index=index, count=count)


def results_files(folder: str | Path) -> list[Path]:
    """The run files of a result folder, read as one set: results.jsonl, then the shard files by
    shard count and index (numerically: 2 before 10). Shard files of another partition (an earlier
    ``--shard I/4`` next to ``I/3``) belong to the set too: a finished run is finished wherever it is."""
    folder = Path(folder)
    shards = []
    for path in folder.glob("results.shard-*-of-*.jsonl"):
        match = _SHARD_NAME.fullmatch(path.name)
        if match and path.is_file():
            shards.append(((int(match.group(2)), int(match.group(1))), path))
    main = [folder / RESULTS_FILE] if (folder / RESULTS_FILE).is_file() else []
    return main + [path for _, path in sorted(shards)]


def _read_file(path: Path, validate: Callable[[Any], str | None] | None, warn: bool) -> Loaded:
    """One JSON Lines file: records, torn lines (warned about) and foreign lines, in file order."""
    validate = validate or _validator_for(path)
    loaded = Loaded()
    if not path.exists():
        return loaded
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"results file {path}: cannot be read ({exc.strerror or exc})") from None
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            note = Skipped(path, number, TORN, torn=True)
            loaded.skipped.append(note)
            if warn:
                warnings.warn(f"{path}:{number}: skipped a line that is {TORN}", stacklevel=3)
            continue
        problem = validate(record)
        if problem is None:
            loaded.records.append(record)
        else:
            loaded.skipped.append(Skipped(path, number, f"not a transferbench record ({problem})", torn=False))
    return loaded


def read_results(
    path: str | Path,
    *,
    strict: bool = False,
    validate: Callable[[Any], str | None] | None = None,
    warn: bool = True,
    hint: str = "",
) -> Loaded:
    """Records of one JSON Lines file (none if it does not exist), or of a folder's run files as one
    set (``results_files``: results.jsonl and the shard files; a rerun of a run in another file is
    resolved where the records are used, by ``latest_per_seed`` and by --resume's run ids). A torn
    line (not complete JSON) is skipped with a warning in both modes. A complete line that
    ``validate`` rejects (default: by the file's name, see ``_validator_for``) is skipped and counted
    (lenient), or (``strict``) a UserError naming every such ``file:line`` after every file was read
    (``hint`` appended)."""
    path = Path(path)
    loaded = Loaded()
    for file in results_files(path) if path.is_dir() else [path]:
        part = _read_file(file, validate, warn)
        loaded.records += part.records
        loaded.skipped += part.skipped
    if strict and loaded.foreign:
        raise UserError(_listing(loaded.foreign) + (f" ({hint})" if hint else ""))
    return loaded


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of a results file or of a folder's set of them (``read_results``), lenient (what
    resume reads): torn lines are skipped with a warning each, lines that are not transferbench
    records with one warning giving their count."""
    loaded = read_results(path)
    if loaded.foreign:
        warnings.warn(
            f"{path}: skipped {len(loaded.foreign)} line(s) that are not transferbench records "
            f"(first: {loaded.foreign[0]})",
            stacklevel=2,
        )
    return loaded.records


def check_results_file(path: str | Path) -> None:
    """Refuse, before any training, a results file (or a folder holding one) that cannot take the
    run's records: one that cannot be opened for appending (read-only, immutable), or one that holds
    a line that is not a transferbench record. One-line UserError naming the file. Torn lines pass."""
    path = Path(path)
    path = path / RESULTS_FILE if path.is_dir() else path
    if path.exists():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
        except OSError as exc:
            raise UserError(
                f"results file {path}: cannot be appended to ({exc.strerror or exc}); "
                "fix its permissions or choose another --out"
            ) from None
    foreign = read_results(path, warn=False).foreign
    if foreign:
        more = f" (and {len(foreign) - 1} more such lines)" if len(foreign) > 1 else ""
        raise UserError(
            f"{foreign[0]}{more}; results are only appended to a file that holds nothing else: "
            "move that line out or choose another --out"
        )


# --- aggregation -----------------------------------------------------------------------------


def welch_interval(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """Confidence interval of mean(a) - mean(b) (Welch's t); None with fewer than 2 values per side,
    or when neither side varies (a zero-width interval from two identical seeds would claim certainty
    that two seeds cannot give)."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy.stats import t  # lazy: scipy is slow to import and only needed here

    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = statistics.fmean(a) - statistics.fmean(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return None
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t.ppf(0.5 + level / 2, df) * se
    return diff - half, diff + half


def latest_per_seed(records: list[dict]) -> list[dict]:
    """One record per task x adapter x strategy x data budget x seed: a rerun of the same seed
    (e.g. after a code change altered the run identity) supersedes the earlier one, so a seed is
    never counted twice in a mean."""
    latest: dict[tuple, dict] = {}
    for r in records:
        key = (
            r["task"],
            r["adapter"],
            r["strategy"],
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
    present = [v for v in values if _is_number(v) and math.isfinite(v)]
    return statistics.fmean(present) if present else None


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
        "steps": sorted({r["steps"] for r in runs if _is_number(r.get("steps"))}),
        "input_size": input_size(runs[0]),
        # fitted in one pass (probe, classical model): epochs and steps do not apply
        "closed_form": all(str(r["throughput"].get("excluded", "")).startswith("closed-form") for r in runs),
        "pretrained": runs[0]["pretrained"],
        "n_seeds": len(runs),
        "accuracies": acc,
        "accuracy_mean": statistics.fmean(acc),
        "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
        "macro_f1_mean": statistics.fmean(r["metrics"]["macro_f1"] for r in runs),
        "near_chance_runs": sum(r["status"] == "near-chance" for r in runs),
        "train_s_mean": statistics.fmean(r["time"]["train_s"] for r in runs),
        "train_samples_per_s": mean_of_present(r["throughput"].get("train_samples_per_s") for r in runs),
        "pipeline_efficiency": mean_of_present(pipeline),
        "time_to_target_s": mean_of_present(r["time"].get("time_to_target_s") for r in runs),
        "target_accuracy": runs[0]["time"].get("target_accuracy"),
        "trainable_params": runs[0]["params"]["trainable"],
        "total_params": runs[0]["params"]["total"],
        "val_curves": [r["val_accuracy_per_epoch"] for r in runs],
        "chance": max((r["metrics"].get("majority_class_accuracy") or 0) for r in runs),
    }


def aggregate(records: list[dict]) -> list[dict[str, Any]]:
    """One row per task x adapter x strategy x train_examples over seeds (the latest record of each
    seed; failed runs are left out), with the gain over the scratch row of the same task, adapter
    and data budget (95% Welch interval across seeds)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in latest_per_seed(records):
        if r["status"] in FINISHED:
            key = (r["domain"], r["task"], r["adapter"], r["strategy"], r["train_examples"], protocol_of(r))
            groups[key].append(r)
    rows = [_row(key, runs) for key, runs in sorted(groups.items(), key=lambda kv: (*kv[0][:5], kv[0][5] or ""))]
    scratch = [r for r in rows if r["strategy"] == "scratch"]
    for row in rows:
        budget = (row["task"], row["train_examples"], row["data_protocol"])
        same = [b for b in scratch if (b["task"], b["train_examples"], b["data_protocol"]) == budget]
        own = next((b for b in same if b["adapter"] == row["adapter"]), None)
        best = max(same, key=lambda b: b["accuracy_mean"], default=None)
        _set_gain(row, own, "gain")
        _set_gain(row, best, "gain_best")
        row["best_scratch"] = None if best is None else best["adapter"]
    return rows


def _set_gain(row: dict, base: dict | None, name: str) -> None:
    """``row[name + "_pts"]``: accuracy over ``base`` in points, with a 95% Welch interval across seeds
    in ``row[name + "_ci_pts"]`` (None without a base, for the base itself, or under 2 seeds a side)."""
    row[f"{name}_pts"] = row[f"{name}_ci_pts"] = None
    if base is None or base is row:
        return
    row[f"{name}_pts"] = 100 * (row["accuracy_mean"] - base["accuracy_mean"])
    ci = welch_interval(row["accuracies"], base["accuracies"])
    row[f"{name}_ci_pts"] = None if ci is None else (100 * ci[0], 100 * ci[1])


def failed_runs(records: list[dict]) -> list[dict]:
    """The latest record of each cell and seed whose status is not one of FINISHED."""
    return [r for r in latest_per_seed(records) if r["status"] not in FINISHED]


# --- Markdown: the one table and the sections both documents share -------------------------------


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def _seconds(s: float) -> str:
    return f"{s:.1f}" if s < 10 else f"{s:.0f}"


def _fmt_gain(row: dict, name: str = "gain") -> str:
    gain, ci = row[f"{name}_pts"], row[f"{name}_ci_pts"]
    if gain is None:
        return "—"
    shown = f"{gain:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else f"{gain:+.1f}"
    if name == "gain_best":  # the own-scratch column already says when there is no interval
        return f"{shown} vs {row['best_scratch']}"
    if ci:
        return shown
    return f"{shown} ({'1 seed' if row['n_seeds'] < 2 else 'no spread across seeds'}: no interval)"


def _span(values: list[int]) -> str:
    """One budget value, or the range when seeds differ (e.g. steps after an OOM retry)."""
    if not values:
        return "—"
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def data_budget(row: dict) -> str:
    """The training-set size a row shows: N, or N with the protocol that chose them."""
    n = str(row["train_examples"])
    return f"{n} ({row['data_protocol']})" if row.get("data_protocol") else n


def trainable_share(row: dict) -> str:
    share = 100 * row["trainable_params"] / row["total_params"] if row["total_params"] else 0.0
    return f"{share:.2g}%" if share < 10 else f"{share:.0f}%"


def _cells(r: dict, show_pipeline: bool) -> list[str]:
    flag = f" ⚠ near chance ({r['near_chance_runs']}/{r['n_seeds']} seeds)" if r["near_chance_runs"] else ""
    tta = ("—" if r["time_to_target_s"] is None else f"{r['time_to_target_s']:.0f}s") + (
        f" (≥{r['target_accuracy']:.2f})" if r["target_accuracy"] else ""
    )
    pipeline = "—" if r["pipeline_efficiency"] is None else f"{r['pipeline_efficiency']:.2f}"
    return [
        r["task"],
        r["adapter"],
        r["strategy"],
        data_budget(r),
        "—" if r["closed_form"] else _span(r["epochs"]),
        "closed form" if r["closed_form"] else _span(r["steps"]),
        r["input_size"],
        f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f} (n={r['n_seeds']}){flag}",
        f"{r['macro_f1_mean']:.3f}",
        _fmt_gain(r),
        _fmt_gain(r, "gain_best"),
        _seconds(r["train_s_mean"]),
        "—" if r["train_samples_per_s"] is None else f"{r['train_samples_per_s']:.0f}",
        *([pipeline] if show_pipeline else []),
        tta,
        f"{_millions(r['trainable_params'])} / {_millions(r['total_params'])}",
        trainable_share(r),
    ]


def table(rows: list[dict]) -> str:
    """THE Markdown table of aggregated rows (``aggregate``): results.md and report.md both use it.
    A value that was not measured (samples/s, pipeline efficiency, time to target) shows as —.
    The pipeline-efficiency column appears only where it was measured (on by default on CUDA)."""
    show_pipeline = any(r["pipeline_efficiency"] is not None for r in rows)
    columns = [
        ("task", "---"),
        ("adapter", "---"),
        ("strategy", "---"),
        ("train ex.", "---:"),
        ("epochs", "---:"),
        ("steps", "---:"),
        ("input", "---:"),
        ("accuracy (mean ± std, n)", "---"),
        ("macro-F1", "---:"),
        ("gain vs scratch, pts [95% CI]", "---"),
        ("gain vs best scratch, pts", "---"),
        ("train s", "---:"),
        ("train samples/s", "---:"),
        *([("pipeline eff.", "---:")] if show_pipeline else []),
        ("time to target", "---:"),
        ("trainable / total params", "---:"),
        ("trainable share", "---:"),
    ]
    lines = [[name for name, _ in columns], [align for _, align in columns]]
    lines += [_cells(r, show_pipeline) for r in rows]
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
