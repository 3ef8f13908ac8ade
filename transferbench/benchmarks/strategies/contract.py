"""A validator for the strategy contract, the counterpart of ``adapters/contract.py``: any registered
strategy can be checked on any registered adapter with ``check_strategy(strategy, adapter, workdir)``
on a tiny instance (the adapter's ``tiny`` options, random init). The test suite runs it over every
strategy x every adapter, so a strategy cannot claim one thing and do another:

* ``check`` accepts exactly the adapters ``applies_to`` names, and refuses the others in one line
  naming the adapter, before anything is built;
* the trainable set after ``prepare`` (and after each epoch's hook) is exactly what the strategy
  claims (``claimed_trainable``), the head always trains, and the parameter groups hold every
  trainable parameter once, PEFT-inserted weights never in a ``backbone`` group;
* in a real training step (``training.train_step``, AdamW with weight decay) frozen parameters and
  the BatchNorm statistics the policy freezes do not move, trainable ones do;
* PEFT strategies: inserting adapters leaves the outputs unchanged; the adapter weights save to a
  safetensors file holding nothing else and load into a fresh model with the same outputs; merging
  gives the unmerged logits within tolerance (and unmerging restores them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file

from transferbench.adapters.base import ADAPTERS, Adapter, AdapterSpec, inserted_parameters
from transferbench.adapters.contract import ContractError
from transferbench.benchmarks.strategies import peft_layers as peft_tuning
from transferbench.benchmarks.strategies.base import STRATEGIES, Strategy, head_names
from transferbench.benchmarks.strategies.peft import PeftStrategy
from transferbench.benchmarks.training.loop import Budget, train_step
from transferbench.errors import UserError

Batch = dict[str, torch.Tensor]
Build = Callable[[], Adapter]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ContractError(message)


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Random-init CNNs (EfficientNet-Lite above all) carry denormal floats through their layers,
    which make CPU convolutions ~30x slower (2 s instead of 0.06 s for a 32 px batch of 4): flush
    them to zero while checking. Nothing checked depends on values below 1e-38. Re-entrant."""
    _FLUSHING.append(True)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        _FLUSHING.pop()
        if not _FLUSHING:
            torch.set_flush_denormal(False)


_FLUSHING: list[bool] = []


@torch.no_grad()
def _calibrate_batchnorm(model: Adapter, batch: Batch) -> None:
    """Running statistics from one batch, so that eval-mode outputs of a random-init network mean
    something: EfficientNet's, with the default statistics, are ~1e-10 and would make every
    comparison of outputs pass vacuously."""
    layers = model.batchnorm_layers()
    saved = [bn.momentum for bn in layers]
    model.train()
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    model.forward_features(batch)
    for bn, momentum in zip(layers, saved, strict=True):
        bn.momentum = momentum
    model.eval()


def example_batch(model: Adapter, spec: AdapterSpec, batch_size: int = 2, seed: int = 123) -> Batch:
    """The adapter's example batch (fixed seed) with labels, as a training step takes it."""
    torch.manual_seed(seed)
    batch = model.example_batch(batch_size, **spec.example_shape)
    batch["labels"] = torch.arange(batch_size) % model.num_classes
    return batch


def tiny_adapter(spec: AdapterSpec, workdir: Path, seed: int = 0) -> Adapter:
    """A small random-init instance (the spec's ``tiny`` options), BatchNorm calibrated, in eval mode."""
    tiny = spec.tiny(Path(workdir)) if callable(spec.tiny) else spec.tiny
    torch.manual_seed(seed)
    model = spec.create(num_classes=3, pretrained=False, **tiny)
    with flush_denormals():
        _calibrate_batchnorm(model, example_batch(model, spec, batch_size=8, seed=7))
    return model


@torch.no_grad()
def _logits(model: Adapter, batch: Batch) -> torch.Tensor:
    model.eval()
    return model(batch).float()


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> tuple[bool, float]:
    diff = float((a - b).abs().max())
    return diff <= rtol * (1.0 + float(b.abs().max())), diff


