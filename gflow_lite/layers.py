"""The two sequence mixers: the paper's Causal Grassmann mixing and causal self-attention.

`CausalGrassmannMixing` implements, for each position t (digest section 1, equations unnumbered in the
paper; we number them here and in the book):

    (G1)  z_t       = W_red h_t + b_red                                  reduction to r dims
    (G2)  p_t^Δ     = z_t ∧ z_{t-Δ}        for Δ in offsets with t-Δ >= 0   Plücker coordinates
    (G3)  p̂_t^Δ     = p_t^Δ / max(||p_t^Δ||, eps)                         optional normalisation
    (G4)  g_t       = Σ_Δ a_t^Δ (W_plu p̂_t^Δ + b_plu)                      a_t^Δ = 1/|valid| ("mean")
    (G5)  α_t       = σ(W_gate [h_t; g_t] + b_gate)                       gate
    (G6)  h̃_t       = α_t ⊙ h_t + (1 - α_t) ⊙ g_t                          blend

Pairing is strictly causal: position t pairs with the *past* token t-Δ (the paper's "strictly to its
right (future)" would leak the target, digest 1.3). Where no offset is valid (t < min Δ) we define
``g_t = 0``, so ``h̃_t = α_t ⊙ h_t``.

Two implementations share the parameters: ``impl="reference"`` follows (G2)-(G4) literally, one
Plücker vector and one projection per offset; ``impl="fast"`` (default) uses linearity of ``z_t ∧ ·``:

    Σ_Δ a^Δ (z_t ∧ z_{t-Δ}) / n^Δ  =  z_t ∧ w_t,   w_t = Σ_Δ a^Δ z_{t-Δ} / n^Δ,
    n^Δ = max(sqrt(|z_t|² |z_{t-Δ}|² - <z_t, z_{t-Δ}>²), eps)      (Lagrange identity)

so one Plücker product and one projection per token however many offsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import validate_offsets
from .fast_mix import fast_plucker_mix
from .geometry import n_plucker, normalize_plucker, plucker

__all__ = ["CausalGrassmannMixing", "CausalSelfAttention", "MixCache", "KVCache", "shift_back"]


def shift_back(z: Tensor, delta: int) -> Tensor:
    """``out[:, t] = z[:, t - delta]`` with zeros where ``t < delta``; ``z: [B, T, r]``."""
    T = z.shape[1]
    if delta >= T:
        return torch.zeros_like(z)
    return F.pad(z[:, : T - delta], (0, 0, delta, 0))


@dataclass
class MixCache:
    """Streaming state of one Grassmann layer: the last ``max(offsets)`` reduced vectors.

    Its size is fixed by the offsets, not by how long the context has grown.
    """

    z: Optional[Tensor] = None  # [B, <= max(offsets), r]
    pos: int = 0  # number of tokens seen so far

    def nbytes(self) -> int:
        return 0 if self.z is None else self.z.numel() * self.z.element_size()


class CausalGrassmannMixing(nn.Module):
    """Causal Grassmann mixing, equations (G1)-(G6) of the module docstring.

    Args:
        d_model: width d of the hidden states ``h``.
        r: reduced width (paper: 32), so ``P = r(r-1)/2`` Plücker coordinates.
        offsets: the offsets Δ this layer pairs with (positive ints).
        normalize: apply (G3); the paper calls it optional.
        eps: floor of the norm in (G3).
        aggregate: "mean" (the paper's average over valid offsets) or "learned" (softmax weights over
            offsets, renormalised over the valid ones: a named variant, not the paper's layer).
        impl: "fast" (default) or "reference"; same parameters, same function.
        out_proj: an extra ``Linear(d, d)`` after the blend (the hypothesis that reproduces the paper's
            parameter counts, digest 1.12); off by default.
    """

    def __init__(
        self,
        d_model: int,
        r: int,
        offsets: Sequence[int],
        *,
        normalize: bool = True,
        eps: float = 1e-6,
        aggregate: str = "mean",
        impl: str = "fast",
        out_proj: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(r, bool) or not isinstance(r, int) or r < 2:
            raise ValueError(f"r={r!r} must be an integer >= 2 (a 2-plane needs at least 2 dimensions)")
        if aggregate not in ("mean", "learned"):
            raise ValueError(f"aggregate={aggregate!r} must be 'mean' or 'learned'")
        if impl not in ("fast", "reference"):
            raise ValueError(f"impl={impl!r} must be 'fast' or 'reference'")
        if not float(eps) > 0:
            raise ValueError(f"eps={eps!r} must be positive")
        self.d_model, self.r = d_model, r
        self.offsets: Tuple[int, ...] = validate_offsets(offsets)
        self.normalize, self.eps, self.aggregate, self.impl = normalize, float(eps), aggregate, impl
        self.W_red = nn.Linear(d_model, r)  # (G1)
        self.W_plu = nn.Linear(n_plucker(r), d_model)  # (G4)
        self.W_gate = nn.Linear(2 * d_model, d_model)  # (G5)
        self.out_proj = nn.Linear(d_model, d_model) if out_proj else None
        self.offset_logits = nn.Parameter(torch.zeros(len(self.offsets))) if aggregate == "learned" else None

    @property
    def max_offset(self) -> int:
        return max(self.offsets)

    # ----------------------------------------------------------------------------------------- weights
    def offset_weights(self, t: Tensor, dtype: torch.dtype = torch.float32) -> Tuple[Tensor, Tensor]:
        """Weights ``a_t^Δ`` of (G4) at absolute positions ``t: [T]`` -> ``([T, m], any_valid [T])``.

        Rows where no offset is valid are exactly zero (``torch.where``, never a division by a tiny
        clamp: that produced NaN gradients in one public reproduction, digest 5.3).
        """
        deltas = torch.tensor(self.offsets, device=t.device)
        valid = t[:, None] >= deltas[None, :]
        any_valid = valid.any(-1)
        if self.offset_logits is None:
            a = valid.to(dtype) / valid.sum(-1, keepdim=True).clamp_min(1).to(dtype)
        else:
            e = torch.softmax(self.offset_logits.to(dtype), -1)[None, :] * valid
            s = e.sum(-1, keepdim=True)
            a = torch.where(s > 0, e / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(e))
        return a, any_valid

    # ------------------------------------------------------------------------------------------ pieces
    def _context(self, z: Tensor, cache: Optional[MixCache]) -> Tuple[Tensor, Tensor]:
        """Reduced vectors the new positions may pair with, and the new positions' absolute indices."""
        T = z.shape[1]
        if cache is None or cache.z is None:
            start, z_ctx = (0 if cache is None else cache.pos), z
        else:
            start, z_ctx = cache.pos, torch.cat([cache.z.to(z.dtype), z], dim=1)
        t = torch.arange(start, start + T, device=z.device)
        if cache is not None:
            cache.z = z_ctx[:, -self.max_offset :].detach()
            cache.pos = start + T
        return z_ctx, t

    def _partners(self, z_ctx: Tensor, T: int) -> List[Tensor]:
        """``z_{t-Δ}`` for each offset, for the last T positions of the context (zeros where invalid)."""
        return [shift_back(z_ctx, delta)[:, -T:] for delta in self.offsets]

    def g_reference(self, z: Tensor, partners: List[Tensor], a: Tensor) -> Tensor:
        """(G2)-(G4) literally: per offset pair, Plücker, normalise, project; then the weighted mean."""
        g = 0.0
        for k, z_past in enumerate(partners):
            p = plucker(z, z_past)  # (G2)  [B, T, P]
            if self.normalize:
                p = normalize_plucker(p, self.eps)  # (G3)
            g = g + a[:, k, None] * self.W_plu(p)  # (G4), a = 0 where t - Δ < 0
        return g

    def g_fast(self, z: Tensor, partners: List[Tensor], a: Tensor, any_valid: Tensor) -> Tensor:
        """(G2)-(G4) by linearity: ``g_t = W_plu (z_t ∧ w_t) + b_plu`` with ``w_t`` the weighted partner.

        One fused autograd node (`fast_plucker_mix`): O(T (m r + r^2 + r^2 d)) work, and it keeps
        O(T m r) floats for backward instead of the reference's O(T m r^2).
        """
        zp = torch.stack(partners, dim=-2)  # [B, T, m, r]
        plu = self.W_plu
        return fast_plucker_mix(z, zp, a, any_valid, plu.weight, plu.bias, self.normalize, self.eps)

    # ----------------------------------------------------------------------------------------- forward
    def forward(self, h: Tensor, cache: Optional[MixCache] = None) -> Tensor:
        """``h: [B, T, d] -> h̃: [B, T, d]``. With ``cache``, ``h`` continues the cached stream."""
        z = self.W_red(h)  # (G1)
        geo = torch.promote_types(z.dtype, torch.float32)  # Plücker geometry in >= fp32 (digest 5.3)
        z_ctx, t = self._context(z, cache)
        z, partners = z.to(geo), [zp.to(geo) for zp in self._partners(z_ctx, z.shape[1])]
        a, any_valid = self.offset_weights(t, geo)
        if self.impl == "reference":
            g = self.g_reference(z, partners, a)
        else:
            g = self.g_fast(z, partners, a, any_valid)
        alpha = torch.sigmoid(self.W_gate(torch.cat([h, g.to(h.dtype)], dim=-1)))  # (G5)
        h_mix = alpha * h + (1 - alpha) * g.to(h.dtype)  # (G6)
        return self.out_proj(h_mix) if self.out_proj is not None else h_mix

    @torch.no_grad()
    def diagnostics(self, h: Tensor) -> Dict[str, Tensor]:
        """Intermediate quantities for analysis (chapter 6): ``z``, per-offset pair norms and angles'
        sines ``||z_t ∧ z_{t-Δ}|| / (|z_t| |z_{t-Δ}|)``, ``g`` and the gate ``alpha``."""
        z = self.W_red(h).float()
        T = z.shape[1]
        t = torch.arange(T, device=h.device)
        partners = self._partners(z, T)
        a, any_valid = self.offset_weights(t)
        zz = (z * z).sum(-1)
        norms, sines = [], []
        for z_past in partners:
            n2 = (zz * (z_past * z_past).sum(-1) - (z * z_past).sum(-1).square()).clamp_min(0)
            norms.append(n2.sqrt())
            sines.append(n2.sqrt() / (zz.sqrt() * z_past.norm(dim=-1)).clamp_min(1e-12))
        g = self.g_fast(z, partners, a, any_valid)
        alpha = torch.sigmoid(self.W_gate(torch.cat([h, g.to(h.dtype)], dim=-1)))
        return {
            "z": z,
            "pair_norm": torch.stack(norms, -1),
            "pair_sin": torch.stack(sines, -1),
            "valid": (t[:, None] >= torch.tensor(self.offsets, device=h.device)[None, :]),
            "g": g,
            "alpha": alpha,
        }


@dataclass
class KVCache:
    """Keys and values of one attention layer, preallocated and grown by doubling."""

    k: Optional[Tensor] = None  # [B, H, capacity, hd]
    v: Optional[Tensor] = None
    length: int = 0
    pos: int = 0

    def append(self, k: Tensor, v: Tensor) -> Tuple[Tensor, Tensor]:
        T = k.shape[2]
        need = self.length + T
        if self.k is None or need > self.k.shape[2]:
            cap = max(need, 2 * (0 if self.k is None else self.k.shape[2]), 16)
            nk = k.new_zeros(k.shape[0], k.shape[1], cap, k.shape[3])
            nv = torch.zeros_like(nk)
            if self.k is not None:
                nk[:, :, : self.length] = self.k[:, :, : self.length]
                nv[:, :, : self.length] = self.v[:, :, : self.length]
            self.k, self.v = nk, nv
        self.k[:, :, self.length : need] = k
        self.v[:, :, self.length : need] = v
        self.length = need
        self.pos += T
        return self.k[:, :, :need], self.v[:, :, :need]

    def nbytes(self) -> int:
        if self.k is None:
            return 0
        per = self.k.element_size() * self.k.shape[0] * self.k.shape[1] * self.k.shape[3]
        return 2 * per * self.length


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention through ``F.scaled_dot_product_attention`` (the baseline)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, cache: Optional[KVCache] = None) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (y.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for y in (q, k, v))
        past = 0 if cache is None else cache.length
        if cache is not None:
            k, v = cache.append(k, v)
        drop = self.dropout if self.training else 0.0
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        elif T == 1:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        else:  # a chunk after a prefix: query i sees keys <= past + i
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))

