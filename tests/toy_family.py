"""A toy model family written the way a user would add one: ``toymlp:<width>`` names an MLP of that
width on the toy tabular domain (tests/toy_domain.py), resolved on first use like ``timm:<name>``,
and the family declares which layers LoRA and IA3 wrap by default (``peft_targets``), so the PEFT
strategies apply to it with no package file touched. Importing this module registers it."""

from __future__ import annotations

import functools
from typing import Any

import toy_domain
from torch import nn

from transferbench.adapters.base import ADAPTERS, Adapter
from transferbench.adapters.families import FamilySpec
from transferbench.adapters.peft_targets import TargetDefaults
from transferbench.errors import UserError
from transferbench.inputs import Batch, Preprocessing


class WideMLP(Adapter):
    domain = "tabular"

    def __init__(self, width: int, *, num_classes: int, head: str = "linear", **_: Any) -> None:
        backbone = nn.Sequential(nn.Linear(toy_domain.FEATURES, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        super().__init__(backbone, width, Preprocessing("tabular", "features"), num_classes=num_classes, head=head)

    def forward_features(self, batch: Batch) -> Any:
        return self.backbone(batch["features"])

    def blocks(self) -> list[nn.Module]:
        return [self.backbone[0:2], self.backbone[2:4]]

    def example_batch(self, batch_size: int = 2, **shape: int) -> Batch:
        return toy_domain.TabularMLP.example_batch(self, batch_size)


# LoRA wraps both linear layers of the backbone; IA3 scales the second one's input as feed-forward
LINEARS = TargetDefaults("toymlp: both linear layers", lambda model, method: (["0", "2"], ["2"]))


def resolve(rest: str) -> tuple[str, FamilySpec]:
    if not rest.isdigit() or int(rest) < 1:
        raise UserError(f"toymlp:{rest}: expected a width, e.g. toymlp:32")
    return rest, FamilySpec(
        name=f"toymlp:{rest}",
        domain="tabular",
        build=functools.partial(WideMLP, int(rest)),
        description=f"a {rest}-wide MLP on feature vectors",
        pretrained_source="a --weights file you trained (none is published)",
        offline_pretrained=False,
        peft_targets=LINEARS,
        family="toymlp",
        model=rest,
    )


ADAPTERS.add_family("toymlp", resolve, description="width of a toy MLP, e.g. toymlp:32")
