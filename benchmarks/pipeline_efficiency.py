"""Pipeline efficiency on the CPU stand-in: a tiny text model (BERT, 2 layers, hidden 32, MiniLM's
tokenizer) fine-tuned and LoRA-tuned on the SST-2 fixture, whose steps are so cheap that the host's
work per step (collation, bookkeeping, reads of the device) is most of a step. The figure is the
run's own: real-data samples/s over synthetic-input samples/s at the same batch
(``details.pipeline_efficiency``). It records figures and asserts nothing.

    python benchmarks/pipeline_efficiency.py [OUT_JSONL]   (default results/throughput/pipeline-efficiency-cpu.jsonl)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SST2 = Path(os.environ.get("TRANSFERBENCH_SHARED_DATA", REPO.parent / "shared" / "data")) / "sst2"


def tiny_text_model(folder: Path) -> str:
    """A 2-layer, 32-wide BERT with MiniLM's tokenizer (real word pieces, a tiny network)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from transferbench.adapters.text import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def main(out: str = str(REPO / "results" / "throughput" / "pipeline-efficiency-cpu.jsonl")) -> int:
    from transferbench.benchmarks.execution.matrix import run_all
    from transferbench.benchmarks.plan.spec import RunSpec
    from transferbench.benchmarks.results import append_record, provenance
    from transferbench.benchmarks.training import Budget

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as work:
        model_path = tiny_text_model(Path(work) / "tiny-text")
        specs = [
            RunSpec.create(
                "sst2",
                "minilm-l6",
                strategy,
                data_dir=str(SST2),
                budget=Budget(epochs=1, batch_size=32),
                device="cpu",
                pipeline_efficiency=True,
                model_path=model_path,
                max_length=64,
            )
            for strategy in ("finetune", "lora")
        ]
        records = run_all(specs, out_dir=Path(work), progress=False, log=lambda _: None)
    for record in records:
        figure = record["details"]["pipeline_efficiency"]
        row = {
            "what": "pipeline efficiency, tiny text model (BERT 2x32, MiniLM tokenizer), SST-2 fixture, batch 32, "
            "64 tokens, 1 torch thread",
            "strategy": record["strategy"],
            "real_samples_per_s": figure["real_samples_per_s"],
            "synthetic_samples_per_s": figure["synthetic_samples_per_s"],
            "ratio": figure["ratio"],
            "ratio_replayed": figure.get("ratio_replayed"),
            "replayed_samples_per_s": figure.get("replayed_samples_per_s"),
            "train_s": record["time"]["train_s"],
            "setup_s": record["time"].get("setup_s"),
            "git_commit": provenance.git_commit(),
            **provenance.stamp("cpu"),
        }
        append_record(out, row)
        print(
            f"{row['strategy']}: pipeline efficiency {row['ratio']:.3f} against full-length synthetic batches, "
            f"{row['ratio_replayed']:.3f} against the same real batches stepped back to back "
            f"(real {row['real_samples_per_s']:.0f} samples/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
