"""Frozen dataclass configs: strict construction from dicts and ``key=value`` overrides.

Unknown keys raise a ``ValueError`` listing the valid ones, so a typo in a run file or on the
command line never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

C = TypeVar("C")
# The sizes every lab preset comes in: a smoke test, 2 CPU cores, the paper's published setup.
SCALES: tuple[str, ...] = ("tiny", "quick", "paper")


def check_scale(scale: str) -> str:
    """``scale`` if it is one of :data:`SCALES`, else a ``ValueError`` naming them."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")
    return scale


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Turn JSON-ish values into the declared type (nested dataclasses, tuples, numbers)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return from_dict(hint, value, where=where)
    if dataclasses.is_dataclass(hint) and not isinstance(value, hint):
        raise ValueError(f"config key {where or '?'}: expected a section of {hint.__name__} settings, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _coerce(value, non_none[0], where) if len(non_none) == 1 else value
    if origin is tuple:
        # A container field takes a list, never a scalar: ``probes="mlp"`` would iterate as letters and
        # ``seeds=2`` would be an int where a tuple is read.
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"config key {where or '?'}: expected a list (e.g. [{value!r}]), got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if len(value) != len(args):
            raise ValueError(f"config key {where or '?'}: expected {len(args)} values, got {list(value)!r}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ValueError(f'config key {where or "?"}: expected an object (e.g. {{"name": …}}), got {value!r}')
        return dict(value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    # A JSON-ish leaf of the wrong kind (``--set unit_codes=maybe`` arrives as the string "maybe", which
    # is truthy) must fail here, naming the key, not pass silently as a different setting.
    if hint in (bool, int, float, str) and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
        raise ValueError(f"config key {where or '?'}: expected {hint.__name__}, got {value!r}")
    return value


def from_dict(cls: type[C], data: Mapping[str, Any], where: str = "") -> C:
    """Build dataclass ``cls`` from ``data``; unknown keys raise, naming the valid ones."""
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ValueError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)} for {cls.__name__}; "
            f"valid: {', '.join(sorted(types_))}"
        )
    kwargs = {k: _coerce(v, types_[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) dataclass config."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def parse_value(text: str) -> Any:
    """A value written on the command line: JSON if it parses (numbers, lists, objects, true/false/null),
    a list if bracketed (``[scenes, fashion]``: items parsed the same way), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        inner = text.strip()
        if inner.startswith("[") and inner.endswith("]"):
            return [parse_value(part.strip()) for part in inner[1:-1].split(",") if part.strip()]
        return text


def parse_assignment(item: str, what: str = "override") -> tuple[str, Any]:
    """``"key=value"`` → ``(key, parse_value(value))``; the one ``key=value`` parser of every option."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{what} {item!r} is not of the form key=value")
    return key.strip(), parse_value(raw)


def with_overrides(cfg: C, overrides: Iterable[str]) -> C:
    """Return a copy of ``cfg`` with dotted ``key=value`` overrides applied (values parsed as JSON)."""
    data = dataclasses.asdict(cfg)
    for item in overrides:
        key, value = parse_assignment(item)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"override {key!r}: {part!r} is not a config section")
            node = node[part]
        if parts[-1] not in node:
            raise ValueError(f"override {key!r}: unknown key; valid: {', '.join(sorted(node))}")
        node[parts[-1]] = value
    return from_dict(type(cfg), data)
