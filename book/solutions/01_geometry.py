"""Reference solutions for chapter 1 (loaded by the chapter only under GFLOW_SOLUTIONS=1)."""

import itertools

import torch


def plucker_coordinates(u, v):
    """``p_ij = u_i v_j - u_j v_i`` for ``i < j`` (row-major upper triangle), over the last dimension."""
    r = u.shape[-1]
    i, j = torch.triu_indices(r, r, offset=1)
    return u[..., i] * v[..., j] - u[..., j] * v[..., i]


def lagrange_norm(u, v):
    """``||u ∧ v||`` in O(r): ``sqrt(|u|^2 |v|^2 - <u, v>^2)``, clamped at 0 against rounding."""
    uu, vv, uv = (u * u).sum(-1), (v * v).sum(-1), (u * v).sum(-1)
    return (uu * vv - uv * uv).clamp_min(0).sqrt()


def on_grassmannian(p, r, tol):
    """True where every Grassmann–Plücker relation holds within ``tol`` (always True for r < 4)."""
    index = {pair: k for k, pair in enumerate(itertools.combinations(range(r), 2))}
    ok = torch.ones(p.shape[:-1], dtype=torch.bool)
    for i, j, k, l in itertools.combinations(range(r), 4):
        res = (p[..., index[i, j]] * p[..., index[k, l]] - p[..., index[i, k]] * p[..., index[j, l]]
               + p[..., index[i, l]] * p[..., index[j, k]])
        ok &= res.abs() <= tol
    return ok


def causal_attention(q, k, v):
    """Single-head causal attention: ``softmax(q k^T / sqrt(d) + mask) v``, the mask -inf above the diagonal."""
    L, d = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-1, -2) / d ** 0.5  # [..., L, L]: the lift
    future = torch.ones(L, L, dtype=torch.bool).triu(1)
    scores = scores.masked_fill(future, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # softmax subtracts the row maximum: no overflow
    return weights @ v


def plucker_features(z, delta, eps):
    """``z_t ∧ z_{t-Δ} / max(||z_t ∧ z_{t-Δ}||, eps)`` for every t, zeros where t < Δ (no partner)."""
    T, r = z.shape[1], z.shape[-1]
    partner = torch.zeros_like(z)
    if delta < T:
        partner[:, delta:] = z[:, : T - delta]
    i, j = torch.triu_indices(r, r, offset=1)
    p = z[..., i] * partner[..., j] - z[..., j] * partner[..., i]
    return p / p.norm(dim=-1, keepdim=True).clamp_min(eps)
