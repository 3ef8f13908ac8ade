"""The budget every strategy of a comparison shares, as declared options (``--epochs`` and
``budget: {epochs: ...}`` in a matrix file are one declaration, checked the same way)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from transferbench.options import option

OPTIMIZERS = ("adamw", "adam", "sgd")


@dataclass(frozen=True)
class Budget:
    """What every strategy of a comparison shares."""

    epochs: int = option(5, "epochs every run trains (more where min_steps needs them)", low=1)
    batch_size: int = option(32, "examples per optimizer step (the global batch across processes)", low=1)
    optimizer: str = option("adamw", "the optimizer (adam: L2 in the gradient, as Keras' recipe)", choices=OPTIMIZERS)
    warmup_fraction: float = option(
        0.1, "linear warm-up over this share of the steps, then cosine to zero", low=0, high=1
    )
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy", low=0, high=1)
    grad_clip: float | None = option(
        5.0, "clip the gradient norm at this (none: no clipping)", low=0, low_open=True, nullable=True
    )
    # Optimizer steps every run gets at least, by adding epochs: with 5 labels per class, 3 epochs
    # are 3 steps, and "fine-tuning loses to a probe" would be a verdict on the budget, not the method.
    min_steps: int = option(100, "optimizer steps every run gets at least, by adding epochs (0: epochs alone)", low=0)

    def scaled(self, multiple: float) -> Budget:
        """This budget ``multiple`` times over (``--scratch-budget 4x``): epochs and the step floor."""
        return replace(self, epochs=max(1, round(self.epochs * multiple)), min_steps=round(self.min_steps * multiple))

    def epochs_for(self, steps_per_epoch: int) -> int:
        """Epochs that run: ``epochs``, or more where that many epochs are under ``min_steps``."""
        return max(self.epochs, -(-self.min_steps // max(1, steps_per_epoch)))

    def steps_per_epoch(self, num_examples: int) -> int:
        """Full batches per epoch (the last partial batch is dropped), at least one."""
        return max(1, num_examples // self.batch_size)

    def total_steps(self, num_examples: int) -> int:
        steps_per_epoch = self.steps_per_epoch(num_examples)
        return steps_per_epoch * self.epochs_for(steps_per_epoch)

    def validation_epochs(self, steps_per_epoch: int) -> list[int]:
        """The (0-based) epochs after which a run validates and checkpoints: ``epochs`` of them,
        evenly spaced and ending with the last, however many epochs ``min_steps`` adds."""
        run = self.epochs_for(steps_per_epoch)
        return sorted({round((i + 1) * run / self.epochs) - 1 for i in range(self.epochs)})
