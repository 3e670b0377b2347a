r"""The fused Grassmann layer (opt-in, ``impl="fused"``): (G1)-(G6) of `gflow_lite.model` as one autograd
node, its backward written by hand. On the CPU, ``impl="native"`` (`gflow_lite.kernels.native`) runs the
same node with its elementwise work in C++.

Same function and parameters as `CausalGrassmannMixing` with ``impl="fast"``; tested equal to the
paper-order reference and to the equations in plain PyTorch, outputs and gradients (tests/test_fused.py).
Chapter 4 of the book, section 4.3 "How the fused node computes (G1)–(G6)", derives it; the numbered
steps in the comments below are that section's:

1. the partners z_{t-Δ} as slices of one zero-padded, feature-major copy of the reduced states;
2. (G2)-(G4) by linearity, ``g = W_plu (z ∧ w_⊥) + (Σ_Δ a^Δ) b_plu``, the norm as base x height;
3. the Plücker vector in a shift layout (dense ops on strided views), blocks of `BLOCK_TOKENS` tokens
   in per-thread scratch;
4. the backward of (G2)-(G4) by hand (one antisymmetric operator for both wedge arguments, then the
   chain rule through ``c = a / max(n, eps)``);
5. (G5)-(G6), the gate and blend, and 6. the whole layer in one node.

What holds (tests/test_fused.py, tests/test_numerics.py, scripts/numerics_contract.py): the node runs
with autocast off, in ``>= float32`` (float64 if the input or weights are), and returns its input's
dtype; that is also the plain paths' rule, so under bf16 autocast every implementation computes the
same float32 function. Forward: squares overflow float32 only for ``|z| |v| > 1.8e19``. Backward: the
factor through ``c = a / n`` is formed as ``((e c) / |v|) / |v|`` (never ``a / n^3``, which underflows
float32 once ``n`` passes ~1e12), so float32 gradients stay as accurate as the plain paths' from
``|z| = 1e-3`` to ``1e8``; with r = 2 and (G3) the gradient through z of every pair above the floor
``eps`` is exactly 0 (the normalised wedge is ±1 there). Nearly parallel pairs carry the error
``~epsilon / sin θ`` (outputs) and ``~epsilon / sin^2 θ`` (gradients) that the inputs' own rounding
implies, on every implementation. Torch only; knows nothing of models.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.weak import WeakTensorKeyDictionary

from ..geometry import n_plucker

__all__ = ["fused_grassmann_layer", "release_scratch", "BLOCK_TOKENS"]

#: Tokens per block in (3)-(4): keeps the [block, S r] temporaries (Plücker vector, its gradient, the
#: skew buffer) in the CPU's L2 cache and bounds their memory. Any value gives the same result.
BLOCK_TOKENS = 256


def _no_autocast(x: Tensor):
    """Autocast off inside the kernels (they pick their own dtypes); free when it is off already."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.autocast(x.device.type, enabled=False)
    return contextlib.nullcontext()


def _as(x: Tensor, dtype: torch.dtype) -> Tensor:
    return x if x.dtype == dtype else x.to(dtype)


class _Scratch(threading.local):
    """Per-thread temporaries of the kernels on the CPU, reused from call to call (never returned or saved).

    Allocated afresh each step, buffers of a few MB make glibc map and unmap them or trim the heap top,
    and every reuse then costs page faults (measured: ~600 faults, ~1 ms of kernel time per
    forward+backward at L = 256). Other devices have caching allocators and get plain ``torch.empty``.
    """

    def __init__(self) -> None:
        self.buffers: Dict[Tuple[str, torch.dtype], Tensor] = {}

    def get(self, name: str, shape: Sequence[int], like: Tensor) -> Tensor:
        if like.device.type != "cpu":
            return torch.empty(shape, dtype=like.dtype, device=like.device)
        numel = 1
        for n in shape:
            numel *= n
        buf = self.buffers.get((name, like.dtype))
        if buf is None or buf.numel() < numel:
            buf = self.buffers[(name, like.dtype)] = torch.empty(numel, dtype=like.dtype)
        return buf[:numel].view(shape)


_SCRATCH = _Scratch()


