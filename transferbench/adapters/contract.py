"""A validator for the adapter contract, in the spirit of HEAR's: any registered adapter can be
checked with ``check_adapter(name, workdir)``; the test suite runs it over every registered
adapter, so a new adapter cannot join the registry without honouring the contract.

It trains with its own one-step SGD (:func:`sgd_step`), not the benchmark's training loop:
adapters sit below benchmarks (benchmarks import adapters, never the reverse).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from transferbench.adapters.base import ADAPTERS, Adapter, AdapterSpec
from transferbench.tasks import DOMAINS, TaskConfig, TaskData


class ContractError(AssertionError):
    pass


def _file_name(spec: AdapterSpec) -> str:
    """A file-name-safe form of the adapter's name (``hf:/abs/dir`` holds slashes)."""
    return re.sub(r"[^\w.-]", "_", spec.name)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ContractError(message)


def _build(spec: AdapterSpec, workdir: Path, seed: int, **kw) -> Adapter:
    """A small instance: the spec's ``tiny`` options (a dict, or a function of a work dir that
    writes e.g. a tiny save_pretrained() model there and returns the options)."""
    tiny = spec.tiny(workdir) if callable(spec.tiny) else spec.tiny
    torch.manual_seed(seed)
    return spec.create(num_classes=kw.pop("num_classes", 3), **{**tiny, **kw})


def _batch(model: Adapter, spec: AdapterSpec, batch_size: int = 4) -> dict[str, torch.Tensor]:
    torch.manual_seed(123)
    return model.example_batch(batch_size, **spec.example_shape)


