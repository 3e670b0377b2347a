"""Geometry of 2-planes: Plücker coordinates of Gr(2, r) and the identities the book uses.

Torch only; knows nothing of layers or models. Notation follows the paper (§2; paper notes §1.4): a pair of
reduced vectors ``u, v`` in R^r spans a 2-plane; its Plücker coordinates are the 2x2 minors
``p_ij = u_i v_j - u_j v_i`` for ``i < j`` in row-major upper-triangle order (``torch.triu_indices``),
i.e. the wedge product ``u ∧ v`` with ``P = r (r - 1) / 2`` coordinates.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Tuple

import torch
from torch import Tensor

__all__ = [
    "n_plucker",
    "plucker_indices",
    "plucker",
    "wedge_height",
    "plucker_norm",
    "lagrange_norm_sq",
    "normalize_plucker",
    "plucker_to_matrix",
    "grassmann_plucker_residual",
    "pair_angle",
    "principal_angles",
]


def n_plucker(r: int) -> int:
    """Number of Plücker coordinates of Gr(2, r): ``P = r (r - 1) / 2`` (496 for r = 32)."""
    return r * (r - 1) // 2


@lru_cache(maxsize=None)
def _indices_cpu(r: int) -> Tuple[Tensor, Tensor]:
    i, j = torch.triu_indices(r, r, offset=1)
    return i, j


def plucker_indices(r: int, device: torch.device | str | None = None) -> Tuple[Tensor, Tensor]:
    """Index pairs ``(i, j)``, ``i < j``, in row-major upper-triangle order, on ``device``.

    Made on the fly from a cached CPU copy (never as module buffers: buffers created before
    meta-device materialisation came back as garbage in one public reproduction, paper notes §5.4).
    """
    if r < 2:
        raise ValueError(f"r={r} must be >= 2 for Plücker coordinates of a 2-plane")
    i, j = _indices_cpu(r)
    return i.to(device), j.to(device)


def plucker(u: Tensor, v: Tensor) -> Tensor:
    """Plücker coordinates ``p_ij = u_i v_j - u_j v_i`` (``i < j``) of span{u, v}; shapes ``[..., r]``.

    The paper's p_ij with ``u = z_t``, ``v`` the partner (paper notes §1.4); returns ``[..., r(r-1)/2]``.
    Antisymmetric: ``plucker(v, u) == -plucker(u, v)``.
    """
    if u.shape[-1] != v.shape[-1]:
        raise ValueError(f"plucker needs vectors of one length, got {u.shape[-1]} and {v.shape[-1]}")
    i, j = plucker_indices(u.shape[-1], u.device)
    return u[..., i] * v[..., j] - u[..., j] * v[..., i]


def lagrange_norm_sq(u: Tensor, v: Tensor) -> Tensor:
    """``||u ∧ v||^2`` by the Lagrange identity ``|u|^2 |v|^2 - <u, v>^2``, clamped at 0.

    An identity to learn from, not to compute with: for nearly parallel ``u, v`` the two terms almost
    cancel (relative error ~ machine epsilon / sin^2 θ: in float32 it is pure noise below sin θ ~ 1e-4),
    and the products overflow float32 for |u|, |v| above ~4e9. The library uses `plucker_norm`.
    """
    uu = (u * u).sum(-1)
    vv = (v * v).sum(-1)
    uv = (u * v).sum(-1)
    return (uu * vv - uv * uv).clamp_min(0.0)


def wedge_height(u: Tensor, v: Tensor) -> Tuple[Tensor, Tensor]:
    """``(|u|, v_⊥)``: the base ``|u|`` (shape ``[..., 1]``) and the height vector
    ``v_⊥ = v - (<u, v> / |u|^2) u``, the part of ``v`` orthogonal to ``u`` (Gram-Schmidt, done twice).
    Shapes broadcast (``u [..., 1, r]`` against partners ``v [..., m, r]``).

    The one stable way to the wedge that every plain path uses: ``u ∧ v = u ∧ v_⊥`` (a plane keeps its
    Plücker vector under Gram-Schmidt) and ``||u ∧ v|| = |u| |v_⊥|`` (base x height). The height is a
    difference of vectors, not of squares, so its relative error is ~ machine epsilon / sin θ where the
    Lagrange identity's is / sin^2 θ (`lagrange_norm_sq`); the second pass removes what the rounding of
    the first left along ``u``, so that gradients through the normalised wedge stay accurate for nearly
    parallel pairs too (at r = 2 they are 0 to rounding). ``|u|^2`` overflows float32 past |u| ~ 1e19.
    ``u = 0`` gives base 0 and ``v_⊥ = v``; the gradient is finite everywhere.
    """
    uu = (u * u).sum(-1, keepdim=True).clamp_min(torch.finfo(u.dtype).tiny)  # |u|^2
    v = v - (u * v).sum(-1, keepdim=True) / uu * u  # exactly 0 for v = u (x / x = 1 in floating point)
    v = v - (u * v).sum(-1, keepdim=True) / uu * u  # twice: what rounding left along u goes too
    return u.norm(dim=-1, keepdim=True), v


def plucker_norm(u: Tensor, v: Tensor, eps: float = 0.0) -> Tensor:
    """``max(||u ∧ v||, eps)`` in O(r), without forming the Plücker vector: base x height (`wedge_height`).

    Exactly 0 when ``u = 0``; the gradient is finite everywhere (zero where the floor ``eps`` is active).
    """
    base, height = wedge_height(u, v)
    n = base.squeeze(-1) * height.norm(dim=-1)
    return n.clamp_min(eps) if eps > 0 else n


def normalize_plucker(p: Tensor, eps: float = 1e-6) -> Tensor:
    """The paper's optional normalisation ``p_hat = p / max(||p||_2, eps)`` (paper notes §1.5)."""
    return p / p.norm(dim=-1, keepdim=True).clamp_min(eps)


