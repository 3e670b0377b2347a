"""Reference solutions for chapter 6 (loaded by the chapter only under GFLOW_SOLUTIONS=1)."""

import torch


def pair_validity_mask(lengths, window, stride):
    """``valid[b, t, s]``: t != s, both real in row b, and some window ``[k*stride, k*stride + window)``
    holds both."""
    L = max(lengths)
    pos = torch.arange(L)
    real = pos[None, :] < torch.as_tensor(list(lengths))[:, None]  # [B, L]
    shared = torch.zeros(L, L, dtype=torch.bool)
    for start in range(0, L, stride):  # every window that starts inside the sentence
        inside = (pos >= start) & (pos < start + window)
        shared |= inside[:, None] & inside[None, :]
    not_self = ~torch.eye(L, dtype=torch.bool)
    return real[:, :, None] & real[:, None, :] & (shared & not_self)[None]

def plucker_width(d_proj, groups):
    """``groups`` planes in ``R^(d_proj // groups)``, each with ``r (r - 1) / 2`` coordinates."""
    r = d_proj // groups
    return groups * r * (r - 1) // 2


def matching_features(h, segment, real):
    """Masked means ``u`` (premise) and ``v`` (hypothesis), then ``[u; v; |u - v|; u * v]``."""
    def mean(which):
        w = (real & (segment == which)).to(h.dtype)[..., None]  # [B, L, 1]
        return (w * h).sum(1) / w.sum(1).clamp_min(1.0)

    u, v = mean(0), mean(1)
    return torch.cat([u, v, (u - v).abs(), u * v], dim=-1)
