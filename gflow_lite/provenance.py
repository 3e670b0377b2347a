"""Where a result was computed: this machine's CPU, read once.

`cpu_info` parses ``/proc/cpuinfo`` (Linux) one time per process and gives the CPU's model name and its
instruction-set flags; the hardware records of runs and benchmarks and the native kernel's build cache
(a ``-march=native`` build must never be reused on another CPU) all read it from here. This module
imports nothing from the rest of the package, so any module may use it.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path
from typing import Dict

__all__ = ["cpu_info"]


@functools.lru_cache(maxsize=1)
def cpu_info() -> Dict[str, str]:
    """``{"model": ..., "flags": ...}`` of this CPU; where ``/proc/cpuinfo`` is missing or lacks a field,
    `platform.processor()` (or the machine type) stands in for it."""
    fallback = platform.processor() or platform.machine()
    found: Dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key == "model name" and "model" not in found:
                found["model"] = value.strip()
            elif key in ("flags", "features") and "flags" not in found:  # x86: flags; ARM: Features
                found["flags"] = value.strip()
    except OSError:
        pass
    return {"model": found.get("model", fallback), "flags": found.get("flags", fallback)}
