"""Dry identity check: recompute the run id of every published record that says how it was asked
for (``run_spec``) with the code as it is now, without loading data or training (the data's
fingerprint and the audio clip length come from the record). A refactoring that keeps behaviour
keeps every id; `python scripts/check-run-ids.py` prints the counts and each id that moved in a
record the tables count (exit 1 if any did); tests/test_run_ids.py runs it over results/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from transferbench.benchmarks.plan.identity import run_identity
from transferbench.benchmarks.plan.resolve import resolve
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.results import latest_per_seed, provenance
from transferbench.plugins import load_plugins


class Facts:
    """What an identity reads of the data, taken from the record instead of the data."""

    def __init__(self, task: str, fingerprint: str) -> None:
        self.task, self._fingerprint = task, fingerprint

    def fingerprint(self) -> str:
        return self._fingerprint


def recomputed(record: dict) -> str:
    config = record["config"]
    spec = RunSpec.from_dict(record["run_spec"])
    plan = resolve(spec)
    options = dict(plan.input_options)
    if config.get("duration_s") is not None:  # the audio clip length, as the data gave it
        options.setdefault("duration", config["duration_s"])
    facts = Facts(record["task"], config["data_fingerprint"])
    settings = plan.domain.input_settings(options, plan.task, plan.adapter, facts)
    return provenance.config_hash(run_identity(plan, facts, settings, config["amp"]))


def check(root: str | Path = "results") -> tuple[int, list[str], list[str], int]:
    """(records that keep their id, ids that moved in records a newer one of the same cell and seed
    supersedes, ids that moved in records the tables count, records without a run_spec)."""
    load_plugins()
    same, superseded, moved, without = 0, [], [], 0
    for path in sorted(Path(root).rglob("results.jsonl")):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        counted = {id(r) for r in latest_per_seed(records)}
        for record in records:
            if not record.get("run_spec"):
                without += 1
            elif recomputed(record) == record["run_id"]:
                same += 1
            else:
                where = f"{path}: {record['strategy']} seed {record['seed']} {record['run_id']}"
                (moved if id(record) in counted else superseded).append(where)
    return same, superseded, moved, without


def main(root: str = "results") -> int:
    same, superseded, moved, without = check(root)
    print(
        f"{same} records keep their run id; {len(superseded)} do not but a newer record of their cell and "
        f"seed supersedes them; {len(moved)} counted records moved; {without} have no run_spec to recompute from"
    )
    print("\n".join(moved))
    return 1 if moved else 0  # tests/test_run_ids.py lists the ids whose recipe changed on purpose


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
