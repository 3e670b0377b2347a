"""Checks for chapter 3 (from the layer to a language model): receptive field and parameter count."""

from __future__ import annotations

from typing import Callable, Tuple

import torch

from gflow_lite import GrassmannLM, LMConfig

from .core import Mismatch, expect_equal, run_check

__all__ = ["check_receptive_field", "check_grassmann_param_count"]


def check_receptive_field(fn: Callable[[Tuple[int, ...], int, str], int]) -> bool:
    """``fn(offsets, n_layers, offset_mode)`` must equal `LMConfig.receptive_field`."""

    def case(offsets, n_layers, mode):
        def run(f):
            cfg = LMConfig(vocab_size=8, block_size=8, d_model=8, n_heads=1, d_ff=8, r=2, n_layers=n_layers,
                           offsets=offsets, offset_mode=mode)
            out = f(tuple(offsets), n_layers, mode)
            expect_equal(None if out is None else int(out), cfg.receptive_field(),
                         f"offsets={tuple(offsets)}, n_layers={n_layers}, offset_mode={mode!r}")
        return run

    paper6, paper12 = (1, 2, 4, 8, 12, 16), (1, 1, 2, 2, 4, 4, 8, 8, 12, 12, 16, 16)
    cases = [case(paper6, 6, "per_layer"), case(paper6, 6, "all"), case(paper12, 12, "per_layer"),
             case(paper12, 12, "all"), case((1, 2, 4, 8, 8, 8), 6, "per_layer"), case((3,), 1, "all"),
             case((5, 1, 2), 3, "per_layer"), case((2, 7, 7, 1), 2, "all")]
    return run_check("3.1 receptive field", fn, cases, hint=[
        "one layer moves information back by at most the largest offset it uses; the stack adds the layers up",
        "'all' gives every layer every offset; 'per_layer' gives layer i only offsets[i]",
        "per_layer: sum(offsets[:n_layers]); all: n_layers * max(offsets)"])


def _library_count(V: int, block: int, d: int, d_ff: int, r: int, n_layers: int, offsets) -> int:
    cfg = LMConfig(vocab_size=V, block_size=block, d_model=d, n_layers=n_layers, d_ff=d_ff, r=r, n_heads=1,
                   offsets=offsets, dropout=0.0)
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        return GrassmannLM(cfg).num_params()


def check_grassmann_param_count(fn: Callable[[int, int, int, int, int, int], int]) -> bool:
    """``fn(vocab_size, block_size, d_model, d_ff, r, n_layers)``: parameters of `GrassmannLM` as the paper
    describes it (learned positions, tied head, mean over offsets, no extra map)."""

    def case(V, block, d, d_ff, r, n_layers, offsets=(1, 2, 4, 8, 12, 16)):
        def run(f):
            what = f"vocab_size={V}, block_size={block}, d_model={d}, d_ff={d_ff}, r={r}, n_layers={n_layers}"
            out = f(V, block, d, d_ff, r, n_layers)
            if out is not None and int(out) != out:
                raise Mismatch(f"{what}: expected an integer, got {out!r}")
            expect_equal(None if out is None else int(out), _library_count(V, block, d, d_ff, r, n_layers,
                                                                           offsets), what)
        return run

    cases = [case(30522, 128, 256, 1024, 32, 6), case(30522, 256, 256, 1024, 32, 12), case(50, 16, 8, 32, 4, 1),
             case(7, 3, 6, 5, 2, 2, (1,)), case(100, 64, 32, 128, 8, 3, (1, 2))]
    return run_check("3.2 parameter count", fn, cases, hint=[
        "count the pieces once each: token and position embeddings, then per layer the mixer (three linear "
        "maps), the FFN (two) and two LayerNorms, then the final LayerNorm; the head is tied to the token "
        "embedding, so it adds nothing",
        "a Linear(n_in, n_out) has n_in n_out + n_out parameters, a LayerNorm(d) 2d; the mixer's maps are "
        "W_red: d -> r, W_plu: r(r-1)/2 -> d, W_gate: 2d -> d; the FFN d -> d_ff -> d",
        "V d + block d + 2 d + n_layers (d r + r + P d + d + 2 d^2 + d + 2 d d_ff + d_ff + d + 4 d), "
        "P = r(r-1)/2"])
