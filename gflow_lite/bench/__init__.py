"""The benchmarks: speed and memory of the Grassmann mixer against attention, outside the reading path.

``python -m gflow_lite bench NAME --json PATH [--quick]`` with NAME one of:

* ``scaling``: one mixing block forward+backward, Grassmann (``impl="native"`` by default) vs SDPA
  attention, L = 256..8192;
* ``kernel``:  the four implementations of the layer (reference, fast, fused, native) on the same weights;
* ``decode``:  per-token generation latency with the streaming caches, context 64..4096;
* ``train``:   tokens/s of a full training step of both LMs and the share of the matmul peak.

Modules: `env` (where it ran), `timing` (interleaved medians), `memory` (peak and saved bytes),
`blocks` (single-block steps), `report` (results file, tables), `registry`, `cli`; one module per
benchmark. ``--set`` is parsed by `gflow_lite.options`; FLOP and memory formulas live in `gflow_lite.flops`.
"""

from .cli import main, register, run_benchmark
from .registry import BENCHMARKS

__all__ = ["BENCHMARKS", "main", "register", "run_benchmark"]
