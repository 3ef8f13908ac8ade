"""Parameter-efficient strategies through PEFT: LoRA and (IA)^3. Which layers they wrap by default is
the model family's declaration (``AdapterSpec.peft_targets``); ``--target-modules`` names others."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from transferbench.adapters.base import inserted_parameters
from transferbench.benchmarks.strategies import peft_layers
from transferbench.benchmarks.strategies.base import PretrainedStrategy, head_names
from transferbench.benchmarks.training.loop import FitRun, TrainOutcome
from transferbench.options import option, refusal


def _parse_targets(text: str) -> None:
    """A ``target_modules``/``feedforward_modules`` value names layers (``auto`` and empty pass)."""
    if text != peft_layers.AUTO and text.strip():
        peft_layers.parse_targets(text)


_targets_problem = refusal(_parse_targets)


@dataclass(frozen=True)
class PeftStrategy(PretrainedStrategy):
    """Adapter layers inserted by PEFT (:mod:`peft_layers`) into the backbone, which stays frozen;
    the inserted weights and the head train. After training the adapters are merged into the
    weights (kept only if the logits agree) and the run records what was wrapped."""

    target_modules: str = option(
        peft_layers.AUTO,
        "lora/ia3: the layers that get adapters, comma-separated names or a regex (auto: the family's)",
        validator=_targets_problem,
    )
    method: ClassVar[str] = ""
    fixed_freeze: ClassVar[str | None] = "backbone"

    def refusal(self, adapter: Any) -> str | None:
        why = super().refusal(adapter)
        if why is None and self.target_modules == peft_layers.AUTO and adapter.peft_targets is None:
            return (
                f"its family declares no layers {self.method} wraps by default (adapters.peft_targets); "
                "name them with --target-modules"
            )
        return why

    def scope(self) -> str:
        return "pretrained adapters whose family declares PEFT targets (or any, with --target-modules)"

    def peft_options(self) -> dict[str, Any]:
        """The method's own PEFT config options."""
        return {}

    def feedforward(self) -> str:
        return peft_layers.AUTO

    def prepare(self, model: Any) -> None:
        super().prepare(model)  # head only, then the inserted weights
        targets = peft_layers.resolve_targets(model, self.method, self.target_modules, self.feedforward())
        model.peft_record = peft_layers.insert(model, self.method, targets, **self.peft_options())

    def claimed_trainable(self, model: Any, epoch: int = 0) -> set[str]:
        inserted = {id(p) for p in inserted_parameters(model.backbone)}
        return head_names(model) | {n for n, p in model.named_parameters() if id(p) in inserted}

    @contextmanager
    def as_trained(self, model: Any) -> Iterator[None]:
        """Unmerged while the block runs (the adapters train as separate weights), merged again after."""
        merged = any(layer.merged for _, layer in peft_layers.tuner_layers(model))
        if merged:
            peft_layers.set_merged(model, False)
        try:
            yield
        finally:
            if merged:
                peft_layers.set_merged(model, True)

    def fit(self, run: FitRun) -> TrainOutcome:
        outcome = super().fit(run)
        model = run.model
        record = dict(getattr(model, "peft_record", {}))
        trainable, total = model.num_params(trainable_only=True), model.num_params()
        record.update(trainable_params=trainable, total_params=total, trainable_share=trainable / total)
        if outcome.status == "ok":
            batch = next(iter(run.val_pipe.batches(run.budget.batch_size, shuffle=False)))
            record.update(peft_layers.merge_checked(model, batch))
        outcome.extra["peft"] = record
        return outcome


@dataclass(frozen=True)
class LoRA(PeftStrategy):
    """LoRA (Hu et al. 2021) through PEFT."""

    lora_rank: int = option(8, "lora: rank r of the update BA", low=1)
    lora_alpha: float = option(16.0, "lora: scaling alpha (the update is scaled by alpha/r)", low=0, low_open=True)
    lora_dropout: float = option(0.0, "lora: dropout on the adapter input", low=0, high=0.99)
    method: ClassVar[str] = "lora"

    def peft_options(self) -> dict[str, Any]:
        return {"r": int(self.lora_rank), "lora_alpha": self.lora_alpha, "lora_dropout": self.lora_dropout}


@dataclass(frozen=True)
class IA3(PeftStrategy):
    """(IA)^3 (Liu et al. 2022) through PEFT: per-channel scales on the target layers' outputs, or
    on their inputs for the ``feedforward_modules``."""

    feedforward_modules: str = option(
        peft_layers.AUTO,
        "ia3: target layers that scale their input, names or a regex (auto: the family's; empty: none)",
        validator=_targets_problem,
    )
    method: ClassVar[str] = "ia3"

    def feedforward(self) -> str:
        return self.feedforward_modules