def release_scratch() -> int:
    """Drop this thread's scratch buffers (a few MB on the CPU); returns the bytes released.

    Memory benchmarks call it first, so that the scratch counts as allocated inside the measured step.
    """
    freed = sum(t.numel() * t.element_size() for t in _SCRATCH.buffers.values())
    _SCRATCH.buffers.clear()
    return freed


# ============================================================================== 3. shift layout
@dataclass(frozen=True)
class _ShiftLayout:
    """Index maps between W_plu's columns (pairs i < j, row-major) and the shift layout's ``S r`` slots."""

    col: Tensor  # [S r]  column of W_plu read by each slot (0 for a repeated slot of even r)
    slot: Tensor  # [P]    slot that holds each column
    repeated: int  # the last ``repeated`` slots repeat others (r/2 for even r, else 0): weight 0


@lru_cache(maxsize=None)
def _shift_layout(r: int, device: torch.device) -> _ShiftLayout:
    """The shift layout of Gr(2, r)'s Plücker coordinates (step 3), on ``device``."""
    S = r // 2
    col = {pair: c for c, pair in enumerate(zip(*torch.triu_indices(r, r, offset=1).tolist()))}
    cols, repeated = [], 0
    for s in range(1, S + 1):
        for i in range(r):
            j = (i + s) % r
            if 2 * s == r and i >= S:  # repeated pair (the last r/2 slots)
                cols.append(0)
                repeated += 1
            else:
                cols.append(col[(min(i, j), max(i, j))])  # q_si = +p_{min(i,j), max(i,j)}
    slot = torch.full((len(col),), -1, dtype=torch.long)
    for k, c in enumerate(cols[:len(cols) - repeated]):
        slot[c] = k
    if bool((slot < 0).any()):  # pragma: no cover - a bug in the layout, not a user error
        raise AssertionError("shift layout must hold every Plücker pair exactly once")
    return _ShiftLayout(torch.tensor(cols).to(device), slot.to(device), repeated)


_SHIFT_WEIGHTS = WeakTensorKeyDictionary()


def _shift_weight(weight: Tensor, memo: bool) -> Tensor:
    """W_plu's columns in the shift layout: ``W_shift [d, S r]``.

    With ``memo`` (the forward without autograd: generation, evaluation) memoised per weight tensor until
    it changes (in-place updates bump ``_version``), so decoding pays the column permutation once. The
    autograd path recomputes it (training changes the weight every step; and ``.data`` writes, as
    gradcheck's, do not bump ``_version``). Under ``torch.compile`` it is always recomputed.
    """
    lay = _shift_layout(_r_of(weight.shape[1]), weight.device)
    memo = memo and not torch.compiler.is_compiling() and not weight.is_inference()
    if memo:
        key = (weight._version, weight.data_ptr())
        hit = _SHIFT_WEIGHTS.get(weight)
        if hit is not None and hit[0] == key:
            return hit[1]
    with torch.no_grad():
        wt = weight.index_select(1, lay.col)  # W_shift[:, (s, i)] = W_plu[:, (min(i, j), max(i, j))]
        if lay.repeated:
            wt[:, wt.shape[1] - lay.repeated:] = 0.0  # the repeated slots of even r: weight 0
    if memo:
        _SHIFT_WEIGHTS[weight] = (key, wt)
    return wt


@lru_cache(maxsize=None)
def _r_of(p: int) -> int:
    """The r with ``r (r - 1) / 2 == p``."""
    r = int(round((1 + (1 + 8 * p) ** 0.5) / 2))
    if n_plucker(r) != p:
        raise ValueError(f"{p} is not a number of Plücker coordinates r(r-1)/2")
    return r


def _signed_doubled(z: Tensor, w: Tensor) -> Tensor:
    """``[z; -z; w; -w]: [4r, n]`` from feature-major ``z, w: [r, n]`` (step 3)."""
    zw = torch.cat([z, z, w, w])
    zw.view(2, 2, *z.shape)[:, 1].neg_()
    return zw


