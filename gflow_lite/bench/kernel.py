"""``bench kernel``: the paper-order (reference) and the fast Grassmann implementation of one layer.

Same module, same parameters, ``impl="reference"`` (one Plücker vector and one projection per offset,
equations (G2)-(G4) literally) against ``impl="fast"`` (average the partners first, one Plücker product
and projection per token in a fused autograd node). Shapes as in ``scaling``. Also checks, at the
smallest length, that both give the same output and gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import torch

from ..model import PAPER_OFFSETS
from ..flops import grassmann_fast_cost, grassmann_reference_cost
from ..model import CausalGrassmannMixing
from .blocks import measure_blocks, memory_methods, split_lengths
from .options import config_dict
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


def agreement(
    ref: CausalGrassmannMixing, fast: CausalGrassmannMixing, L: int, batch: int, device: torch.device
) -> Dict[str, float]:
    """Largest absolute differences of output and of input/parameter gradients between the two impls."""
    gen = torch.Generator().manual_seed(1)
    h = torch.randn(batch, L, ref.d_model, generator=gen).to(device).requires_grad_(True)
    gy = torch.randn(batch, L, ref.d_model, generator=gen).to(device)
    out = {}
    results = []
    for m in (ref, fast):
        m.zero_grad(set_to_none=True)
        h.grad = None
        y = m(h)
        y.backward(gy)
        results.append((y.detach(), h.grad.detach(), [p.grad.detach() for p in m.parameters()]))
    out["output"] = float((results[0][0] - results[1][0]).abs().max())
    out["input_grad"] = float((results[0][1] - results[1][1]).abs().max())
    out["param_grad"] = max(float((a - b).abs().max()) for a, b in zip(results[0][2], results[1][2]))
    return out


def run(cfg: KernelConfig, device: torch.device) -> Dict[str, Any]:
    torch.manual_seed(cfg.seed)
    ref = CausalGrassmannMixing(cfg.d_model, cfg.r, cfg.offsets, impl="reference").to(device)
    fast = CausalGrassmannMixing(cfg.d_model, cfg.r, cfg.offsets, impl="fast").to(device)
    fast.load_state_dict(ref.state_dict())
    modules = {"reference": ref, "fast": fast}
    records: List[Dict[str, Any]] = []
    m = len(cfg.offsets)
    for L in cfg.lengths:
        res = measure_blocks(
            modules,
            batch=cfg.batch,
            seq_len=L,
            d_model=cfg.d_model,
            device=device,
            rounds=cfg.rounds,
            budget_s=cfg.budget_s,
            memory=cfg.memory,
            seed=cfg.seed,
        )
        for impl, row in res.items():
            cost = (grassmann_fast_cost if impl == "fast" else grassmann_reference_cost)(
                cfg.batch, L, cfg.d_model, cfg.r, m
            )
            records.append({"impl": impl, "seq_len": L, **row, "gflop": round(cost.total_flops / 1e9, 4)})
        print(format_table([r for r in records if r["seq_len"] == L], COLUMNS), flush=True)
    return {
        "config": config_dict(cfg),
        "records": records,
        "summary": summarize(records, agreement(ref, fast, min(cfg.lengths), cfg.batch, device)),
        "methods": {
            "ms": "median wall-clock ms of forward+backward over interleaved, rotating rounds",
            "gflop": "matmul GFLOP of forward+backward from gflow_lite.flops",
            **memory_methods(),
        },
    }


def summarize(records: List[Dict[str, Any]], max_abs_diff: Dict[str, float]) -> Dict[str, Any]:
    ref = {r["seq_len"]: r for r in split_lengths(records, "impl", "reference")}
    fast = {r["seq_len"]: r for r in split_lengths(records, "impl", "fast")}
    speed = {str(L): ratio(ref[L]["ms"], fast[L]["ms"]) for L in fast if L in ref}
    mem = {str(L): ratio(ref[L].get("peak_mb"), fast[L].get("peak_mb")) for L in fast if L in ref}
    targets = {}
    if speed.get("1024") is not None:
        targets["3x_faster_at_1024"] = {"ratio": speed["1024"], "need": ">= 3.0", "met": speed["1024"] >= 3.0}
    if mem.get("1024") is not None:
        targets["3x_less_peak_memory_at_1024"] = {
            "ratio": mem["1024"],
            "need": ">= 3.0",
            "met": mem["1024"] >= 3.0,
        }
    return {
        "speedup_reference_over_fast": speed,
        "peak_memory_reference_over_fast": mem,
        "max_abs_diff": max_abs_diff,
        "targets": targets,
    }
