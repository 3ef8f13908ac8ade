"""`transferbench bench`: works for every neural adapter on CPU, records its setup, handles OOM."""

import pytest
import torch

from transferbench.adapters import ADAPTERS
from transferbench.benchmarks.cli import main
from transferbench.benchmarks.execution import throughput
from transferbench.benchmarks.execution.throughput import BenchConfig, bench, compare_bare, compare_merged
from transferbench.benchmarks.results import read_records
from transferbench.errors import UserError

NEURAL = [n for n in ADAPTERS.names() if not ADAPTERS.get(n).classical]


def _cfg(name, tmp_path, **kw):
    spec = ADAPTERS.get(name)
    model_path = (spec.tiny(tmp_path) if callable(spec.tiny) else {}).get("model_path")  # tiny hub-style dirs
    options = {
        "batch_size": 2,
        "image_size": 32,
        "seq_len": 16,
        "steps": 2,
        "warmup": 1,
        "device": "cpu",
        "num_classes": 10,
        "model_path": model_path,
    }
    return BenchConfig(adapter=name, **{**options, **kw})


@pytest.mark.parametrize("adapter", NEURAL)
def test_bench_runs_for_every_neural_adapter(adapter, tmp_path):
    record = bench(_cfg(adapter, tmp_path))
    for mode in ("train", "infer"):
        r = record["results"][mode]
        assert r["status"] == "ok" and r["samples_per_s"] > 0 and r["timed_steps"] == 2
        assert r["step_ms_p10"] <= r["step_ms_median"] <= r["step_ms_p90"]
    assert record["setup"]["amp"] == "off" and record["params"]["total"] > 0
    assert "warm-up" in record["excluded"] and record["versions"]["torch"]


def test_out_of_memory_halves_the_batch_and_says_so(tmp_path, monkeypatch):
    real = throughput.measure

    def fussy(model, cfg, batch_size, device, amp, mode):
        if batch_size > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        return real(model, cfg, batch_size, device, amp, mode)

    monkeypatch.setattr(throughput, "measure", fussy)
    record = bench(
        BenchConfig(
            adapter="efficientnet-lite0", batch_size=32, image_size=32, steps=2, warmup=1, device="cpu", mode="train"
        )
    )
    assert record["results"]["train"]["batch_size"] == 4
    assert record["results"]["train"]["oom_halvings"] == 3
    assert "infer" not in record["results"]


def test_compare_bare_interleaves_both_loops(tmp_path):
    record = compare_bare(_cfg("efficientnet-lite0", tmp_path, steps=4), rounds=2)
    assert record["ours"]["timed_steps"] == record["bare"]["timed_steps"] == 4
    assert record["ratio"] == pytest.approx(record["ours"]["samples_per_s"] / record["bare"]["samples_per_s"])


@pytest.mark.parametrize("adapter", ["efficientnet-lite0", "bert-tiny"])
def test_merged_compares_lora_inference_merged_and_unmerged(adapter, tmp_path):
    record = compare_merged(_cfg(adapter, tmp_path, steps=4), rounds=2)
    assert record["wrapped_modules"] > 0
    assert record["merged"]["timed_steps"] == record["unmerged"]["timed_steps"] == 4
    assert record["ratio"] == pytest.approx(record["merged"]["samples_per_s"] / record["unmerged"]["samples_per_s"])


def test_merged_refuses_an_adapter_lora_cannot_wrap(tmp_path):
    with pytest.raises(UserError, match="strategy 'lora' does not apply to adapter 'speaker-encoder'"):
        compare_merged(_cfg("speaker-encoder", tmp_path))


def test_merged_cli_appends_a_readable_record(tmp_path, capsys):
    argv = ["bench", "--adapter", "efficientnet-lite0", "--image-size", "32", "--batch-size", "2", "--merged"]
    assert main([*argv, "--steps", "2", "--warmup", "1", "--device", "cpu", "--out", str(tmp_path)]) == 0
    assert "merged" in capsys.readouterr().out
    (record,) = read_records(tmp_path / "bench.jsonl")
    assert record["comparison"].startswith("lora merged vs unmerged")


def test_bench_cli_appends_a_record(tmp_path, capsys):
    code = main(
        [
            "bench",
            "--adapter",
            "efficientnet-lite0",
            "--image-size",
            "32",
            "--batch-size",
            "2",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--device",
            "cpu",
            "--mode",
            "infer",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert "| efficientnet-lite0 | infer | 2 |" in capsys.readouterr().out
    (record,) = read_records(tmp_path / "bench.jsonl")
    assert record["results"]["infer"]["samples_per_s"] > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--adapter", "tfidf-logreg"], "fitted in closed form"),
        (["--adapter", "resnet18", "--steps", "0"], "--steps must be a positive integer"),
        (["--adapter", "resnt18"], "Did you mean: resnet18"),
    ],
)
def test_bench_bad_input(argv, message, capsys):
    assert main(["bench", "--device", "cpu", *argv]) == 2
    assert message in capsys.readouterr().err