def _wedge(z: Tensor, w: Tensor, zw: Tensor) -> Tensor:
    """``q[s-1, i] = σ_si (z_i w_j - w_i z_j)``, ``j = (i + s) mod r`` (step 3) for ``n``
    tokens: ``[S r, n]``.

    Feature-major: ``z, w: [r, n]`` and ``zw = [z; -z; w; -w]: [4r, n]`` (`_signed_doubled`), whose
    windows ``σ_si x_j`` are views. Returns scratch (valid until the next call).
    """
    r, n = z.shape
    S = r // 2
    base = zw.storage_offset()
    q = _SCRATCH.get("q", (S, r, n), z)
    torch.mul(z, zw.as_strided((S, r, n), (n, n, 1), base + (2 * r + 1) * n), out=q)  # z_i σ w_j
    q.addcmul_(w, zw.as_strided((S, r, n), (n, n, 1), base + n), value=-1.0)  # - w_i σ z_j
    return q.view(S * r, n)


def _wedge_adjoint(dq: Tensor, zw: Tensor, out: Tensor) -> Tensor:
    """``out[0] = R(z)``, ``out[1] = R(w)``,
    ``R(y)_i = Σ_s dq_si σ_si y_{i+s} - Σ_s σ_{s,i-s} dq_{s,i-s} y_{i-s}`` (step 4).

    Feature-major: ``dq: [S, r, n]``, ``zw = [z; -z; w; -w]: [4r, n]`` (rows y = z, w, each doubled,
    signed), ``out: [2, r, n]``.
    """
    S, r, n = dq.shape
    base = zw.storage_offset()
    prod = _SCRATCH.get("prod", (2, S, r, n), dq)
    torch.mul(dq, zw.as_strided((2, S, r, n), (2 * r * n, n, n, 1), base + n), out=prod)  # dq_si σ y_{i+s}
    u2 = _SCRATCH.get("skew", (2, S, 2 * r, n), dq)  # [-u; u] with u_si = dq_si y_i
    y = zw.as_strided((2, 1, r, n), (2 * r * n, r * n, n, 1), base)
    torch.mul(dq, y, out=u2.narrow(2, r, r))  # u_si = dq_si y_i, the second copy
    torch.neg(u2.narrow(2, 2 * r - S, S), out=u2.narrow(2, r - S, S))  # -u: the first copy's last S rows
    skew = u2.as_strided((2, S, r, n), (2 * S * r * n, (2 * r - 1) * n, n, 1),
                         u2.storage_offset() + (r - 1) * n)  # skew[s-1, i] = σ_{s,i-s} u_{s,i-s}
    torch.sum(prod, 1, out=out)  # Σ_s dq_si σ_si y_{i+s}
    return out.sub_(skew.sum(1))  # - Σ_s σ_{s,i-s} u_{s,i-s}


# ================================================================== 2.-4. (G2)-(G4), one node
def _blocks(n: int) -> List[Tuple[int, int]]:
    return [(lo, min(lo + BLOCK_TOKENS, n)) for lo in range(0, n, BLOCK_TOKENS)]


def _columns(x: Tensor, lo: int, hi: int, n: int) -> Tensor:
    return x if hi - lo == n else x[..., lo:hi]


def _partners_by_shift(z: Tensor, past: Optional[Tensor], offsets: Tuple[int, ...]) -> Tensor:
    """Partners ``p [m, r, N]``, ``p[k, :, (b, t)] = z_{t-Δ_k}`` (step 1), of the feature-major
    ``z: [r, B, T]``; ``past: [B, P, r]`` holds the tokens before (a streaming cache), or None.
    """
    r, B, T = z.shape
    D = max(offsets)
    ctx = z
    if past is not None and past.shape[1]:
        ctx = torch.cat([past.to(z.dtype).permute(2, 0, 1), ctx], 2)
    zpad = F.pad(ctx, (D, 0))  # D zero columns before the context                       [r, B, D + C]
    end = zpad.shape[2]
    p = torch.stack([zpad[:, :, end - T - delta: end - delta] for delta in offsets])  # z_{t-Δ}  [m, r, B, T]
    return p.view(len(offsets), r, B * T)


