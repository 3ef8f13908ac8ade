"""One small registry type for tasks, adapters, strategies and suites.

Modelled on timm's model registry: entries are registered with a decorator, may have
aliases, and an unknown name raises a :class:`UserError` that lists the valid names and
the closest matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from transferbench.errors import UserError

T = TypeVar("T")


def suggest(name: str, choices: list[str], n: int = 3) -> list[str]:
    """Closest valid names to ``name`` (case-insensitive), best first."""
    lowered = {c.lower(): c for c in choices}
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    if not matches:  # substring matches catch "resnet" -> resnet18, resnet50
        matches = [c for c in lowered if name.lower() in c or c in name.lower()][:n]
    return [lowered[m] for m in matches]


class Registry(Generic[T]):
    """A name -> object mapping with aliases and helpful errors for unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj, aliases=aliases)
            return obj

        return decorator

    def add(self, name: str, obj: T, *, aliases: tuple[str, ...] = ()) -> None:
        if name in self._entries or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = obj
        for alias in aliases:
            self._aliases[alias] = name

    def canonical(self, name: str) -> str:
        key = name.strip()
        if key in self._entries:
            return key
        if key in self._aliases:
            return self._aliases[key]
        for candidate in list(self._entries) + list(self._aliases):  # case/underscore-insensitive
            if candidate.lower().replace("_", "-") == key.lower().replace("_", "-"):
                return self._aliases.get(candidate, candidate)
        hint = suggest(key, self.names() + list(self._aliases))
        did_you_mean = f" Did you mean: {', '.join(hint)}?" if hint else ""
        raise UserError(f"unknown {self.kind} {name!r}.{did_you_mean} Valid {self.kind}s: {', '.join(self.names())}")

    def get(self, name: str) -> T:
        return self._entries[self.canonical(name)]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def aliases_of(self, name: str) -> list[str]:
        return sorted(a for a, target in self._aliases.items() if target == name)

    def __contains__(self, name: str) -> bool:
        try:
            self.canonical(name)
        except UserError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
