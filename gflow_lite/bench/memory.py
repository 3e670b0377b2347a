"""Memory of one forward+backward: the allocator's peak, and the bytes autograd keeps for backward.

Two measurements, both reported in bytes above what existed before the call:

* ``peak``: the high-water mark of live tensor memory during the call. On CUDA it is
  ``torch.cuda.max_memory_allocated`` minus the allocation before; on the CPU it is replayed from the
  allocation and free events that ``torch.profiler`` records with ``profile_memory=True`` (every
  allocation made through PyTorch's allocator: outputs, temporaries, saved tensors, gradients; not the
  private scratch memory of oneDNN/MKL kernels). The CPU replay uses the profiler's memory timeline,
  a private API; where it is missing the peak is reported as None.
* ``saved``: the distinct storages that autograd saves for backward during the forward (counted with
  `torch.autograd.graph.saved_tensors_hooks`, each storage once, parameters excluded). This is the
  activation memory a model holds between its forward and backward, the quantity the formulas in
  `gflow_lite.flops` predict.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, Optional, Set, Tuple

import torch
from torch import Tensor

__all__ = ["MemoryUse", "measure_memory", "saved_tensor_bytes", "peak_bytes"]

PEAK_METHOD_CPU = "torch.profiler memory timeline (allocator events, profile_memory=True)"
PEAK_METHOD_CUDA = "torch.cuda.max_memory_allocated"
SAVED_METHOD = "torch.autograd.graph.saved_tensors_hooks (distinct storages, parameters excluded)"


@dataclass
class MemoryUse:
    peak_bytes: Optional[int]
    saved_bytes: int
    peak_method: str

    @property
    def peak_mb(self) -> Optional[float]:
        return None if self.peak_bytes is None else round(self.peak_bytes / 2**20, 3)

    @property
    def saved_mb(self) -> float:
        return round(self.saved_bytes / 2**20, 3)


def _storage_key(t: Tensor) -> Tuple[int, int]:
    st = t.untyped_storage()
    return st.data_ptr(), st.nbytes()


def saved_tensor_bytes(forward: Callable[[], object], exclude: Iterable[Tensor] = ()) -> Tuple[int, object]:
    """Bytes of the distinct storages saved for backward while ``forward()`` runs, and its result.

    Storages of the tensors in ``exclude`` (the parameters) are not counted.
    """
    skip: Set[int] = {t.untyped_storage().data_ptr() for t in exclude}
    seen: Dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        if t.device.type != "meta":
            ptr, nbytes = _storage_key(t)
            if ptr not in skip and ptr != 0:
                seen[ptr] = max(seen.get(ptr, 0), nbytes)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    return sum(seen.values()), out


@contextlib.contextmanager
def native_stderr_muted() -> Iterator[None]:
    """Mute writes to file descriptor 2 from C++ (this torch build's CPU profiler logs two lines per
    profiling session there); Python's own warnings and errors still go to ``sys.stderr``."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (some embedded interpreters): nothing to mute
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def _cpu_peak(step: Callable[[], object]) -> Optional[int]:
    from torch.profiler import ProfilerActivity, profile

    with native_stderr_muted(), profile(
        activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True
    ) as prof:
        step()
    try:
        from torch.profiler._memory_profiler import Action

        timeline = prof._memory_profile().timeline  # private: (time, action, key, bytes)
    except Exception:  # pragma: no cover - depends on the torch version
        return None
    live = peak = 0
    for t, action, _key, nbytes in sorted(timeline, key=lambda e: e[0]):
        if t < 0 or action == Action.PREEXISTING:
            continue
        if action == Action.CREATE:
            live += nbytes
        elif action == Action.DESTROY:
            live -= nbytes
        peak = max(peak, live)
    return peak


def peak_bytes(step: Callable[[], object], device: torch.device) -> Tuple[Optional[int], str]:
    """Peak live tensor bytes above the starting point while ``step()`` runs, and the method used."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base, PEAK_METHOD_CUDA
    return _cpu_peak(step), PEAK_METHOD_CPU


def measure_memory(
    forward: Callable[[], Tensor],
    backward: Callable[[Tensor], object],
    params: Iterable[Tensor],
    device: torch.device,
) -> MemoryUse:
    """Peak memory of ``backward(forward())`` and the bytes saved by ``forward()``.

    ``forward`` must return the output; ``backward`` consumes it. Two separate calls are made.
    """
    params = list(params)
    saved, out = saved_tensor_bytes(forward, exclude=params)
    backward(out)
    del out
    for p in params:
        p.grad = None
    peak, method = peak_bytes(lambda: backward(forward()), device)
    for p in params:
        p.grad = None
    return MemoryUse(peak, saved, method)