def _plucker_forward(
    z: Tensor, p: Tensor, a: Tensor, weight: Tensor, bias: Tensor, normalize: bool, eps: float,
    for_backward: bool = False, out: Optional[Tensor] = None,
) -> Tuple[Tensor, Tuple[Tensor, ...]]:
    """``g [N, d]`` and, ``for_backward``, what the backward needs (steps 2-3).

    Feature-major: ``z [r, N]``, partners ``p [m, r, N]``, ``a [m, N]``; ``g`` token-major, written into
    ``out [N, d]`` if given (a view may be strided). Autocast must be off.
    """
    r, N = z.shape
    wt = _shift_weight(_as(weight, z.dtype), not for_backward)  # W_shift                   [d, S r]
    saved: Tuple[Tensor, ...] = ()
    if normalize:
        zz = torch.linalg.vecdot(z, z, dim=0).clamp_min_(torch.finfo(z.dtype).tiny)  # |z|^2         [N]
        s = torch.linalg.vecdot(p, z, dim=1)  # s^Δ = <z, p^Δ>                                   [m, N]
        v = torch.addcmul(p, (s / zz).unsqueeze_(1), z, value=-1.0)  # v^Δ = p^Δ - (s^Δ / |z|^2) z  [m, r, N]
        n = torch.linalg.vecdot(v, v, dim=1).mul_(zz).sqrt_()  # n^Δ = |z| |v^Δ| = ||z ∧ p^Δ||     [m, N]
        live = n >= eps  # where max(n, eps) = n: c depends on n
        inv = n.clamp_min_(eps).reciprocal_()  # 1 / max(n^Δ, eps)
        c = a * inv  # c^Δ = a^Δ / max(n^Δ, eps)                                                (G3)
        if for_backward:
            c_live = c * live  # c where it depends on n, else 0
            beta = torch.linalg.vecdot(c, s, dim=0).div_(zz)  # β = Σ_Δ c^Δ s^Δ / |z|^2          [N]
            rr = zz.sqrt() * inv  # |z| / max(n^Δ, eps) = 1 / |v^Δ| where c depends on n           [m, N]
            saved = (inv, c_live, rr, s, zz, beta)
    else:
        c, v = a, p  # c^Δ = a^Δ, no projection needed
    w = (c.unsqueeze(1) * v).sum(0)  # w_⊥ = Σ_Δ c^Δ v^Δ (w without (G3))                   [r, N]
    b, a_sum = _as(bias, z.dtype), a.sum(0)  # Σ_Δ a^Δ                                              [N]
    g = torch.empty(N, wt.shape[0], dtype=z.dtype, device=z.device) if out is None else out
    torch.mul(a_sum.unsqueeze(1), b, out=g)  # (Σ_Δ a^Δ) b_plu
    for lo, hi in _blocks(N):
        zb, wb = _columns(z, lo, hi, N), _columns(w, lo, hi, N)
        q = _wedge(zb, wb, _signed_doubled(zb, wb))  # z ∧ w_⊥ = z ∧ w, shift layout        [S r, n]
        gb = g[lo:hi]
        torch.addmm(gb, q.t(), wt.t(), out=gb)  # g = W_plu (z ∧ w) + (Σ_Δ a^Δ) b_plu                          (G4)
    return g, (z, v, w, c, wt, a_sum, b, *saved)


