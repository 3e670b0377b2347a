"""Reference solutions for chapter 2 (loaded by the chapter only under GFLOW_SOLUTIONS=1)."""

import torch


def fast_partner(z, offsets, eps):
    """``w_t = Σ_Δ a_t^Δ z_{t-Δ} / max(||z_t ∧ z_{t-Δ}||, eps)`` with ``a`` the mean over valid offsets."""
    B, T, r = z.shape
    t = torch.arange(T)
    n_valid = sum((t >= d).to(z.dtype) for d in offsets).clamp_min(1)  # [T]
    zz = (z * z).sum(-1)
    w = torch.zeros_like(z)
    for d in offsets:
        past = torch.zeros_like(z)
        if d < T:
            past[:, d:] = z[:, : T - d]
        norm = (zz * (past * past).sum(-1) - (z * past).sum(-1) ** 2).clamp_min(0).sqrt()
        coef = (t >= d).to(z.dtype) / n_valid / norm.clamp_min(eps)  # [B, T]
        w = w + coef[..., None] * past
    return w


def dependency_matrix(mixer, T, d):
    """``D[t, s]``: does output t change when input s is perturbed? (one perturbation per s)"""
    h = torch.randn(1, T, d, dtype=torch.float64)
    base = mixer(h)
    D = torch.zeros(T, T, dtype=torch.bool)
    for s in range(T):
        h2 = h.clone()
        h2[0, s] += 1.0
        D[:, s] = (mixer(h2) - base)[0].abs().amax(-1) > 0
    return D


def grassmann_layer(h, weights, offsets, eps):
    """(G1)-(G6) by the fast identity: ``g_t = W_plu (z_t ∧ w_t) + b_plu`` where some offset is valid, else 0."""
    z = h @ weights["W_red"].T + weights["b_red"]  # (G1)
    w = fast_partner(z, offsets, eps)  # (G2)-(G4) folded into one partner per token
    r = z.shape[-1]
    i, j = torch.triu_indices(r, r, offset=1)
    p = z[..., i] * w[..., j] - z[..., j] * w[..., i]  # the mean of the normalised wedges
    any_valid = (torch.arange(h.shape[1]) >= min(offsets)).to(h.dtype)[:, None]  # [T, 1]
    g = any_valid * (p @ weights["W_plu"].T + weights["b_plu"])
    alpha = torch.sigmoid(torch.cat([h, g], dim=-1) @ weights["W_gate"].T + weights["b_gate"])  # (G5)
    return alpha * h + (1 - alpha) * g  # (G6)
