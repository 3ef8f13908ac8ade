"""Options belong to the things they configure: a toy strategy's knob, a toy domain's run option and
a toy model family's LoRA targets each work from the command line, a matrix file and ``validate``,
added as one file each (tests/toy_*.py); every option of every strategy is a flag, a matrix key and a
line of ``list``; and each cell of a matrix is resolved once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.cli.parser import build_parser
from transferbench.benchmarks.cli.run import specs_from_args
from transferbench.benchmarks.execution import matrix
from transferbench.benchmarks.plan.suites import read_matrix
from transferbench.benchmarks.results import read_records
from transferbench.benchmarks.strategies import STRATEGIES
from transferbench.options import shown


@pytest.fixture(autouse=True)
def _toys():
    """The toys register when a test here first runs (not when tests are collected)."""
    import toy_domain  # noqa: F401  (registers the tabular domain, its task and adapter, and --noise)
    import toy_family  # noqa: F401  (registers the toymlp: family and its PEFT targets)
    import toy_strategy  # noqa: F401  (registers frozen-stem and --frozen-blocks)


TOY = ["run", "--task", "toy-iris", "--epochs", "3", "--batch-size", "16", "--min-steps", "0", "--no-progress"]


def _matrix(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    (line,) = [line for line in err.splitlines() if line.startswith("transferbench: error: ")]
    return line.removeprefix("transferbench: error: ")


def _records(out: Path) -> dict[str, dict]:
    return {r["strategy"]: r for r in read_records(out / "results.jsonl")}


def test_a_toy_strategys_knob_works_from_the_cli_a_matrix_and_validate(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = [*TOY, "--adapter", "toy-mlp", "--strategy", "frozen-stem", "--frozen-blocks", "2", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    record = _records(out)["frozen-stem"]
    assert record["config"]["strategy"]["frozen_blocks"] == 2
    assert record["params"]["trainable"] == record["params"]["total"] - (4 * 32 + 32) - (32 * 32 + 32)
    matrix_file = _matrix(
        tmp_path,
        """\
        budget: {epochs: 3, batch_size: 16, min_steps: 0}
        runs:
          - {task: toy-iris, adapter: toy-mlp, strategy: frozen-stem, frozen_blocks: 2}
        """,
    )
    assert main(["validate", str(matrix_file)]) == 0
    assert main(["run", "--config", str(matrix_file), "--out", str(tmp_path / "file"), "--no-progress"]) == 0
    assert _records(tmp_path / "file")["frozen-stem"]["run_id"] == record["run_id"]  # one option, one identity
    assert main([*argv[:-2], "--frozen-blocks", "-1", "--out", str(out)]) == 2
    assert _error(capsys) == "--frozen-blocks: expected an integer of at least 0, got -1"


def test_a_toy_domains_run_option_works_from_the_cli_a_matrix_and_validate(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main([*TOY, "--adapter", "toy-mlp", "--strategy", "scratch", "--noise", "0.3", "--out", str(out)]) == 0
    assert _records(out)["scratch"]["config"]["noise"] == 0.3  # the domain's input settings: the identity
    budget = "budget: {epochs: 3, batch_size: 16, min_steps: 0}\n"
    matrix_file = _matrix(
        tmp_path, budget + "runs:\n  - {task: toy-iris, adapter: toy-mlp, strategy: scratch, noise: 0.3}\n"
    )
    assert main(["validate", str(matrix_file)]) == 0
    (spec,) = specs_from_args(build_parser().parse_args(["run", "--config", str(matrix_file)]))[0]
    assert spec.options == {"noise": 0.3}
    assert main(["run", "--config", str(matrix_file), "--out", str(tmp_path / "file"), "--no-progress"]) == 0
    assert _records(tmp_path / "file")["scratch"]["run_id"] == _records(out)["scratch"]["run_id"]  # the same run
    digits = ["run", "--task", "digits", "--adapter", "resnet18", "--noise", "0.3", "--out", str(out)]
    assert main(digits) == 2
    assert _error(capsys) == "--noise applies to tabular tasks; this run's task is vision"
    bad = _matrix(tmp_path, "runs:\n  - {task: toy-iris, adapter: toy-mlp, strategy: scratch, noise: -1}\n")
    assert main(["validate", str(bad)]) == 2
    assert _error(capsys) == f"{bad}:2: noise: expected a finite number of at least 0, got -1"


def test_a_toy_familys_lora_targets_work_from_the_cli_a_matrix_and_validate(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main([*TOY, "--adapter", "toymlp:24", "--strategy", "lora,ia3", "--lora-rank", "2", "--out", str(out)]) == 0
    records = _records(out)
    assert records["lora"]["details"]["peft"]["wrapped_modules"] == ["backbone.0", "backbone.2"]
    assert records["lora"]["config"]["strategy"]["lora_rank"] == 2
    assert records["ia3"]["details"]["peft"]["feedforward_modules"] == ["backbone.2"]
    budget = "budget: {epochs: 3, batch_size: 16, min_steps: 0}\n"
    matrix_file = _matrix(
        tmp_path, budget + "runs:\n  - {task: toy-iris, adapter: 'toymlp:24', strategy: lora, lora_rank: 2}\n"
    )
    assert main(["validate", str(matrix_file)]) == 0
    assert main(["run", "--config", str(matrix_file), "--out", str(tmp_path / "file"), "--no-progress"]) == 0
    assert _records(tmp_path / "file")["lora"]["run_id"] == records["lora"]["run_id"]  # the same run
    assert main(["run", "--task", "toy-iris", "--adapter", "toy-mlp", "--strategy", "lora", "--out", str(out)]) == 2
    assert "strategy 'lora' does not apply to adapter 'toy-mlp'" in _error(capsys)


def test_every_option_of_every_strategy_is_a_flag_a_matrix_key_and_listed(tmp_path, capsys):
    assert main(["list", "strategies"]) == 0
    listing = capsys.readouterr().out
    for name in STRATEGIES.names():
        strategy = STRATEGIES.get(name)
        for opt in strategy.options():
            value = getattr(strategy, opt.name)
            assert f"{opt.name}={shown(value)}" in listing, (name, opt.name)
            if value is None or opt.parse is not None:
                continue  # nothing to write back (none), or a form of its own (the C grid)
            text = str(value).lower() if isinstance(value, bool) else shown(value)
            flag = (
                [opt.flag if value is not False else f"--no-{opt.flag[2:]}"] if opt.kind is bool else [opt.flag, text]
            )
            argv = ["run", "--task", "digits", "--adapter", "resnet18", "--strategy", name, *flag]
            (spec,) = specs_from_args(build_parser().parse_args(argv))[0]
            assert spec.options[opt.name] == value, (name, opt.name)
            matrix_file = _matrix(tmp_path, f"runs:\n  - {{task: digits, adapter: resnet18, strategy: {name}}}\n")
            matrix_file.write_text(matrix_file.read_text().rstrip("}\n") + f", {opt.name}: {text}}}\n")
            assert read_matrix(matrix_file)[0].runs[0]["options"][opt.name] == value, (name, opt.name)


def test_each_cell_is_resolved_once(tmp_path, monkeypatch):
    calls: dict[str, int] = {"resolve": 0, "bind": 0}
    real_resolve, real_bind = matrix.resolve, matrix.bind

    def counting_resolve(spec):
        calls["resolve"] += 1
        return real_resolve(spec)

    def counting_bind(plan, data, amp):
        calls["bind"] += 1
        return real_bind(plan, data, amp)

    monkeypatch.setattr(matrix, "resolve", counting_resolve)
    monkeypatch.setattr(matrix, "bind", counting_bind)
    argv = [*TOY, "--adapter", "toy-mlp", "--strategy", "scratch,frozen-stem", "--seeds", "0,1"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    assert calls == {"resolve": 4, "bind": 4}


@pytest.mark.parametrize(
    ("flag", "says"),
    [
        (["--lora-rank", "4"], "--lora-rank applies to strategies that have it (lora); this run: scratch"),
        (["--frozen-blokcs", "2"], "--frozen-blokcs: unknown option; did you mean --frozen-blocks?"),
    ],
)
def test_an_option_no_run_takes_is_one_line(flag, says, capsys):
    assert main(["run", "--task", "digits", "--adapter", "resnet18", "--strategy", "scratch", *flag]) == 2
    assert _error(capsys) == says
