"""Windowed, grouped Grassmann mixing over real token pairs, for the SNLI head.

The language-model layer (`gflow_lite.model.CausalGrassmannMixing`) pairs position t with t - Δ over
one unpadded causal stream. A classifier over padded (premise, hypothesis) batches needs three things
that layer does not have, so this module generalises it while keeping its equations and names:

* **an explicit pair-validity mask** ``valid[b, t, s]``: t may pair with s only if both are real
  tokens, of the same sentence, inside a common window, and ``s != t`` (a token paired with itself
  gives ``z ∧ z = 0``, the degenerate pairing of the public SNLI reproduction, paper notes §5.6);
* **windows** instead of offsets: window k covers in-sentence positions ``[k·stride, k·stride + window)``
  (paper: window 8, stride 8, i.e. non-overlapping tiles ``[0, 8), [8, 16), ...``). Pairing is
  **bidirectional** by default (t pairs with every other real token of its window, earlier or later:
  a classifier needs no causality); ``causal=True`` keeps only earlier partners ``s < t``;
* **groups** ("mixing heads"): the reduced vector ``z ∈ R^{d_proj}`` is split into G groups of
  ``r = d_proj / G``; each group spans its own 2-plane in ``R^r`` with its own ``C(r, 2)`` Plücker
  coordinates, normalised separately, so G = 4 planes per pair (paper: d_proj 64, 4 heads -> r = 16,
  4 x 120 = 480 coordinates, close to the LM layer's 496).

Per position t (equations (G1)-(G6) of `gflow_lite.model`, with the mean over valid partners):

    (W1)  z_t            = W_red h_t + b_red,  split into groups z_t^k ∈ R^r
    (W2)  p_ts^k         = z_t^k ∧ z_s^k                     for every s with valid[t, s]
    (W3)  p̂_ts^k         = p_ts^k / max(||p_ts^k||, eps)
    (W4)  g_t            = mean_s (W_plu [p̂_ts^1; ...; p̂_ts^G] + b_plu),   g_t = 0 if t has no partner
    (W5)  α_t            = σ(W_gate [h_t; g_t] + b_gate)
    (W6)  h̃_t            = α_t ⊙ h_t + (1 - α_t) ⊙ g_t

``impl="fast"`` uses the linearity the LM layer uses: ``mean_s p̂_ts^k = z_t^k ∧ w_t^k`` with
``w_t^k = Σ_s a_ts v_ts^k / n_ts^k`` (``a_ts = valid / count``, ``v_ts`` the part of ``z_s`` orthogonal to
``z_t`` and ``n = |z_t| |v_ts|``, stable where the Lagrange identity cancels), one Plücker product per
token and group. ``impl="reference"`` forms every pair.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..geometry import n_plucker, normalize_plucker, plucker, wedge_height

__all__ = ["window_pair_mask", "WindowGrassmannMixing"]


def _share_window(a: Tensor, b: Tensor, window: int, stride: int) -> Tensor:
    """Whether in-sentence positions ``a``, ``b`` share a window ``[k·stride, k·stride + window)``."""
    lo, hi = torch.minimum(a, b), torch.maximum(a, b)
    first = torch.div(hi - window + 1 + stride - 1, stride, rounding_mode="floor").clamp_min(0)  # ceil, >= 0
    last = torch.div(lo, stride, rounding_mode="floor")
    return first <= last


def window_pair_mask(
    segment: Tensor, position: Tensor, real: Tensor, window: int, stride: int, causal: bool = False
) -> Tensor:
    """``valid[b, t, s]``: may slot t pair with slot s? Shapes ``[B, L]`` -> ``[B, L, L]``.

    True iff both slots are real tokens of the same sentence, ``t != s``, their in-sentence positions
    share a window, and (``causal`` only) s comes before t.
    """
    if not (1 <= stride <= window):
        raise ValueError(f"need 1 <= stride <= window, got window={window}, stride={stride}")
    L = segment.shape[1]
    same_sentence = segment[:, :, None] == segment[:, None, :]
    both_real = real[:, :, None] & real[:, None, :]
    not_self = ~torch.eye(L, dtype=torch.bool, device=segment.device)
    windowed = _share_window(position[:, :, None], position[:, None, :], window, stride)
    valid = same_sentence & both_real & not_self & windowed
    if causal:
        valid = valid & (position[:, None, :] < position[:, :, None])
    return valid


class WindowGrassmannMixing(nn.Module):
    """Grouped Grassmann mixing over the pairs of a validity mask, equations (W1)-(W6).

    Args:
        d_model: width of ``h``.
        d_proj: reduced width (paper: 64), split into ``groups`` groups of ``r = d_proj / groups``.
        groups: number of 2-planes per pair (paper: 4 "mixing heads").
        eps: floor of the Plücker norm in (W3).
        impl: "fast" (default) or "reference"; same parameters, same function.
    """

    def __init__(self, d_model: int, d_proj: int, groups: int, eps: float = 1e-6, impl: str = "fast") -> None:
        super().__init__()
        if groups < 1 or d_proj % groups != 0 or d_proj // groups < 2:
            raise ValueError(f"d_proj={d_proj} must split into groups={groups} of at least 2 dimensions each")
        if impl not in ("fast", "reference"):
            raise ValueError(f"impl={impl!r} must be 'fast' or 'reference'")
        self.d_model, self.d_proj, self.groups, self.r = d_model, d_proj, groups, d_proj // groups
        self.eps, self.impl = float(eps), impl
        self.W_red = nn.Linear(d_model, d_proj)  # (W1)
        self.W_plu = nn.Linear(groups * n_plucker(self.r), d_model)  # (W4)
        self.W_gate = nn.Linear(2 * d_model, d_model)  # (W5)

    def reduce(self, h: Tensor) -> Tensor:
        """(W1): ``[B, L, d] -> [B, G, L, r]`` in >= fp32 (Plücker geometry in fp32, paper notes §5.3)."""
        B, L, _ = h.shape
        z = self.W_red(h).to(torch.promote_types(h.dtype, torch.float32))
        return z.view(B, L, self.groups, self.r).transpose(1, 2)

    def plucker_mean(self, z: Tensor, valid: Tensor) -> Tuple[Tensor, Tensor]:
        """Mean normalised Plücker vector over valid partners ``[B, L, G, C(r,2)]``; ``any_valid [B, L]``.

        Fast path of (W2)-(W3) plus the mean: ``z_t^k ∧ w_t^k`` with ``w_t^k = Σ_s a_ts z_s^k / n_ts^k``.
        """
        count = valid.sum(-1, keepdim=True)  # [B, L, 1]
        a = valid.to(z.dtype) / count.clamp_min(1).to(z.dtype)  # [B, L, L], exactly 0 off the mask
        base, v = wedge_height(z[:, :, :, None, :], z[:, :, None, :, :])  # |z_t|, z_s's part ⊥ z_t [B, G, L, L, r]
        n = base.squeeze(-1) * v.norm(dim=-1)  # ||z_t ∧ z_s|| = |z_t| |v_ts| (base x height, stable)
        c = a[:, None] / n.clamp_min(self.eps)  # a_ts / max(||p_ts||, eps)
        w = (c[..., None] * v).sum(-2)  # [B, G, L, r]; z_t ∧ v_ts = z_t ∧ z_s
        p_bar = plucker(z, w)  # [B, G, L, P]
        return p_bar.transpose(1, 2), count.squeeze(-1) > 0

    def g_fast(self, z: Tensor, valid: Tensor) -> Tensor:
        """(W2)-(W4) through `plucker_mean`; one projection per token."""
        p_bar, any_valid = self.plucker_mean(z, valid)
        B, L = any_valid.shape
        g = F.linear(p_bar.reshape(B, L, -1), self.W_plu.weight)
        return g + any_valid[..., None].to(g.dtype) * self.W_plu.bias

    def g_reference(self, z: Tensor, valid: Tensor) -> Tensor:
        """(W2)-(W4) literally: every pair's Plücker vectors, normalised, projected, then averaged."""
        B, G, L, r = z.shape
        zt = z[:, :, :, None, :].expand(B, G, L, L, r)
        zs = z[:, :, None, :, :].expand(B, G, L, L, r)
        p_hat = normalize_plucker(plucker(zt, zs), self.eps)  # [B, G, L, L, P]
        p_hat = p_hat.permute(0, 2, 3, 1, 4).reshape(B, L, L, -1)  # [B, t, s, G * P]
        g_ts = self.W_plu(p_hat)  # [B, L, L, d]
        a = valid.to(z.dtype) / valid.sum(-1, keepdim=True).clamp_min(1).to(z.dtype)
        return (a[..., None] * g_ts).sum(2)

    def forward(self, h: Tensor, valid: Tensor) -> Tensor:
        """``h: [B, L, d]``, ``valid: [B, L, L]`` -> ``h̃: [B, L, d]``."""
        z = self.reduce(h)
        g = self.g_reference(z, valid) if self.impl == "reference" else self.g_fast(z, valid)
        g = g.to(h.dtype)
        alpha = torch.sigmoid(self.W_gate(torch.cat([h, g], dim=-1)))  # (W5)
        return alpha * h + (1 - alpha) * g  # (W6)
