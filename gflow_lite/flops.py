"""Work and activation memory of the two mixers, as formulas of (B, L, d, r, m, H).

Notation: batch B, sequence length L, N = B L tokens, width d, reduced width r, P = r (r - 1) / 2
Plücker coordinates, m offsets, H heads; S = floor(r / 2) shifts and S r slots in the fused kernel's shift
layout (S r = P + r/2 for even r, = P for odd r; `gflow_lite.kernels.fused`).

FLOPs count a multiply-add as 2 and include **only matrix products** (mm, addmm, bmm, the score and
value products of attention): exactly the ops `torch.utils.flop_counter.FlopCounterMode` counts, so the
formulas can be checked against it (tests/test_flops.py). Not included: elementwise work (Plücker
products and norms, O(N m r) and O(N r^2); gate sigmoid and blend, O(N d); softmax, O(B H L^2)), and
the bias sums. Two caveats on attention: FlopCounterMode counts the full L x L score matrix even for
causal attention (``causal=False`` below reproduces it; ``causal=True`` gives the half that a causal
kernel needs), and it does not count PyTorch's CPU flash-attention kernel at all (measure it with the
MATH backend, as the tests do).

Per token and layer (paper notes §4.2, in multiply-adds): reduction d r; projection m P d in the
paper's order (one projection per offset, ``reference``) but P d after averaging first (``fast``,
equation (G4) by linearity; (S r) d ≈ P d in the ``fused`` kernel's layout); gate 2 d^2; attention 4 d^2 for Q, K, V, O plus L d for scores
and values under a causal mask.

Activation memory is the bytes that autograd saves between forward and backward (what
`gflow_lite.bench.memory.saved_tensor_bytes` measures), for fp32, ``normalize=True``, every offset
shorter than L (an offset >= L pairs with constant zeros and saves less) and the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

__all__ = [
    "MixerCost",
    "grassmann_fast_cost",
    "grassmann_fused_cost",
    "grassmann_native_cost",
    "grassmann_reference_cost",
    "attention_cost",
    "mixer_cost",
    "shift_slots",
]


@dataclass(frozen=True)
class MixerCost:
    """Matmul FLOPs of one forward and one backward, and the bytes saved for backward.

    ``terms`` breaks the FLOPs down by matrix product (forward and backward together), for plotting.
    """

    forward_flops: int
    backward_flops: int
    saved_bytes: int
    terms: Dict[str, int] = field(default_factory=dict)

    @property
    def total_flops(self) -> int:
        return self.forward_flops + self.backward_flops


def n_plucker(r: int) -> int:
    return r * (r - 1) // 2


def shift_slots(r: int) -> int:
    """Columns of the fast path's Plücker vector: ``floor(r/2) * r`` (496 -> 512 for r = 32)."""
    return (r // 2) * r


def _linear(n: int, fan_in: int, fan_out: int) -> Dict[str, int]:
    """A linear layer on n rows with an input that needs a gradient: forward, dX and dW products."""
    f = 2 * n * fan_in * fan_out
    return {"forward": f, "backward": 2 * f}


def grassmann_fast_cost(B: int, L: int, d: int, r: int, m: int, *, bytes_per_float: int = 4) -> MixerCost:
    """`CausalGrassmannMixing(impl="fast")`, plain PyTorch: (G1), (G2)-(G4) by linearity, (G5)-(G6).

    Matmuls: W_red (d -> r), one projection of the averaged Plücker vector (P -> d, no bias: the bias
    enters as ``(Σ_Δ a^Δ) b``, elementwise), the gate (2d -> d); each with its two backward products.
    Saved by autograd (the ops of `CausalGrassmannMixing.g_fast`): per token 3 scalars and z (r) for the
    orthogonalisation, 8 m scalars (inner products of both Gram-Schmidt passes, norms, coefficients), the
    partners and their orthogonal parts after each pass (3 m r), five P-vectors (the gathered coordinates and their products), the input h,
    g, alpha, 1 - alpha (4 d) and the gate input [h; g] (2 d); per position the offset weights (m) and
    their sum (1); the Plücker index pairs (2 P int64).
    """
    N, P = B * L, n_plucker(r)
    red, plu, gate = _linear(N, d, r), _linear(N, P, d), _linear(N, 2 * d, d)
    terms = {
        "reduction": red["forward"] + red["backward"],
        "projection": plu["forward"] + plu["backward"],
        "gate": gate["forward"] + gate["backward"],
    }
    floats = N * (3 + r + 8 * m + 3 * m * r + 5 * P + 6 * d) + L * (m + 1)
    return MixerCost(
        forward_flops=red["forward"] + plu["forward"] + gate["forward"],
        backward_flops=red["backward"] + plu["backward"] + gate["backward"],
        saved_bytes=bytes_per_float * floats + 16 * P,
        terms=terms,
    )


def grassmann_fused_cost(B: int, L: int, d: int, r: int, m: int, *, bytes_per_float: int = 4) -> MixerCost:
    """`CausalGrassmannMixing(impl="fused")`: (G1)-(G6) in the one autograd node of
    `gflow_lite.kernels.fused` (same matrix products as (G1) followed by its (G2)-(G4) and (G5)-(G6) nodes).

    Matmuls: W_red (d -> r); the projection of the Plücker vector in the shift layout (S r -> d), its
    backward ``dq = dg W_shift`` (S r) and ``dW_plu = dgᵀ q'`` (P columns, q's rows in W_plu's order);
    the bias gradient of W_plu, ``db_plu = Σ_t (Σ_Δ a^Δ) dg``, a matrix-vector product (2 N d); the gate (2d -> d; backward ``δ W_gate`` and ``δᵀ [h | g]``). Saved: the
    input h, z, the partners' parts orthogonal to z (m r), w, five [N, m] coefficients, |z|^2 and β,
    g and α (2 d), the shift-layout weight (d S r, independent of L) and Σ_Δ a^Δ (N).
    """
    N, P, Q = B * L, n_plucker(r), shift_slots(r)
    plu = {"forward": 2 * N * Q * d, "backward": 2 * N * Q * d + 2 * N * P * d}
    floats = N * (3 * d + 2 * r + m * r + 5 * m + 3) + d * Q
    return _one_node_cost(N, d, r, plu, bytes_per_float * floats)


def grassmann_native_cost(B: int, L: int, d: int, r: int, m: int, *, bytes_per_float: int = 4) -> MixerCost:
    """`CausalGrassmannMixing(impl="native")`: the node of `gflow_lite.kernels.native`, the fused kernel with its
    elementwise work in C++ and the Plücker vector in W_plu's own P columns (no shift layout).

    Matmuls: W_red (d -> r); the projection (P -> d), its backward ``dq = dg W_plu`` and
    ``dW_plu = dgᵀ q`` (P columns each); ``db_plu = Σ_t (Σ_Δ a^Δ) dg`` (2 N d); the gate (2d -> d).
    Saved: the input h, z, w_⊥ (r each), g and α (d each), s and n (m each), |z|^2 and Σ_Δ a^Δ per
    token, and the offset weights a (L m, shared by the batch).
    """
    N, P = B * L, n_plucker(r)
    plu = {"forward": 2 * N * P * d, "backward": 4 * N * P * d}
    floats = N * (3 * d + 2 * r + 2 * m + 2) + L * m
    return _one_node_cost(N, d, r, plu, bytes_per_float * floats)


def _one_node_cost(N: int, d: int, r: int, plu: Dict[str, int], saved_bytes: int) -> MixerCost:
    """The fused and native nodes: (G1), the projection's products ``plu``, the gate, and the bias
    gradient ``db_plu = Σ_t (Σ_Δ a^Δ) dg`` as a [1, N] x [N, d] product (2 N d)."""
    red, gate = _linear(N, d, r), _linear(N, 2 * d, d)
    chain = 2 * N * d
    terms = {
        "reduction": red["forward"] + red["backward"],
        "projection": plu["forward"] + plu["backward"],
        "gate": gate["forward"] + gate["backward"],
        "bias_gradient": chain,
    }
    return MixerCost(
        forward_flops=red["forward"] + plu["forward"] + gate["forward"],
        backward_flops=red["backward"] + plu["backward"] + gate["backward"] + chain,
        saved_bytes=saved_bytes,
        terms=terms,
    )


def grassmann_reference_cost(
    B: int, L: int, d: int, r: int, m: int, *, bytes_per_float: int = 4
) -> MixerCost:
    """`CausalGrassmannMixing(impl="reference")`, the paper's order: one projection per offset.

    Matmuls: W_red, m projections (P -> d) with their backward, the gate. Saved per offset: six
    [N, P] tensors (the four gathered coordinates, the Plücker vector, its normalised copy) and two
    [N] norms; besides the input, gate input, alpha, 1 - alpha and g, the offset weights [L, m] and the
    (i, j) index pairs (2 P int64).
    """
    N, P = B * L, n_plucker(r)
    red, plu, gate = _linear(N, d, r), _linear(N, P, d), _linear(N, 2 * d, d)
    terms = {
        "reduction": red["forward"] + red["backward"],
        "projection": m * (plu["forward"] + plu["backward"]),
        "gate": gate["forward"] + gate["backward"],
    }
    floats = N * d + m * (6 * N * P + 2 * N) + 5 * N * d + L * m
    return MixerCost(
        forward_flops=red["forward"] + m * plu["forward"] + gate["forward"],
        backward_flops=red["backward"] + m * plu["backward"] + gate["backward"],
        saved_bytes=bytes_per_float * floats + 16 * P,
        terms=terms,
    )


def attention_cost(
    B: int, L: int, d: int, H: int, *, causal: bool = False, bytes_per_float: int = 4
) -> MixerCost:
    """`CausalSelfAttention`: QKV and output projections plus scaled dot-product attention.

    Scores Q K^T and values A V cost 2 B L^2 d each forward (H heads of width d / H); backward four
    products of the same size. ``causal=False`` counts the full square as FlopCounterMode does;
    ``causal=True`` the lower triangle a causal kernel needs (``L (L + 1) / 2`` pairs). Saved on the
    CPU flash kernel: input, the QKV output (3 d), the attention output (d) and one log-sum-exp per
    head and token.
    """
    N = B * L
    qkv, proj = _linear(N, d, 3 * d), _linear(N, d, d)
    pairs = L * (L + 1) // 2 if causal else L * L
    sdpa_fwd = 2 * 2 * B * pairs * d
    terms = {
        "qkv": qkv["forward"] + qkv["backward"],
        "out_proj": proj["forward"] + proj["backward"],
        "scores_and_values": 3 * sdpa_fwd,
    }
    return MixerCost(
        forward_flops=qkv["forward"] + proj["forward"] + sdpa_fwd,
        backward_flops=qkv["backward"] + proj["backward"] + 2 * sdpa_fwd,
        saved_bytes=bytes_per_float * (5 * N * d + B * H * L),
        terms=terms,
    )


def mixer_cost(
    kind: str, B: int, L: int, d: int, r: int = 32, m: int = 6, H: int = 4, *, causal: bool = False
) -> MixerCost:
    """Dispatch by name: ``"fast"``/``"grassmann"``, ``"fused"``, ``"native"``, ``"reference"``, ``"attention"``."""
    if kind in ("fast", "grassmann"):
        return grassmann_fast_cost(B, L, d, r, m)
    if kind == "fused":
        return grassmann_fused_cost(B, L, d, r, m)
    if kind == "native":
        return grassmann_native_cost(B, L, d, r, m)
    if kind == "reference":
        return grassmann_reference_cost(B, L, d, r, m)
    if kind == "attention":
        return attention_cost(B, L, d, H, causal=causal)
    raise ValueError(f"unknown mixer {kind!r}; choose 'fast', 'fused', 'native', 'reference' or 'attention'")
