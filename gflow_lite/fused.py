"""The fused Grassmann kernel (opt-in, ``impl="fused"``): (G2)-(G4) of `gflow_lite.model` in one autograd node.

Same function as `CausalGrassmannMixing.g_fast`, ``g_t = W_plu (z_t ∧ w_t) + b_plu`` with
``w_t = Σ_Δ c_t^Δ z_{t-Δ}`` and ``c_t^Δ = a_t^Δ / max(||z_t ∧ z_{t-Δ}||, eps)``; tested equal to the
paper-order reference (outputs and gradients, float64 and float32). What it adds is speed and memory on
the CPU, by three tricks that the plain path leaves to autograd:

1. **No [tokens x P] tensor is kept.** The backward recomputes the Plücker vector; only z, the partners,
   w and a few per-offset scalars are saved.
2. **The Plücker vector in a shift layout**, so that every step is a dense op on strided views (no
   gather or scatter of activations). With indices mod r and ``S = floor(r/2)``::

       q_si = z_i w_{i+s} - w_i z_{i+s},      s = 1..S,  i = 0..r-1

   ``q_si = +p_{i,i+s}`` if ``i + s < r`` else ``-p_{i+s-r,i}``: every pair ``i < j`` appears once,
   except for even r, where the slots ``s = r/2, i >= r/2`` repeat ``i < r/2`` and get weight 0
   (``S r = P + r/2`` slots, 3% more than P). W_plu's columns are permuted (and signed) to match once.
3. **The backward by hand.** With ``dq = dg W_shift`` (a matmul)::

       dz_i = Σ_s dq_si w_{i+s} - Σ_s dq_{s,i-s} w_{i-s}
       dw_i = -Σ_s dq_si z_{i+s} + Σ_s dq_{s,i-s} z_{i-s}

   a "window" read ``x_{i+s}`` and a "skew" sum ``Σ_s u_{s,i-s}``, both strided views of a doubled
   buffer. Then the chain rule through ``c = a / n`` (`_partner_backward`): with
   ``f = <zp, dw> c / n^2``, ``dz -= f (|zp|^2 z - s zp)``, ``dzp = c dw - f (|z|^2 zp - s z)``, where
   ``s = <z, zp>`` (the derivative of ``n^2 = |z|^2 |zp|^2 - s^2``; n itself is computed stably).

Tokens go in blocks of `FAST_BLOCK_TOKENS` (the [block, r^2] temporaries stay in cache) through a
per-thread scratch reused from call to call. Torch only; knows nothing of models.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.utils.weak import WeakTensorKeyDictionary

from .geometry import n_plucker

__all__ = ["fused_plucker_mix", "release_fast_scratch", "FAST_BLOCK_TOKENS"]




@dataclass(frozen=True)
class _ShiftLayout:
    """Index maps between W_plu's columns (pairs i < j, row-major) and the shift layout's ``S r`` slots."""

    col: Tensor  # [S r]  column of W_plu read by each slot (0 for an unused slot)
    sign: Tensor  # [S r]  +1 / -1, 0 for the repeated slots of even r
    slot: Tensor  # [P]    slot that holds each column
    slot_sign: Tensor  # [P] sign of that slot


@lru_cache(maxsize=None)
def _shift_layout(r: int, device: torch.device, dtype: torch.dtype) -> _ShiftLayout:
    """The shift layout of Gr(2, r)'s Plücker coordinates (module comment above), on ``device``."""
    S = r // 2
    col = {pair: c for c, pair in enumerate(zip(*torch.triu_indices(r, r, offset=1).tolist()))}
    cols, signs = [], []
    for s in range(1, S + 1):
        for i in range(r):
            j = (i + s) % r
            if 2 * s == r and i >= S:  # repeated pair
                cols.append(0)
                signs.append(0.0)
            else:
                cols.append(col[(min(i, j), max(i, j))])
                signs.append(1.0 if i < j else -1.0)
    slot = torch.full((len(col),), -1, dtype=torch.long)
    for k, (c, sg) in enumerate(zip(cols, signs)):
        if sg != 0:
            slot[c] = k
    if bool((slot < 0).any()):  # pragma: no cover - a bug in the layout, not a user error
        raise AssertionError("shift layout must hold every Plücker pair exactly once")
    sign = torch.tensor(signs, dtype=dtype)
    cols_t = torch.tensor(cols)
    return _ShiftLayout(cols_t.to(device), sign.to(device), slot.to(device), sign[slot].to(device))


