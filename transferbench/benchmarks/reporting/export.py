"""``transferbench export RESULTS --out DIR [--push REPO_ID]``: a result set as a Hugging Face hub
dataset repo holds it, so results can be shared where people look for them (as lm-evaluation-harness
and MTEB do):

* ``data/records.parquet``: one row per record; the measurements as typed columns, the nested
  objects (config, versions, hardware, details, preprocessing) and the whole record as JSON strings,
  which read back the same whatever keys a record has (a struct column would need one schema).
  ``counted`` marks the records the tables count (the latest finished run of each cell and seed).
* ``README.md``: the dataset card (``huggingface_hub.DatasetCard``): license, tags, pretty name and
  ``configs`` pointing at the parquet, then the tables and provenance of report.md.
* ``models/<adapter>/README.md``: model-card metadata, the hub's ``model-index`` (``EvalResult``), of
  every row of that adapter, to copy into a model repo; and ``models/<adapter>/.eval_results/<task>.yaml``
  (``EvalResultEntry``, the hub's newer format, which feeds benchmark leaderboards) for the rows whose
  records read a hub dataset at a known commit: a local copy cannot be named as a hub revision.

Names carry no folder of the machine: a local data source is shown as ``results.public_source``
shows it. ``--push`` uploads DIR with ``huggingface_hub.upload_folder``; that needs the network and a
token, and is tested here only up to the upload. huggingface_hub and pyarrow are imported lazily.
The command line (``cli/parser.py``, ``cli/commands.py``) calls ``export_results`` and ``push_to_hub``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from transferbench.benchmarks.reporting.export_cards import dataset_card, model_cards
from transferbench.benchmarks.reporting.report import load_results
from transferbench.benchmarks.results import epochs_run, latest_per_seed, prepare_out_dir, protocol_of, public_source
from transferbench.errors import UserError

RECORDS_FILE = "data/records.parquet"
JSON_COLUMNS = ("config", "versions", "hardware", "details", "preprocessing")


def public_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record as published: its data source by name and fingerprint (``public_source``), and the
    run spec's data folder by its name; nothing else of a record names a folder (plan/local_paths.py)."""
    out = dict(record)
    if "data_source" in out:
        out["data_source"] = public_source(record)
    spec = out.get("run_spec")
    if isinstance(spec, dict) and isinstance(spec.get("data_dir"), str):
        out["run_spec"] = {**spec, "data_dir": re.split(r"[/\\]", spec["data_dir"].rstrip("/\\"))[-1]}
    return out


def _schema() -> Any:
    import pyarrow as pa  # lazy: only the export needs it

    text, number, whole, flag = pa.string(), pa.float64(), pa.int64(), pa.bool_()
    fields = [
        *((name, text) for name in ("result_set", "run_id", "config_hash", "status", "status_detail", "task")),
        *((name, text) for name in ("domain", "adapter", "strategy")),
        ("pretrained", flag),
        ("counted", flag),
        *((name, whole) for name in ("seed", "epochs", "epochs_run", "steps")),
        *((name, whole) for name in ("train_examples", "val_examples", "test_examples")),
        *((name, text) for name in ("data_protocol", "test_split", "data_source", "data_revision")),
        *((name, number) for name in ("accuracy", "macro_f1", "majority_class_accuracy", "p_value_vs_majority")),
        *((name, number) for name in ("train_s", "eval_s", "device_s", "time_to_target_s", "target_accuracy")),
        ("train_samples_per_s", number),
        ("params_total", whole),
        ("params_trainable", whole),
        ("val_accuracy_per_epoch", pa.list_(number)),
        *((name, text) for name in ("git_commit", "finished_at", *JSON_COLUMNS, "record")),
    ]
    return pa.schema(fields)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def record_row(record: dict[str, Any], result_set: str, counted: bool) -> dict[str, Any]:
    """One parquet row: identity, budget, data, metrics, cost, provenance, and the record as JSON."""
    metrics, time, params = record.get("metrics") or {}, record.get("time") or {}, record.get("params") or {}
    public = public_record(record)
    row = {k: record.get(k) for k in ("run_id", "config_hash", "status", "status_detail", "task", "domain")}
    row.update({k: record.get(k) for k in ("adapter", "strategy", "pretrained", "seed", "epochs", "steps")})
    row.update({k: record.get(k) for k in ("train_examples", "val_examples", "test_examples", "test_split")})
    row.update(
        result_set=result_set,
        counted=counted,
        epochs_run=epochs_run(record),
        data_protocol=protocol_of(record),
        data_source=public["data_source"],
        data_revision=record.get("data_revision"),
        train_samples_per_s=_number((record.get("throughput") or {}).get("train_samples_per_s")),
        params_total=params.get("total"),
        params_trainable=params.get("trainable"),
        val_accuracy_per_epoch=record.get("val_accuracy_per_epoch"),
        git_commit=record["git_commit"],
        finished_at=record["finished_at"],
        record=json.dumps(public, sort_keys=True),
    )
    row.update({k: _number(metrics.get(k)) for k in ("accuracy", "macro_f1", "majority_class_accuracy")})
    row["p_value_vs_majority"] = _number(metrics.get("p_value_vs_majority"))
    row.update({k: _number(time.get(k)) for k in ("train_s", "eval_s", "device_s", "time_to_target_s")})
    row["target_accuracy"] = _number(time.get("target_accuracy"))
    row.update({k: json.dumps(record.get(k), sort_keys=True) for k in JSON_COLUMNS})
    return row


