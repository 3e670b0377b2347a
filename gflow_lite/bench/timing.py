"""Interleaved timing: every case is timed in every round, in a rotating order, and summarised by medians.

On a shared CPU the speed of the machine drifts while a benchmark runs; timing case A for a while and
then case B would fold that drift into the ratio A/B. Here each round runs every case once, the order
rotating from round to round, so drift and contention hit all cases alike, and the median of the rounds
discards the rounds where another job took the CPU.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, Hashable, List, Mapping, Optional

import torch

__all__ = ["Timing", "interleaved", "synchronize"]


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (no-op on the CPU) so that wall-clock time covers the kernels."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Per-round times of one case, in seconds: wall clock and this process's CPU time."""

    wall: List[float]
    cpu: List[float]

    @property
    def median_ms(self) -> float:
        return 1e3 * statistics.median(self.wall)

    @property
    def cpu_median_ms(self) -> float:
        return 1e3 * statistics.median(self.cpu)

    @property
    def iqr_ms(self) -> float:
        """Inter-quartile range of the wall times (ms): how noisy the rounds were."""
        if len(self.wall) < 4:
            return 0.0
        q = statistics.quantiles(self.wall, n=4)
        return 1e3 * (q[2] - q[0])

    def summary(self) -> Dict[str, float]:
        return {
            "ms": round(self.median_ms, 4),
            "cpu_ms": round(self.cpu_median_ms, 4),
            "iqr_ms": round(self.iqr_ms, 4),
            "rounds": len(self.wall),
        }


def interleaved(
    cases: Mapping[Hashable, Callable[[], object]],
    *,
    rounds: int,
    warmup: int = 1,
    device: torch.device = torch.device("cpu"),
    budget_s: Optional[float] = None,
    min_rounds: int = 3,
) -> Dict[Hashable, Timing]:
    """Time each callable in ``cases`` for ``rounds`` rounds, interleaved and rotated.

    ``warmup`` untimed rounds come first. With ``budget_s`` the rounds stop early (never below
    ``min_rounds``) once the timed rounds have used that many seconds.
    """
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            cases[name]()
        synchronize(device)
    out = {name: Timing([], []) for name in names}
    start = time.perf_counter()
    for k in range(rounds):
        order = names[k % len(names) :] + names[: k % len(names)]
        for name in order:
            synchronize(device)
            w0, c0 = time.perf_counter(), time.process_time()
            cases[name]()
            synchronize(device)
            out[name].wall.append(time.perf_counter() - w0)
            out[name].cpu.append(time.process_time() - c0)
        if budget_s is not None and k + 1 >= min_rounds and time.perf_counter() - start > budget_s:
            break
    return out
