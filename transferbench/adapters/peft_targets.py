"""Which layers PEFT methods (LoRA, IA3) wrap by default in a model family: declared by the family
itself (``register_adapter(..., peft_targets=...)``, ``FamilySpec.peft_targets``), so a new family
states its defaults in its own file and the strategies never branch on model classes or domains.

A :class:`TargetDefaults` is a description (for ``list strategies``) and a function of the built
model and the method, giving (target module names, IA3 feed-forward names) relative to the backbone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from torch import nn

from transferbench.adapters.base import Adapter
from transferbench.errors import UserError

# Transformers naming schemes, tried in order when PEFT's own per-model-type default
# (peft.utils.constants.TRANSFORMERS_MODELS_TO_*_TARGET_MODULES_MAPPING) is missing or does not fit
# the loaded model: BERT/ViT-style, wav2vec2/HuBERT, AST (transformers 5), DistilBERT. LoRA: the
# attention query and value projections, as in the LoRA paper (Hu et al. 2021, §4.2, §7.1). IA3: keys,
# values and the second feed-forward layer, the last scaling its input (Liu et al. 2022, §3.3).
LORA_SCHEMES: tuple[tuple[str, ...], ...] = (("query", "value"), ("q_proj", "v_proj"), ("q_lin", "v_lin"))
IA3_SCHEMES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("key", "value", "output.dense"), ("output.dense",)),
    (("k_proj", "v_proj", "feed_forward.output_dense"), ("feed_forward.output_dense",)),
    (("k_proj", "v_proj", "mlp.fc2"), ("mlp.fc2",)),
    (("k_lin", "v_lin", "ffn.lin2"), ("ffn.lin2",)),
)


def _names(model: Adapter) -> dict[int, str]:
    return {id(m): name for name, m in model.backbone.named_modules()}


def _layers(model: Adapter, modules: Iterator[nn.Module], keep: Callable[[nn.Module], bool]) -> list[str]:
    """Names of the ``modules`` that are Linear or non-grouped Conv2d layers and pass ``keep``."""
    names = _names(model)
    wrappable = (m for m in modules if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1))
    return list(dict.fromkeys(names[id(m)] for m in wrappable if keep(m)))


def last_stage_layers(model: Adapter, method: str, stages: int = 2) -> tuple[list[str], list[str]]:
    """CNNs (ResNet, VGG, timm/torchvision models): every convolution (and linear layer) of the last
    two blocks (``blocks()[-2:]``, what ``partial`` trains): early stages compute generic edges and
    textures that transfer as they are (Yosinski et al. 2014), the late ones are where a task
    needs new features."""
    modules = (m for block in model.blocks()[-stages:] for m in block.modules())
    return _layers(model, modules, lambda m: True), []


def pointwise_convs(model: Adapter, method: str) -> tuple[list[str], list[str]]:
    """EfficientNet-Lite: every pointwise (1x1) convolution, i.e. the expand and project convs of
    each MBConv block and the head conv: they hold almost all its weights, while its depthwise convs
    are grouped (LoRA cannot merge them) and tiny."""
    return _layers(model, model.backbone.modules(), lambda m: isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)), []


def _present(model: Adapter, names: tuple[str, ...] | list[str]) -> bool:
    modules = [n for n, _ in model.backbone.named_modules()]
    return all(any(suffix_match(m, t) for m in modules) for t in names)


def transformer_targets(model: Adapter, method: str) -> tuple[list[str], list[str]]:
    """PEFT's default for the model type, else the first naming scheme the model has."""
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING,
        TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING,
        TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING,
    )

    model_type = getattr(model.backbone.config, "model_type", "")
    if method == "lora":
        peft_default = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
        schemes = [(tuple(peft_default), ())] if isinstance(peft_default, list) else []
        schemes += [(s, ()) for s in LORA_SCHEMES]
    else:
        peft_default = TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING.get(model_type)
        ff = TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING.get(model_type, [])
        schemes = [(tuple(peft_default), tuple(ff))] if isinstance(peft_default, list) else []
        schemes += list(IA3_SCHEMES)
    for targets, feedforward in schemes:
        if _present(model, targets):
            return list(targets), list(feedforward)
    raise UserError(
        f"no default {method} target modules for a transformers {model_type or type(model.backbone).__name__} "
        "model: pass --target-modules NAMES"
    )


def suffix_match(name: str, target: str) -> bool:
    """PEFT's list form: a module whose name is, or ends in ``.``, the target."""
    return name == target or name.endswith("." + target)


@dataclass(frozen=True)
class TargetDefaults:
    """A family's default PEFT targets: what they are, in words, and how to find them in a model."""

    description: str
    find: Callable[[Adapter, str], tuple[list[str], list[str]]]

    def __call__(self, model: Adapter, method: str) -> tuple[list[str], list[str]]:
        return self.find(model, method)


TRANSFORMER_LAYERS = TargetDefaults(
    "transformers models: PEFT's default per model type (LoRA query+value, IA3 key+value+FFN output)",
    transformer_targets,
)
POINTWISE_CONVS = TargetDefaults("EfficientNet-Lite: the pointwise (1x1) convolutions", pointwise_convs)
LAST_STAGES = TargetDefaults("vision CNNs: the Conv2d/Linear layers of the last two blocks", last_stage_layers)
