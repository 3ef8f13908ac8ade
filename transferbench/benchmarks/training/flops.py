"""Training FLOPs, counted by ``torch.utils.flop_counter.FlopCounterMode`` on the run's own model and
data: one step as the model trains (a frozen weight gets no gradient, so a probe's or LoRA's
backward is cheaper than fine-tuning's, and the count says so), charged for every step taken.

The count leaves the run as it was: the model is in eval mode while counted (no BatchNorm statistic
moves, no dropout draws a random number), the batch is taken without the loop's generator, and the
gradients it made are dropped. Text batches differ in length, so the batch counted is the one of
median length in the split's length order. It is counted at the micro-batch the step will run
(whole batches could run out of memory where the loop accumulates) and scaled to the batch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from transferbench.benchmarks.runtime.device import autocast


def conv_backward_flops(
    grad_out_shape: Any,
    x_shape: Any,
    w_shape: Any,
    _bias: Any,
    _stride: Any,
    _padding: Any,
    _dilation: Any,
    transposed: bool,
    _output_padding: Any,
    _groups: int,
    output_mask: Any,
    out_shape: Any,
) -> int:
    """A convolution's backward FLOPs, groups counted. torch 2.11's formula counts a grouped
    convolution's weight gradient as if it were ungrouped, ``groups`` times over: a depthwise 3x3
    conv's backward read 65x its forward (EfficientNet fine-tuning: 14x its true step), where it is
    2x. The weight gradient is one multiply-add per weight per output position (input position, for a
    transposed conv) per example, as the forward pass; the input gradient is torch's own count."""
    count = 0
    if output_mask[0]:
        grad_input = flop_counter.get_shape(out_shape[0])
        count += flop_counter.conv_flop_count(grad_out_shape, w_shape, grad_input, not transposed)
    if output_mask[1]:
        positions = x_shape[2:] if transposed else grad_out_shape[2:]
        count += 2 * math.prod(w_shape) * x_shape[0] * math.prod(positions)
    return count


COUNTED = {torch.ops.aten.convolution_backward: conv_backward_flops}


def median_batch(pipeline: Any, batch_size: int) -> dict[str, torch.Tensor]:
    """The batch in the middle of the split's unshuffled order (text: by length), collated."""
    view = pipeline.unaugmented()
    groups = view.groups(batch_size, shuffle=False, gen=None, drop_last=False)
    return view.collate(groups[len(groups) // 2], None)


def step_flops(
    model: Any, pipeline: Any, batch_size: int, amp: str, micro_batch: int | None = None, *, backward: bool = True
) -> int:
    """FLOPs of one step of ``batch_size`` examples (forward and, with ``backward``, the backward
    the trainable parameters need), counted on a batch of ``micro_batch`` and scaled."""
    counted = min(batch_size, micro_batch or batch_size)
    batch = median_batch(pipeline, counted)
    counted = len(batch["labels"])
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False, custom_mapping=COUNTED)
    try:
        with counter, torch.enable_grad(), autocast(batch["labels"].device, amp):
            logits = model.forward(batch)  # not __call__: a compiled model is counted uncompiled
            if backward and logits.requires_grad:
                F.cross_entropy(logits.float(), batch["labels"]).backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return round(counter.get_total_flops() * batch_size / counted)


def probe_flops(model: Any, pipeline: Any, batch_size: int, amp: str, examples: int) -> int:
    """A closed-form probe's FLOPs: one forward pass per example (its features are computed once)."""
    return round(step_flops(model, pipeline, batch_size, amp, backward=False) * examples / batch_size)