_SHIFT_WEIGHTS = WeakTensorKeyDictionary()


def _shift_weight(weight: Tensor) -> Tensor:
    """W_plu's columns in the shift layout, signed: ``[d, S r]``.

    Memoised per weight tensor until it changes (in-place updates bump ``_version``), so decoding and
    evaluation pay the column permutation once; under ``torch.compile`` it is always recomputed.
    """
    lay = _shift_layout(_r_of(weight.shape[1]), weight.device, weight.dtype)
    compiling = torch.compiler.is_compiling()
    if not compiling and not weight.is_inference():
        key = (weight._version, weight.data_ptr(), weight.requires_grad)
        hit = _SHIFT_WEIGHTS.get(weight)
        if hit is not None and hit[0] == key:
            return hit[1]
    with torch.no_grad():
        wt = weight.index_select(1, lay.col).mul_(lay.sign)
    if not compiling and not weight.is_inference():
        _SHIFT_WEIGHTS[weight] = (key, wt)
    return wt


def _r_of(p: int) -> int:
    """The r with ``r (r - 1) / 2 == p``."""
    r = int(round((1 + (1 + 8 * p) ** 0.5) / 2))
    if n_plucker(r) != p:
        raise ValueError(f"{p} is not a number of Plücker coordinates r(r-1)/2")
    return r


def _windows(x: Tensor, count: int) -> Tensor:
    """View ``out[..., s - 1, i] = x[..., (i + s) mod r]`` for ``s = 1..count <= r`` (``x: [..., r]``)."""
    r = x.shape[-1]
    return torch.cat([x, x], dim=-1).unfold(-1, r, 1)[..., 1 : count + 1, :]


def _skew_sum(doubled: Tensor) -> Tensor:
    """``Σ_s u[..., s - 1, (i - s) mod r]`` over ``s = 1..S`` from ``doubled = [u, u]: [..., S, 2r]``.

    Reads u along its skewed diagonals (row stride ``2r - 1`` in the contiguous doubled buffer): no gather.
    """
    S, r = doubled.shape[-2], doubled.shape[-1] // 2
    lead = doubled.shape[:-2]
    strides = tuple(int(st) for st in doubled.stride()[:-2])
    view = doubled.as_strided((*lead, S, r), (*strides, 2 * r - 1, 1), doubled.storage_offset() + r - 1)
    return view.sum(-2)


class _Workspace(threading.local):
    """Per-thread scratch tensors of the fast kernel on the CPU, reused from call to call.

    The kernel's temporaries are a few [block, r^2] buffers (about 4 MB at the default block of 256
    tokens, r = 32). Allocated afresh each time, they make glibc map and unmap them or trim the heap
    top, and every reuse then costs page faults (measured: ~1,100 faults and 2 ms of kernel time per
    forward+backward at L = 256, more than the arithmetic they hold). Scratch is never returned or
    saved for backward. Other devices use their own caching allocators and get plain ``torch.empty``.
    """

    def __init__(self) -> None:
        self.buffers: Dict[Tuple[str, torch.dtype], Tensor] = {}

    def get(self, name: str, shape: Sequence[int], like: Tensor) -> Tensor:
        if like.device.type != "cpu":
            return torch.empty(*shape, dtype=like.dtype, device=like.device)
        numel = 1
        for n in shape:
            numel *= int(n)
        key = (name, like.dtype)
        buf = self.buffers.get(key)
        if buf is None or buf.numel() < numel:
            buf = torch.empty(numel, dtype=like.dtype)
            self.buffers[key] = buf
        return buf[:numel].view(*shape)


