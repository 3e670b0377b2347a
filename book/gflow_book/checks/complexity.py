"""Checks for chapter 4 (complexity): the paper-order projection's FLOPs, the crossover length, and the
size of the Grassmann model's streaming cache."""

from __future__ import annotations

from typing import Callable, Tuple

import torch
from torch.utils.flop_counter import FlopCounterMode

from gflow_lite.model import PAPER_OFFSETS, PAPER_SCHEDULE_12, LMConfig
from gflow_lite.flops import (attention_cost, grassmann_fast_cost, grassmann_fused_cost,
                              grassmann_reference_cost)
from gflow_lite.geometry import n_plucker
from gflow_lite.model import GrassmannLM
from .core import Mismatch, expect_equal, make_generator, no_python_loops, run_check

__all__ = ["check_paper_projection_flops", "check_crossover_length", "check_grassmann_cache_bytes",
           "crossover_by_search"]


def _as_int(out, what: str):
    if out is None:
        return None
    try:
        value = int(out)
    except (TypeError, ValueError):
        raise Mismatch(f"{what}: expected an integer, got {type(out).__name__}") from None
    if value != out:
        raise Mismatch(f"{what}: expected an integer, got {out!r}")
    return value


def _counted_projection_flops(B: int, L: int, d: int, r: int, m: int) -> int:
    """FlopCounterMode over m projections ``Linear(P, d)`` (input requiring grad), forward and backward."""
    gen = make_generator(B * 1000 + L)
    plu = torch.nn.Linear(n_plucker(r), d)
    with FlopCounterMode(display=False) as counter:
        for _ in range(m):
            p = torch.randn(B, L, n_plucker(r), generator=gen).requires_grad_(True)
            plu(p).backward(torch.randn(B, L, d, generator=gen))
    return counter.get_total_flops()


def check_paper_projection_flops(fn: Callable[[int, int, int, int, int], int]) -> bool:
    """``fn(B, L, d, r, m)``: matmul FLOPs of the paper-order projection, forward and backward.

    The truth is `torch.utils.flop_counter.FlopCounterMode` run on the projections themselves for two
    small shapes, and the ``"projection"`` term of `grassmann_reference_cost` for the others.
    """

    def case(B, L, d, r, m, count=False):
        def run(f):
            what = f"B={B}, L={L}, d={d}, r={r}, m={m}"
            if count:  # the FLOP counter itself, on the projections alone
                expected = _counted_projection_flops(B, L, d, r, m)
            else:
                expected = grassmann_reference_cost(B, L, d, r, m).terms["projection"]
            expect_equal(_as_int(f(B, L, d, r, m), what), expected, what)
        return run

    cases = [case(2, 7, 16, 6, 3, count=True), case(1, 5, 8, 5, 1, count=True), case(1, 128, 256, 32, 6),
             case(32, 256, 256, 32, 6), case(4, 1000, 512, 64, 6), case(1, 1, 2, 2, 1)]
    return run_check("4.1 paper-order projection FLOPs", fn, cases,
                     allowed=("n_plucker",), hint=[
        "the projection is one matrix product per offset; count its multiply-adds, then remember that the "
        "backward pass of a linear map needs two more products of the same size",
        "one Linear(P, d) per offset on N = B L rows, P = r(r-1)/2; a multiply-add is 2 FLOPs; the forward "
        "is 2 N P d, the backward two products of the same size (the input's gradient and the weight's)",
        "m * 3 * 2 * B * L * P * d"])


def _total(order: str, L: int, d: int, r: int, m: int) -> int:
    if order == "paper":
        return grassmann_reference_cost(1, L, d, r, m).total_flops
    if order == "fast":
        return grassmann_fast_cost(1, L, d, r, m).total_flops
    if order == "fused":
        return grassmann_fused_cost(1, L, d, r, m).total_flops
    raise ValueError(f"order={order!r} must be 'paper', 'fast' or 'fused'")


def crossover_by_search(
    d: int, r: int, m: int, order: str, *, causal: bool = True, limit: int = 2**24
) -> int:
    """The smallest ``L >= 1`` at which attention's matmul FLOPs (forward + backward) exceed the Grassmann
    mixer's (``order`` "paper", "fast" or "fused"), found by bisection over the library's formulas.

    ``causal`` counts the lower triangle of the score matrix (what a causal kernel needs); otherwise the
    full square. Raises if attention stays cheaper up to ``limit``.
    """

    def attention_more(L: int) -> bool:
        return attention_cost(1, L, d, 1, causal=causal).total_flops > _total(order, L, d, r, m)

    if not attention_more(limit):
        raise ValueError(f"attention stays cheaper up to L = {limit}")
    if attention_more(1):
        return 1
    lo, hi = 1, limit  # invariant: attention_more(lo) is False, attention_more(hi) is True
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if attention_more(mid) else (mid, hi)
    return hi


