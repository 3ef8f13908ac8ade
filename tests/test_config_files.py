"""Tasks and run matrices as files, `validate`, and entry-point plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.cli.parser import build_parser as _build_parser
from transferbench.benchmarks.cli.run import specs_from_args as _specs_from_args
from transferbench.benchmarks.execution.matrix import load
from transferbench.benchmarks.plan.resolve import bind, resolve
from transferbench.benchmarks.plan.suites import PACKAGE_SUITES
from transferbench.tasks import TASKS
from transferbench.tasks.base import TASK_FILES
from transferbench.tasks.files import PACKAGE_TASKS

SST2_FILE = """\
name: my-sst2
domain: text
description: the SST-2 fixture, described as a file
loader: dir
input_column: sentence
label_column: label
test_split: validation
class_names: [negative, positive]
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("transferbench: error: ")]
    assert len(lines) == 1, err
    return lines[0].removeprefix("transferbench: error: ")


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_every_builtin_task_and_suite_is_a_file():
    # the package's own tasks (other tests register toy and user tasks in the same process)
    ours = {n for n in TASKS.names() if TASKS.get(n).domain in ("vision", "text", "audio") and n not in TASK_FILES}
    assert {p.stem for p in PACKAGE_TASKS.glob("*.yaml")} == ours
    assert {p.stem for p in PACKAGE_SUITES.glob("*.yaml")} == {"quick", "seed-vgg16-cifar10", "transferbench-1k"}


def test_a_task_file_gives_the_same_results_as_the_builtin_task(tmp_path, sst2_like, capsys):
    task = _write(tmp_path, "my-sst2.yaml", SST2_FILE)
    common = ["--adapter", "tfidf-logreg", "--strategy", "scratch", "--data-dir", str(sst2_like), "--no-progress"]
    assert main(["run", "--task", "sst2", *common, "--out", str(tmp_path / "a")]) == 0
    assert main(["run", "--task", str(task), *common, "--out", str(tmp_path / "b")]) == 0, capsys.readouterr().err
    (a,), (b,) = _records(tmp_path / "a"), _records(tmp_path / "b")
    assert b["task"] == "my-sst2" and a["metrics"] == b["metrics"]
    assert a["config"]["data_fingerprint"] == b["config"]["data_fingerprint"]


def test_include_path_registers_every_task_file_in_a_folder(tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    _write(folder, "one.yaml", SST2_FILE.replace("my-sst2", "inc-one"))
    _write(folder, "two.yml", SST2_FILE.replace("my-sst2", "inc-two"))
    args = _build_parser().parse_args(["run", "--include-path", str(folder), "--task", "inc-two", "--adapter", "tfidf"])
    specs, _, _ = _specs_from_args(args)
    assert "inc-one" in TASKS and [s.task for s in specs] == ["inc-two"] * 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\ndomain: text\n  bad: [indent\n", ":3: not valid YAML"),
        (SST2_FILE + "lable_column: stars\n", ":9: lable_column: unknown key; did you mean 'label_column'?"),
        (
            SST2_FILE.replace("loader: dir", "loader: dir\ntarget_accuracy: high"),
            ":5: target_accuracy: expected a number",
        ),
        (SST2_FILE.replace("domain: text", "domain: spectra"), ":2: domain: unknown domain 'spectra'"),
        (SST2_FILE.replace("loader: dir", "loader: web"), ":4: loader: expected one of hub-or-dir, dir, builtin"),
        ("name: t\ndomain: text\n", ":1: missing key 'description'"),
        ("- a list\n", ":1: a task file is a mapping"),
    ],
    ids=["bad-yaml", "unknown-key", "wrong-type", "unknown-domain", "bad-loader", "missing-key", "not-a-mapping"],
)
def test_broken_task_file_is_one_line_with_file_line_and_key(tmp_path, capsys, text, expected):
    task = _write(tmp_path, "broken.yaml", text)
    assert main(["run", "--task", str(task), "--adapter", "tfidf-logreg", "--out", str(tmp_path / "out")]) == 2
    line = _error(capsys)
    assert line.startswith(str(task)) and expected in line, line


