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

import argparse
import dataclasses
import math
import os
import types
import typing
from typing import Any, Dict, Mapping, Sequence, TypeVar

__all__ = [
    "ConfigError",
    "FALSE_WORDS",
    "TRUE_WORDS",
    "check_lm_config",
    "output_path",
    "check_output_target",
    "make_output_folder",
    "coerce_bools",
    "config_dict",
    "config_from_dict",
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


def config_from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """The dataclass ``cls`` rebuilt from `config_dict`'s output (lists back to tuples, nested dataclasses
    rebuilt); an unknown key raises `ConfigError` naming the known ones."""
    types_ = field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s) {unknown}; known fields: {sorted(types_)}")
    values = {}
    for key, value in data.items():
        kind = types_[key]
        union = typing.get_origin(kind) in (typing.Union, types.UnionType)  # Optional[X]
        inner = [a for a in typing.get_args(kind) if a is not type(None)] if union else [kind]
        if dataclasses.is_dataclass(kind) and isinstance(value, Mapping):
            value = config_from_dict(kind, value)
        elif isinstance(value, list) and any(typing.get_origin(t) in (tuple, typing.Tuple) for t in inner):
            value = tuple(value)
        values[key] = value
    return cls(**values)


# ======================================================================= the model's settings, checked
#: The allowed words of `gflow_lite.model.LMConfig`'s string fields.
LM_CHOICES = {
    "offset_mode": ("all", "per_layer"),
    "norm": ("post", "pre"),
    "mix_residual": ("auto", "on", "off"),
    "aggregate": ("mean", "learned"),
    "pos_emb": ("learned", "none"),
    "impl": ("fast", "reference", "fused", "native"),
    "pair": ("plucker", "concat", "outer"),
}


def _lm_error(name: str, value: Any, what: str) -> ConfigError:
    return ConfigError(f"LMConfig.{name}={value!r} must be {what}")


def check_lm_config(cfg: Any) -> Any:
    """Check a `gflow_lite.model.LMConfig` given by a user; returns it (offsets as a tuple, yes/no words as
    bools) or raises `ConfigError` naming the field, what is wrong and what to give instead.

    The model itself only asserts: its settings are checked here, where they arrive (the command line,
    `TrainConfig`, a checkpoint's recorded config).
    """
    offsets = cfg.offsets
    try:
        offsets = tuple(offsets)
    except TypeError:
        raise ConfigError(f"offsets={offsets!r} must be a non-empty sequence of positive integers") from None
    if not offsets:
        raise ConfigError("offsets=() is empty; give at least one positive integer offset, e.g. (1, 2, 4)")
    for delta in offsets:
        if isinstance(delta, bool) or not isinstance(delta, int) or delta < 1:
            raise ConfigError(f"offsets contains {delta!r}; every offset must be a positive integer (a distance "
                              f"back in tokens), e.g. (1, 2, 4, 8, 12, 16)")
    object.__setattr__(cfg, "offsets", offsets)
    for name, minimum in (("vocab_size", 1), ("block_size", 1), ("d_model", 1), ("n_layers", 1), ("d_ff", 1),
                          ("n_heads", 1), ("attn_window", 0)):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _lm_error(name, value, f"an integer >= {minimum}")
    if isinstance(cfg.r, bool) or not isinstance(cfg.r, int) or cfg.r < 2:
        raise _lm_error("r", cfg.r, "an integer >= 2: a 2-plane needs at least 2 dimensions (the paper uses r=32)")
    coerce_bools(cfg)  # normalize, out_proj, tie_weights: "false" -> False; not a bool or yes/no: refused
    for name, ok, what in (("dropout", lambda x: 0.0 <= x < 1.0, "a number in [0, 1)"),
                           ("eps", lambda x: x > 0, "a positive number, e.g. 1e-6"),
                           ("init_std", lambda x: x > 0, "a positive number, e.g. 0.02")):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not ok(float(value)):
            raise _lm_error(name, value, what)
    for name, allowed in LM_CHOICES.items():
        if getattr(cfg, name) not in allowed:
            raise ConfigError(f"LMConfig.{name}={getattr(cfg, name)!r} is not allowed; choose one of {allowed}")
    if cfg.impl in ("fused", "native") and cfg.pair != "plucker":
        raise ConfigError(f"LMConfig.impl={cfg.impl!r} computes Plücker pairs only, but pair={cfg.pair!r}; use "
                          f"impl='fast' or 'reference' for the controls")
    if cfg.offset_mode == "per_layer" and len(offsets) != cfg.n_layers:
        raise ConfigError(f"LMConfig.offsets has {len(offsets)} entries but offset_mode='per_layer' needs one "
                          f"offset per layer (n_layers={cfg.n_layers}); e.g. (1, 1, 2, 2, 4, 4, 8, 8, 12, 12, 16, "
                          f"16) for 12 layers, or use offset_mode='all'")
    if cfg.d_model % cfg.n_heads != 0:
        raise ConfigError(f"LMConfig.d_model={cfg.d_model} is not divisible by n_heads={cfg.n_heads}; choose "
                          f"n_heads among the divisors of d_model (the paper: 256 and 4)")
    return cfg


def output_path(text: str) -> "os.PathLike[str]":
    """An argparse ``type`` for an output folder or file: refuses an empty value (an unset shell variable
    would otherwise mean the current folder) and a name longer than the file system allows, with a clear
    message before anything runs."""
    from pathlib import Path

    if not text.strip():
        raise argparse.ArgumentTypeError("is empty (an unset shell variable?); give a folder or file name")
    if "\0" in text:
        raise argparse.ArgumentTypeError("contains a NUL character")
    for part in Path(text).parts:
        if len(os.fsencode(part)) > 255:
            raise argparse.ArgumentTypeError(f"has a name of {len(os.fsencode(part))} bytes ({part[:40]}...); "
                                             f"file systems allow at most 255 per name")
    return Path(text)


def check_output_target(path: "os.PathLike[str]", option: str, folder: bool) -> None:
    """Before any work: `ConfigError` unless ``path`` (a folder, or a file with ``folder=False``) can be
    written: no file where a folder must be, and the nearest existing folder is writable."""
    from pathlib import Path

    path = Path(path)
    if path.exists() and folder != path.is_dir():
        raise ConfigError(f"{option} {path} exists and is {'a file' if folder else 'a folder'}; "
                          f"give {'a folder' if folder else 'a file name'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{option} {path} is below {parent}, which is a file, not a folder; "
                                  f"choose another {option}")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError(f"{option} {path}: {parent} is not writable; choose another {option}")
            return


def make_output_folder(path: "os.PathLike[str]", option: str) -> None:
    """Create the folder ``path`` (and its parents) now, before any work, or raise `ConfigError` saying why
    it cannot be (a file in the way, no permission, a read-only or full file system)."""
    from pathlib import Path

    check_output_target(path, option, folder=True)
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{option} {path} cannot be created ({err.strerror or err}); choose another {option}") \
            from None