_SCRATCH = _Workspace()


def release_fast_scratch() -> int:
    """Drop this thread's scratch of the fast kernel (a few MB on the CPU); returns the bytes released.

    Memory benchmarks call it first, so that the scratch counts as allocated inside the measured step.
    """
    freed = sum(t.numel() * t.element_size() for t in _SCRATCH.buffers.values())
    _SCRATCH.buffers.clear()
    return freed


def _wedge_shift(z: Tensor, w: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """Plücker coordinates of span{z, w} in the shift layout, ``[..., S * r]`` (contiguous; in ``out``)."""
    S, r = z.shape[-1] // 2, z.shape[-1]
    shape = (*z.shape[:-1], S, r)
    q = torch.empty(shape, dtype=z.dtype, device=z.device) if out is None else out.view(shape)
    torch.mul(z.unsqueeze(-2), _windows(w, S), out=q)
    return q.addcmul_(w.unsqueeze(-2), _windows(z, S), value=-1.0).flatten(-2)


def _wedge_shift_backward(dq: Tensor, z: Tensor, w: Tensor) -> Tuple[Tensor, Tensor]:
    """Gradients ``(dz, dw)`` of ``<dq, _wedge_shift(z, w)>``; ``dq: [N, S, r]``, ``z, w: [N, r]``."""
    N, S, r = dq.shape
    y = torch.stack([w, z], dim=1)  # [N, 2, r]
    dq = dq.unsqueeze(1)  # [N, 1, S, r]
    doubled = _SCRATCH.get("skew", (N, 2, S, 2 * r), dq)
    torch.mul(dq, y.unsqueeze(-2), out=doubled[..., :r])  # u_si = dq_si y_i
    doubled[..., r:] = doubled[..., :r]
    direct = torch.mul(dq, _windows(y, S), out=_SCRATCH.get("direct", (N, 2, S, r), dq))  # dq_si y_{i+s}
    d = direct.sum(-2).sub_(_skew_sum(doubled))  # row 0: dz, row 1: -dw
    return d[:, 0], d[:, 1].neg()


def _partner_coefficients(
    z: Tensor, zp: Tensor, a: Tensor, normalize: bool, eps: float, tmp: Tensor
) -> Tuple[Tensor, ...]:
    """``c_t^Δ = a_t^Δ / max(n_t^Δ, eps)``, ``n = ||z_t ∧ z_{t-Δ}||`` (``c = a`` unnormalised).

    ``z: [n, r]``, partners ``zp: [n, m, r]``, ``a: [n, m]``; ``tmp``: scratch shaped like ``zp``. Returns
    ``(c,)`` or, normalised, also what the backward needs: ``1/n``, ``c/n^2`` (0 where the floor eps is
    active), ``s = <z, zp>``, ``|zp|^2`` (each ``[n, m]``) and ``|z|^2`` (``[n, 1]``).

    The norm is base x height, ``n = |z| |zp - (s / |z|^2) z|`` (as `geometry.plucker_norm`): its relative
    error is ~ epsilon / sin θ. The Lagrange identity ``n^2 = |z|^2 |zp|^2 - s^2`` would cancel to noise
    for nearly parallel pairs in float32 (error ~ epsilon / sin^2 θ) and overflow for |z| > 4e9.
    """
    if not normalize:
        return (a,)
    zz = (z * z).sum(-1, keepdim=True)  # |z|^2                                   [n, 1]
    pp = torch.mul(zp, zp, out=tmp).sum(-1)  # |zp|^2                             [n, m]
    s = torch.mul(zp, z.unsqueeze(-2), out=tmp).sum(-1)  # s = <z, zp>            [n, m]
    proj = s / zz.clamp_min(torch.finfo(z.dtype).tiny)  # <z, zp> / |z|^2         [n, m]
    height = torch.sub(zp, proj.unsqueeze(-1) * z.unsqueeze(-2), out=tmp).norm(dim=-1)  # |zp_perp|
    n = zz.sqrt() * height  # n = |z| |zp_perp| = ||z ∧ zp||                     [n, m]
    floor = n < eps
    inv = n.clamp_min_(eps).reciprocal_()  # 1 / max(n, eps)
    c = a * inv  # c = a / n
    return c, inv, (c * inv * inv).masked_fill_(floor, 0.0), s, pp, zz


def _weighted_partner(z: Tensor, zp: Tensor, coefs: Sequence[Tensor], tmp: Tensor) -> Tuple[Tensor, Tensor]:
    """``(w_⊥, β)`` with ``w_⊥ = Σ_Δ c^Δ v^Δ`` and ``w = Σ_Δ c^Δ z_{t-Δ} = w_⊥ + β z`` (``β: [n, 1]``).

    Normalised, ``tmp`` holds ``v = zp - (s / |z|^2) z`` from `_partner_coefficients`: the partners'
    components orthogonal to z, which leave ``z ∧ ·`` unchanged. The forward wedges with ``w_⊥`` (each
    term then has norm ``a n / max(n, eps) <= a`` as computed, even for pairs parallel up to rounding);
    the backward differentiates ``z ∧ w`` (same function; ``dF = dz ∧ w + z ∧ dw``).
    """
    c = coefs[0]
    if len(coefs) == 1:
        return torch.mul(c.unsqueeze(-1), zp, out=tmp).sum(-2), c.new_zeros(c.shape[0], 1)
    _, _, _, s, _, zz = coefs
    w_perp = torch.mul(c.unsqueeze(-1), tmp, out=tmp).sum(-2)  # Σ c v  (tmp holds v)
    beta = (c * s).sum(-1, keepdim=True) / zz.clamp_min(torch.finfo(z.dtype).tiny)  # Σ c <z, zp> / |z|^2
    return w_perp, beta


def _partner_backward(
    dw: Tensor, z: Tensor, zp: Tensor, coefs: Sequence[Tensor], dzp: Tensor, tmp: Tensor
) -> Tuple[Tensor, Tensor]:
    """Chain rule through ``w = Σ_Δ c^Δ zp^Δ``, ``c = a / n``: writes ``dzp``, returns ``(dz, dc)``.

    With ``f = -2 dL/d(n^2) = <zp, dw> c / n^2``: ``dz = -Σ f |zp|^2 z + Σ f s zp`` and
    ``dzp = c dw - f |z|^2 zp + f s z``; ``dL/dc = <zp, dw>`` (``dL/da = dL/dc / n``).
    """
    dc = torch.mul(zp, dw.unsqueeze(-2), out=tmp).sum(-1)  # [n, m]
    torch.mul(coefs[0].unsqueeze(-1), dw.unsqueeze(-2), out=dzp)
    if len(coefs) == 1:
        return torch.zeros_like(z), dc
    _, _, c_n2, s, pp, zz = coefs
    f = dc * c_n2
    fs = f * s
    dz = torch.mul(fs.unsqueeze(-1), zp, out=tmp).sum(-2)
    dz.addcmul_((f * pp).sum(-1, keepdim=True), z, value=-1.0)
    dzp.addcmul_((f * zz).unsqueeze(-1), zp, value=-1.0).addcmul_(fs.unsqueeze(-1), z.unsqueeze(-2))
    return dz, dc


#: Tokens per block in the fast kernel: keeps the [block, r^2]-sized intermediates (Plücker vector, its
#: gradient, the skew buffer) in the CPU's L2 cache and bounds the scratch memory. Any value gives the
#: same result.
FAST_BLOCK_TOKENS = 256


def _blocks(n: int) -> List[Tuple[int, int]]:
    return [(lo, min(lo + FAST_BLOCK_TOKENS, n)) for lo in range(0, n, FAST_BLOCK_TOKENS)]


def _fast_forward(
    z: Tensor, zp: Tensor, a: Tensor, any_valid: Tensor, weight: Tensor, bias: Tensor,
    normalize: bool, eps: float,
) -> Tuple[Tensor, Tuple[Tensor, ...]]:
    """Forward of `_FastPluckerMix` (autocast must be off): ``g`` and the tensors its backward needs."""
    B, T, r = z.shape
    m, N = zp.shape[-2], B * T
    wt = _shift_weight(weight.to(z.dtype))
    zf, zpf, af = z.reshape(N, r), zp.reshape(N, m, r), a.expand(B, T, m).reshape(N, m)
    bias_c = bias.to(z.dtype)
    blocks = _blocks(N)
    if len(blocks) == 1:
        tmp = _SCRATCH.get("partners", (N, m, r), zf)
        coefs = _partner_coefficients(zf, zpf, af, normalize, eps, tmp)
        w, beta = _weighted_partner(zf, zpf, coefs, tmp)
        g = torch.addmm(bias_c, _wedge_shift(zf, w, _SCRATCH.get("q", (N, wt.shape[1]), zf)), wt.t())
    else:
        g = torch.empty(N, wt.shape[0], dtype=z.dtype, device=z.device)
        w, beta = torch.empty_like(zf), zf.new_empty(N, 1)
        coefs = None
        for lo, hi in blocks:
            tmp = _SCRATCH.get("partners", (hi - lo, m, r), zf)
            part = _partner_coefficients(zf[lo:hi], zpf[lo:hi], af[lo:hi], normalize, eps, tmp)
            if coefs is None:
                coefs = tuple(torch.empty(N, *c.shape[1:], dtype=c.dtype, device=c.device) for c in part)
            for full, piece in zip(coefs, part):
                full[lo:hi] = piece
            w[lo:hi], beta[lo:hi] = _weighted_partner(zf[lo:hi], zpf[lo:hi], part, tmp)
            q = _wedge_shift(zf[lo:hi], w[lo:hi], _SCRATCH.get("q", (hi - lo, wt.shape[1]), zf))
            torch.addmm(bias_c, q, wt.t(), out=g[lo:hi])
    g = g.view(B, T, -1)
    if not bool(any_valid.all()):
        g.mul_(any_valid[:, None].to(g.dtype))
    return g, (zf, zpf, w, beta, wt, any_valid, *coefs)


class _FastPluckerMix(torch.autograd.Function):
    """``g = W_plu (z ∧ w) + b_plu`` (0 where no offset is valid) with ``w = Σ_Δ c^Δ z_{t-Δ}`` (wedged as w_⊥).

    Forward: Plücker vector in the shift layout and one matmul, in blocks of `FAST_BLOCK_TOKENS` tokens.
    Backward: per block ``dL/dW_plu += dgᵀ (z ∧ w)`` (the Plücker vector recomputed) and
    ``dq = dg W_shift`` (two matmuls), ``dz, dw`` by windows and a skew sum; then the chain rule through
    ``c`` by hand. Saves z, the partners, w and a few [N, m] scalars; never a [N, P] tensor. Works in z's
    (>= fp32) dtype with autocast off.
    """

    @staticmethod
    def forward(ctx, z, zp, a, any_valid, weight, bias, normalize, eps):  # type: ignore[override]
        with torch.autocast(z.device.type, enabled=False):
            g, saved = _fast_forward(z, zp, a, any_valid, weight, bias, normalize, eps)
        ctx.save_for_backward(*saved)
        ctx.shapes = (z.shape, zp.shape)
        ctx.weight_dtype, ctx.bias_dtype = weight.dtype, bias.dtype
        return g

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dg):  # type: ignore[override]
        zf, zpf, w, beta, wt, any_valid, *coefs = ctx.saved_tensors
        (B, T, r), zp_shape = ctx.shapes
        N, m, S = B * T, zpf.shape[1], r // 2
        need_a, need_w, need_b = ctx.needs_input_grad[2], ctx.needs_input_grad[4], ctx.needs_input_grad[5]
        with torch.autocast(zf.device.type, enabled=False):
            # Rows with no valid offset have c = 0, hence w = 0, q = 0 and zero dz, dzp, dW_plu whatever
            # dg is there; only the bias (and da) must skip them.
            dg2 = dg.to(zf.dtype).reshape(N, -1)
            dz, dzp = torch.empty_like(zf), torch.empty_like(zpf)
            dc = torch.empty(N, m, dtype=zf.dtype, device=zf.device) if need_a else None
            d_shift: Optional[Tensor] = None
            for k, (lo, hi) in enumerate(_blocks(N)):
                zc, wc, dgc = zf[lo:hi], w[lo:hi], dg2[lo:hi]
                if need_w:  # dW_shift += dg^T q into alternating scratch (FlopCounterMode skips addmm_)
                    q = _wedge_shift(zc, wc, _SCRATCH.get("q", (hi - lo, wt.shape[1]), zc))
                    acc = _SCRATCH.get(f"d_shift{k % 2}", wt.shape, zc)
                    if d_shift is None:
                        d_shift = torch.mm(dgc.t(), q, out=acc)
                    else:
                        d_shift = torch.addmm(d_shift, dgc.t(), q, out=acc)
                dq = torch.mm(dgc, wt, out=_SCRATCH.get("dq", (hi - lo, wt.shape[1]), zc)).view(-1, S, r)
                dz_q, dw = _wedge_shift_backward(dq, zc, wc + beta[lo:hi] * zc)  # of z ∧ w, w = w_⊥ + β z
                tmp = _SCRATCH.get("partners", (hi - lo, m, r), zc)
                dz_c, dc_c = _partner_backward(dw, zc, zpf[lo:hi], [c[lo:hi] for c in coefs], dzp[lo:hi], tmp)
                torch.add(dz_c, dz_q, out=dz[lo:hi])
                if need_a:
                    dc[lo:hi] = dc_c
            d_weight = d_bias = da = None
            if need_w:
                lay = _shift_layout(r, d_shift.device, d_shift.dtype)
                d_weight = d_shift.index_select(1, lay.slot).mul_(lay.slot_sign).to(ctx.weight_dtype)
            valid = any_valid.to(dg2.dtype)
            if need_b:
                d_bias = (valid.repeat(B) @ dg2).to(ctx.bias_dtype)
            if need_a:  # dL/da = dL/dc / n (normalised) or dL/dc, summed over the batch
                da = (dc if len(coefs) == 1 else dc.mul_(coefs[1])).view(B, T, m).sum(0).mul_(valid[:, None])
        return dz.view(B, T, r), dzp.view(zp_shape), da, None, d_weight, d_bias, None, None


def fused_plucker_mix(
    z: Tensor, zp: Tensor, a: Tensor, weight: Tensor, bias: Tensor, normalize: bool, eps: float
) -> Tensor:
    """(G2)-(G4) as one fused node: ``z: [B, T, r]``, partners ``zp: [B, T, m, r]``, offset weights
    ``a: [T, m]`` -> ``g: [B, T, d]``, equal to `CausalGrassmannMixing.g_fast` (see `_FastPluckerMix`).

    Without autograd (generation, evaluation) the forward runs directly, skipping the autograd node.
    """
    any_valid = a.sum(-1) > 0
    if torch.is_grad_enabled() and any(t.requires_grad for t in (z, zp, a, weight, bias)):
        return _FastPluckerMix.apply(z, zp, a, any_valid, weight, bias, normalize, eps)
    with torch.autocast(z.device.type, enabled=False):
        return _fast_forward(z, zp, a, any_valid, weight, bias, normalize, eps)[0]