def _plucker_backward(
    dg: Tensor, saved: Sequence[Tensor], shape: Tuple[int, int, int], offsets: Tuple[int, ...],
    need_a: bool, need_w: bool, need_b: bool,
) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor], Optional[Tensor]]:
    """The backward of `_plucker_forward` (step 4): ``dg [N, d]`` (token-major, any strides)
    -> ``dz [r, N]``, ``da [m, N]``, ``dW_plu``, ``db_plu`` (None where not needed). The partners are
    ``z_{t-Δ}`` (``shape = (B, T, r)``): their gradients are folded into ``dz``. Autocast must be off.

    Scaled so that nothing underflows or overflows where the plain paths do not: the terms through
    ``c = a / n`` are formed as ``f^Δ |z|^2 = ((e^Δ c^Δ) / |v^Δ|) / |v^Δ|`` (each factor of moderate
    size), never as ``a / n^3`` (which underflows float32 once ``n > ~1e12``). With r = 2 and (G3) the
    normalised wedge is ±1 wherever ``n >= eps``, so those pairs contribute exactly 0 through z (only
    pairs under the floor, where the wedge is linear in z, do).
    """
    z, v, w, c, wt, a_sum, b, *extra = saved
    B, T, r = shape
    m, N, S = v.shape[0], B * T, r // 2
    flat = bool(extra) and r == 2  # one Plücker coordinate: p̂ = ±1 where n >= eps
    w_adj = w  # the wedge's second argument, as the adjoint sees it
    if flat:
        inv, c_live, rr, s, zz, beta = extra
        c_dead = c - c_live  # c under the floor, exactly 0 elsewhere
        w_adj = (c_dead.unsqueeze(1) * torch.addcmul(v, (s / zz).unsqueeze(1), z)).sum(0)  # Σ_Δ c_dead p
    rzw = _SCRATCH.get("rzw", (2, r, N), z)  # R(z), R(w_adj)                                     [2, r, N]
    d_weight: Optional[Tensor] = None
    lay = _shift_layout(r, z.device)
    for lo, hi in _blocks(N):
        zb, wb, dgb = _columns(z, lo, hi, N), _columns(w, lo, hi, N), dg[lo:hi]
        zw = _signed_doubled(zb, wb)
        if need_w:  # dW_plu = dgᵀ q', q' = q's rows in W_plu's column order, recomputed
            q = _wedge(zb, wb, zw)
            qp = _SCRATCH.get("qp", (lay.slot.shape[0], hi - lo), z)
            q = torch.index_select(q, 0, lay.slot, out=qp)  # q'
            if d_weight is None:
                d_weight = torch.mm(dgb.t(), q.t())
            else:
                torch.addmm(d_weight, dgb.t(), q.t(), out=d_weight)
        if flat:
            zw = _signed_doubled(zb, _columns(w_adj, lo, hi, N))
        dq = torch.mm(wt.t(), dgb.t(), out=_SCRATCH.get("dq", (S * r, hi - lo), z))  # dq = dg W_shift
        _wedge_adjoint(dq.view(S, r, -1), zw, _columns(rzw, lo, hi, N))  # R(z), R(w_adj)
    dw = rzw[0].neg()  # dL/dw = -R(z)                                                         [r, N]
    e = torch.linalg.vecdot(v, dw, dim=1)  # e^Δ = <v^Δ, dw> = dL/dc^Δ                           [m, N]
    if flat:
        dz = rzw[1].clone()  # R(Σ_Δ c_dead p): 0 when every pair is above the floor
        dp = c_dead.unsqueeze(1) * dw  # dp^Δ = c_dead^Δ dw
        da = e * inv if need_a else None  # dL/da^Δ = e^Δ / max(n^Δ, eps)
    elif extra:  # through c = a / max(n, eps)
        inv, c_live, rr, s, zz, beta = extra
        dp = c.unsqueeze(1) * dw  # dp^Δ = c^Δ dw ...                                          [m, r, N]
        dz = torch.addcmul(rzw[1], beta, dw, value=-1.0)  # dz|_w = R(w_⊥) - β dw                  [r, N]
        fz = (e * c_live).mul_(rr).mul_(rr)  # f^Δ |z|^2 = e^Δ c^Δ |z|^2 / n^2 (0 under the floor)  [m, N]
        dp.addcmul_(fz.unsqueeze(1), v, value=-1.0)  # ... - f^Δ |z|^2 v^Δ
        gamma = torch.linalg.vecdot(e, c_live, dim=0).div_(zz)  # Σ_Δ f^Δ n^2 / |z|^2                [N]
        fs = fz.mul_(s / zz)  # f^Δ s^Δ
        dz.addcmul_(gamma, z, value=-1.0).add_((fs.unsqueeze_(1) * v).sum(0))  # ... + Σ f s v
        da = e * inv if need_a else None  # dL/da^Δ = e^Δ / max(n^Δ, eps)
    else:
        dp = c.unsqueeze(1) * dw  # dp^Δ = a^Δ dw
        dz, da = rzw[1].clone(), e  # dz = R(w), dL/da^Δ = e^Δ
    if need_a:  # ... + <dg, b_plu> (the bias term (Σ_Δ a^Δ) b_plu)
        da.add_(torch.mv(dg, b))
    dz3 = dz.view(r, B, T)  # the partners are z_{t-Δ}: their gradients go back Δ tokens
    for dp_k, delta in zip(dp.view(m, r, B, T).unbind(0), offsets):
        if delta < T:
            dz3.narrow(2, 0, T - delta).add_(dp_k.narrow(2, delta, T - delta))
    d_bias = None
    if need_b:  # db_plu = Σ_t (Σ_Δ a^Δ) dg
        d_bias = torch.mm(a_sum.unsqueeze(0), dg).view(-1)  # one [1, N] x [N, d] product
    return dz, da, d_weight, d_bias


