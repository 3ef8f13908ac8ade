"""Task and matrix files are held to the rules flags are: no key given twice, UTF-8 or one line,
values checked as the same flag is, task files named relative to the matrix, safe names, and
nothing written outside the output folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.cli.parser import build_parser as _build_parser
from transferbench.benchmarks.cli.run import specs_from_args as _specs_from_args

TASK = """\
name: {name}
domain: text
description: a text task as a file
loader: dir
input_column: sentence
label_column: label
test_split: validation
class_names: [negative, positive]
"""


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    (line,) = [line for line in err.splitlines() if line.startswith("transferbench: error: ")]
    return line.removeprefix("transferbench: error: ")


def test_a_key_given_twice_in_a_task_file_is_refused_with_both_lines(tmp_path, capsys):
    task = _write(tmp_path, "twice.yaml", TASK.format(name="twice") + "domain: vision\n")
    assert main(["validate", str(task)]) == 2
    assert _error(capsys) == f"{task}:9: domain: given twice (first at line 2); keep one"


def test_a_key_given_twice_in_a_matrix_file_is_refused_at_any_depth(tmp_path, capsys):
    matrix = _write(tmp_path, "m.yaml", "budget:\n  epochs: 2\n  epochs: 3\nruns: []\n")
    assert main(["run", "--config", str(matrix), "--show-config"]) == 2
    assert _error(capsys) == f"{matrix}:3: epochs: given twice (first at line 2); keep one"


def test_a_task_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    task = tmp_path / "latin1.yaml"
    task.write_bytes((TASK.format(name="latin") + "# café\n").encode("latin-1"))
    assert main(["validate", str(task)]) == 2
    line = _error(capsys)
    assert line.startswith(f"{task}:9: not UTF-8 text (byte ") and line.endswith("save the file as UTF-8")


@pytest.mark.parametrize("seeds", ["[-1]", "[0, 0]"])
def test_matrix_seeds_are_checked_as_the_flag_is(tmp_path, capsys, seeds):
    matrix = _write(
        tmp_path, "m.yaml", f"seeds: {seeds}\nruns:\n  - {{task: digits, adapter: resnet18, strategy: scratch}}\n"
    )
    assert main(["run", "--config", str(matrix), "--show-config"]) == 2
    from_file = _error(capsys)
    flag = seeds.strip("[]").replace(" ", "")
    assert main(["run", "--task", "digits", "--adapter", "resnet18", "--seeds", flag, "--show-config"]) == 2
    from_flag = _error(capsys)
    assert from_file.startswith(f"{matrix}:1: seeds: expected a list of integers of at least 0 (distinct)")
    assert from_flag.startswith("--seeds: ") and from_file.split("seeds: ", 1)[1] == from_flag.split(": ", 1)[1]


def test_a_matrix_names_a_task_file_relative_to_itself(tmp_path, capsys, monkeypatch):
    _write(tmp_path / "project" / "tasks", "news.yaml", TASK.format(name="news-rel"))
    matrix = _write(
        tmp_path / "project",
        "m.yaml",
        "runs:\n  - {task: ./tasks/news.yaml, adapter: tfidf-logreg, strategy: scratch, data_dir: data}\n",
    )
    monkeypatch.chdir(tmp_path)  # the matrix's folder, not the working folder, anchors the path
    assert main(["run", "--config", str(matrix), "--show-config"]) == 0
    assert "task: news-rel" in capsys.readouterr().out
    missing = _write(tmp_path / "project", "m2.yaml", "runs:\n  - {task: ./nope.yaml, adapter: a, strategy: s}\n")
    assert main(["run", "--config", str(missing), "--show-config"]) == 2
    assert "m2.yaml:2: task: task file './nope.yaml' not found" in _error(capsys)


def test_a_matrix_include_path_registers_its_folder(tmp_path, capsys):
    _write(tmp_path / "tasks", "one.yaml", TASK.format(name="inc-matrix"))
    matrix = _write(
        tmp_path,
        "m.yaml",
        "include_path: [tasks]\nruns:\n  - {task: inc-matrix, adapter: tfidf-logreg, strategy: scratch, data_dir: d}\n",
    )
    assert main(["validate", str(matrix)]) == 0
    assert main(["run", "--config", str(matrix), "--show-config"]) == 0  # the same file read twice is fine
    assert "task: inc-matrix" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["../../../x", "a/b", ".hidden", "with space"])
def test_a_task_name_that_is_not_a_safe_identifier_is_refused(tmp_path, capsys, name):
    task = _write(tmp_path, "t.yaml", TASK.format(name=f"'{name}'"))
    assert main(["validate", str(task)]) == 2
    assert _error(capsys).startswith(f"{task}:1: name: {name!r} is not a valid name: use letters, digits")


def test_a_suite_name_that_is_not_a_safe_identifier_is_refused(tmp_path, capsys):
    run = "  - {task: digits, adapter: resnet18, strategy: scratch}\n"
    matrix = _write(tmp_path, "m.yaml", f"name: ../up\nruns:\n{run}")
    assert main(["run", "--config", str(matrix), "--show-config"]) == 2
    assert _error(capsys).startswith(f"{matrix}:1: name: suite '../up' is not a valid name")


@pytest.mark.parametrize("adapter", ["hf:/abs/models/bert", "hf:../../up", "timm:resnet18.a1_in1k"])
def test_the_default_output_folder_stays_under_runs(adapter):
    args = _build_parser().parse_args(["run", "--task", "digits", "--adapter", adapter])
    _, _, label = _specs_from_args(args)
    runs = Path("runs").resolve()
    assert (runs / label).resolve().parent == runs and "/" not in label


@pytest.mark.parametrize(
    ("domain", "keys", "error"),
    [
        ("vision", "image_size: 4", "7: image_size: expected an integer of at least 8, got 4"),
        ("audio", "duration_s: -3", "7: duration_s: expected a finite number in (0, 600], got -3"),
        ("audio", "sample_rate: 0", "7: sample_rate: expected an integer of at least 1, got 0"),
    ],
)
def test_a_task_files_domain_keys_are_checked_as_their_flags_are(tmp_path, capsys, domain, keys, error):
    text = f"name: t\ndomain: {domain}\ndescription: d\nloader: dir\nlabel_column: label\ntest_split: test\n{keys}\n"
    task = _write(tmp_path, "t.yaml", text)
    assert main(["validate", str(task)]) == 2
    assert _error(capsys) == f"{task}:{error}"


def test_version_prints_the_package_version(capsys):
    import transferbench

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"transferbench {transferbench.__version__}"
