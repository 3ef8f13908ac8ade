"""A run's identity: the config whose hash is its run id (for ``--resume`` and for citing).

It holds what decides the numbers a run produces and nothing of the machine: names, the resolved
strategy (every field), the budget, the domain's input settings, the data's fingerprint, the code
version; local paths as their names with content hashes (``local_paths``). Its keys are those of the
first published records: ``test_fold``, ``text_column`` and ``label_column`` are in every identity
(null when not set) because they always were, and keys added since (``data_protocol``,
``distributed``, ``options``, ``sweep``, ``matched_to``, ``suite``, ``task_version``) appear only
when set, so that no published run id moves.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import transferbench
from transferbench.benchmarks.plan.local_paths import portable_identity
from transferbench.benchmarks.runtime import distributed
from transferbench.tasks import TaskData

# ``plan`` below is a plan.resolve.Plan (which imports this module, so it is not imported here)
Plan = Any

ALWAYS = ("test_fold", "text_column", "label_column")  # in every identity since the first records


def run_identity(plan: Plan, data: TaskData, settings: dict[str, Any], amp: str) -> dict[str, Any]:
    spec, strategy = plan.spec, plan.strategy
    given = {k: v for kind in ("domain", "adapter", "task") for k, v in plan.options[kind].items()}
    # The strategy's options are in its fields and the domain's in its input settings (it says what
    # they resolve to); an adapter's or a task's option not already there (nor in ALWAYS) goes under
    # "options", so no option that changes a run can leave two runs one id.
    rest = {
        k: v
        for kind in ("adapter", "task")
        for k, v in plan.options[kind].items()
        if k not in settings and k not in ALWAYS and _counts(plan, k)
    }
    identity = {
        "task": data.task,
        "adapter": plan.adapter_name,
        "adapter_revision": plan.adapter.revision,
        "strategy": strategy.to_dict(),
        "seed": spec.seed,
        "budget": asdict(spec.budget),
        "head": spec.head,
        **settings,
        "max_train_examples": spec.max_train_examples,
        "per_class": spec.per_class,
        **({"data_protocol": spec.data_protocol} if spec.data_protocol else {}),
        # a sweep's final run: the grid its values won on validation, and on which seeds it was swept
        **({"sweep": {"grid": _lists(spec.sweep), "seeds": spec.sweep_seeds}} if spec.sweep is not None else {}),
        # a compute-matched scratch run: its own row even where its steps equal the own budget's
        **({"matched_to": spec.matched_to} if spec.matched_to else {}),
        # a versioned benchmark's cell, and a task file's version past its first
        **({"suite": spec.suite} if spec.suite else {}),
        **({"task_version": plan.task.version} if plan.task.version != 1 else {}),
        # only across processes, so single-process identities stay, and --resume never takes a
        # record of one world size for another
        **({"distributed": distributed_identity(plan)} if distributed.is_distributed() else {}),
        **{key: given.get(key) for key in ALWAYS},
        "val_fraction": spec.val_fraction,
        "split_seed": spec.split_seed,
        "weights": spec.weights,
        "amp": amp,
        "channels_last": spec.channels_last,
        "compile": spec.compile,
        "data_fingerprint": data.fingerprint(),
        "code_version": transferbench.__version__,
        **({"options": rest} if rest else {}),
    }
    return portable_identity(identity)


def _lists(sweep: Any) -> Any:
    return sweep if isinstance(sweep, str) else {name: list(values) for name, values in sweep.items()}


def _counts(plan: Plan, name: str) -> bool:
    """Whether an option is declared part of the identity (``Option.identity``)."""
    declared = [*plan.domain.options, *plan.adapter.options, *plan.domain.task_options(plan.task)]
    return next((o.identity for o in declared if o.name == name), True)


def sync_bn_applies(plan: Plan) -> bool:
    """--sync-bn converts BatchNorm where its statistics train (scratch; --bn-policy train)."""
    return plan.spec.sync_bn and plan.strategy.bn_policy == "train"


def distributed_identity(plan: Plan) -> dict[str, Any]:
    return {"world_size": distributed.world_size(), "sync_bn": sync_bn_applies(plan)}
