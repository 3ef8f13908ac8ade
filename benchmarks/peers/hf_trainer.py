"""The Hugging Face Trainer fine-tuning what ``transferbench run`` fine-tunes, as the peer figure for
the text loop: the same encoder with mean pooling and a linear head, the same data and tokenizer
truncation, batch, learning rates (a head group and a 10x slower encoder group), warm-up + cosine
schedule, weight decay, gradient clipping, precision (bf16 on CUDA) and dynamic padding (to a
multiple of 8 on CUDA, as ours pads). Samples/s are the Trainer's own, counted over all of
``train()``, and the wall time around it. It records figures and asserts nothing.

    python benchmarks/peers/hf_trainer.py --model-path DIR --data-dir SST2_DIR [--epochs 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from transferbench.benchmarks.results import append_record, provenance
from transferbench.benchmarks.training.loop import warmup_cosine


class PooledClassifier(nn.Module):
    """transferbench's text adapter as a Trainer model: encoder, masked mean over tokens, linear head."""

    def __init__(self, encoder: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, num_classes)

    def forward(self, input_ids, attention_mask, labels=None, **_):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        logits = self.head((hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0))
        loss = nn.functional.cross_entropy(logits.float(), labels) if labels is not None else None
        return {"loss": loss, "logits": logits}


def _rows(path: Path) -> tuple[list[str], list[int]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["sentence"] for r in rows], [int(r["label"]) for r in rows]


def _dataset(tokenizer, path: Path, max_length: int):
    texts, labels = _rows(path)
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    return [
        {"input_ids": ids, "attention_mask": mask, "labels": label}
        for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], labels, strict=True)
    ]


def _optimizer(model: PooledClassifier, args: argparse.Namespace, steps: int):
    """ours: AdamW, head at lr, encoder at lr x scale, no decay on biases and norms, warm-up + cosine."""
    groups = []
    for params, lr in ((list(model.head.parameters()), args.lr), (list(model.encoder.parameters()), args.lr * 0.1)):
        groups.append({"params": [p for p in params if p.ndim > 1], "lr": lr, "weight_decay": 0.01})
        groups.append({"params": [p for p in params if p.ndim <= 1], "lr": lr, "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps, 0.1))


def run(args: argparse.Namespace) -> dict:
    from transformers import AutoModel, AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments

    cuda = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(args.model_path)
    train = _dataset(tokenizer, Path(args.data_dir) / "train.csv", args.max_length)
    model = PooledClassifier(AutoModel.from_pretrained(args.model_path), 2)
    steps = (len(train) // args.batch_size) * args.epochs
    with tempfile.TemporaryDirectory() as work:
        training = TrainingArguments(
            output_dir=work,
            per_device_train_batch_size=args.batch_size,
            num_train_epochs=args.epochs,
            bf16=cuda,
            use_cpu=not cuda,
            max_grad_norm=5.0,
            dataloader_drop_last=True,
            logging_steps=10**9,
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
        )
        collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if cuda else None)
        trainer = Trainer(
            model=model,
            args=training,
            train_dataset=train,
            data_collator=collator,
            optimizers=_optimizer(model, args, steps),
        )
        start = time.perf_counter()
        metrics = trainer.train().metrics
        wall = time.perf_counter() - start
    device = "cuda" if cuda else "cpu"
    return {
        "peer": "huggingface-trainer",
        "setup": {
            "model": Path(args.model_path).name,
            "examples": len(train),
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "max_length": args.max_length,
            "lr_head": args.lr,
            "lr_encoder": args.lr * 0.1,
            "precision": "bf16" if cuda else "fp32",
            "dynamic_padding": True,
        },
        "results": {"train": {"samples_per_s": metrics["train_samples_per_second"], "train_s": wall}},
        "git_commit": provenance.git_commit(),
        **provenance.stamp(device),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--data-dir", required=True, help="train.csv with sentence,label (the SST-2 fixture)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-4, help="head rate; the encoder trains at 0.1x (ours)")
    parser.add_argument("--out", help="append the record to OUT/peers.jsonl")
    args = parser.parse_args(argv)
    record = run(args)
    print(
        f"HF Trainer: {record['results']['train']['samples_per_s']:.1f} samples/s "
        f"({record['results']['train']['train_s']:.1f} s)"
    )
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        append_record(Path(args.out) / "peers.jsonl", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
