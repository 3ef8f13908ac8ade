"""Each cell resolved once: :func:`resolve` turns a :class:`RunSpec` into a :class:`Plan` before any
data loads (names, every option checked by its declaration and routed to the component that
declares it, the strategy's recipe for the adapter's family, the task as the run's task options
make it), and :func:`bind` turns a plan and its task's data into an immutable :class:`ResolvedRun`
(input settings, identity, split sizes). The planner does both once per cell; every executor (serial,
a launcher's processes, Ray, a shard) receives the ResolvedRun and nothing downstream resolves again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transferbench.adapters import ADAPTERS
from transferbench.adapters.base import AdapterSpec
from transferbench.benchmarks.plan.catalog import catalog
from transferbench.benchmarks.plan.identity import run_identity
from transferbench.benchmarks.plan.spec import RunSpec, core_options
from transferbench.benchmarks.plan.splits import make_splits
from transferbench.benchmarks.plan.sweeps import SweepRole
from transferbench.benchmarks.results import provenance
from transferbench.benchmarks.runtime import distributed
from transferbench.benchmarks.runtime.device import resolve_device
from transferbench.benchmarks.strategies import STRATEGIES, Strategy, recipe_for
from transferbench.errors import UserError
from transferbench.registry import suggest
from transferbench.tasks import DOMAINS, Domain, TaskData, resolve_task
from transferbench.tasks.base import Split, TaskConfig
from transferbench.tasks.domain import with_defaults
from transferbench.tasks.protocols import PROTOCOLS

ROUTES = ("strategy", "domain", "adapter", "task")


@dataclass(frozen=True)
class Plan:
    """One cell before its data loads: what every part of the run resolved to."""

    spec: RunSpec
    task: TaskConfig  # the domain's defaults filled in, the run's task options applied
    adapter: AdapterSpec
    adapter_name: str  # canonical (``ADAPTERS.canonical``)
    domain: Domain
    strategy: Strategy  # its defaults, then its recipe for the adapter's family, then the run's options
    options: Mapping[str, Mapping[str, Any]]  # the run's options by the kind of component that takes them
    recipe_note: str | None = None  # said when the strategy states no recipe for the family's kind

    @property
    def input_options(self) -> dict[str, Any]:
        """The options the domain reads to shape inputs: its own and the adapter's."""
        return {**self.options["domain"], **self.options["adapter"]}

    @property
    def load_settings(self) -> dict[str, Any]:
        return self.domain.load_settings(self.input_options, self.task, self.adapter)

    @property
    def load_key(self) -> tuple:
        """Cells whose decoded data is the same share one load."""
        return (self.task, self.spec.data_dir, tuple(sorted(self.load_settings.items())))

    @property
    def label(self) -> str:
        return f"{self.task.name}/{self.spec.adapter}/{self.spec.strategy}/seed{self.spec.seed}"


@dataclass(frozen=True)
class ResolvedRun:
    """One cell, resolved against its data: everything an executor needs besides the data itself."""

    plan: Plan
    settings: Mapping[str, Any]  # the domain's input settings (image size, token length, clip length)
    identity: Mapping[str, Any]  # what the run id hashes
    amp: str  # what --amp resolved to where the cell runs
    n_train: int
    n_val: int
    role: SweepRole | None = None  # a point or the final of a sweep (plan.sweeps); None: a plain run

    @property
    def run_id(self) -> str:
        return provenance.config_hash(dict(self.identity))

    @property
    def spec(self) -> RunSpec:
        return self.plan.spec

    @property
    def strategy(self) -> Strategy:
        return self.plan.strategy

    @property
    def task(self) -> TaskConfig:
        return self.plan.task

    @property
    def label(self) -> str:
        return self.plan.label


def resolve(spec: RunSpec) -> Plan:
    """Resolve and check one spec before any data is loaded: a UserError (one line) for anything
    that cannot work."""
    _check_core(spec)
    adapter = ADAPTERS.get(spec.adapter)
    task = with_defaults(resolve_task(spec.task, spec.data_dir))
    domain = DOMAINS.get(task.domain)
    if adapter.domain != task.domain:
        raise UserError(
            f"adapter {adapter.name!r} is a {adapter.domain} adapter but task {task.name!r} is "
            f"{task.domain}; see `transferbench list adapters`"
        )
    routed = route(spec, task, domain, adapter)
    task = domain.with_task_options(task, routed["task"])
    base = STRATEGIES.get(spec.strategy)
    recipe, note = recipe_for(base, adapter)
    strategy = base.with_overrides(**recipe).with_overrides(**routed["strategy"])
    strategy.check(adapter, spec.head)
    _check_distributed(spec, strategy)
    adapter.check_options(routed["adapter"])
    return Plan(spec, task, adapter, ADAPTERS.canonical(spec.adapter), domain, strategy, routed, note)