def _closed_form(f) -> str | None:
    found = no_python_loops(getattr(f, "__wrapped_learner__", f))
    return None if found is None else (f"the exercise asks for a closed form, not a search; found {found}")


def check_crossover_length(fn: Callable[[int, int, int, str], int]) -> bool:
    """``fn(d, r, m, order)``: the first L where causal attention costs more matmul FLOPs than Grassmann."""

    def case(d, r, m, order):
        def run(f):
            what = f"d={d}, r={r}, m={m}, order={order!r}"
            expect_equal(_as_int(f(d, r, m, order), what), crossover_by_search(d, r, m, order), what)
        return run

    cases = [case(256, 32, 6, "paper"), case(256, 32, 6, "fast"), case(512, 64, 6, "paper"),
             case(128, 16, 3, "fast"), case(64, 16, 4, "paper"), case(96, 7, 2, "fast"),
             case(80, 9, 1, "paper"), case(1024, 32, 6, "fast"), case(1024, 16, 2, "paper"),
             case(256, 32, 6, "fused"), case(64, 16, 1, "fused"), case(128, 24, 1, "fused"),
             case(100, 21, 1, "fused"), case(64, 24, 4, "fused"), case(96, 7, 2, "fused")]
    return run_check("4.2 crossover length", fn, cases,
                     allowed=("n_plucker", "shift_slots"), constraints=[_closed_form], hint=[
        "write both per-token costs as functions of L; only attention's grows with L, so the crossover is "
        "where a linear inequality in L flips: solve it, do not search",
        "per token, forward + backward: causal attention 24 d^2 + 6 (L + 1) d; Grassmann 6 (d r + X d + "
        "2 d^2) with X = m P (paper order) or P (fast); the fused kernel 6 d r + 2 (2 K + P) d + 12 d^2 + "
        "2 d, with K = shift_slots(r)",
        "divide by 6 d: attention is larger when L + 1 > r + X - 2 d (paper, fast), or when "
        "3 (L + 1) > 3 r + 2 K + P + 1 - 6 d (fused); the answer is the first integer L >= 1 above that "
        "bound (mind the integer division when the bound is not a whole number)"])


def _measured_cache_bytes(offsets, offset_mode, n_layers, r, batch, context) -> int:
    cfg = LMConfig(vocab_size=11, block_size=max(context, 1), d_model=4, n_layers=n_layers, d_ff=4, r=r,
                   n_heads=1, offsets=offsets, offset_mode=offset_mode, dropout=0.0, pos_emb="none")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GrassmannLM(cfg).eval()
    cache = model.new_cache()
    with torch.no_grad():
        model(torch.randint(0, 11, (batch, context), generator=make_generator(context)), cache=cache)
    return cache.nbytes()


def check_grassmann_cache_bytes(fn: Callable[[Tuple[int, ...], str, int, int, int, int], int]) -> bool:
    """``fn(offsets, offset_mode, n_layers, r, batch, context)``: bytes of a fp32 `GrassmannLM`'s
    streaming cache after a prefill of ``context`` tokens, compared with the cache the library builds."""

    def case(offsets, mode, n_layers, r, batch, context):
        def run(f):
            what = (f"offsets={tuple(offsets)}, offset_mode={mode!r}, n_layers={n_layers}, r={r}, "
                    f"batch={batch}, context={context}")
            expected = _measured_cache_bytes(tuple(offsets), mode, n_layers, r, batch, context)
            expect_equal(_as_int(f(tuple(offsets), mode, n_layers, r, batch, context), what), expected, what)
        return run

    cases = [case(PAPER_OFFSETS, "all", 6, 32, 1, 300), case(PAPER_OFFSETS, "all", 6, 32, 1, 16),
             case(PAPER_OFFSETS, "per_layer", 6, 32, 1, 200),
             case(PAPER_SCHEDULE_12, "per_layer", 12, 16, 2, 10), case((1, 3), "all", 2, 5, 3, 2),
             case((4, 1), "per_layer", 2, 8, 2, 3), case((2,), "all", 1, 2, 1, 1)]
    return run_check("4.3 Grassmann cache bytes", fn, cases,
                     hint=[
        "a Grassmann layer only ever looks back by its offsets, so its cache needs the last few reduced "
        "vectors z, never the whole context",
        "each layer keeps its last min(context, max of its offsets) reduced vectors z (r floats of 4 bytes "
        "each) per sequence; 'all' gives every layer every offset, 'per_layer' gives layer i only offsets[i]",
        "sum over layers of min(context, largest offset of the layer) * batch * r * 4"])
