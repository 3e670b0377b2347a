"""Reference solutions for chapter 7 (loaded by the chapter only under GFLOW_SOLUTIONS=1)."""

import torch


def pair_sine(z, delta):
    """``sin θ_t = ||z_t ∧ z_{t-Δ}|| / (|z_t| |z_{t-Δ}|)`` by the Lagrange identity; 0 where t < Δ."""
    partner = torch.zeros_like(z)
    if delta < z.shape[1]:
        partner[:, delta:] = z[:, : z.shape[1] - delta]
    zz, pp, zp = (z * z).sum(-1), (partner * partner).sum(-1), (z * partner).sum(-1)
    wedge = (zz * pp - zp * zp).clamp_min(0).sqrt()
    lengths = zz.sqrt() * pp.sqrt()
    return torch.where(lengths > 0, wedge / torch.where(lengths > 0, lengths, torch.ones_like(lengths)),
                       torch.zeros_like(wedge))


def ablation_weights(a, k):
    """Offset weights without offset ``k``, each row renormalised over the offsets left (0 if none)."""
    rest = a.clone()
    rest[:, k] = 0
    total = rest.sum(-1, keepdim=True)
    return torch.where(total > 0, rest / torch.where(total > 0, total, torch.ones_like(total)),
                       torch.zeros_like(rest))


def plane_angles(a, b):
    """Principal angles between span(a) and span(b): arccos of the singular values of Qa^T Qb."""
    qa, _ = torch.linalg.qr(a)
    qb, _ = torch.linalg.qr(b)
    cosines = torch.linalg.svdvals(qa.transpose(-1, -2) @ qb).clamp(-1.0, 1.0)
    return torch.arccos(cosines).sort(dim=-1).values
