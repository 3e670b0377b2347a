"""Benchmark configurations are frozen dataclasses; ``--set key=value`` overrides a field by its type."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Dict, Sequence, Tuple, TypeVar

__all__ = ["override", "parse_assignments", "config_dict"]

C = TypeVar("C")


def _parse(name: str, text: str, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (tuple, Tuple):
        inner = args[0] if args else str
        return tuple(_parse(name, part, inner) for part in text.split(",") if part.strip())
    if origin is typing.Union:  # Optional[X]
        if text.lower() in ("none", "null", ""):
            return None
        return _parse(name, text, next(a for a in args if a is not type(None)))
    if annotation is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}={text!r}: expected true or false")
    if annotation in (int, float, str):
        try:
            return annotation(text)
        except ValueError:
            raise ValueError(f"{name}={text!r}: expected {annotation.__name__}") from None
    raise ValueError(f"{name}: cannot parse a value of type {annotation}")  # pragma: no cover


def parse_assignments(items: Sequence[str]) -> Dict[str, str]:
    """``["a=1", "b=x,y"]`` -> ``{"a": "1", "b": "x,y"}``."""
    out: Dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


def override(cfg: C, assignments: Dict[str, str]) -> C:
    """A copy of the dataclass ``cfg`` with fields set from their string values."""
    hints = typing.get_type_hints(type(cfg))
    names = [f.name for f in dataclasses.fields(cfg)]
    changes = {}
    for key, text in assignments.items():
        if key not in names:
            raise ValueError(f"unknown setting {key!r} for {type(cfg).__name__}; known: {', '.join(names)}")
        changes[key] = _parse(key, text, hints[key])
    return dataclasses.replace(cfg, **changes)


def config_dict(cfg: Any) -> Dict[str, Any]:
    """JSON-ready dict of a dataclass (tuples become lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}