def sgd_step(model: Adapter, batch: dict[str, torch.Tensor]) -> None:
    """One plain SGD step on cross-entropy against arbitrary labels: enough to see which
    parameters get gradients and which buffers move."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.1)
    loss = F.cross_entropy(model(batch), torch.arange(len(next(iter(batch.values())))) % model.num_classes)
    loss.backward()
    optimizer.step()


def check_spec_agrees(spec: AdapterSpec, workdir: Path) -> None:
    """The registry entry says, without building the model, what the built model says: its
    domain, and the input size (vision) or sample rate (audio) the runner prepares data at."""
    model = _build(spec, workdir, 0, pretrained=False)
    prep = model.preprocessing
    _require(
        model.domain == spec.domain == prep.domain,
        f"domain of spec ({spec.domain!r}), adapter ({model.domain!r}) and preprocessing ({prep.domain!r}) differ",
    )
    for native in ("input_size", "sample_rate"):  # what the runner prepares data at, before building
        declared = getattr(spec, native)
        if declared is not None:
            built = getattr(prep, native)
            _require(declared == built, f"spec {native} {declared} != preprocessing.{native} {built}")
    # the audio window decides a run's identity before the model is built: both must say the same
    _require(spec.window_s == prep.window_s, f"spec window_s {spec.window_s} != preprocessing.window_s {prep.window_s}")


def check_domain_pipeline(spec: AdapterSpec, workdir: Path) -> None:
    """The model takes the batch its domain's real pipeline makes (not only its own example batch):
    keys, dtypes and shapes as a run would feed them, and gives one row of logits per example."""
    model = _build(spec, workdir, 0, pretrained=False).eval()
    domain = DOMAINS.get(spec.domain)
    config = TaskConfig("contract", spec.domain, "contract check", loader="builtin")
    probe = domain.synthetic_split(6, 3, {})
    data = TaskData("contract", spec.domain, ["a", "b", "c"], probe, probe, source="synthetic", test_split="test")
    settings = domain.input_settings(dict(domain.contract_options), config, spec, data)
    split = domain.synthetic_split(6, 3, settings)
    (pipe,) = domain.pipelines([split], model, config, settings, torch.device("cpu"))
    batch = next(pipe.batches(3, shuffle=True, gen=torch.Generator().manual_seed(0), drop_last=True))
    key = model.preprocessing.input_key
    _require(key in batch, f"the {spec.domain} pipeline's batch has no {key!r} (keys: {sorted(batch)})")
    with torch.no_grad():
        logits = model(batch)
    _require(tuple(logits.shape) == (3, 3), f"logits on the {spec.domain} pipeline's batch: {tuple(logits.shape)}")


def check_shapes(spec: AdapterSpec, workdir: Path) -> None:
    model = _build(spec, workdir, 0, pretrained=False).eval()
    batch = _batch(model, spec)
    _require(model.preprocessing.input_key in batch, f"example batch lacks {model.preprocessing.input_key!r}")
    feats, logits = model.forward_features(batch), model(batch)
    _require(
        tuple(feats.shape) == (4, model.num_features),
        f"features shape {tuple(feats.shape)} != (4, {model.num_features})",
    )
    _require(tuple(logits.shape) == (4, 3), f"logits shape {tuple(logits.shape)} != (4, 3)")
    block_params = {id(p) for block in model.blocks() for p in block.parameters()}
    missing = [n for n, p in model.backbone.named_parameters() if id(p) not in block_params]
    _require(not missing, f"blocks() miss backbone parameters, e.g. {missing[:3]}")


def check_freeze(spec: AdapterSpec, workdir: Path) -> None:
    model = _build(spec, workdir, 0, pretrained=False)
    model.freeze("backbone")
    model.train()
    batch = _batch(model, spec)
    bn_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    sgd_step(model, batch)
    _require(
        all(p.grad is None for p in model.backbone.parameters()),
        "backbone got gradients under freeze=backbone",
    )
    _require(all(p.grad is not None for p in model.head.parameters()), "head got no gradient under freeze=backbone")
    changed = [k for k, v in model.backbone.state_dict().items() if not torch.equal(v, bn_before[k])]
    _require(not changed, f"frozen backbone state changed in a training step (BatchNorm stats?): {changed[:3]}")
    _require(
        model.num_params(trainable_only=True) == sum(p.numel() for p in model.head.parameters()),
        "trainable parameter count under freeze=backbone is not the head's",
    )

    model = _build(spec, workdir, 0, pretrained=False)
    model.freeze("last-1")
    model.train()
    sgd_step(model, _batch(model, spec))
    last = {id(p) for p in model.blocks()[-1].parameters()}
    outside = [p for p in model.backbone.parameters() if id(p) not in last and p.grad is not None]
    _require(not outside, "freeze=last-1 trained a parameter outside the last block")
    _require(any(p.grad is not None for p in model.blocks()[-1].parameters()), "freeze=last-1 left the last block idle")

    model = _build(spec, workdir, 0, pretrained=False)
    model.freeze("none")
    model.set_bn_policy("frozen-stats")
    model.train()
    stats = {k: v.clone() for k, v in model.backbone.state_dict().items() if "running" in k or "num_batches" in k}
    sgd_step(model, _batch(model, spec))
    moved = [k for k, v in model.backbone.state_dict().items() if k in stats and not torch.equal(v, stats[k])]
    _require(not moved, f"bn_policy=frozen-stats let running statistics move: {moved[:3]}")
    groups = model.param_groups(1e-3, 1e-4, 0.01)
    grouped = [id(p) for g in groups for p in g["params"]]
    _require(
        len(grouped) == len(set(grouped)) == len([p for p in model.parameters() if p.requires_grad]),
        "param_groups do not hold each trainable parameter exactly once",
    )


def check_pretrained_differs(spec: AdapterSpec, workdir: Path) -> None:
    """Weights written by one instance load through ``weights=`` (the --weights path) into another;
    a scratch instance of the same architecture differs from them."""
    from safetensors.torch import save_file

    source = _build(spec, workdir, 1, pretrained=False)
    path = workdir / f"{_file_name(spec)}-weights.safetensors"
    save_file({k: v.contiguous() for k, v in source.backbone_state_dict().items()}, str(path))
    loaded = _build(spec, workdir, 2, pretrained=True, weights=str(path))
    scratch = _build(spec, workdir, 3, pretrained=False)
    ref = source.backbone.state_dict()
    for key, value in loaded.backbone.state_dict().items():
        _require(torch.equal(value, ref[key]), f"weights file did not load into {key}")
    weights = [k for k, v in ref.items() if v.is_floating_point() and v.numel() > 1 and "running" not in k]
    _require(
        any(not torch.equal(scratch.backbone.state_dict()[k], ref[k]) for k in weights),
        "a scratch model equals the pretrained one",
    )
    if spec.offline_pretrained:  # the real shipped weights, not the tiny stand-in
        torch.manual_seed(2)
        shipped = spec.create(num_classes=3, pretrained=True).backbone.state_dict()
        torch.manual_seed(3)
        random_init = spec.create(num_classes=3, pretrained=False).backbone.state_dict()
        floats = [k for k, v in shipped.items() if v.is_floating_point() and "running" not in k]
        _require(
            any(not torch.equal(shipped[k], random_init[k]) for k in floats),
            "shipped pretrained weights equal a random init",
        )


def check_head_reset(spec: AdapterSpec, workdir: Path) -> None:
    model = _build(spec, workdir, 0, pretrained=False).eval()
    old_head = [p.clone() for p in model.head.parameters()]
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.reset_classifier(7, head="mlp")
    batch = _batch(model, spec)
    _require(tuple(model(batch).shape) == (4, 7), "reset_classifier(7) did not give 7 logits")
    _require(len(list(model.head.parameters())) == 4, "mlp head is not Dense(256, relu) -> Dense(N)")
    _require(
        all(
            old.shape != new.shape or not torch.equal(old, new)
            for old, new in zip(old_head, model.head.parameters(), strict=False)
        ),
        "head was not replaced",
    )
    _require(
        all(torch.equal(v, backbone[k]) for k, v in model.backbone.state_dict().items()),
        "reset_classifier changed the backbone",
    )


def check_save_load(spec: AdapterSpec, workdir: Path) -> None:
    model = _build(spec, workdir, 0, pretrained=False).eval()
    path = workdir / f"{_file_name(spec)}-adapter.pt"
    torch.save(model.state_dict(), path)
    clone = _build(spec, workdir, 9, pretrained=False).eval()
    clone.load_state_dict(torch.load(path, weights_only=True))
    batch = _batch(model, spec)
    with torch.no_grad():
        _require(
            torch.allclose(model(batch), clone(batch), atol=1e-5),
            "outputs differ after a save/load round trip",
        )


CHECKS: dict[str, Callable[[AdapterSpec, Path], None]] = {
    "spec-agrees": check_spec_agrees,
    "domain-pipeline": check_domain_pipeline,
    "shapes": check_shapes,
    "freeze": check_freeze,
    "pretrained-differs": check_pretrained_differs,
    "head-reset": check_head_reset,
    "save-load": check_save_load,
}


def check_classical(spec: AdapterSpec, workdir: Path) -> None:
    """Closed-form adapters: fit on a toy problem, predict one valid class id per input, deterministically."""
    import numpy as np

    inputs = {"text": [f"{w} {w} item {i}" for i, w in enumerate(["good", "bad", "fine"] * 8)]}[spec.domain]
    labels = np.arange(len(inputs)) % 3
    predictions = []
    for _ in range(2):
        model = spec.create(num_classes=3, pretrained=False)
        same_domain = model.domain == spec.domain == model.preprocessing.domain
        _require(same_domain, "domain of spec, adapter and preprocessing differ")
        model.fit(inputs, labels, inputs[:6], labels[:6], 0)
        predictions.append(model.predict(inputs))
    _require(predictions[0].shape == (len(inputs),), "predict() must give one class id per input")
    _require(set(predictions[0].tolist()) <= {0, 1, 2}, "predict() gave ids outside the classes")
    _require((predictions[0] == predictions[1]).all(), "two fits with the same seed disagree")
    _require((predictions[0] == labels).mean() > 0.9, "cannot fit a trivially separable toy problem")
    _require(model.num_params() > 0, "a fitted model reports no parameters")


CLASSICAL_CHECKS: dict[str, Callable[[AdapterSpec, Path], None]] = {"fit-predict": check_classical}


def applicable_checks(name: str) -> dict[str, Callable[[AdapterSpec, Path], None]]:
    return CLASSICAL_CHECKS if ADAPTERS.get(name).classical else CHECKS


def check_adapter(name: str, workdir: Path, checks: tuple[str, ...] | None = None) -> None:
    """Run the contract checks on a registered adapter; raises ContractError on the first failure."""
    spec = ADAPTERS.get(name)
    available = applicable_checks(name)
    for check in checks or tuple(available):
        available[check](spec, Path(workdir))
