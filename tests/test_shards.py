"""`run --shard I/N`: a deterministic, balanced partition of the matrix by data-free identity; each
shard appends to its own file; every reader takes a folder's results.jsonl and shard files as one set."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import matrix_cells
import pytest
from report_records import rec
from test_report import write

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.cli.run import parse_shard
from transferbench.benchmarks.execution.matrix import Shard, finished_ids, run_all
from transferbench.benchmarks.plan.spec import RunSpec
from transferbench.benchmarks.reporting import load_results, report
from transferbench.benchmarks.results import read_records, results_files, shard_file, write_table
from transferbench.errors import UserError

QUIET = {"progress": False, "log": lambda _: None}


def _matrix() -> list[RunSpec]:
    return [
        RunSpec(task="digits", adapter="efficientnet-lite0", strategy=strategy, seed=seed, max_train_examples=n)
        for strategy in ("finetune", "scratch", "linear-probe")
        for seed in range(3)
        for n in (10, 100)
    ]


def test_shards_partition_the_matrix_evenly_and_keep_its_order():
    specs = _matrix()
    shards = [Shard(i, 4).select(specs) for i in range(1, 5)]
    assert sorted(len(s) for s in shards) == [4, 4, 5, 5]  # 18 cells: sizes differ by at most one
    picked = [id(spec) for shard in shards for spec in shard]
    assert len(picked) == len(set(picked)) == len(specs)
    for shard in shards:  # matrix order within a shard
        assert [specs.index(s) for s in shard] == sorted(specs.index(s) for s in shard)
    assert Shard(1, 1).select(specs) == specs
    assert sum(len(Shard(i, 30).select(specs)) for i in range(1, 31)) == 18  # more shards than cells


def test_a_shard_is_the_same_on_every_machine_and_process():
    """No Python hash() (salted per process) and no absolute paths (they differ between machines)."""
    here = [dataclasses.replace(s, data_dir="/home/me/data/digits") for s in _matrix()]
    there = [dataclasses.replace(s, data_dir="/scratch/job42/digits") for s in _matrix()]
    mine = [here.index(s) for s in Shard(2, 3).select(here)]
    assert [there.index(s) for s in Shard(2, 3).select(there)] == mine
    code = (
        "import json, dataclasses, sys; sys.path.insert(0, 'tests'); from test_shards import _matrix;"
        "from transferbench.benchmarks.execution.matrix import Shard; m = _matrix();"
        "print(json.dumps([m.index(s) for s in Shard(2, 3).select(m)]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    plain = _matrix()
    assert json.loads(other.stdout) == [plain.index(s) for s in Shard(2, 3).select(plain)]


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "1 of 3"])
def test_a_bad_shard_is_one_line_naming_the_option_and_the_form(text, tmp_path, capsys):
    with pytest.raises(UserError) as info:
        parse_shard(text)
    assert str(info.value).startswith("--shard ") and "expected I/N with 1 <= I <= N" in str(info.value)
    argv = ["run", "--task", "digits", "--adapter", "efficientnet-lite0", "--shard", text, "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--shard" in err and "1 <= I <= N" in err


def test_a_folder_of_shard_files_is_read_as_one_set(tmp_path):
    write(tmp_path / "results.jsonl", [rec("scratch", 0, 0.5)])
    write(tmp_path / shard_file(10, 12), [rec("scratch", 1, 0.6)])
    write(tmp_path / shard_file(2, 12), [rec("finetune", 0, 0.8)])
    write(tmp_path / shard_file(1, 3), [rec("finetune", 1, 0.9)])
    (tmp_path / "results.shard-x-of-3.jsonl").write_text("{}\n")  # not a shard file: never read
    names = [p.name for p in results_files(tmp_path)]
    assert names == ["results.jsonl", shard_file(1, 3), shard_file(2, 12), shard_file(10, 12)]
    assert [r["seed"] for r in read_records(tmp_path)] == [0, 1, 0, 1]
    assert finished_ids(tmp_path) == {r["run_id"] for r in read_records(tmp_path)}
    assert "(n=2)" in write_table(tmp_path) and len(load_results([tmp_path])[0]) == 4
    report([tmp_path], tmp_path / "out", plots=False)
    assert "| t | a | finetune |" in (tmp_path / "out" / "report.md").read_text()


def test_a_rerun_in_another_shard_file_supersedes_as_in_one_file(tmp_path):
    """Duplicates across files are resolved as within one file: the latest record of a cell and seed."""
    write(tmp_path / shard_file(1, 2), [{**rec("scratch", 0, 0.0), "status": "oom", "metrics": {}}])
    write(tmp_path / shard_file(2, 2), [{**rec("scratch", 0, 0.7), "finished_at": "2026-12-01T00:00:00+00:00"}])
    table = write_table(tmp_path)
    assert "0.700 ± 0.000 (n=1)" in table and "Runs that did not finish" not in table


def test_a_folder_with_no_results_files_is_a_one_line_report_error(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--no-plots"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# --- the real matrix: three shards give exactly the serial records, and the same report ---------------


TIMED = ("train s", "train samples/s", "time to target", "pipeline eff.")
UNTIMED_CSV = ("train_s_mean", "train_samples_per_s", "time_to_target_s", "pipeline_efficiency")


def _untimed_markdown(text: str) -> list[str]:
    """A report without what a rerun changes: timing columns of every table, the provenance section."""
    out, drop = [], set()
    lines = text.split("## Provenance")[0].splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            out.append(line)
            continue
        cells = line.strip("|").split("|")
        if i == 0 or not lines[i - 1].startswith("|"):  # a table's header row
            drop = {j for j, cell in enumerate(cells) if cell.strip() in TIMED}
        out.append("|".join("·" if j in drop else cell for j, cell in enumerate(cells)))
    return out


def _untimed_csv(text: str) -> list[dict]:
    import csv

    return [{k: v for k, v in row.items() if k not in UNTIMED_CSV} for row in csv.DictReader(text.splitlines())]


@pytest.mark.slow  # six real trainings as three shards (the serial reference is shared): most of a minute
def test_three_shards_together_are_the_serial_matrix_and_report_alike(serial_matrix, tmp_path):
    serial_dir, serial = serial_matrix
    out = tmp_path / "sharded"
    out.mkdir()
    with matrix_cells.one_thread():
        returned = [run_all(matrix_cells.specs(), out_dir=out, shard=Shard(i, 3), **QUIET) for i in (1, 2, 3)]
    assert [len(r) for r in returned] == [2, 2, 2]
    assert [p.name for p in results_files(out)] == [shard_file(i, 3) for i in (1, 2, 3)]
    sharded = {r["run_id"]: r for r in read_records(out)}
    assert len(sharded) == 6 and sorted(sharded) == sorted(r["run_id"] for r in serial)
    for record in serial:
        assert matrix_cells.comparable(sharded[record["run_id"]]) == matrix_cells.comparable(record)

    # --resume reads the whole folder: nothing is left for any shard, nor for an unsharded rerun
    assert run_all(matrix_cells.specs(), out_dir=out, shard=Shard(2, 3), resume=True, **QUIET) == []
    assert run_all(matrix_cells.specs(), out_dir=out, resume=True, **QUIET) == []

    # the folder reports as one file holding the same records would; as the serial file, timings aside
    single = tmp_path / "one-file"
    single.mkdir()
    (single / "results.jsonl").write_text("".join((out / shard_file(i, 3)).read_text() for i in (1, 2, 3)))
    for folder in (out, single, serial_dir):
        report([folder], folder / "report", plots=False)
    texts = {
        f: [(f / "report" / name).read_text() for name in ("report.md", "report.csv")]
        for f in (out, single, serial_dir)
    }
    assert texts[out] == texts[single]
    assert _untimed_markdown(texts[out][0]) == _untimed_markdown(texts[serial_dir][0])
    assert _untimed_csv(texts[out][1]) == _untimed_csv(texts[serial_dir][1])
