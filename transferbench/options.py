"""Declared options: every knob of every component (a strategy's ``lora_rank``, a domain's
``image_size``, an adapter family's ``max_length``, the shared budget's ``epochs``) is declared once,
as an :class:`Option`: its name, type, range or choices, default, one-line help and whether it is part
of a run's identity.

One declaration serves every way a value arrives: the command-line flag (``--lora-rank``), a key of a
task or matrix file (``lora_rank: 8``), ``validate``, ``list`` and sweeps all go through
:meth:`Option.check`, so ``seeds: [-1]`` in a file is refused exactly as ``--seeds -1`` is, with the
same words, naming where the value came from.

Dataclass fields declare options with :func:`option` (their metadata holds the declaration), so a
strategy's recipe, the budget and the options are one list: :func:`declared` reads them back.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from transferbench.errors import UserError

_META = "transferbench.option"


@dataclass(frozen=True)
class Option:
    """One declared option. ``kind`` is ``int``, ``float``, ``str``, ``bool``, ``tuple`` of one of
    those (``item``), or a dataclass read from a mapping (``parse`` turns command-line text into it).
    ``default`` None means "not set: the owner's default applies" (``default_text`` says which)."""

    name: str
    kind: Any
    help: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] | None = None
    item: Any = None  # the element type of a tuple option
    distinct: bool = False  # tuple options: no repeated element
    identity: bool = True  # part of the run identity (recorded either way)
    parse: Callable[[str], Any] | None = None  # command-line text -> value, for forms like "0-4"
    validator: Callable[[Any], str | None] | None = None  # a further rule: why a value is not valid, or None
    nullable: bool = False  # None is a value the user may give (``none`` on the command line, null in YAML)
    default_text: str = ""  # what the default is, in words, where it is not a literal

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def expected(self) -> str:
        """What a valid value is, in words: ``an integer of at least 1``."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices) + (" or none" if self.nullable else "")
        if self.kind is tuple:
            return f"a list of {_kind_words(self.item, self)}" + (" (distinct)" if self.distinct else "")
        return _kind_words(self.kind, self, article=True)

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not valid for this option (None: it is)."""
        if value is None:
            return None
        if self.kind is tuple:
            if not isinstance(value, list | tuple) or not value:
                return f"expected {self.expected()}, got {value!r}"
            bad = any(_scalar_problem(v, self.item, self) for v in value)
            if bad or (self.distinct and len(set(value)) != len(value)):
                return f"expected {self.expected()}, got {list(value)!r}"
            return self.validator(tuple(value)) if self.validator is not None else None
        if dataclasses.is_dataclass(self.kind):
            if not isinstance(value, self.kind):
                return f"expected {self.expected()}, got {value!r}"
        elif _scalar_problem(value, self.kind, self):
            return f"expected {self.expected()}, got {value!r}"
        return self.validator(value) if self.validator is not None else None

    def check(self, value: Any, where: str | None = None) -> Any:
        """``value`` as this option's type (lists become tuples), or a one-line UserError naming
        ``where`` it came from (default: the flag)."""
        problem = self.problem(value)
        if problem is not None:
            raise UserError(f"{where or self.flag}: {problem}")
        if self.kind is tuple and isinstance(value, list):
            value = tuple(value)
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        return value

    def from_text(self, text: str) -> Any:
        """A command-line value (``--lora-rank 8``) as this option's type, checked."""
        if self.nullable and text.strip().lower() in ("none", "null", "off"):
            return None
        if self.parse is not None:
            return self.check(self.parse(text))
        try:
            if self.kind is tuple:
                value: Any = tuple(_scalar_from_text(part.strip(), self.item) for part in text.split(","))
            else:
                value = _scalar_from_text(text.strip(), self.kind)
        except ValueError:
            raise UserError(f"{self.flag}: expected {self.expected()}, got {text!r}") from None
        return self.check(value)

    def describe(self) -> str:
        """One line for ``list``: help, type or choices, default."""
        default = self.default_text or ("—" if self.default is None else shown(self.default))
        return f"{self.help} ({self.expected()}; default {default})"


