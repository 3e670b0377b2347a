"""What the library must never do, built on purpose to show why (chapter 2).

The paper says the layer pairs position t "strictly to its right (future)" with t + Δ, and defines the
valid offsets as those with t + Δ <= L. Read literally, the feature at t then contains z_{t+1}, computed
from the very token position t must predict: a leak. `leaky_mixing` is that literal reading, sharing the
weights of a (causal) `CausalGrassmannMixing` so that the two can be compared on equal terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gflow_lite.geometry import normalize_plucker, plucker
from gflow_lite.model import CausalGrassmannMixing

__all__ = ["leaky_mixing"]


def leaky_mixing(layer: CausalGrassmannMixing, h: Tensor) -> Tensor:
    """The layer with future pairing: (G1)-(G6) with z_t paired with z_{t+Δ}, valid where t + Δ < T.

    Mean over the valid offsets, ``g_t = 0`` where none is valid (the last positions). Uses ``layer``'s
    weights; ``h: [B, T, d] -> [B, T, d]``. NOT causal: a counterexample, not a model.
    """
    z = layer.W_red(h)  # (G1)
    T = z.shape[1]
    t = torch.arange(T, device=h.device)
    g = torch.zeros_like(h)
    count = torch.zeros(T, device=h.device, dtype=h.dtype)
    for delta in layer.offsets:
        valid = (t + delta < T).to(h.dtype)  # [T]
        z_future = F.pad(z[:, delta:], (0, 0, 0, delta))[:, :T]  # z_{t+Δ}, zeros past the end
        p = plucker(z, z_future)  # (G2), with the future
        if layer.normalize:
            p = normalize_plucker(p, layer.eps)  # (G3)
        g = g + valid[:, None] * layer.W_plu(p)  # (G4), summed over valid offsets
        count = count + valid
    g = g / count.clamp_min(1)[:, None]  # mean over valid offsets; stays 0 where none is valid
    alpha = torch.sigmoid(layer.W_gate(torch.cat([h, g], dim=-1)))  # (G5)
    h_mix = alpha * h + (1 - alpha) * g  # (G6)
    return layer.out_proj(h_mix) if layer.out_proj is not None else h_mix
