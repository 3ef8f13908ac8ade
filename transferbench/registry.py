"""One small registry type for tasks, adapters, strategies and suites.

Modelled on timm's model registry: entries are registered with a decorator, may have
aliases, and an unknown name raises a :class:`UserError` that lists the valid names and
the closest matches.

A registry may also hold *families*: a prefix (``timm``) and a resolver that turns the rest of a
name (``timm:resnet18``) into an entry on first use. Family entries are cached but are not part of
:meth:`Registry.names`, so listing, reports and "every registered adapter" tests see the curated
entries only, whatever names a run happened to resolve.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from transferbench.errors import UserError

T = TypeVar("T")
# A family's resolver: the name after "prefix:" -> (its canonical spelling, the entry). It raises
# UserError (one line, with suggestions) for a name its family does not know.
Resolver = Callable[[str], tuple[str, T]]


# Names of tasks, suites, adapters, strategies and domains: they become folder names (the default
# output folder is runs/<task>-<adapter>), so no path separators, no leading dot, nothing else odd.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
SAFE_NAME_RULE = "letters, digits and . _ + - (starting with a letter or digit; no path separators)"


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a registered entry, or None: a safe identifier (:data:`SAFE_NAME_RULE`)."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name):
        return f"{name!r} is not a valid name: use {SAFE_NAME_RULE}"
    return None


def slug(text: str) -> str:
    """``text`` as one safe folder name (a family adapter ``hf:/models/bert`` -> ``hf-models-bert``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-.")
    return cleaned or "run"


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
        self._families: dict[str, tuple[Resolver[T], str]] = {}  # prefix -> (resolver, description)
        self._resolved: dict[str, tuple[str, T]] = {}  # a family name as typed -> (canonical, entry)

    def register(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj, aliases=aliases)
            return obj

        return decorator

    def add(self, name: str, obj: T, *, aliases: tuple[str, ...] = ()) -> None:
        problem = name_problem(name)
        if problem is not None:
            raise ValueError(f"{self.kind} {problem}")
        if name in self._entries or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = obj
        for alias in aliases:
            self._aliases[alias] = name

    def add_family(self, prefix: str, resolver: Resolver[T], *, description: str = "") -> None:
        """Resolve every name ``prefix:<rest>`` through ``resolver(rest)`` on first use (then cached).
        ``description`` says what ``<rest>`` may be, for listings and unknown-name errors."""
        prefix = prefix.lower()
        if prefix in self._families or ":" in prefix:
            raise ValueError(f"{self.kind} family {prefix!r} is registered twice or has a ':'")
        self._families[prefix] = (resolver, description)

    def families(self) -> dict[str, str]:
        """Family prefix -> what its names may be (e.g. ``timm`` -> ``any timm model ...``)."""
        return {prefix: description for prefix, (_, description) in sorted(self._families.items())}

    def _family_entry(self, key: str) -> tuple[str, T] | None:
        """(canonical name, entry) for ``prefix:rest`` of a known family, None for other names."""
        prefix, sep, rest = key.partition(":")
        if not sep or prefix.lower() not in self._families:
            return None
        if key not in self._resolved:
            resolver, _ = self._families[prefix.lower()]
            canonical_rest, entry = resolver(rest.strip())
            canonical = f"{prefix.lower()}:{canonical_rest}"
            known = self._resolved.get(canonical)  # one entry per model, however it was spelled
            self._resolved[key] = self._resolved[canonical] = known or (canonical, entry)
        return self._resolved[key]

    def _unknown(self, name: str, key: str) -> UserError:
        prefix, sep, rest = key.partition(":")
        hint = [f"{p}:{rest}" for p in suggest(prefix, list(self._families))] if sep else []  # "timn:resnet18"
        hint = hint or suggest(key, self.names() + list(self._aliases))
        did_you_mean = f" Did you mean: {', '.join(hint)}?" if hint else ""
        families = "".join(f"; or {p}:<{d}>" for p, d in self.families().items())
        return UserError(
            f"unknown {self.kind} {name!r}.{did_you_mean} Valid {self.kind}s: {', '.join(self.names())}{families}"
        )

    def canonical(self, name: str) -> str:
        key = name.strip()
        family = self._family_entry(key)
        if family is not None:
            return family[0]
        if key in self._entries:
            return key
        if key in self._aliases:
            return self._aliases[key]
        for candidate in list(self._entries) + list(self._aliases):  # case/underscore-insensitive
            if candidate.lower().replace("_", "-") == key.lower().replace("_", "-"):
                return self._aliases.get(candidate, candidate)
        raise self._unknown(name, key)

    def get(self, name: str) -> T:
        family = self._family_entry(name.strip())
        if family is not None:
            return family[1]
        return self._entries[self.canonical(name)]

    def names(self) -> list[str]:
        """The registered entries (family entries resolved so far are not among them)."""
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