# ========================================================================= 5. (G5)-(G6), one node
def _gate_forward(h: Tensor, g: Tensor, weight: Tensor, bias: Tensor) -> Tuple[Tensor, Tensor]:
    """``(h̃, α)`` from ``h, g: [N, d]`` (step 5). Autocast must be off."""
    d = h.shape[1]
    w_h, w_g = weight.split(d, 1)
    alpha = torch.addmm(bias, h, w_h.t())  # W_h h + b_gate                                      [N, d]
    torch.addmm(alpha, g, w_g.t(), out=alpha).sigmoid_()  # α = σ(W_h h + W_g g + b_gate)               (G5)
    return torch.lerp(g, h, alpha), alpha  # h̃ = g + α (h - g) = α h + (1 - α) g, one op             (G6)


def _gate_backward(dy: Tensor, h: Tensor, g: Tensor, alpha: Tensor, weight: Tensor) -> Tuple[Tensor, ...]:
    """``(dh, dg, dW_gate, db_gate)`` from ``dy = dL/dh̃ [N, d]`` (step 5); dh, dg contiguous."""
    d = dy.shape[1]
    w_h, w_g = weight.split(d, 1)
    delta = torch.ops.aten.sigmoid_backward(dy * (h - g), alpha)  # δ = dh̃ (h - g) α (1 - α)
    dh = torch.mul(alpha, dy)  # α dh̃
    dg = torch.sub(dy, dh)  # (1 - α) dh̃
    torch.addmm(dh, delta, w_h, out=dh)  # dh = α dh̃ + δ W_h
    torch.addmm(dg, delta, w_g, out=dg)  # dg = (1 - α) dh̃ + δ W_g
    d_weight = torch.empty_like(weight)
    torch.mm(delta.t(), h, out=d_weight[:, :d])  # dW_h = δᵀ h
    torch.mm(delta.t(), g, out=d_weight[:, d:])  # dW_g = δᵀ g
    return dh, dg, d_weight, delta.sum(0)  # db_gate = Σ_t δ


# ======================================================================= 6. (G1)-(G6), one node
def _layer_dtype(h: Tensor, *weights: Tensor) -> torch.dtype:
    """The compute dtype: ``>= float32``, and the widest of the input's and the weights'."""
    dtypes = {h.dtype, *(w.dtype for w in weights)}
    if len(dtypes) == 1 and h.dtype in (torch.float32, torch.float64):
        return h.dtype
    dtype = torch.float32
    for dt in dtypes:
        dtype = torch.promote_types(dtype, dt)
    return dtype


def _layer_forward(h, past, a, w_red, b_red, w_plu, b_plu, w_gate, b_gate, offsets, normalize, eps,
                   for_backward):
    """``(h̃ [N, d], z [N, r], h, g, α, saved)``: (G1)-(G6) on ``h [B, T, d]``, weights in
    the compute dtype (step 6). Autocast must be off."""
    B, T, d = h.shape
    h2 = _as(h.reshape(-1, d), w_gate.dtype)  # h in the compute dtype (no copy when it is already)  [N, d]
    g = torch.empty(B * T, d, dtype=w_gate.dtype, device=h.device)  # (G4) writes g here
    z_tok = torch.addmm(b_red, h2, w_red.t())  # z = W_red h + b_red                        [N, r]   (G1)
    z = z_tok.t().contiguous()  # feature-major                                                [r, N]
    p = _partners_by_shift(z.view(-1, B, T), past, offsets)  # z_{t-Δ}                     [m, r, N]
    af = _as(a, z.dtype).t()  # a^Δ per token                                                  [m, T]
    af = af if B == 1 else af.repeat(1, B)
    _, saved = _plucker_forward(z, p, af, w_plu, b_plu, normalize, eps, for_backward, out=g)  # (G2)-(G4)
    out, alpha = _gate_forward(h2, g, w_gate, b_gate)  # (G5)-(G6)
    return out, z_tok, h2, g, alpha, saved


