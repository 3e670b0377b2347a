"""``bench scaling``: one Grassmann mixing block against one causal-attention block.

The Grassmann block runs ``impl="native"`` (`gflow_lite.kernels.native`, the fused node with its elementwise work
in C++; the fastest path on the CPU, see ``bench kernel``; ``--set impl=fused`` or ``impl=fast`` to
compare). Same width d, batch 1, r = 32 and the
paper's six offsets for Grassmann, 4 heads for attention through
``F.scaled_dot_product_attention`` (PyTorch's fused kernel: flash attention on the CPU). For each
length L: median forward+backward time over interleaved rounds, peak and saved memory (`blocks`), and
the matmul FLOPs of `gflow_lite.flops` (attention counted causally, i.e. the work a causal kernel needs).

Summary: the speed-up attention/Grassmann at each L (wall clock, and process CPU time, which a loaded
machine disturbs less), the log-log slope of time and of peak memory against L between 1024 and 8192
(1 = linear), and the speed and memory targets (`summarize`) checked against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import torch

from ..model import PAPER_OFFSETS
from ..flops import (attention_cost, grassmann_fast_cost, grassmann_fused_cost, grassmann_native_cost,
                     grassmann_reference_cost)
from ..model import CausalGrassmannMixing, CausalSelfAttention
from .blocks import block_options, measure_blocks, memory_methods, split_lengths
from ..options import config_dict
from .report import format_table, loglog_slope, ratio

NAME = "scaling"
COLUMNS = (
    "model",
    "seq_len",
    "ms",
    "cpu_ms",
    "iqr_ms",
    "rounds",
    "peak_mb",
    "saved_mb",
    "gflop",
    "gflop_per_s",
)


@dataclass(frozen=True)
class ScalingConfig:
    d_model: int = 256
    r: int = 32
    offsets: Tuple[int, ...] = PAPER_OFFSETS
    n_heads: int = 4
    impl: str = "native"  # the Grassmann layer's path: "native", "fused", "fast" or "reference"
    batch: int = 1
    lengths: Tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192)
    rounds: int = 15
    budget_s: float = 40.0  # timed seconds per length, at least 3 rounds
    memory: bool = True
    seed: int = 0


GRASSMANN_COST = {"fast": grassmann_fast_cost, "fused": grassmann_fused_cost, "native": grassmann_native_cost,
                  "reference": grassmann_reference_cost}

QUICK = dict(lengths=(256, 1024, 4096), rounds=5, budget_s=5.0)


def default_config(quick: bool = False) -> ScalingConfig:
    return ScalingConfig(**QUICK) if quick else ScalingConfig()


def run(cfg: ScalingConfig, device: torch.device) -> Dict[str, Any]:
    torch.manual_seed(cfg.seed)
    modules = {
        "grassmann": CausalGrassmannMixing(cfg.d_model, cfg.r, cfg.offsets, impl=cfg.impl).to(device),
        "attention": CausalSelfAttention(cfg.d_model, cfg.n_heads).to(device),
    }
    records: List[Dict[str, Any]] = []
    for L in cfg.lengths:
        res = measure_blocks(modules, seq_len=L, device=device, **block_options(cfg))
        for name, row in res.items():
            if name == "grassmann":
                cost = GRASSMANN_COST[cfg.impl](cfg.batch, L, cfg.d_model, cfg.r, len(cfg.offsets))
            else:
                cost = attention_cost(cfg.batch, L, cfg.d_model, cfg.n_heads, causal=True)
            gflop = cost.total_flops / 1e9
            records.append(
                {
                    "model": name,
                    "seq_len": L,
                    **row,
                    "gflop": round(gflop, 4),
                    "gflop_per_s": round(gflop / (row["ms"] / 1e3), 2),
                }
            )
        print(format_table([r for r in records if r["seq_len"] == L], COLUMNS), flush=True)
    return {
        "config": config_dict(cfg),
        "records": records,
        "summary": summarize(records),
        "methods": {
            "block": f"the mixer module alone: CausalGrassmannMixing(impl={cfg.impl!r}) vs "
            "CausalSelfAttention "
            "(QKV + SDPA(is_causal=True) + output projection); forward+backward from a random "
            "output gradient, input requiring grad",
            "ms": "median wall-clock ms over interleaved, rotating rounds (cpu_ms: process CPU time)",
            "gflop": "matmul GFLOP of forward+backward from gflow_lite.flops; attention counted causally",
            **memory_methods(),
        },
    }


def _at(rows: List[Dict[str, Any]], L: int, key: str = "ms"):
    for r in rows:
        if r["seq_len"] == L:
            return r.get(key)
    return None


def summarize(records: List[Dict[str, Any]]) -> Dict[str, Any]:
    g, a = split_lengths(records, "model", "grassmann"), split_lengths(records, "model", "attention")
    lengths = [r["seq_len"] for r in g]
    speedup = {str(L): ratio(_at(a, L), _at(g, L)) for L in lengths}
    speedup_cpu = {str(L): ratio(_at(a, L, "cpu_ms"), _at(g, L, "cpu_ms")) for L in lengths}
    window = [r for r in g if 1024 <= r["seq_len"] <= 8192]
    slope = loglog_slope([r["seq_len"] for r in window], [r["ms"] for r in window])
    mem = [r for r in g if 1024 <= r["seq_len"] <= 8192 and r.get("peak_mb")]
    mem_slope = loglog_slope([r["seq_len"] for r in mem], [r["peak_mb"] for r in mem])
    a_window = [r for r in a if 1024 <= r["seq_len"] <= 8192]
    targets = {}
    if speedup.get("256") is not None:
        targets["1.3x_at_256"] = {"ratio": speedup["256"], "need": ">= 1.3", "met": speedup["256"] >= 1.3}
    if speedup.get("4096") is not None:
        targets["3x_at_4096"] = {"ratio": speedup["4096"], "need": ">= 3.0", "met": speedup["4096"] >= 3.0}
    if speedup.get("8192") is not None:
        targets["6x_at_8192"] = {"ratio": speedup["8192"], "need": ">= 6.0", "met": speedup["8192"] >= 6.0}
    if slope is not None and len(window) >= 2:
        targets["time_slope_1024_8192"] = {"slope": round(slope, 3), "need": "<= 1.1", "met": slope <= 1.1}
    if mem_slope is not None and len(mem) >= 2:
        targets["peak_memory_slope_1024_8192"] = {
            "slope": round(mem_slope, 3),
            "need": "<= 1.1 (linear)",
            "met": mem_slope <= 1.1,
        }
    return {
        "speedup_attention_over_grassmann": speedup,
        "speedup_attention_over_grassmann_cpu_time": speedup_cpu,
        "grassmann_time_slope": None if slope is None else round(slope, 3),
        "attention_time_slope": (
            None
            if len(a_window) < 2
            else round(loglog_slope([r["seq_len"] for r in a_window], [r["ms"] for r in a_window]), 3)
        ),
        "grassmann_peak_memory_slope": None if mem_slope is None else round(mem_slope, 3),
        "targets": targets,
    }