def write_parquet(records: list[dict[str, Any]], result_set: str, path: Path) -> Path:
    """``path``: one row per record, in file order, typed by ``_schema`` whatever the records hold."""
    import pyarrow as pa  # lazy: only the export needs it
    import pyarrow.parquet as pq

    counted = {id(r) for r in latest_per_seed(records)}
    rows = [record_row(r, result_set, id(r) in counted) for r in records]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=_schema()), path)
    return path


def _prepare(out: Path) -> Path:
    """A new folder, or an earlier export (its card says so) whose data and models are replaced:
    what a previous export wrote for an adapter no longer in the set must not be uploaded again."""
    card = out / "README.md"
    if out.is_dir() and any(out.iterdir()):
        if not (card.is_file() and "transferbench" in card.read_text(encoding="utf-8", errors="replace")):
            raise UserError(
                f"export --out {out}: not empty and not an earlier transferbench export; choose a new folder"
            )
        for ours in ("data", "models"):
            shutil.rmtree(out / ours, ignore_errors=True)
    return prepare_out_dir(out)


def export_results(
    paths: list[str | Path],
    out: str | Path,
    *,
    repo_id: str | None = None,
    license: str = "apache-2.0",
    skip_invalid: bool = False,
) -> list[Path]:
    """Write the hub dataset repo of the records of ``paths`` into ``out``; the files written."""
    records, _ = load_results(paths, skip_invalid=skip_invalid)
    if not records:
        raise UserError(f"export: no valid records in {', '.join(map(str, paths))}")
    first = Path(paths[0])
    name = (first if first.is_dir() else first.parent).absolute().name
    out = _prepare(Path(out))
    written = [write_parquet(records, name, out / RECORDS_FILE)]
    card = dataset_card(name, records, repo_id=repo_id, license=license, data_file=RECORDS_FILE)
    card.save(out / "README.md")
    written.append(out / "README.md")
    written += model_cards(records, out / "models", repo_id=repo_id)
    return written


def push_to_hub(folder: str | Path, repo_id: str) -> str:
    """Upload ``folder`` to the hub dataset repo ``repo_id`` (created if missing); the commit's URL."""
    import huggingface_hub  # lazy: only --push needs it

    print(f"pushing {folder} to the hub dataset {repo_id}: needs the network and a token (HF_TOKEN or `hf auth login`)")
    try:
        huggingface_hub.create_repo(repo_id, repo_type="dataset", exist_ok=True)
        commit = huggingface_hub.upload_folder(
            repo_id=repo_id, folder_path=str(folder), repo_type="dataset", commit_message="transferbench export"
        )
    except (OSError, ValueError) as exc:  # offline, no token, no permission, an invalid repo id
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(f"export --push {repo_id}: the upload failed ({type(exc).__name__}: {first})") from None
    return str(getattr(commit, "commit_url", commit))