def _kind_words(kind: Any, opt: Option, article: bool = False) -> str:
    names = {int: "integer", float: "finite number", str: "string", bool: "true or false"}
    words = names.get(kind, getattr(kind, "__name__", "value"))
    if kind is bool:
        return words
    bounds = _bounds(opt)
    text = f"{words}{'s' if not article else ''}{' ' + bounds if bounds else ''}"
    return (("an " if words[0] in "aeiou" else "a ") + text) if article else text


def _bounds(opt: Option) -> str:
    low, high = opt.low, opt.high
    if low is None and high is None:
        return ""
    if high is None or math.isinf(high):
        return f"above {low:g}" if opt.low_open else f"of at least {low:g}"
    if low is None:
        return f"of at most {high:g}"
    return f"in {'(' if opt.low_open else '['}{low:g}, {high:g}]"


def _scalar_problem(value: Any, kind: Any, opt: Option) -> bool:
    """True when ``value`` is not a valid scalar of ``kind`` within ``opt``'s range and choices."""
    if kind is bool:
        return not isinstance(value, bool)
    if isinstance(value, bool):
        return True
    if kind is int and not isinstance(value, int):
        return True
    if kind is float and not isinstance(value, int | float):
        return True
    if kind is str:
        return not isinstance(value, str) or (opt.choices is not None and value not in opt.choices)
    if kind in (int, float):
        if not math.isfinite(value):
            return True
        if opt.low is not None and (value <= opt.low if opt.low_open else value < opt.low):
            return True
        if opt.high is not None and value > opt.high:
            return True
    return False


def _scalar_from_text(text: str, kind: Any) -> Any:
    if kind is bool:
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(text)
        return lowered in ("true", "1", "yes")
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    return text


def shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(shown(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def option(default: Any = dataclasses.MISSING, help: str = "", **declaration: Any) -> Any:
    """A dataclass field that is also a declared option (its name and type come from the field)."""
    metadata = {_META: {"help": help, **declaration}}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, list | dict | set):
        raise TypeError("option defaults must be immutable (use a tuple)")
    return dataclasses.field(default=default, metadata=metadata)


def declared(cls: Any) -> list[Option]:
    """The options a dataclass (a strategy, the budget) declares through :func:`option` fields."""
    hints = typing.get_type_hints(cls if isinstance(cls, type) else type(cls))
    out = []
    for f in dataclasses.fields(cls):
        if _META not in f.metadata:
            continue
        kind, item = _kind_of(hints[f.name])
        default = None if f.default is dataclasses.MISSING else f.default
        out.append(Option(f.name, kind, item=item, default=default, **f.metadata[_META]))
    return out


def _kind_of(hint: Any) -> tuple[Any, Any]:
    """(kind, item) of a field's type hint: ``int | None`` -> int; ``tuple[int, ...]`` -> (tuple, int)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return tuple, args[0]
    if args and typing.get_origin(hint) is not None and len(args) == 1:
        return _kind_of(args[0])
    return hint, None


def by_name(options: Iterable[Option]) -> dict[str, Option]:
    """Options keyed by name; the same name declared twice must be the same declaration."""
    out: dict[str, Option] = {}
    for opt in options:
        known = out.get(opt.name)
        if known is not None and known != opt:
            raise ValueError(f"option {opt.name!r} is declared twice, differently: {known} vs {opt}")
        out[opt.name] = opt
    return out


def refusal(check: Callable[[Any], Any]) -> Callable[[Any], str | None]:
    """An ``Option.validator`` from a function that raises a UserError for a bad value (a parser that
    already says what is wrong, in its own words)."""

    def validator(value: Any) -> str | None:
        try:
            check(value)
        except UserError as exc:
            return str(exc)
        return None

    return validator


def parse_seeds(text: str) -> tuple[int, ...]:
    """``0,1,2`` or a range ``0-4``."""
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if match and int(match.group(1)) <= int(match.group(2)):
        return tuple(range(int(match.group(1)), int(match.group(2)) + 1))
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"--seeds: expected integers like 0,1,2 or a range like 0-4, got {text!r}") from None


SEEDS = Option(
    "seeds",
    tuple,
    "training seeds, e.g. 0,1,2 or 0-4",
    default=(0,),
    item=int,
    low=0,
    distinct=True,
    parse=parse_seeds,
)
