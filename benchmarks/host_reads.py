"""Host reads of device tensors (Tensor.item/.cpu/.tolist/.numpy and truth/number conversions, made
from transferbench, transformers or PEFT code) in one training epoch of a tiny BERT (320 texts, batch 8
= 40 steps, finetune and LoRA) and in predicting 160 texts (20 batches). On a GPU each is a wait for the
device. Takes the checkout to measure, so a commit before a change can be counted too:

    git worktree add /tmp/before 7fd0616^ && python benchmarks/host_reads.py /tmp/before
    python benchmarks/host_reads.py .
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()))

import numpy as np
import peft
import torch
import transformers

import transferbench
from transferbench.adapters import ADAPTERS
from transferbench.benchmarks.strategies import STRATEGIES
from transferbench.benchmarks.training import Budget, FitRun, loop, train
from transferbench.tasks import DOMAINS
from transferbench.tasks.base import Split, TaskConfig
from transferbench.testing import tiny_bert

PACKAGES = tuple(str(Path(m.__file__).parent) for m in (transferbench, transformers, peft))
READS = ("item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__")
COUNT = {"on": False, "n": 0}
CPU = torch.device("cpu")
CONFIG = TaskConfig("t", "text", "t", loader="builtin")


def _install() -> None:
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, __original=original, **kwargs):
            if COUNT["on"] and sys._getframe(1).f_code.co_filename.startswith(PACKAGES):
                COUNT["n"] += 1
            return __original(self, *args, **kwargs)

        setattr(torch.Tensor, name, counted)


def _counting(fn, *args):
    """(host reads while ``fn(*args)`` ran, what it returned)."""
    COUNT.update(on=True, n=0)
    try:
        value = fn(*args)
    finally:
        COUNT["on"] = False
    return COUNT["n"], value


def epoch_reads(strategy: str, work: Path) -> int:
    model = ADAPTERS.get("minilm-l6").create(num_classes=2, pretrained=True, **tiny_bert(work))
    STRATEGIES.get(strategy).prepare(model)
    words = ["good", "bad", "fine", "dull", "film", "plot"]
    texts = [" ".join(words[(i + j) % 6] for j in range(3 + i % 5)) for i in range(320)]
    split = Split(texts, np.arange(320) % 2)
    train_pipe, val_pipe = DOMAINS.get("text").pipelines((split, split), model, CONFIG, {}, CPU)
    real = loop._Loop.epoch
    reads = []

    def counted_epoch(self, epoch):
        count, outcome = _counting(real, self, epoch)
        reads.append(count)
        return outcome

    loop._Loop.epoch = counted_epoch
    try:
        run = FitRun(model, Budget(epochs=1, batch_size=8, min_steps=0), train_pipe, val_pipe, CPU, "off", 0)
        train(run, STRATEGIES.get(strategy).param_groups(model))
    finally:
        loop._Loop.epoch = real
    return reads[0]


def predict_reads(work: Path) -> int:
    predict = getattr(loop, "predict", None)
    if predict is None:  # moved to training.evaluate with #24
        from transferbench.benchmarks.training.evaluate import predict
    model = ADAPTERS.get("minilm-l6").create(num_classes=2, pretrained=True, **tiny_bert(work))
    split = Split([f"good film {i}" for i in range(160)], np.arange(160) % 2)
    pipe, _ = DOMAINS.get("text").pipelines((split, split), model, CONFIG, {}, CPU)
    return _counting(predict, model, pipe, 8, CPU, "off")[0]


if __name__ == "__main__":
    _install()
    work = Path(tempfile.mkdtemp())
    out = {f"{s}_epoch_40_steps": epoch_reads(s, work) for s in ("finetune", "lora")}
    out["predict_160_texts_20_batches"] = predict_reads(work)
    print(json.dumps({"checkout": transferbench.__file__, **out}))
