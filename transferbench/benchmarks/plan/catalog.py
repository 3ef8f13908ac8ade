"""Every declared option, and who declares it: the one list the command line's flags, the matrix
files' keys, ``validate``, ``list options`` and sweeps are made from.

Owners: ``run`` (every run: :class:`RunSpec`), ``budget`` (:class:`Budget`), ``strategy`` (a
strategy's option fields), ``domain`` (a domain's run options), ``adapter`` (an adapter's build
options) and ``task`` (options some tasks take, as ESC-50's folds). One name is one option: two
owners declaring the same name differently is a registration error, found here.
"""

from __future__ import annotations

from dataclasses import dataclass

from transferbench.adapters import ADAPTERS
from transferbench.benchmarks.plan.spec import core_options
from transferbench.benchmarks.strategies import option_owners
from transferbench.options import Option
from transferbench.tasks import DOMAINS

COMPONENT_KINDS = ("strategy", "domain", "adapter", "task")


@dataclass(frozen=True)
class Declared:
    """An option, the kind of thing that declares it, and which of them do."""

    option: Option
    kind: str  # run | budget | strategy | domain | adapter | task
    owners: tuple[str, ...] = ()

    def applies_to(self) -> str:
        """Who takes it, in words (``strategies lora, ia3``)."""
        if self.kind in ("run", "budget"):
            return "every run"
        plural = {"strategy": "strategies", "domain": "tasks of domain", "adapter": "adapters", "task": "tasks"}
        return f"{plural[self.kind]} {', '.join(self.owners)}"


def _component_options() -> list[Declared]:
    found = [Declared(opt, "strategy", tuple(names)) for opt, names in option_owners().values()]
    for name in DOMAINS.names():
        domain = DOMAINS.get(name)
        found += [Declared(o, "domain", (name,)) for o in domain.options]
        found += [Declared(o, "task", (f"with {o.name} ({name})",)) for o in domain.all_task_options]
    adapters: dict[str, Declared] = {}
    for name in ADAPTERS.names():
        for opt in ADAPTERS.get(name).options:
            known = adapters.get(opt.name)
            adapters[opt.name] = Declared(opt, "adapter", (*(known.owners if known else ()), name))
    return found + list(adapters.values())


def catalog() -> dict[str, Declared]:
    """Every option by name: the run's and the budget's, then every registered component's."""
    out = {name: Declared(opt, kind) for name, (opt, kind) in core_options().items()}
    for item in _component_options():
        known = out.get(item.option.name)
        if known is not None and (known.option != item.option or known.kind != item.kind):
            raise ValueError(
                f"option {item.option.name!r} is declared by {known.kind} {known.owners} and, differently, "
                f"by {item.kind} {item.owners}"
            )
        out[item.option.name] = item if known is None else Declared(item.option, item.kind, known.owners + item.owners)
    return out
