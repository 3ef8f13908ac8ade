"""The record schema: what a transferbench run record holds, and the statuses a run can end in.
``validate_record`` is what the one reader (``store.read_results``) applies to every line."""

from __future__ import annotations

from typing import Any

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
    "time": ("time_to_target_s", "target_accuracy", "setup_s", "first_step_s", "data_load_s"),
    "throughput": ("train_samples_per_s",),
    "metrics": ("majority_class_accuracy", "ece", "nll"),
}
# top-level fields written since they were measured, read where present (older records lack them)
OPTIONAL_FIELDS: dict[str, Any] = {"train_flops": NUMBER, "test_correct": str}


def is_number(value: Any) -> bool:
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
            if value is not None and not is_number(value):
                return f"field {key}.{sub} should be a number or null"
    for key, kind in OPTIONAL_FIELDS.items():
        value = record.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return f"field {key!r} should be {'a number' if kind is NUMBER else 'a string'} or null"
    if record.get("test_correct") and not _correctness_fits(record["test_correct"], record["test_examples"]):
        return f"field 'test_correct' should hold one bit per test example ({record['test_examples']})"
    if not isinstance(record.get("details", {}), dict):
        return "field 'details' should be dict"
    if record["status"] in FINISHED:
        for metric in ("accuracy", "macro_f1"):
            value = record["metrics"].get(metric)
            if not is_number(value) or not 0 <= value <= 1:
                return f"metrics.{metric} should be a number in [0, 1], got {value!r}"
    return None


def validate_bench_record(record: Any) -> str | None:
    """None if ``record`` is a throughput record (``transferbench bench``, benchmarks/peers/timm_reference.py)."""
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


def _correctness_fits(code: str, n: int) -> bool:
    """Whether ``code`` is base64 of exactly the bytes n bits take (``significance.correctness_code``)."""
    import base64
    import binascii

    try:
        return len(base64.b64decode(code, validate=True)) == -(-n // 8)
    except (binascii.Error, ValueError):
        return False


def validate_point_record(record: Any) -> str | None:
    """None if ``record`` is a sweep point's line (``execution.records.point_record``), else why not."""
    if not isinstance(record, dict) or record.get("kind") != "sweep-point":
        return "not a sweep point (kind: sweep-point)"
    for key, kind in (("point_id", str), ("sweep", str), ("status", str), ("seed", int), ("finished_at", str)):
        if not isinstance(record.get(key), kind):
            return f"missing field {key!r}"
    if record["status"] not in STATUSES:
        return f"status {record['status']!r} is not one of {', '.join(STATUSES)}"
    value = record.get("val_accuracy")
    if value is not None and not (is_number(value) and 0 <= value <= 1):
        return f"val_accuracy should be a number in [0, 1] or null, got {value!r}"
    return None