def bind(plan: Plan, data: TaskData, amp: str) -> ResolvedRun:
    """The plan against its task's data: input settings (a default may come from the data: the
    audio clip length), identity, and the split sizes (checked against the budget)."""
    settings = plan.domain.input_settings(plan.input_options, plan.task, plan.adapter, data)
    identity = run_identity(plan, data, settings, amp)
    n_train, n_val = split_sizes(plan.spec, data)
    return ResolvedRun(plan, settings, identity, amp, n_train, n_val)


def route(spec: RunSpec, task: TaskConfig, domain: Domain, adapter: AdapterSpec) -> dict[str, dict[str, Any]]:
    """The spec's options by the kind of component that declares them; an option none of this run's
    components takes is refused, naming who does take it."""
    owners = {
        "strategy": {o.name for o in STRATEGIES.get(spec.strategy).options()},
        "domain": {o.name for o in domain.options},
        "adapter": adapter.option_names,
        "task": {o.name for o in domain.task_options(task)},
    }
    routed: dict[str, dict[str, Any]] = {kind: {} for kind in ROUTES}
    for name, value in spec.options.items():
        kind = next((k for k in ROUTES if name in owners[k]), None)
        if kind is None:
            raise misplaced(name, value, spec, task, adapter)
        routed[kind][name] = value
    return routed


def misplaced(name: str, value: Any, spec: RunSpec, task: TaskConfig, adapter: AdapterSpec) -> UserError:
    """Why an option does not apply to this run, and who takes it."""
    flag = "--" + name.replace("_", "-")
    declared = catalog().get(name)
    if declared is None:
        hint = suggest(name, sorted(catalog()))
        return UserError(f"{flag}: unknown option" + (f"; did you mean --{hint[0].replace('_', '-')}?" if hint else ""))
    if declared.kind == "adapter":
        adapter.check_options({name: value})  # raises the adapter's own line (what it takes)
    if declared.kind == "domain":
        return UserError(f"{flag} applies to {', '.join(declared.owners)} tasks; this run's task is {task.domain}")
    if declared.kind == "task":
        return UserError(f"{flag} applies to {declared.option.help.split(':')[0]}; {task.name!r} has fixed splits")
    if declared.kind == "strategy":
        takers = ", ".join(declared.owners)
        return UserError(f"{flag} does not apply to strategy {spec.strategy!r} (it applies to strategies {takers})")
    return UserError(f"{flag} does not apply to this run")


def _check_core(spec: RunSpec) -> None:
    """The run's own options and its budget's, each by its declaration, and how they combine."""
    for name, (opt, where) in core_options().items():
        opt.check(getattr(spec.budget if where == "budget" else spec, name), opt.flag)
    if spec.data_protocol is not None:
        PROTOCOLS.get(spec.data_protocol)  # an unknown name: one line with the closest
        if spec.max_train_examples is not None:
            raise UserError(f"--train-examples {spec.data_protocol} fixes the training set; drop --max-train-examples")
    if spec.weights and not Path(spec.weights).is_file():
        raise UserError(f"--weights {spec.weights}: file not found")


def _check_distributed(spec: RunSpec, strategy: Strategy) -> None:
    """What a run across processes (a launcher's WORLD_SIZE > 1) needs, and --sync-bn."""
    world = distributed.world_size()
    if world > 1 and spec.budget.batch_size % world:
        raise UserError(
            f"--batch-size {spec.budget.batch_size} does not split over {world} processes: give a multiple of "
            f"{world} (it is the global batch; each process trains on batch/{world} of it)"
        )
    device = distributed.device_for(resolve_device(spec.device))
    if spec.sync_bn and device.type != "cuda":
        raise UserError(
            f"--sync-bn needs CUDA: torch's SyncBatchNorm does not run on {device.type} tensors (without it "
            "each process normalises over its share of the batch)"
        )
    if spec.sync_bn and world == 1:
        raise UserError(
            "--sync-bn synchronises BatchNorm across the processes of one run: launch it with torchrun "
            "(docs/distributed.md); one process's BatchNorm already sees the whole batch"
        )


def split_sizes(spec: RunSpec, data: TaskData) -> tuple[int, int]:
    """Training and validation sizes of the run, as ``make_splits`` gives them, from the labels alone
    (no inputs copied): the plan checks every cell's budget against its data before anything trains."""
    indices = Split(np.arange(len(data.train)), data.train.labels)
    train_split, val_split = make_splits(spec, dataclasses.replace(data, train=indices))
    return len(train_split), len(val_split)
