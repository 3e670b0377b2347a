"""Settings as plain dataclasses, and the one parser for ``key=value`` overrides and yes/no words.

Every configurable thing in gflow_lite (a training run, a benchmark) is a frozen dataclass. The command
line changes a field with ``--set key=value``; the text is parsed by the field's type annotation:
``int``, ``float``, ``str``, ``bool`` (``true/false``, ``yes/no``, ``on/off``, ``1/0``), ``Optional[X]``
(``none`` or ``null`` for None) and tuples (``1,2,4``). Booleans read from the environment
(`env_flag`) and boolean fields given as strings (`coerce_bools`) use the same words, so ``"false"``
means False everywhere and ``"maybe"`` is refused everywhere.

This module imports nothing from the rest of the package, so any module may use it.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from typing import Any, Dict, Mapping, Sequence, TypeVar

__all__ = [
    "ConfigError",
    "FALSE_WORDS",
    "TRUE_WORDS",
    "coerce_bools",
    "config_dict",
    "env_flag",
    "override",
    "parse_assignments",
    "parse_bool",
    "parse_value",
]

C = TypeVar("C")

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """A setting (preset name, override key or value, environment variable) that cannot be used."""


def parse_bool(value: Any, name: str = "value") -> bool:
    """``value`` as a bool: a bool itself, or one of `TRUE_WORDS` / `FALSE_WORDS` (any case).

    Anything else (``"maybe"``, ``2``, ``None``) raises `ConfigError` naming ``name``.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ConfigError(f"{name}={value!r} is not a boolean (true/false); use true or false")


def env_flag(name: str, default: bool = False) -> bool:
    """The environment variable ``name`` read as a boolean (unset or empty: ``default``)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse_bool(raw, name)
    except ConfigError:
        raise ConfigError(
            f"environment variable {name}={raw!r} is not a boolean; set it to 1/0, true/false, yes/no or on/off"
        ) from None


def coerce_bools(obj: Any) -> None:
    """In a (frozen) dataclass instance, turn every ``bool`` field given as a word into a bool.

    Call it first in ``__post_init__``: ``LMConfig(normalize="false")`` then holds ``False``, and a value
    that is neither a bool nor a yes/no word raises `ConfigError`.
    """
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if hints.get(f.name) is bool:
            value = getattr(obj, f.name)
            parsed = parse_bool(value, f"{type(obj).__name__}.{f.name}")
            if parsed is not value:
                object.__setattr__(obj, f.name, parsed)


_TYPE_NAMES = {bool: "a boolean (true/false)", int: "an integer (expected int)", float: "a number (expected float)"}


def parse_value(key: str, text: str, annotation: Any) -> Any:
    """Parse ``text`` as a value of type ``annotation`` (see the module docstring for the forms)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:  # Optional[X] or X | None
        if text.strip().lower() in {"none", "null"}:
            return None
        inner = [a for a in args if a is not type(None)]
        return parse_value(key, text, inner[0])
    if origin in (tuple, typing.Tuple):
        items = [part.strip() for part in text.split(",") if part.strip()]
        element = args[0] if args else str
        if len(args) > 1 and args[1] is not Ellipsis and len(items) != len(args):
            raise ConfigError(f"{key}={text!r}: expected {len(args)} comma-separated values")
        try:
            return tuple(parse_value(key, item, element) for item in items)
        except ConfigError as err:
            raise ConfigError(f"{key}={text!r}: {err}") from None
    if annotation is bool:
        try:
            return parse_bool(text, key)
        except ConfigError:
            raise ConfigError(f"{key}={text!r} is not {_TYPE_NAMES[bool]}") from None
    try:
        if annotation is int:
            return int(text.replace("_", ""))
        if annotation is float:
            return float(text)
        if annotation is str:
            return text
    except ValueError:
        raise ConfigError(f"{key}={text!r} is not {_TYPE_NAMES[annotation]}") from None
    raise ConfigError(f"{key}: cannot parse values of type {annotation}")


def parse_assignments(items: Sequence[str]) -> Dict[str, str]:
    """``["a=1", "b=x,y"]`` (as given to ``--set``) -> ``{"a": "1", "b": "x,y"}``; a missing ``=`` is an error."""
    out: Dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def field_types(cls: type) -> Dict[str, Any]:
    """``{field name: resolved type annotation}`` of a dataclass."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in typing.get_type_hints(cls).items() if k in names}


def override(cfg: C, assignments: Mapping[str, str]) -> C:
    """A copy of the dataclass ``cfg`` with fields set from their ``key=value`` strings."""
    types_ = field_types(type(cfg))
    changes = {}
    for key, text in assignments.items():
        if key not in types_:
            raise ConfigError(
                f"unknown setting {key!r} for {type(cfg).__name__}; known: {', '.join(types_)}"
            )
        changes[key] = parse_value(key, text, types_[key])
    return dataclasses.replace(cfg, **changes)


def config_dict(cfg: Any) -> Dict[str, Any]:
    """JSON-ready dict of a dataclass (tuples become lists, nested dataclasses dicts)."""

    def plain(value: Any) -> Any:
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}
