"""The benchmarks by name: each module has NAME, COLUMNS, a config dataclass, ``default_config(quick)``
and ``run(cfg, device) -> {"config", "records", "summary", "methods"}``."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Tuple

__all__ = ["BENCHMARKS", "load"]

BENCHMARKS: Tuple[str, ...] = ("scaling", "kernel", "decode", "train")


def load(name: str) -> ModuleType:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    return importlib.import_module(f"{__package__}.{name}")
