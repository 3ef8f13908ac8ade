"""Configs as files (task files, run-matrix files): YAML mappings read into typed dataclasses, with
every problem reported as ``file:line: key: what was expected``.

Unknown keys are errors with the closest valid key suggested, never dropped: a misspelt
``lable_column`` must not silently fall back to a default and publish a run on the wrong column.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferbench.errors import UserError
from transferbench.registry import suggest


@dataclass
class Located:
    """A YAML mapping and the line each of its keys stands on (nested mappings likewise)."""

    path: Path
    data: dict[str, Any]
    lines: dict[str, int]
    children: dict[str, Located]
    line: int = 1
    items: dict[str, list[Located]] = dataclasses.field(default_factory=dict)  # lists of mappings

    def where(self, key: str | None = None) -> str:
        return f"{self.path}:{self.lines.get(key, self.line) if key else self.line}"

    def error(self, key: str | None, problem: str) -> UserError:
        return UserError(f"{self.where(key)}: {key + ': ' if key else ''}{problem}")


def _located(path: Path, node: Any, data: Any) -> Located:
    import yaml  # lazy: only configs read from files need it

    lines, children, items = {}, {}, {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in lines:  # YAML loaders keep the last one silently: `domain: text` ... `domain: vision`
                raise UserError(f"{path}:{line}: {key}: given twice (first at line {lines[key]}); keep one")
            lines[key] = line
            value = data.get(key)
            if isinstance(value_node, yaml.MappingNode) and isinstance(value, dict):
                children[key] = _located(path, value_node, value)
            elif isinstance(value_node, yaml.SequenceNode) and isinstance(value, list):
                items[key] = [
                    _located(path, n, v) for n, v in zip(value_node.value, value, strict=True) if isinstance(v, dict)
                ]
    line = node.start_mark.line + 1 if node is not None else 1
    return Located(path, data, lines, children, line, items)


def read_mapping(path: str | Path, what: str) -> Located:
    """A YAML file whose top level is a mapping; one-line errors for a missing file or bad YAML."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path}: file not found")
    text = decode_utf8(path)
    try:
        data, node = yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}:1: a {what} is a mapping of keys to values, got {type(data).__name__}")
    return _located(path, node, data)


def decode_utf8(path: Path, error: type[UserError] = UserError) -> str:
    """A text file's contents (a leading byte-order mark dropped), or one line naming the first
    byte that is not UTF-8 and its line (task and matrix files, CSV data alike)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None


def _type_name(kind: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if kind in names:
        return names[kind]
    if typing.get_origin(kind) is tuple:
        return f"a list of {_type_name(typing.get_args(kind)[0]).removeprefix('a ').removeprefix('an ')}s"
    if dataclasses.is_dataclass(kind):
        return "a mapping"
    return getattr(kind, "__name__", str(kind))


def _coerce(value: Any, kind: Any) -> tuple[bool, Any]:
    """(ok, value as ``kind``): ints are numbers, lists become tuples; nothing else is converted."""
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool), value
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if typing.get_origin(kind) is tuple:
        (inner, *_) = typing.get_args(kind)
        if not isinstance(value, list):
            return False, value
        items = [_coerce(v, inner) for v in value]
        return all(ok for ok, _ in items), tuple(v for _, v in items)
    return isinstance(value, kind), value


def to_dataclass(located: Located, cls: type, *, required: tuple[str, ...] = ()) -> Any:
    """``cls(**located.data)`` after checking every key exists and every value has its type
    (nested dataclass fields read nested mappings the same way)."""
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in required:
        if key not in located.data:
            raise located.error(None, f"missing key {key!r} ({_type_name(hints[key])})")
    kwargs = {}
    for key, value in located.data.items():
        if key not in valid:
            hint = suggest(str(key), valid)
            raise located.error(str(key), "unknown key" + (f"; did you mean {hint[0]!r}?" if hint else ""))
        kwargs[key] = _field_value(located, key, value, hints[key])
    return cls(**kwargs)


def _field_value(located: Located, key: str, value: Any, hint: Any) -> Any:
    kinds = [k for k in typing.get_args(hint)] if isinstance(hint, types.UnionType) else [hint]
    if value is None and type(None) in kinds:
        return None
    for kind in (k for k in kinds if k is not type(None)):
        if dataclasses.is_dataclass(kind) and key in located.children:
            return to_dataclass(located.children[key], kind)
        ok, coerced = _coerce(value, kind)
        if ok:
            return coerced
    expected = " or ".join(_type_name(k) for k in kinds if k is not type(None))
    raise located.error(key, f"expected {expected}, got {value!r}")