def plucker_to_matrix(p: Tensor, r: int) -> Tensor:
    """The antisymmetric ``r x r`` matrix ``u v^T - v u^T`` whose upper triangle holds ``p``."""
    if p.shape[-1] != n_plucker(r):
        raise ValueError(f"p has {p.shape[-1]} coordinates but Gr(2, {r}) has {n_plucker(r)}")
    i, j = plucker_indices(r, p.device)
    m = p.new_zeros(*p.shape[:-1], r, r)
    m[..., i, j] = p
    m[..., j, i] = -p
    return m


def grassmann_plucker_residual(p: Tensor, r: int) -> Tensor:
    """Residuals of the Grassmann–Plücker relations, one per quadruple ``i < j < k < l``.

    A vector ``p`` is the wedge of two vectors (a point of Gr(2, r)) iff
    ``p_ij p_kl - p_ik p_jl + p_il p_jk = 0`` for all such quadruples. Returns ``[..., C(r, 4)]``
    (empty for r < 4, where every bivector is decomposable).
    """
    m = plucker_to_matrix(p, r)
    quads = list(itertools.combinations(range(r), 4))
    if not quads:
        return p.new_zeros(*p.shape[:-1], 0)
    q = torch.tensor(quads, device=p.device)
    i, j, k, l = q.unbind(-1)
    return m[..., i, j] * m[..., k, l] - m[..., i, k] * m[..., j, l] + m[..., i, l] * m[..., j, k]


def pair_angle(u: Tensor, v: Tensor) -> Tensor:
    """Angle in [0, pi/2] between the lines spanned by ``u`` and ``v`` (0 when parallel).

    Its sine is ``||u ∧ v|| / (|u| |v|)``: the 2-plane degenerates as the angle goes to 0.
    """
    sin = plucker_norm(u, v) / (u.norm(dim=-1) * v.norm(dim=-1)).clamp_min(1e-30)
    cos = (u * v).sum(-1).abs() / (u.norm(dim=-1) * v.norm(dim=-1)).clamp_min(1e-30)
    return torch.atan2(sin, cos)


def principal_angles(a: Tensor, b: Tensor) -> Tensor:
    """Principal angles (ascending, in radians) between span(a) and span(b), ``a, b: [..., r, k]``.

    Orthonormalise both by QR; the singular values of ``Qa^T Qb`` are the cosines of the angles.
    For two 2-planes (k = 2) this gives the two angles that a distance on Gr(2, r) is built from.
    """
    qa, _ = torch.linalg.qr(a)
    qb, _ = torch.linalg.qr(b)
    s = torch.linalg.svdvals(qa.transpose(-1, -2) @ qb).clamp(-1.0, 1.0)
    return torch.sort(torch.arccos(s), dim=-1).values

