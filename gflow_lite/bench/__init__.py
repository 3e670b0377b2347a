"""Performance benchmarks of the Grassmann mixer against attention (issue 5).

``python -m gflow_lite bench NAME --json PATH [--quick]`` with NAME one of:

* ``scaling``: one mixing block forward+backward, Grassmann (fast path) vs SDPA attention, L = 256..8192;
* ``kernel``:  the paper-order (reference) vs the fast Grassmann implementation;
* ``decode``:  per-token generation latency with the streaming caches, context 64..4096;
* ``train``:   tokens/s of a full training step of both LMs and the share of the matmul peak.

Modules: `env` (where it ran), `timing` (interleaved medians), `memory` (peak and saved bytes),
`blocks` (single-block steps), `report` (results file, tables), `options` (``--set``), `registry`,
`cli`; one module per benchmark. FLOP and memory formulas live in `gflow_lite.flops`.
"""

from .cli import main, register, run_benchmark
from .registry import BENCHMARKS

__all__ = ["BENCHMARKS", "main", "register", "run_benchmark"]