def test_a_column_the_data_lacks_names_the_task_file_line_and_key(tmp_path, sst2_like, capsys):
    task = _write(
        tmp_path,
        "cols.yaml",
        SST2_FILE.replace("my-sst2", "cols").replace("label_column: label", "label_column: stars"),
    )
    argv = ["run", "--task", str(task), "--adapter", "tfidf-logreg", "--strategy", "scratch"]
    assert main([*argv, "--data-dir", str(sst2_like), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    line = _error(capsys)
    assert line.startswith(f"{task}:6: label_column:") and "no column 'stars'" in line


def test_a_matrix_file_reproduces_the_quick_suite_run_identities(tmp_path):
    copy = _write(
        tmp_path, "matrix.yaml", (PACKAGE_SUITES / "quick.yaml").read_text().replace("name: quick", "name: mine")
    )
    parser = _build_parser()
    from_file, _, label = _specs_from_args(parser.parse_args(["run", "--config", str(copy)]))
    builtin, _, _ = _specs_from_args(parser.parse_args(["run", "--suite", "quick"]))
    assert label == "mine" and from_file == builtin
    cache = {}
    for spec in builtin[:1] + builtin[-1:]:  # one vision and one audio cell: identities from loaded data
        plan = resolve(spec)
        data = cache.setdefault(spec.task, load(plan, lambda *_: None))
        twin = resolve(from_file[builtin.index(spec)])
        assert bind(plan, data, "off").run_id == bind(twin, data, "off").run_id


def test_flags_override_the_matrix_file_and_show_config_prints_the_result(tmp_path, capsys):
    matrix = _write(
        tmp_path,
        "m.yaml",
        """\
        name: small
        seeds: [0, 1]
        budget: {epochs: 2}
        grid: {tasks: [digits], adapters: [efficientnet-lite0], strategies: [linear-probe, scratch]}
        train_examples: [20, all]
        per_class: true
        """,
    )
    assert main(["run", "--config", str(matrix), "--epochs", "4", "--show-config"]) == 0
    import yaml

    runs = yaml.safe_load(capsys.readouterr().out)
    assert len(runs) == 2 * 2 * 2  # strategies x seeds x data budgets
    assert {r["budget"]["epochs"] for r in runs} == {4} and {r["max_train_examples"] for r in runs} == {20, None}
    assert all(r["per_class"] for r in runs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "runs:\n  - {task: digits, adapter: efficientnet-lite0, strategy: scratch, lrr: 0.1}\n",
            ":2: lrr: unknown key",
        ),
        (
            "budget: {epochs: three}\nruns:\n  - {task: digits, adapter: resnet18, strategy: scratch}\n",
            ":1: epochs: expected",
        ),
        ("seeds: [0]\n", ":1: no runs"),
        (
            "grid: {tasks: [digits], adapters: [resnet18], strategys: [scratch]}\n",
            ":1: strategys: unknown key; did you mean 'strategies'",
        ),
        ("runs:\n  - {adapter: resnet18, strategy: scratch}\n", ":2: a run needs 'task'"),
    ],
    ids=["unknown-run-key", "budget-type", "no-runs", "grid-key", "missing-task"],
)
def test_broken_matrix_file_is_one_line_with_file_line_and_key(tmp_path, capsys, text, expected):
    matrix = _write(tmp_path, "m.yaml", text)
    assert main(["run", "--config", str(matrix), "--out", str(tmp_path / "out")]) == 2
    line = _error(capsys)
    assert line.startswith(str(matrix)) and expected in line, line


def test_validate_checks_files_and_names_without_training(tmp_path, capsys):
    task = _write(tmp_path, "v.yaml", SST2_FILE.replace("my-sst2", "validated"))
    matrix = _write(tmp_path, "m.yaml", "runs:\n  - {task: digits, adapter: resnet18, strategy: scratch}\n")
    assert main(["validate", str(task), str(matrix), "quick", "tfidf-logreg"]) == 0
    out = capsys.readouterr().out
    assert "task file OK: task 'validated'" in out and "run-matrix file OK: 1 runs" in out
    assert "suite 'quick': OK: 11 runs" in out and "adapter 'tfidf-logreg': contract OK" in out
    bad = _write(tmp_path, "bad.yaml", "runs:\n  - {task: digits, adapter: resnet19, strategy: scratch}\n")
    assert main(["validate", str(bad)]) == 2
    assert "run 1: unknown adapter 'resnet19'" in _error(capsys)
    assert main(["validate", "efficientnet-lite1"]) == 2
    assert "did you mean 'efficientnet-lite0'" in _error(capsys)


PLUGIN = (Path(__file__).parent / "toy_domain.py").read_text()


def _install_plugin(site: Path) -> None:
    """A package as pip installs one: its module plus a .dist-info declaring the entry points."""
    (site / "toyplugin.py").write_text(PLUGIN)
    (site / "brokenplugin.py").write_text("raise ImportError('this plugin needs a library that is missing')\n")
    info = site / "toyplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[transferbench.domains]\ntabular = toyplugin\n\n[transferbench.tasks]\nbroken = brokenplugin\n"
    )


def test_an_installed_plugin_shows_in_list_passes_validate_and_runs(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _install_plugin(site)
    out = tmp_path / "out"
    script = (
        "import sys; from transferbench.benchmarks.cli import main\n"
        "codes = [main(['list', 'adapters']), main(['validate', 'toy-mlp']),"
        f" main(['run', '--task', 'toy-iris', '--adapter', 'toy-mlp', '--strategy', 'scratch', '--epochs', '3',"
        f" '--batch-size', '16', '--min-steps', '0', '--no-progress', '--out', {str(out)!r}])]\n"
        "print('codes', codes)\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert "codes [0, 0, 0]" in done.stdout, done.stderr[-2000:]
    assert "toy-mlp" in done.stdout and "adapter 'toy-mlp': contract OK" in done.stdout
    broken = [line for line in done.stderr.splitlines() if "plugin 'broken'" in line]
    assert len(broken) == 1 and "ImportError: this plugin needs a library that is missing" in broken[0]
    assert "Traceback" not in done.stderr
    (record,) = _records(out)
    assert record["domain"] == "tabular" and record["status"] == "ok"