def check_refused(strategy: Strategy, spec: AdapterSpec) -> None:
    """A strategy refuses an adapter it does not apply to, in one line naming the adapter."""
    try:
        strategy.check(spec, "linear")
    except UserError as exc:
        message = str(exc)
        _require("\n" not in message and spec.name in message, f"refusal is not one line naming it: {message!r}")
        return
    raise ContractError(f"check() accepts adapter {spec.name!r}, which applies_to() says it does not apply to")


def _epochs(strategy: Strategy, model: Adapter) -> list[int]:
    """Epochs whose trainable set is checked: the first, or every one up to all blocks for a hook."""
    return [0] if strategy.epoch_hook(model) is None else list(range(len(model.blocks()) + 2))


def check_trainable(strategy: Strategy, model: Adapter) -> None:
    """What trains is what the strategy claims, in every epoch; the groups file it all once."""
    hook = strategy.epoch_hook(model)
    for epoch in _epochs(strategy, model):
        if hook is not None:
            hook(epoch)
        actual = {n for n, p in model.named_parameters() if p.requires_grad}
        claimed = strategy.claimed_trainable(model, epoch)
        _require(
            actual == claimed,
            f"epoch {epoch}: trains unclaimed {sorted(actual - claimed)[:3]}, "
            f"leaves claimed {sorted(claimed - actual)[:3]} frozen",
        )
        _require(head_names(model) <= actual, f"epoch {epoch}: the head does not train")
        groups = strategy.param_groups(model)
        grouped = [id(p) for g in groups for p in g["params"]]
        _require(len(grouped) == len(set(grouped)), "a parameter is in two parameter groups")
        trainable = {id(p) for p in model.parameters() if p.requires_grad}
        _require(trainable <= set(grouped), f"epoch {epoch}: a trainable parameter is in no parameter group")
        inserted = {id(p) for p in inserted_parameters(model.backbone)}
        misfiled = [
            g["name"] for g in groups if g["name"].startswith("backbone") and inserted & {id(p) for p in g["params"]}
        ]
        _require(not misfiled, f"PEFT-inserted weights filed as backbone: groups {misfiled}")
    if hook is not None:
        hook(0)


def check_step(strategy: Strategy, model: Adapter, batch: Batch) -> None:
    """One real training step: frozen parameters and frozen BatchNorm statistics stay put."""
    hook = strategy.epoch_hook(model)
    if hook is not None:
        hook(1)  # part-way: frozen blocks sit in the optimizer and must still not move
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    groups = strategy.param_groups(model)
    params = [p for g in groups for p in g["params"]]
    budget = Budget(batch_size=len(batch["labels"]))
    # The loop's AdamW (decoupled weight decay), multi-tensor: the same updates, 3x faster on CPU
    optimizer = torch.optim.AdamW(groups, foreach=True)
    train_step(model, batch, optimizer, params, budget, torch.device("cpu"), "off", 64)
    after = model.state_dict()
    names = dict(model.named_parameters())
    frozen = [n for n, p in names.items() if not p.requires_grad and not torch.equal(before[n], after[n])]
    _require(not frozen, f"frozen parameters moved in a training step: {frozen[:3]}")
    moved = {n for n, p in names.items() if p.requires_grad and not torch.equal(before[n], after[n])}
    _require(bool(moved & head_names(model)), "the head did not move in a training step")
    backbone = {n for n, p in names.items() if p.requires_grad and n.startswith("backbone.")}
    _require(not backbone or bool(moved & backbone), "no trainable backbone parameter moved in a training step")
    batchnorms = {id(m) for m in model.batchnorm_layers()}
    for prefix, bn in model.backbone.named_modules():
        if id(bn) not in batchnorms:
            continue
        frozen_stats = model.bn_policy == "frozen-stats" or not any(p.requires_grad for p in bn.parameters())
        stats = [k for k in after if k.startswith(f"backbone.{prefix}.") and k.rsplit(".", 1)[-1] in _BN_STATS]
        moved_stats = [k for k in stats if not torch.equal(before[k], after[k])]
        _require(not (frozen_stats and moved_stats), f"frozen BatchNorm statistics moved: {moved_stats[:2]}")
    if hook is not None:
        hook(0)


