"""FLOP and activation-memory formulas (gflow_lite.flops) against FlopCounterMode and saved tensors."""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from gflow_lite.bench.memory import saved_tensor_bytes
from gflow_lite.flops import (
    attention_cost,
    grassmann_fast_cost,
    grassmann_fused_cost,
    grassmann_reference_cost,
    mixer_cost,
    shift_slots,
)
from gflow_lite.model import CausalGrassmannMixing, CausalSelfAttention

SHAPES = [  # B, L, d, r, offsets (all < L, as the formulas assume), heads
    (2, 20, 16, 6, (1, 2, 4), 4),
    (1, 37, 24, 5, (1, 3), 2),
    (3, 9, 8, 4, (1, 2, 4, 8), 2),
    (1, 300, 16, 6, (1, 2), 4),  # more than one block of the fast kernel
]


def build(kind, d, r, offsets, heads):
    torch.manual_seed(0)
    if kind == "attention":
        return CausalSelfAttention(d, heads)
    return CausalGrassmannMixing(d, r, offsets, impl=kind)


def counted(module, h):
    """FlopCounterMode totals of one forward and one backward (attention through the MATH backend)."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        y = module(h)
        forward = counter.get_total_flops()
        y.backward(torch.randn_like(y))
    return forward, counter.get_total_flops() - forward


@pytest.mark.parametrize("kind", ["fast", "fused", "native", "reference", "attention"])
@pytest.mark.parametrize("B,L,d,r,offsets,heads", SHAPES)
def test_flop_formula_matches_flop_counter_exactly(kind, B, L, d, r, offsets, heads):
    module = build(kind, d, r, offsets, heads)
    h = torch.randn(B, L, d, requires_grad=True)
    forward, backward = counted(module, h)
    cost = mixer_cost(kind, B, L, d, r, len(offsets), heads)
    assert (forward, backward) == (cost.forward_flops, cost.backward_flops)
    assert sum(cost.terms.values()) == cost.total_flops


@pytest.mark.parametrize("kind", ["fast", "fused", "native", "reference", "attention"])
@pytest.mark.parametrize("B,L,d,r,offsets,heads", SHAPES)
def test_saved_bytes_formula_matches_saved_tensors_exactly(kind, B, L, d, r, offsets, heads):
    module = build(kind, d, r, offsets, heads)
    h = torch.randn(B, L, d, requires_grad=True)
    saved, _ = saved_tensor_bytes(lambda: module(h), exclude=list(module.parameters()))
    assert saved == mixer_cost(kind, B, L, d, r, len(offsets), heads).saved_bytes


def test_paper_per_token_work():
    """Paper notes §4.2: about 0.90M multiply-adds per token for the paper order, 0.27M averaged first."""
    N = 1024
    ref = grassmann_reference_cost(1, N, 256, 32, 6).forward_flops / 2 / N
    fast = grassmann_fast_cost(1, N, 256, 32, 6).forward_flops / 2 / N
    fused = grassmann_fused_cost(1, N, 256, 32, 6).forward_flops / 2 / N
    assert ref == 256 * 32 + 6 * 496 * 256 + 2 * 256 * 256 == pytest.approx(0.90e6, rel=0.01)
    assert fast == 256 * 32 + 496 * 256 + 2 * 256 * 256 == pytest.approx(0.27e6, rel=0.02)
    assert fused == 256 * 32 + 512 * 256 + 2 * 256 * 256 == pytest.approx(0.27e6, rel=0.02)
    assert shift_slots(32) == 512 and shift_slots(5) == 10  # P + r/2 for even r, P for odd r


def test_attention_causal_counts_the_lower_triangle_and_grows_quadratically():
    full, causal = attention_cost(1, 64, 32, 4), attention_cost(1, 64, 32, 4, causal=True)
    proj = 3 * 2 * 64 * 32 * (3 * 32 + 32)
    assert full.terms["scores_and_values"] == 3 * 4 * 64 * 64 * 32
    assert causal.terms["scores_and_values"] == 3 * 4 * (64 * 65 // 2) * 32
    assert full.total_flops - full.terms["scores_and_values"] == proj
    small, big = attention_cost(1, 1024, 256, 4), attention_cost(1, 2048, 256, 4)
    assert big.terms["scores_and_values"] == 4 * small.terms["scores_and_values"]
    g_small, g_big = grassmann_fast_cost(1, 1024, 256, 32, 6), grassmann_fast_cost(1, 2048, 256, 32, 6)
    assert g_big.total_flops == 2 * g_small.total_flops  # linear in L
    assert (
        g_big.saved_bytes - g_small.saved_bytes
        == g_small.saved_bytes - grassmann_fast_cost(1, 0, 256, 32, 6).saved_bytes
    )


def test_fast_saves_several_times_and_fused_an_order_of_magnitude_less_than_reference():
    ref, fast = grassmann_reference_cost(1, 1024, 256, 32, 6), grassmann_fast_cost(1, 1024, 256, 32, 6)
    fused = grassmann_fused_cost(1, 1024, 256, 32, 6)
    assert ref.saved_bytes / fast.saved_bytes > 4  # the plain path keeps a few [tokens x P] tensors
    assert ref.saved_bytes / fused.saved_bytes > 8  # the fused kernel keeps none
    assert ref.total_flops / fast.total_flops > 2


def test_unknown_mixer():
    with pytest.raises(ValueError, match="unknown mixer"):
        mixer_cost("mamba", 1, 8, 16)
