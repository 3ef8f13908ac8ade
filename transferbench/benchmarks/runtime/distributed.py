"""One run across processes: DistributedDataParallel under ``torchrun`` or ``accelerate launch``.

A launcher starts one process per device and tells each who it is through the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). Without those
variables everything here is the single-process case: world size 1, no process group, every helper
the identity, so single-process results and run identities are exactly what they were.

How a run divides its work (docs/distributed.md): every rank draws the same *global* batch from the
same seeded generator and keeps its contiguous share (:func:`local_share`), so data order and
augmentation are those of the single-process run and the generators never diverge; gradients are
averaged by DDP; evaluation splits the batches between ranks and gathers the predictions
(:func:`gather`); only rank 0 writes.
"""

from __future__ import annotations

import os
import time
import warnings
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.elastic.multiprocessing.errors import ErrorHandler
from torch.nn.parallel import DistributedDataParallel

from transferbench.errors import UserError

# A collective waiting longer than this for a peer gives up: a hung rank ends the run with an error
# instead of holding every other rank forever (a dead one is noticed at once). Ranks do the same
# work between collectives (a step, an evaluation, loading the same data, fitting the same probe),
# so a healthy rank is never minutes behind the others.
TIMEOUT = timedelta(minutes=5)
# How long a failing rank waits before printing its error line: when the failure is the echo of a
# peer's (a collective that lost its peer), the launcher stops this rank within this time, so the
# run ends with the one line of the rank that failed first.
ECHO_GRACE_S = 5.0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_distributed() -> bool:
    """Whether this process is one of several of one run (a launcher set WORLD_SIZE > 1)."""
    return world_size() > 1


def is_main() -> bool:
    """Rank 0: the one process that writes records, checkpoints and tables, and prints."""
    return rank() == 0


def label() -> str:
    """``rank 1/2`` for messages, or "" in a single process."""
    return f"rank {rank()}/{world_size()}" if is_distributed() else ""


