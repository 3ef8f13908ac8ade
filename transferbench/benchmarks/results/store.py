"""The results files: the one writer and the one reader (``schema`` says what a record is,
``aggregate`` and ``markdown`` make rows and tables of what this reads).

Writing: each finished run is one JSON object on one line, written with a single ``write`` on an
``O_APPEND`` descriptor and fsync'd, so a killed process can at worst leave one torn line; the next
append starts on a fresh line, so after a resumed run the torn line sits mid-file. Derived files
(results.md, report.md) are rewritten atomically (temp file + rename).

Reading (``read_results``) applies one rule in both of its modes:

* a line that is not complete JSON is a torn write: skipped with a warning, and counted;
* a complete JSON line that is not a transferbench record (fails ``validate_record``): in strict mode
  an error naming every such ``file:line``; in lenient mode skipped and counted.

Reports (``benchmarks.reporting``) import this package, never the reverse.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferbench.benchmarks.results.schema import validate_bench_record, validate_point_record, validate_record
from transferbench.benchmarks.runtime import faults
from transferbench.errors import UserError

RESULTS_FILE = "results.jsonl"
# what `run --shard I/N` appends to: one file per shard, so array jobs sharing a folder never share a file
SHARD_FILE = "results.shard-{index}-of-{count}.jsonl"
_SHARD_NAME = re.compile(r"results\.shard-(\d+)-of-(\d+)\.jsonl")
TABLE_FILE = "results.md"
SWEEP_FILE = "sweeps.jsonl"  # sweep points (execution.sweeping): validation scores, never results
SWEEP_SHARD_FILE = "sweeps.shard-{index}-of-{count}.jsonl"
BENCH_FILES = ("bench.jsonl", "timm-reference.jsonl", "peers.jsonl")  # throughput measurements, not runs
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


def _validator_for(path: Path) -> Callable[[Any], str | None]:
    """What a file holds is named by the file: bench.jsonl holds throughput records, the rest runs."""
    if path.name in BENCH_FILES:
        return validate_bench_record
    return validate_point_record if path.name.startswith("sweeps.") else validate_record


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


def sweep_files(folder: str | Path) -> list[Path]:
    """A result folder's sweep-point files: sweeps.jsonl and one per shard."""
    folder = Path(folder)
    found = [folder / SWEEP_FILE] if (folder / SWEEP_FILE).is_file() else []
    return found + sorted(p for p in folder.glob("sweeps.shard-*-of-*.jsonl") if p.is_file())


def read_points(folder: str | Path) -> list[dict[str, Any]]:
    """Every sweep point recorded in a result folder, in file order (torn lines skipped with a warning)."""
    points: list[dict[str, Any]] = []
    for path in sweep_files(folder):
        points += _read_file(path, None, True).records
    return points


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
