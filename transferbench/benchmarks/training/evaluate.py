"""Evaluation: predictions over a pipeline (kept on the device until the split is done, then read
once), accuracy, and precise BatchNorm statistics. Across processes each rank predicts its share of
the batches and every rank gets all predictions."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from transferbench.adapters.base import Adapter
from transferbench.benchmarks.runtime import distributed
from transferbench.benchmarks.runtime.device import autocast, sync


@torch.no_grad()
def recalibrate_batchnorm(model: Adapter, pipeline: Any, batch_size: int, max_batches: int = 20) -> None:
    """Precise BN: re-estimate running statistics of the trainable BatchNorm layers as a plain
    average over up to ``max_batches`` un-augmented training batches."""
    layers = [m for m in model.batchnorm_layers() if any(p.requires_grad for p in m.parameters())]
    if model.bn_policy != "train" or not layers:
        return
    was_training = model.training
    saved = [m.momentum for m in layers]
    model.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
        m.train()
    for i, batch in enumerate(pipeline.batches(batch_size, shuffle=False)):
        if i >= max_batches:
            break
        if len(batch["labels"]) > 1:  # a trailing batch of one cannot be normalised in training mode
            model.forward_features(batch)
    for m, momentum in zip(layers, saved, strict=True):
        m.momentum = momentum
    model.train(was_training)


def in_order(chunks: list[torch.Tensor], indices: list[torch.Tensor]) -> torch.Tensor:
    """Undo a pipeline's batching order (text pipelines sort by length) using each batch's ``index``."""
    values = torch.cat(chunks)
    out = torch.empty_like(values)
    out[torch.cat(indices).cpu()] = values
    return out


def _my_batches(pipeline: Any, batch_size: int) -> Any:
    """This rank's evaluation batches: all of them in one process, every world-size-th across several."""
    if not distributed.is_distributed():
        return pipeline.batches(batch_size, shuffle=False)
    return pipeline.batches(batch_size, shuffle=False, share=(distributed.rank(), distributed.world_size()))


@torch.no_grad()
def predict_proba(
    model: Adapter, pipeline: Any, batch_size: int, device: torch.device, amp: str
) -> tuple[np.ndarray, np.ndarray, float]:
    """(predicted class ids, class probabilities [N, C] in float32, seconds) over a pipeline, in the
    split's order. The argmax is of the logits (so it is the same as ``predict``'s); the
    probabilities serve calibration (ECE, NLL). Across processes each rank predicts its share of the
    batches with rank 0's BatchNorm statistics, and every rank gets all predictions."""
    distributed.broadcast_batchnorm(model)
    model.eval()
    sync(device)
    start = time.perf_counter()
    preds, probs, indices = [], [], []
    with torch.inference_mode(), autocast(device, amp):
        for batch in _my_batches(pipeline, batch_size):  # on the device: no read until the split is done
            logits = model(batch).float()
            preds.append(logits.argmax(1))
            probs.append(torch.softmax(logits, dim=1))
            indices.append(batch["index"])
    parts = [[torch.cat(chunks).cpu()] if chunks else [] for chunks in (preds, probs, indices)]
    gathered = [distributed.gather(part) for part in parts]
    sync(device)
    seconds = time.perf_counter() - start
    return in_order(gathered[0], gathered[2]).numpy(), in_order(gathered[1], gathered[2]).numpy(), seconds


def predict(model: Adapter, pipeline: Any, batch_size: int, device: torch.device, amp: str) -> tuple[np.ndarray, float]:
    """Predicted class ids over a pipeline (in the split's order) and the seconds it took."""
    preds, _, seconds = predict_proba(model, pipeline, batch_size, device, amp)
    return preds, seconds


def accuracy(model: Adapter, pipeline: Any, batch_size: int, device: torch.device, amp: str) -> float:
    preds, _ = predict(model, pipeline, batch_size, device, amp)
    return float((preds == pipeline.labels.cpu().numpy()).mean())
