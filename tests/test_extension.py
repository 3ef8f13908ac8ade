"""Adding a domain or a strategy is one file outside the package (tests/toy_domain.py,
tests/toy_strategy.py), run end to end through `transferbench run`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from transferbench.benchmarks.cli import main
from transferbench.benchmarks.results import read_records

HERE = Path(__file__).resolve().parent


def test_toy_domain_and_strategy_run_end_to_end(tmp_path, capsys):
    import toy_domain  # noqa: F401  (registers the domain, its task and its adapter)
    import toy_strategy  # noqa: F401  (registers the strategy)

    out = tmp_path / "out"
    argv = ["run", "--task", "toy-iris", "--adapter", "toy-mlp", "--strategy", "scratch,frozen-stem"]
    code = main([*argv, "--epochs", "5", "--batch-size", "16", "--min-steps", "0", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    records = {r["strategy"]: r for r in read_records(out / "results.jsonl")}
    assert set(records) == {"scratch", "frozen-stem"}
    for record in records.values():
        assert record["domain"] == "tabular" and record["status"] == "ok"
        assert record["metrics"]["accuracy"] > 0.6  # iris is easy; chance is 1/3
    # the toy strategy's prepare() ran: the first block (4x32 + 32 parameters) did not train
    stem = 4 * 32 + 32
    assert records["scratch"]["params"]["trainable"] - records["frozen-stem"]["params"]["trainable"] == stem
    assert "frozen-stem" in (out / "results.md").read_text()


def test_toy_domain_pipeline_passes_the_contract_batch_check():
    import toy_domain

    from transferbench.tasks import DOMAINS

    domain = DOMAINS.get("tabular")
    split = domain.synthetic_split(8, 3, {})
    model = toy_domain.TabularMLP(num_classes=3)
    (pipe,) = domain.pipelines([split], model, None, {}, __import__("torch").device("cpu"))
    batch = next(pipe.batches(4, shuffle=False))
    assert model(batch).shape == (4, 3)
    assert np.array_equal(batch["index"].numpy(), np.arange(4))


def test_the_package_does_not_know_the_toy_names():
    """Adding them touched no file of the package: a fresh interpreter has neither registered."""
    code = (
        "import transferbench.tasks as t, transferbench.benchmarks.strategies.base as s;"
        "print('tabular' in t.DOMAINS, 'frozen-stem' in s.STRATEGIES)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