def device_for(device: torch.device) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` under a launcher, ``device`` otherwise."""
    if not is_distributed() or device.type != "cuda":
        return device
    local = local_rank()
    if device.index is not None and device.index != local:
        raise UserError(
            f"--device {device}: under a launcher each process uses the GPU of its LOCAL_RANK "
            f"(cuda:{local} here); give --device cuda or auto"
        )
    if local >= torch.cuda.device_count():
        raise UserError(f"LOCAL_RANK {local}, but this machine has {torch.cuda.device_count()} GPUs")
    return torch.device("cuda", local)


def init(device: torch.device) -> None:
    """Join the launcher's process group once (gloo on CPU, nccl on CUDA); nothing in one process."""
    if not is_distributed() or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)  # nccl and all_gather_object use the current device
        dist.init_process_group("nccl", timeout=TIMEOUT, device_id=device)  # barriers on this device
    else:
        dist.init_process_group("gloo", timeout=TIMEOUT)


def shutdown() -> None:
    """Leave the process group (NCCL warns at exit about one never destroyed)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def backend() -> str | None:
    return dist.get_backend() if dist.is_initialized() else None


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def local_batch_size(global_batch: int) -> int:
    """Examples per rank per step (the divisibility is checked before any data loads)."""
    return global_batch // world_size()


def local_share(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This rank's contiguous share of a global batch (every value is batch-first)."""
    if not is_distributed():
        return batch
    per = local_batch_size(len(batch["labels"]))
    start = rank() * per
    return {k: v[start : start + per] for k, v in batch.items()}


def average(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over ranks (the global loss: every rank then agrees on divergence)."""
    if not dist.is_initialized():
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / world_size()


def gather(items: list[Any]) -> list[Any]:
    """Every rank's ``items``, concatenated in rank order, on every rank (CPU objects only)."""
    if not dist.is_initialized():
        return items
    parts: list[Any] = [None] * world_size()
    dist.all_gather_object(parts, items)
    return [item for part in parts for item in part]


def agree(value: Any, what: str) -> None:
    """Refuse to go on when ranks hold different ``value``s (e.g. different runs or checkpoints):
    they would otherwise wait on each other's collectives until the timeout, or train garbage."""
    if not dist.is_initialized():
        return
    seen = gather([value])
    if any(v != seen[0] for v in seen):
        raise UserError(f"the processes of this run disagree on {what}: {', '.join(map(str, seen))} by rank")


def broadcast_batchnorm(model: nn.Module) -> None:
    """Rank 0's BatchNorm running statistics on every rank: each rank's statistics saw only its
    share of each batch, and an evaluation must use one set. (BatchNorm's are the buffers training
    changes; the rest, position ids and the like, are constants, some of them expanded views.)"""
    if not dist.is_initialized():
        return
    for layer in model.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            for buffer in layer.buffers(recurse=False):
                dist.broadcast(buffer, 0)


def convert_sync_batchnorm(model: nn.Module) -> int:
    """Replace BatchNorm layers by SyncBatchNorm in place (statistics over the global batch); the
    number converted. The new layers are ``_BatchNorm``s, so ``batchnorm_layers()`` finds them."""
    nn.SyncBatchNorm.convert_sync_batchnorm(model)  # in place below the top module (never a BatchNorm)
    return sum(isinstance(m, nn.SyncBatchNorm) for m in model.modules())


class Replica:
    """The module training steps call: the model itself in one process, else a
    DistributedDataParallel wrapper of it, rebuilt when the set of trainable parameters changes
    (gradual unfreezing), since DDP registers the parameters that require grad when it is built."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.model, self.device = model, device
        self._key: tuple[bool, ...] | None = None
        self._ddp: nn.Module | None = None

    def module(self) -> nn.Module:
        if not dist.is_initialized():
            return self.model
        key = tuple(p.requires_grad for p in self.model.parameters())
        if key != self._key:
            # DDP copies a gradient whose strides differ from its bucket's (1x1 convolutions' grads come
            # out channels-last on CPU) and says so once per process: nothing a user can act on
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
            self._ddp = None  # drop the old wrapper (and its gradient hooks) before building a new one
            self._ddp = DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                # buffers are broadcast before each evaluation instead of before every forward
                broadcast_buffers=False,
                # adapters by name (timm, hf, plugins) may hold trainable parameters a forward skips
                find_unused_parameters=True,
            )
            self._key = key
        return self._ddp


def no_sync(model: nn.Module, *, last: bool) -> AbstractContextManager:
    """Skip DDP's gradient all-reduce for every micro-batch but the last of a step."""
    if last or not isinstance(model, DistributedDataParallel):
        return nullcontext()
    return model.no_sync()


def describe(global_batch: int, *, sync_bn: bool) -> dict[str, Any]:
    """The record's ``distributed`` section."""
    return {
        "world_size": world_size(),
        "backend": backend(),
        "per_device_batch": local_batch_size(global_batch),
        "global_batch": global_batch,
        "sync_bn": sync_bn,
    }


def before_error_line(exc: BaseException, *, user_error: bool) -> None:
    """Under a launcher, before a rank prints its error line: give the launcher the traceback of
    an unexpected error (torchrun's summary shows it), and wait :data:`ECHO_GRACE_S` unless this
    is rank 0 with a user error, so that a rank whose error only echoes a peer's failure is stopped
    by the launcher before it prints. Rank 0 reports argument mistakes (which every rank makes
    alike) at once; any other rank's own error still prints, after the wait."""
    if not is_distributed():
        return
    if not (user_error and is_main()):
        time.sleep(ECHO_GRACE_S)
    if not user_error:  # after the wait: a rank the launcher stopped shows as stopped, not as failed
        ErrorHandler().record_exception(exc)  # writes $TORCHELASTIC_ERROR_FILE where a launcher set it
