"""``bench kernel``: the four implementations of one Grassmann layer, side by side.

Same module, same parameters: ``impl="reference"`` (one Plücker vector and one projection per offset,
equations (G2)-(G4) literally), ``impl="fast"`` (average the partners first, one Plücker product and
projection per token, plain PyTorch with autograd) and ``impl="fused"`` (the same identity, the whole
layer as one hand-written autograd node of ATen ops, `gflow_lite.kernels.fused`) and ``impl="native"`` (that node
with its elementwise work in C++, `gflow_lite.kernels.native`). Shapes as in ``scaling``. Also checks, at the
smallest length, that all four give the same output and gradients. The summary names the fastest of
"fast", "fused" and "native" at every length ("selected"); the other benchmarks run that one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple

import torch

from ..flops import grassmann_fast_cost, grassmann_fused_cost, grassmann_native_cost, grassmann_reference_cost
from ..model import PAPER_OFFSETS, CausalGrassmannMixing
from .blocks import block_options, measure_blocks, memory_methods, split_lengths
from ..options import config_dict
from .report import format_table, ratio

NAME = "kernel"
COLUMNS = ("impl", "seq_len", "ms", "cpu_ms", "iqr_ms", "rounds", "peak_mb", "saved_mb", "gflop")


@dataclass(frozen=True)
class KernelConfig:
    d_model: int = 256
    r: int = 32
    offsets: Tuple[int, ...] = PAPER_OFFSETS
    batch: int = 1
    lengths: Tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192)
    rounds: int = 9
    budget_s: float = 25.0
    memory: bool = True
    seed: int = 0


QUICK = dict(lengths=(256, 1024), rounds=5, budget_s=5.0)


def default_config(quick: bool = False) -> KernelConfig:
    return KernelConfig(**QUICK) if quick else KernelConfig()


IMPLS = ("reference", "fast", "fused", "native")
COST = {"reference": grassmann_reference_cost, "fast": grassmann_fast_cost, "fused": grassmann_fused_cost,
        "native": grassmann_native_cost}


def agreement(modules: Mapping[str, CausalGrassmannMixing], L: int, batch: int,
              device: torch.device) -> Dict[str, Dict[str, float]]:
    """Largest absolute differences of output and of input/parameter gradients from the reference."""
    ref = modules["reference"]
    gen = torch.Generator().manual_seed(1)
    h = torch.randn(batch, L, ref.W_red.in_features, generator=gen).to(device).requires_grad_(True)
    gy = torch.randn(batch, L, ref.W_red.in_features, generator=gen).to(device)
    results = {}
    for name, m in modules.items():
        m.zero_grad(set_to_none=True)
        h.grad = None
        y = m(h)
        y.backward(gy)
        results[name] = (y.detach(), h.grad.detach(), [p.grad.detach() for p in m.parameters()])
    want = results["reference"]
    return {
        name: {
            "output": float((got[0] - want[0]).abs().max()),
            "input_grad": float((got[1] - want[1]).abs().max()),
            "param_grad": max(float((a - b).abs().max()) for a, b in zip(got[2], want[2])),
        }
        for name, got in results.items() if name != "reference"
    }


def run(cfg: KernelConfig, device: torch.device) -> Dict[str, Any]:
    torch.manual_seed(cfg.seed)
    modules = {impl: CausalGrassmannMixing(cfg.d_model, cfg.r, cfg.offsets, impl=impl).to(device)
               for impl in IMPLS}
    for m in modules.values():
        m.load_state_dict(modules["reference"].state_dict())
    records: List[Dict[str, Any]] = []
    m = len(cfg.offsets)
    for L in cfg.lengths:
        res = measure_blocks(modules, seq_len=L, device=device, **block_options(cfg))
        for impl, row in res.items():
            cost = COST[impl](cfg.batch, L, cfg.d_model, cfg.r, m)
            records.append({"impl": impl, "seq_len": L, **row, "gflop": round(cost.total_flops / 1e9, 4)})
        print(format_table([r for r in records if r["seq_len"] == L], COLUMNS), flush=True)
    return {
        "config": config_dict(cfg),
        "records": records,
        "summary": summarize(records, agreement(modules, min(cfg.lengths), cfg.batch, device)),
        "methods": {
            "ms": "median wall-clock ms of forward+backward over interleaved, rotating rounds",
            "gflop": "matmul GFLOP of forward+backward from gflow_lite.flops",
            **memory_methods(),
        },
    }


def summarize(records: List[Dict[str, Any]], max_abs_diff: Dict[str, Dict[str, float]]) -> Dict[str, Any]:
    by = {impl: {r["seq_len"]: r for r in split_lengths(records, "impl", impl)} for impl in IMPLS}

    def over(a: str, b: str, key: str) -> Dict[str, Any]:
        return {str(L): ratio(by[a][L].get(key), by[b][L].get(key)) for L in by[b] if L in by[a]}

    speed = {f"{a}_over_{b}": over(a, b, "ms") for a, b in (("reference", "fast"), ("reference", "fused"),
                                                             ("fast", "fused"), ("reference", "native"),
                                                             ("fast", "native"), ("fused", "native"))}
    mem = {f"{a}_over_{b}": over(a, b, "peak_mb") for a, b in (("reference", "fast"), ("reference", "fused"),
                                                               ("reference", "native"))}

    def fastest_everywhere(impl: str) -> bool:  # faster than each of the other quick paths at every length
        return bool(by[impl]) and all(by[impl][L]["ms"] < by[other][L]["ms"] for L in by[impl]
                                      for other in ("fast", "fused", "native") if other != impl)
    targets = {}
    ref_fused, mem_fused = speed["reference_over_fused"].get("1024"), mem["reference_over_fused"].get("1024")
    if ref_fused is not None:
        targets["3x_faster_at_1024"] = {"ratio": ref_fused, "need": ">= 3.0", "met": ref_fused >= 3.0}
    if mem_fused is not None:
        targets["3x_less_peak_memory_at_1024"] = {"ratio": mem_fused, "need": ">= 3.0",
                                                  "met": mem_fused >= 3.0}
    if speed["fast_over_fused"].get("256") is not None:
        v = speed["fast_over_fused"]["256"]
        targets["fused_faster_than_fast_at_256"] = {"ratio": v, "need": "> 1.0", "met": v > 1.0}
    if speed["fused_over_native"].get("256") is not None:
        v = speed["fused_over_native"]["256"]
        targets["native_faster_than_fused_at_256"] = {"ratio": v, "need": "> 1.0", "met": v > 1.0}
    return {
        "speedup": speed,
        "peak_memory": mem,
        "selected": next((i for i in ("native", "fused") if fastest_everywhere(i)), "fast"),
        "max_abs_diff": max_abs_diff,
        "targets": targets,
    }
