"""What a benchmark result must say about where it ran: versions, device, threads, commit, load.

Every results file carries this record, so a number can be traced to the machine, the code and the
contention it was measured under (this project's CPUs are shared; see `load_average`).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import torch

from ..training.metrics import git_commit, hardware_info

__all__ = [
    "environment",
    "load_average",
    "resolve_device",
    "set_threads",
    "retain_freed_memory",
]


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is passed to `torch.device`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False")
    return device


def set_threads(threads: Optional[int]) -> int:
    """Set torch's intra-op threads when ``threads`` is given; return the number in effect."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads={threads} must be >= 1")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


#: glibc mallopt parameters (malloc.h): M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def retain_freed_memory() -> str:
    """Make glibc keep freed memory for reuse in this process (what a caching allocator does).

    By default glibc serves large blocks with ``mmap`` and trims the heap top on ``free``; a workload
    that allocates and frees a few MB per step then pays page faults on every step (measured here:
    ~500-1,500 faults, 1-3 ms of kernel time per Grassmann block step at L = 256..1024, few for
    attention). ``mallopt(M_MMAP_THRESHOLD, 32 MiB)`` and ``mallopt(M_TRIM_THRESHOLD, 1 GiB)`` stop
    that for blocks below 32 MiB. Process-wide; returns a description for the results file, or says
    why nothing changed (not glibc).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**30) == 1
    except (OSError, AttributeError):
        ok = False
    if not ok:
        return "system (mallopt unavailable: not glibc)"
    return "glibc, retaining (mallopt M_MMAP_THRESHOLD=32MiB, M_TRIM_THRESHOLD=1GiB)"


def load_average() -> Optional[list]:
    """The 1/5/15-minute load averages (runnable processes): above the core count, timings are shared."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def environment(device: torch.device) -> Dict[str, Any]:
    """The header fields of a results file (everything but the benchmark's own config and records)."""
    return {
        "torch": torch.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "git_commit": git_commit(),  # one definition: gflow_lite.training.metrics
        "hardware": hardware_info(device),  # the one hardware record: gflow_lite.training.metrics
        "load_average_start": load_average(),
        "native_kernels": _native_status(device),
    }


def _native_status(device: torch.device) -> str:
    """Whether ``impl="native"`` runs its C++ kernels here, or why it runs the fused ATen kernels."""
    from ..kernels import native

    if device.type != "cpu":
        return f"not used on {device.type} (impl='native' runs gflow_lite.kernels.fused there)"
    return "built" if native.available() else f"unavailable, impl='native' ran gflow_lite.kernels.fused: {native.build_error()}"