_BN_STATS = ("running_mean", "running_var", "num_batches_tracked")


@torch.no_grad()
def _perturb(model: Adapter, scale: float, seed: int = 5) -> None:
    """Move the inserted weights as training would (LoRA's B starts at zero: a no-op otherwise)."""
    gen = torch.Generator().manual_seed(seed)
    for p in inserted_parameters(model.backbone):
        p.add_(scale * torch.randn(p.shape, generator=gen))


def check_peft(
    strategy: Strategy, model: Adapter, build: Build, batch: Batch, base: torch.Tensor, workdir: Path
) -> None:
    """Adapter weights save alone and load back into a fresh model; merging keeps the logits."""
    _require(bool(peft_tuning.wrapped_modules(model)), "no layer was wrapped")
    same, diff = _close(_logits(model, batch), base, 1e-5)
    _require(same, f"inserting the adapters changed the outputs (max |diff| {diff:.2e})")
    # IA3's scales start at 1 and act through LayerNorms: they need a larger push to show
    _perturb(model, 0.5 if getattr(strategy, "method", "") == "ia3" else 0.05)
    trained = _logits(model, batch)
    _require(not _close(trained, base, 1e-3)[0], "the adapters do not change the outputs: the checks would be vacuous")
    path = peft_tuning.save_adapter(model, Path(workdir) / f"{strategy.name}-adapter.safetensors")
    stray = [k for k in load_file(str(path)) if not k.startswith("head.") and "lora_" not in k and "ia3_" not in k]
    _require(not stray, f"the adapter file holds backbone weights: {stray[:3]}")
    fresh = build()
    strategy.prepare(fresh)
    peft_tuning.load_adapter(fresh, path)
    same, diff = _close(_logits(fresh, batch), trained, 1e-5)
    _require(same, f"outputs differ after saving and loading the adapter weights (max |diff| {diff:.2e})")
    peft_tuning.set_merged(model, True)
    same, diff = _close(_logits(model, batch), trained, 1e-4)
    _require(same, f"merged logits differ from unmerged ones (max |diff| {diff:.2e})")
    peft_tuning.set_merged(model, False)
    _require(_close(_logits(model, batch), trained, 1e-4)[0], "unmerging did not restore the unmerged logits")


def check_strategy(strategy_name: str, adapter_name: str, workdir: Path, build: Build | None = None) -> list[str]:
    """Run the strategy contract for one strategy on one adapter (a tiny instance from ``build``,
    by default :func:`tiny_adapter`); returns the checks run, raises ContractError on a failure."""
    strategy, spec = STRATEGIES.get(strategy_name), ADAPTERS.get(adapter_name)
    if not strategy.applies_to(spec):
        check_refused(strategy, spec)
        return ["refused"]
    strategy.check(spec, "linear")
    if spec.classical:
        return ["accepted"]  # nothing to train by gradient: the adapter contract's fit-predict covers it
    with flush_denormals():
        return _check_built(strategy, spec, build or (lambda: tiny_adapter(spec, Path(workdir))), Path(workdir))


def _check_built(strategy: Strategy, spec: AdapterSpec, build: Build, workdir: Path) -> list[str]:
    model = build()
    batch = example_batch(model, spec)
    base = _logits(model, batch) if isinstance(strategy, PeftStrategy) else None
    strategy.prepare(model)
    check_trainable(strategy, model)
    checks = ["accepted", "trainable", "step"]
    if base is not None:
        check_peft(strategy, model, build, batch, base, workdir)  # before the step: identity at insertion
        checks.append("peft")
    check_step(strategy, model, batch)
    return checks
