"""The "is it the geometry?" controls: the Grassmann layer with another pair feature, and local attention.

Each changes one thing of a model in `gflow_lite.model` and keeps the rest (chapter 5 §5.6 reports them):

* ``LMConfig.pair="concat"``: (G2)'s feature ``z_t ∧ z_{t-Δ}`` becomes ``[z_t; z_{t-Δ}]``, no interaction;
* ``LMConfig.pair="outer"``: it becomes ``z_t ⊗ z_{t-Δ}``, bilinear without antisymmetry;
* ``LMConfig.attn_window=w``: the Transformer's attention sees only the last w tokens (the Grassmann
  layer's reach).

Importing this module adds them to `gflow_lite.model.CONTROLS`, where the models look them up.
"""

from __future__ import annotations

from functools import partial
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .model import CONTROLS, CausalGrassmannMixing, CausalSelfAttention

__all__ = ["PairControlMixing", "LocalSelfAttention", "pair_width"]


def pair_width(pair: str, r: int) -> int:
    """Width of a control's pair feature: ``2r`` (concat) or ``r^2`` (outer)."""
    return {"concat": 2 * r, "outer": r * r}[pair]


class PairControlMixing(CausalGrassmannMixing):
    """The Grassmann layer with (G2)'s pair feature replaced; everything else as in the paper's layer.
    Plain paths only (``impl="fast"`` or ``"reference"``)."""

    def __init__(self, d_model: int, r: int, offsets, *, pair: str, impl: str = "fast", **options) -> None:
        assert impl in ("fast", "reference"), f"the controls run impl='fast' or 'reference', not {impl!r}"
        super().__init__(d_model, r, offsets, impl=impl, pair_width=pair_width(pair, r), **options)
        self.pair = pair

    def pair_feature(self, z: Tensor, z_past: Tensor) -> Tensor:
        if self.pair == "outer":
            return (z.unsqueeze(-1) * z_past.unsqueeze(-2)).flatten(-2)
        return torch.cat([z, z_past], dim=-1)

    def g_fast(self, z: Tensor, partners: List[Tensor], a: Tensor) -> Tensor:
        """(G2)-(G4) by linearity, as for the wedge: ``Σ_Δ c^Δ f(z_t, z_{t-Δ})`` with ``c^Δ = a^Δ / n^Δ``;
        the norms in O(r): ``|z ⊗ z'| = |z| |z'|``, ``|[z; z']| = hypot(|z|, |z'|)``."""
        zp = torch.stack(partners, dim=-2)  # [B, T, m, r]
        c = a.expand(zp.shape[:-1])
        if self.normalize:
            nz, nzp = z.norm(dim=-1, keepdim=True), zp.norm(dim=-1)
            c = c / (nz * nzp if self.pair == "outer" else torch.hypot(nz, nzp)).clamp_min(self.eps)  # (G3)
        w = (c.unsqueeze(-1) * zp).sum(-2)  # Σ_Δ c^Δ z_{t-Δ}
        if self.pair == "concat":  # Σ c [z; z'] = [z Σc; w]: linear, not bilinear
            p_bar = torch.cat([z * c.sum(-1, keepdim=True), w], dim=-1)
        else:
            p_bar = self.pair_feature(z, w)  # Σ c (z ⊗ z') = z ⊗ Σ c z'
        W = self.W_plu
        return F.linear(p_bar.to(W.weight.dtype), W.weight) + a.sum(-1, keepdim=True) * W.bias  # (G4)


class LocalSelfAttention(CausalSelfAttention):
    """Causal attention in which each token sees itself and the ``window`` tokens before it."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, *, window: int) -> None:
        super().__init__(d_model, n_heads, dropout)
        assert window >= 1, window
        self.window = window

    def attention_mask(self, past: int, T: int, device: torch.device) -> Optional[Tensor]:
        i = torch.arange(past, past + T, device=device)[:, None]  # query positions
        j = torch.arange(past + T, device=device)[None, :]  # key positions
        return (j <= i) & (i - j <= self.window)


CONTROLS["concat"] = partial(PairControlMixing, pair="concat")
CONTROLS["outer"] = partial(PairControlMixing, pair="outer")
CONTROLS["window"] = LocalSelfAttention