class _GrassmannLayer(torch.autograd.Function):
    """(G1)-(G6) in one node: ``h [B, T, d] -> (h̃, z)`` (step 6); ``z`` (for a streaming
    cache) carries no gradient."""

    @staticmethod
    def forward(ctx, h, past, a, w_red, b_red, w_plu, b_plu, w_gate, b_gate,  # type: ignore[override]
                offsets, normalize, eps):
        dtype = _layer_dtype(h, w_red, w_plu, w_gate)
        ctx.meta = (h.shape, offsets, h.dtype, a.dtype,
                    *(x.dtype for x in (w_red, b_red, w_plu, b_plu, w_gate, b_gate)))
        with _no_autocast(h):
            weights = [_as(x, dtype) for x in (w_red, b_red, w_plu, b_plu, w_gate, b_gate)]
            out, z, h2, g, alpha, saved = _layer_forward(h, past, a, *weights, offsets, normalize, eps, True)
        ctx.set_materialize_grads(False)  # z carries no gradient: no zeros for it in the backward
        ctx.save_for_backward(h2, g, alpha, weights[0], weights[4], *saved)
        B, T, d = h.shape
        z_out = z.view(B, T, -1)
        ctx.mark_non_differentiable(z_out)
        return _as(out.view(B, T, d), h.dtype), z_out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy, _dz_out):  # type: ignore[override]
        if dy is None:  # h̃ was not used
            return (None,) * 12
        h, g, alpha, w_red, w_gate, *saved = ctx.saved_tensors
        (B, T, d), offsets, h_dtype, a_dtype, *dtypes = ctx.meta
        need = ctx.needs_input_grad
        with _no_autocast(h):
            dh, dg, d_w_gate, d_b_gate = _gate_backward(_as(dy.reshape(-1, d), h.dtype), h, g, alpha,
                                                        w_gate)  # (G5)-(G6)
            dz, da, d_w_plu, d_b_plu = _plucker_backward(dg, saved, (B, T, w_red.shape[0]), offsets,
                                                            need[2], need[5], need[6])  # (G2)-(G4)
            torch.addmm(dh, dz.t(), w_red, out=dh)  # dh = α dh̃ + δ W_h + W_redᵀ dz                              (G1)
            d_w_red = torch.mm(dz, h) if need[3] else None  # dW_red = dz hᵀ
            d_b_red = dz.sum(1) if need[4] else None  # db_red = Σ_t dz
            if need[2]:  # summed over the batch
                da = (da if B == 1 else da.view(-1, B, T).sum(1)).t()
        grads = (da, d_w_red, d_b_red, d_w_plu, d_b_plu, d_w_gate, d_b_gate)
        return (_as(dh.view(B, T, d), h_dtype), None,
                *(None if x is None else _as(x, dt) for x, dt in zip(grads, (a_dtype, *dtypes))),
                None, None, None)


def fused_grassmann_layer(
    h: Tensor, past: Optional[Tensor], offsets: Sequence[int], a: Tensor, w_red: Tensor, b_red: Tensor,
    w_plu: Tensor, b_plu: Tensor, w_gate: Tensor, b_gate: Tensor, normalize: bool, eps: float,
) -> Tuple[Tensor, Tensor]:
    """(G1)-(G6) as one node (step 6): ``h: [B, T, d]``, ``past: [B, P, r]`` (a streaming
    cache's reduced states before ``h``, or None), offset weights ``a: [T, m]`` -> ``(h̃ [B, T, d], z
    [B, T, r])``, ``z = W_red h + b_red`` for the cache (no gradient), in the compute dtype (``>= float32``,
    autocast off: the module docstring says what holds). Without autograd the forward runs directly.
    """
    offsets = tuple(offsets)
    weights = (w_red, b_red, w_plu, b_plu, w_gate, b_gate)
    if torch.is_grad_enabled() and any(x.requires_grad for x in (h, a, *weights)):
        return _GrassmannLayer.apply(h, past, a, *weights, offsets, normalize, eps)
    dtype = _layer_dtype(h, w_red, w_plu, w_gate)
    B, T, d = h.shape
    with _no_autocast(h):
        weights = tuple(_as(w, dtype) for w in weights)
        out, z, *_ = _layer_forward(h, past, a, *weights, offsets, normalize, eps, False)
    return _as(out.view(B, T, d), h.dtype), z.view(B, T, -1)
