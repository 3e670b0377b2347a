"""What the chapters build from scratch, kept for the chapters after them.

Chapter 2 writes the Causal Grassmann layer out, equation by equation, and asserts that its function
equals this one; chapter 3 reuses it to build a block and a whole model from scratch. Plain torch only:
the library's layer is used for its weights, never for its computation.
"""

from __future__ import annotations

from typing import Callable, Tuple

import torch
from torch import Tensor

__all__ = ["pair_past", "grassmann_from_scratch"]


def pair_past(z: Tensor, delta: int) -> Tuple[Tensor, Tensor]:
    """Partner ``z_{t-Δ}`` for every t (zeros where t < Δ) and the mask ``t >= Δ``."""
    T = z.shape[1]
    partner = torch.zeros_like(z)
    if delta < T:
        partner[:, delta:] = z[:, : T - delta]
    return partner, (torch.arange(T, device=z.device) >= delta).to(z.dtype)


def grassmann_from_scratch(layer, h: Tensor, pair: Callable[[Tensor, int], Tuple[Tensor, Tensor]] = pair_past
                           ) -> Tensor:
    """(G1)-(G6) with ``layer``'s weights; ``pair`` chooses each token's partner (chapter 3 tries the future)."""
    z = h @ layer.W_red.weight.T + layer.W_red.bias  # (G1)
    g = torch.zeros_like(h)
    n_valid = torch.zeros(h.shape[1], dtype=h.dtype, device=h.device)
    for delta in layer.offsets:
        partner, valid = pair(z, delta)
        i, j = torch.triu_indices(z.shape[-1], z.shape[-1], offset=1, device=z.device)
        p = z[..., i] * partner[..., j] - z[..., j] * partner[..., i]  # (G2)
        p_hat = p / p.norm(dim=-1, keepdim=True).clamp_min(layer.eps)  # (G3)
        g = g + valid[:, None] * (p_hat @ layer.W_plu.weight.T + layer.W_plu.bias)
        n_valid = n_valid + valid
    g = g / n_valid.clamp_min(1)[:, None]  # (G4)
    u = torch.cat([h, g], dim=-1)
    alpha = torch.sigmoid(u @ layer.W_gate.weight.T + layer.W_gate.bias)  # (G5)
    return alpha * h + (1 - alpha) * g  # (G6)
