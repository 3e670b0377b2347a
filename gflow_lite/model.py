"""The Causal Grassmann language model of arXiv 2512.19428 and its size-matched Transformer, in one file.

Read top to bottom: the configuration, the Grassmann layer (equations (G1)-(G6) below, tagged beside
the lines that compute them), causal self-attention, the block, and the two language models.

For each position t of the hidden states ``h`` (paper §3; paper notes §1.2-§1.7):

    (G1)  z_t    = W_red h_t + b_red                                     reduce d -> r
    (G2)  p_t^Δ  = z_t ∧ z_{t-Δ},   Δ in offsets with t - Δ >= 0          Plücker coordinates of a 2-plane
    (G3)  p̂_t^Δ  = p_t^Δ / max(||p_t^Δ||, eps)                            optional normalisation
    (G4)  g_t    = Σ_Δ a_t^Δ (W_plu p̂_t^Δ + b_plu)                         a_t^Δ = 1 / #valid offsets
    (G5)  α_t    = σ(W_gate [h_t; g_t] + b_gate)                          gate
    (G6)  h̃_t    = α_t ⊙ h_t + (1 - α_t) ⊙ g_t                             blend

Pairing is causal: t pairs with the *earlier* token t - Δ (the paper's text pairs with t + Δ, which would
let position t see its own target; paper notes §1.3). Where no offset is valid (t < min Δ) ``g_t = 0``.

Two plain-PyTorch paths compute (G2)-(G4) from the same parameters, side by side in the layer:

* ``g_reference``: the paper's order, one Plücker vector and one projection per offset;
* ``g_fast`` (default): since ``z_t ∧ ·`` is linear,
  ``Σ_Δ a^Δ (z_t ∧ z_{t-Δ}) / n^Δ = z_t ∧ w_t`` with ``w_t = Σ_Δ (a^Δ / n^Δ) z_{t-Δ}``,
  so one Plücker product and one projection per token, whatever the number of offsets.
  The norms ``n^Δ = ||z_t ∧ z_{t-Δ}||`` come from `geometry.plucker_norm` in O(r), never from the
  Lagrange identity (it cancels catastrophically in float32 for nearly parallel pairs).

``impl="fused"`` selects the hand-written kernel of `gflow_lite.fused` (same function, opt-in; any device)
and ``impl="native"`` the same node with its elementwise work in C++ (`gflow_lite.native`; the CPU, the
fastest there). Streaming caches and sampling live in `gflow_lite.generate`.

Two controls for the question "is it the geometry?" replace only the pair feature of (G2)
(``LMConfig.pair``): "concat" ``[z_t; z_{t-Δ}]`` (no interaction) and "outer" ``z_t ⊗ z_{t-Δ}`` (bilinear
without antisymmetry); and ``attn_window`` restricts the Transformer's attention to the last w tokens.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .geometry import n_plucker, plucker
from .options import coerce_bools

__all__ = [
    "PAPER_OFFSETS", "PAPER_SCHEDULE_12", "LMConfig", "validate_offsets", "shift_back", "pair_width",
    "CausalGrassmannMixing", "CausalSelfAttention", "FeedForward", "Block", "init_weights", "GrassmannLM",
    "TransformerLM",
    "ARCHITECTURES", "build_model",
]

# ============================================================================================ config
#: The paper's offsets for the 6-layer model (paper §4.1; paper notes §1.3).
PAPER_OFFSETS: Tuple[int, ...] = (1, 2, 4, 8, 12, 16)
#: The paper's 12-layer schedule, read as one offset per layer (``offset_mode="per_layer"``).
PAPER_SCHEDULE_12: Tuple[int, ...] = (1, 1, 2, 2, 4, 4, 8, 8, 12, 12, 16, 16)

CHOICES = {
    "offset_mode": ("all", "per_layer"),
    "norm": ("post", "pre"),
    "aggregate": ("mean", "learned"),
    "pos_emb": ("learned", "none"),
    "impl": ("fast", "reference", "fused", "native"),
    "pair": ("plucker", "concat", "outer"),
}


def validate_offsets(offsets: Any) -> Tuple[int, ...]:
    """``offsets`` as a tuple of positive ints, or a ValueError saying what is wrong."""
    try:
        offsets = tuple(offsets)
    except TypeError:
        raise ValueError(f"offsets={offsets!r} must be a non-empty sequence of positive integers") from None
    if not offsets:
        raise ValueError("offsets=() is empty; give at least one positive integer offset, e.g. (1, 2, 4)")
    for delta in offsets:
        if isinstance(delta, bool) or not isinstance(delta, int) or delta < 1:
            raise ValueError(f"offsets contains {delta!r}; every offset must be a positive integer (a "
                             f"distance back in tokens), e.g. (1, 2, 4, 8, 12, 16)")
    return offsets


@dataclass(frozen=True)
class LMConfig:
    """Configuration shared by `GrassmannLM` and `TransformerLM` (paper §4: V 30,522, d 256, d_ff 1024,
    r 32, 4 heads; 6 layers at block 128 or 12 layers at block 256).

    Where the paper is silent, a switch (paper notes §5.2): ``offset_mode`` ("all": every offset in every
    layer; "per_layer": ``offsets[i]`` is layer i's only offset), ``norm`` ("post": the paper's block;
    "pre": GPT-style), ``normalize``/``eps`` for (G3), ``aggregate`` ("mean": the paper's average; "learned":
    softmax weights over offsets, a variant), ``out_proj`` (an extra d x d linear after the blend, the
    hypothesis that reproduces the paper's parameter counts, paper notes §1.12), ``pos_emb`` ("none" lets
    generation stream past ``block_size``). Controls: ``pair`` and ``attn_window`` (module docstring).
    """

    vocab_size: int = 30522
    block_size: int = 128
    d_model: int = 256
    n_layers: int = 6
    d_ff: int = 1024
    dropout: float = 0.1
    # the Grassmann layer
    r: int = 32
    offsets: Tuple[int, ...] = PAPER_OFFSETS
    offset_mode: str = "all"
    normalize: bool = True
    eps: float = 1e-6
    aggregate: str = "mean"
    out_proj: bool = False
    impl: str = "fast"
    pair: str = "plucker"
    # the Transformer
    n_heads: int = 4
    attn_window: int = 0  # 0: full causal attention; w > 0: each token sees itself and the w before it
    # both
    norm: str = "post"
    pos_emb: str = "learned"
    tie_weights: bool = True
    init_std: float = 0.02

    def __post_init__(self) -> None:
        object.__setattr__(self, "offsets", validate_offsets(self.offsets))
        for name in ("vocab_size", "block_size", "d_model", "n_layers", "d_ff", "n_heads"):
            _check_int(name, getattr(self, name), 1)
        _check_int("attn_window", self.attn_window, 0)
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 2:
            raise ValueError(f"LMConfig.r={self.r!r} must be an integer >= 2: a 2-plane needs at least 2 "
                             f"dimensions (the paper uses r=32)")
        coerce_bools(self)  # normalize, out_proj, tie_weights: "false" -> False; not a bool or yes/no: refused
        _check_number("dropout", self.dropout, 0.0 <= float(self.dropout) < 1.0, "a number in [0, 1)")
        _check_number("eps", self.eps, float(self.eps) > 0, "a positive number, e.g. 1e-6")
        _check_number("init_std", self.init_std, float(self.init_std) > 0, "a positive number, e.g. 0.02")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"LMConfig.{name}={getattr(self, name)!r} is not allowed; choose one of "
                                 f"{allowed}")
        if self.impl in ("fused", "native") and self.pair != "plucker":
            raise ValueError(f"LMConfig.impl={self.impl!r} computes Plücker pairs only, but pair={self.pair!r}; "
                             f"use impl='fast' or 'reference' for the controls")
        if self.offset_mode == "per_layer" and len(self.offsets) != self.n_layers:
            raise ValueError(f"LMConfig.offsets has {len(self.offsets)} entries but offset_mode='per_layer' "
                             f"needs one offset per layer (n_layers={self.n_layers}); e.g. "
                             f"{PAPER_SCHEDULE_12} for 12 layers, or use offset_mode='all'")
        if self.d_model % self.n_heads != 0:
            raise ValueError(f"LMConfig.d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                             f"choose n_heads among the divisors of d_model (the paper: 256 and 4)")

    def layer_offsets(self, layer: int) -> Tuple[int, ...]:
        """Offsets of layer ``layer``: the distinct offsets ("all") or ``(offsets[layer],)``."""
        if self.offset_mode == "per_layer":
            return (self.offsets[layer],)
        return tuple(sorted(set(self.offsets)))

    def receptive_field(self) -> int:
        """How far back, in tokens, the Grassmann stack can see (paper notes §1.3)."""
        return sum(max(self.layer_offsets(i)) for i in range(self.n_layers))

    def replace(self, **changes: Any) -> "LMConfig":
        """A copy with some fields changed (and validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "offsets": list(self.offsets)}

    @classmethod
    def from_dict(cls, data: dict) -> "LMConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown LMConfig field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**{**data, **({"offsets": tuple(data["offsets"])} if "offsets" in data else {})})


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"LMConfig.{name}={value!r} must be an integer >= {minimum}")


def _check_number(name: str, value: Any, ok: bool, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok:
        raise ValueError(f"LMConfig.{name}={value!r} must be {what}")


#: The hand-written kernels by ``impl`` (`gflow_lite.kernels` adds "fused" and "native" when imported).
KERNELS: Dict[str, Any] = {}


# ============================================================================= the Grassmann layer
def shift_back(z: Tensor, delta: int) -> Tensor:
    """``out[:, t] = z[:, t - delta]``, zeros where ``t < delta``; ``z: [B, T, r]``."""
    T = z.shape[1]
    return F.pad(z[:, : max(T - delta, 0)], (0, 0, min(delta, T), 0))


def pair_width(pair: str, r: int) -> int:
    """Width of the pair feature: ``r(r-1)/2`` Plücker coordinates, ``2r`` (concat) or ``r^2`` (outer)."""
    return {"plucker": n_plucker(r), "concat": 2 * r, "outer": r * r}[pair]


def pair_feature(pair: str, z: Tensor, zp: Tensor) -> Tensor:
    """(G2): the feature of the pair ``(z_t, z_{t-Δ})``; the paper's is ``z_t ∧ z_{t-Δ}``."""
    if pair == "plucker":
        return plucker(z, zp)
    if pair == "outer":
        return (z.unsqueeze(-1) * zp.unsqueeze(-2)).flatten(-2)
    return torch.cat([z, zp], dim=-1)


def pair_feature_norm(pair: str, z: Tensor, zp: Tensor) -> Tensor:
    """``||pair_feature(z, zp)||`` in O(r) for the controls ("outer", "concat"); the Plücker norm is
    computed in `CausalGrassmannMixing.g_fast` as base x height, like `geometry.plucker_norm`."""
    if pair == "outer":
        return z.norm(dim=-1) * zp.norm(dim=-1)
    return torch.hypot(z.norm(dim=-1), zp.norm(dim=-1))  # |[z; zp]|


class CausalGrassmannMixing(nn.Module):
    """Causal Grassmann mixing, equations (G1)-(G6) of the module docstring: ``h [B, T, d] -> h̃``.

    ``impl`` chooses how (G2)-(G4) are computed ("fast", "reference", "fused", "native"; same parameters,
    same function); ``pair`` the pair feature (the paper's "plucker", or a control).
    """

    def __init__(self, d_model: int, r: int, offsets: Sequence[int], *, normalize: bool = True,
                 eps: float = 1e-6, aggregate: str = "mean", impl: str = "fast", out_proj: bool = False,
                 pair: str = "plucker") -> None:
        super().__init__()
        LMConfig(d_model=d_model, r=r, offsets=tuple(offsets), normalize=normalize, eps=eps,
                 aggregate=aggregate, impl=impl, out_proj=out_proj, pair=pair, n_heads=1)  # validates
        self.d_model, self.r, self.offsets = d_model, r, validate_offsets(offsets)
        self.normalize, self.eps, self.aggregate, self.impl, self.pair = normalize, eps, aggregate, impl, pair
        self.W_red = nn.Linear(d_model, r)  # (G1)
        self.W_plu = nn.Linear(pair_width(pair, r), d_model)  # (G4)
        self.W_gate = nn.Linear(2 * d_model, d_model)  # (G5)
        self.out_proj = nn.Linear(d_model, d_model) if out_proj else None
        self.offset_logits = nn.Parameter(torch.zeros(len(self.offsets))) if aggregate == "learned" else None
        self._mean_tables: Dict[Tuple[torch.device, torch.dtype], Tuple[Tensor, Tensor]] = {}  # offset_weights

    def offset_weights(self, t: Tensor, dtype: torch.dtype = torch.float32) -> Tuple[Tensor, Tensor]:
        """(G4)'s weights ``a_t^Δ`` at absolute positions ``t: [T]`` -> ``(a [T, m], any_valid [T])``.

        Rows with no valid offset are exactly 0 (a ``where``, never a division by a clamped 0: that gave
        NaN gradients in a public reproduction, paper notes §5.3).
        """
        D = max(self.offsets)
        if self.offset_logits is None:  # the mean depends on min(t, D) only: rows of a table built once
            key = (t.device, dtype)
            if key not in self._mean_tables:
                valid = torch.arange(D + 1, device=t.device)[:, None] >= torch.tensor(self.offsets, device=t.device)
                a = valid.to(dtype) / valid.sum(-1, keepdim=True).clamp_min(1).to(dtype)  # 1/#valid, or 0
                self._mean_tables[key] = (a, valid.any(-1))
            a, any_valid = self._mean_tables[key]
            row = t.clamp_max(D)  # positions past the largest offset see every offset
            return a[row], any_valid[row]
        valid = t[:, None] >= torch.tensor(self.offsets, device=t.device)[None, :]
        e = torch.softmax(self.offset_logits.to(dtype), -1)[None, :] * valid
        s = e.sum(-1, keepdim=True)
        a = torch.where(s > 0, e / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(e))
        return a, valid.any(-1)

    def g_reference(self, z: Tensor, partners: List[Tensor], a: Tensor) -> Tensor:
        """(G2)-(G4) in the paper's order: per offset a pair feature, its normalisation, a projection."""
        g = 0.0
        for k, z_past in enumerate(partners):
            p = pair_feature(self.pair, z, z_past)  # (G2)
            if self.normalize:
                p = p / p.norm(dim=-1, keepdim=True).clamp_min(self.eps)  # (G3)
            g = g + a[:, k, None] * self.W_plu(p.to(self.W_plu.weight.dtype))  # (G4), a = 0 if t < Δ
        return g

    def g_fast(self, z: Tensor, partners: List[Tensor], a: Tensor) -> Tensor:
        """(G2)-(G4) by linearity: ``g_t = W_plu (z_t ∧ w_t) + (Σ_Δ a^Δ) b_plu``, ``w_t = Σ_Δ c^Δ v^Δ``.

        ``v^Δ`` is the partner's component orthogonal to ``z_t`` (``z ∧ z' = z ∧ v``: a plane keeps its
        Plücker vector under Gram-Schmidt), so ``n^Δ = |z_t| |v^Δ|`` (base x height) and each term
        ``c^Δ z_t ∧ v^Δ`` has norm ``a^Δ n^Δ / max(n^Δ, eps) <= a^Δ`` as computed, even for pairs that are
        parallel up to rounding (the Lagrange identity would cancel to noise there in float32).
        """
        z_ = z.unsqueeze(-2)  # z_t against each partner                        [B, T, 1, r]
        v = torch.stack(partners, dim=-2)  # z_{t-Δ}                           [B, T, m, r]
        if self.pair == "plucker":  # v = z_{t-Δ} - (<z_t, z_{t-Δ}> / |z_t|^2) z_t
            zz = (z_ * z_).sum(-1, keepdim=True).clamp_min(torch.finfo(z.dtype).tiny)
            v = v - (z_ * v).sum(-1, keepdim=True) / zz * z_
        c = a.expand(v.shape[:-1])  # c^Δ = a^Δ / max(n^Δ, eps)  (G3), or a^Δ
        if self.normalize:
            n = zz.sqrt().squeeze(-1) * v.norm(dim=-1) if self.pair == "plucker" else \
                pair_feature_norm(self.pair, z_, v)
            c = c / n.clamp_min(self.eps)
        w = (c.unsqueeze(-1) * v).sum(-2)  # w_t = Σ_Δ c^Δ v^Δ                [B, T, r]
        if self.pair == "concat":  # Σ c [z; z'] = [z Σc; w]: linear, not bilinear
            p_bar = torch.cat([z * c.sum(-1, keepdim=True), w], dim=-1)
        else:
            p_bar = pair_feature(self.pair, z, w)  # Σ_Δ c^Δ (z_t ∧ z_{t-Δ}) = z_t ∧ w_t
        W = self.W_plu
        return F.linear(p_bar.to(W.weight.dtype), W.weight) + a.sum(-1, keepdim=True) * W.bias  # (G4)

    def forward(self, h: Tensor, cache=None) -> Tensor:
        """``h: [B, T, d] -> h̃: [B, T, d]``; with a `generate.MixCache`, ``h`` continues its stream."""
        start, past, T = (0, None, h.shape[1]) if cache is None else (cache.pos, cache.z, h.shape[1])
        dtype = torch.promote_types(self.W_red.weight.dtype, torch.float32)  # the geometry in >= float32
        a, _ = self.offset_weights(torch.arange(start, start + T, device=h.device), dtype)  # (G4)'s a_t^Δ
        if self.impl in ("fused", "native"):  # (G1)-(G6) in one hand-written autograd node
            layer = KERNELS[self.impl]
            h_mix, z = layer(h, past, self.offsets, a, self.W_red.weight, self.W_red.bias, self.W_plu.weight,
                             self.W_plu.bias, self.W_gate.weight, self.W_gate.bias, self.normalize, self.eps)
            z_ctx = z if past is None else torch.cat([past.to(z.dtype), z], dim=1)  # for the cache
        else:
            z = self.W_red(h).to(dtype)  # (G1)
            z_ctx = z if past is None else torch.cat([past.to(dtype), z], dim=1)  # the cache's states first
            partners = [shift_back(z_ctx, delta)[:, -T:] for delta in self.offsets]  # z_{t-Δ}
            g_of = self.g_reference if self.impl == "reference" else self.g_fast
            g = g_of(z, partners, a).to(h.dtype)  # (G2)-(G4)
            alpha = torch.sigmoid(self.W_gate(torch.cat([h, g], dim=-1)))  # (G5)
            h_mix = alpha * h + (1 - alpha) * g  # (G6)
        if cache is not None:  # keep the last max(offsets) reduced states: a constant-size cache
            cache.z, cache.pos = z_ctx[:, -max(self.offsets):].detach(), start + T
        return h_mix if self.out_proj is None else self.out_proj(h_mix)


# ===================================================================================== attention
class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention (the baseline), through ``F.scaled_dot_product_attention``.

    ``window = w > 0`` lets each token attend to itself and the ``w`` tokens before it (local attention,
    the control with the Grassmann layer's reach); ``0`` is full causal attention.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, window: int = 0) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads, self.dropout, self.window = n_heads, dropout, window
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, cache=None) -> Tensor:
        """``x: [B, T, d]``; with a `generate.KVCache`, ``x`` continues the cached stream."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (y.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for y in (q, k, v))
        past = 0 if cache is None else cache.length
        if cache is not None:
            k, v = cache.append(k, v)
        drop = self.dropout if self.training else 0.0
        if past == 0 and self.window == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        else:  # query i (absolute past + i) sees key j iff j <= past + i and, windowed, past + i - j <= w
            i = torch.arange(past, past + T, device=x.device)[:, None]
            j = torch.arange(past + T, device=x.device)[None, :]
            mask = (j <= i) & ((i - j <= self.window) if self.window else True)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


# ========================================================================================= block
class FeedForward(nn.Module):
    """``Dropout(W2 GELU(W1 x + b1) + b2)`` with ``d_ff = 4d`` in the paper."""

    def __init__(self, d_model: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(F.gelu(self.fc1(x))))


class Block(nn.Module):
    """One layer: a mixer and the FFN (paper §3.3; paper notes §1.8-§1.9).

    ``norm="post"`` (the paper's block)::

        ĥ  = Dropout(LN(Mix(h)))     Grassmann: the blend (G6) carries its own skip path α ⊙ h
        ĥ  = LN(h + Dropout(Mix(h)))  attention: the classic residual
        h' = LN(ĥ + FFN(ĥ))

    ``norm="pre"`` (GPT-style, both mixers): ``h += Dropout(Mix(LN(h)))``, ``h += FFN(LN(h))``.
    """

    def __init__(self, cfg: LMConfig, mixer: nn.Module, residual_mix: bool) -> None:
        super().__init__()
        self.mix, self.norm, self.residual_mix = mixer, cfg.norm, residual_mix
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg.d_model, cfg.d_ff, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, h: Tensor, cache=None) -> Tensor:
        if self.norm == "pre":
            h = h + self.drop(self.mix(self.ln1(h), cache))
            return h + self.ffn(self.ln2(h))
        m = self.mix(h, cache)
        h_hat = self.ln1(h + self.drop(m)) if self.residual_mix else self.drop(self.ln1(m))
        return self.ln2(h_hat + self.ffn(h_hat))


# =============================================================================== language models
def init_weights(module: nn.Module, std: float) -> None:
    """N(0, std) weights and zero biases for every Linear and Embedding (paper notes §1.11)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


class _LM(nn.Module):
    """Token + learned position embeddings, dropout, a stack of blocks, a final LayerNorm and a head
    tied to the token embedding (the reading that matches the paper's parameter counts, notes §1.12)."""

    architecture = "base"

    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        if not isinstance(cfg, LMConfig):
            raise TypeError(f"expected an LMConfig, got {type(cfg).__name__}")
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.d_model) if cfg.pos_emb == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(self.make_block(i) for i in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(lambda module: init_weights(module, cfg.init_std))
        if cfg.tie_weights:
            self.lm_head.weight = self.tok_emb.weight

    def make_block(self, layer: int) -> Block:  # pragma: no cover - each model chooses its mixer
        raise NotImplementedError

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (tied weights counted once)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.tok_emb.weight.numel() + (0 if self.pos_emb is None else self.pos_emb.weight.numel())
        return n

    def forward(self, idx: Tensor, targets: Optional[Tensor] = None,
                cache=None) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """``idx: [B, T]`` token ids -> logits ``[B, T, V]``; with ``targets`` -> ``(logits, loss)``.

        With a `generate.StreamCache`, ``idx`` continues the cached stream.
        """
        self.check_tokens(idx)
        B, T = idx.shape
        start = 0 if cache is None else cache.pos
        h = self.tok_emb(idx)
        if self.pos_emb is not None:
            if start + T > self.config.block_size:
                raise ValueError(f"input reaches position {start + T} but block_size="
                                 f"{self.config.block_size} (learned positions); crop the input to "
                                 f"block_size tokens or use pos_emb='none'")
            h = h + self.pos_emb(torch.arange(start, start + T, device=idx.device))
        h = self.drop(h)
        for i, block in enumerate(self.blocks):
            h = block(h, None if cache is None else cache.layers[i])
        if cache is not None:
            cache.pos = start + T
        logits = self.lm_head(self.ln_f(h))
        if targets is None:
            return logits
        self.check_tokens(targets, "targets", ignore=-100, shape=idx.shape)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1),
                               ignore_index=-100)
        return logits, loss

    def check_tokens(self, idx: Tensor, name: str = "idx", ignore: Optional[int] = None,
                     shape: Optional[torch.Size] = None) -> None:
        """A ValueError naming what is wrong unless ``idx`` is a non-empty [B, T] tensor of valid ids."""
        if not isinstance(idx, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of token ids, got {type(idx).__name__}")
        if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool:
            raise ValueError(f"{name} must hold integer token ids (torch.long), got dtype {idx.dtype}")
        if idx.dim() != 2 or (shape is not None and idx.shape != shape):
            want = "[batch, seq_len]" if shape is None else str(tuple(shape))
            raise ValueError(f"{name} must have shape {want}, got {tuple(idx.shape)}")
        if idx.numel() == 0:
            raise ValueError(f"{name} has shape {tuple(idx.shape)}: give at least one sequence of at least "
                             f"one token")
        ids = idx if ignore is None else idx[idx != ignore]
        V = self.config.vocab_size
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= V):
            bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
            also = "" if ignore is None else f" (or {ignore}, ignored)"
            raise ValueError(f"{name} contains token id {bad} outside [0, vocab_size={V}){also}; check "
                             f"that the tokenizer matches the model's vocab_size")

    def generate(self, idx: Tensor, max_new_tokens: int, **options: Any) -> Tensor:
        """Sample ``max_new_tokens`` tokens after ``idx`` (`gflow_lite.generate.generate`)."""
        from . import generate

        return generate.generate(self, idx, max_new_tokens, **options)

    def new_cache(self):
        """An empty streaming cache for this model (`gflow_lite.generate.new_cache`)."""
        from . import generate

        return generate.new_cache(self)


class GrassmannLM(_LM):
    """The paper's attention-free language model: Causal Grassmann mixing in every layer."""

    architecture = "grassmann"

    def make_block(self, layer: int) -> Block:
        cfg = self.config
        mixer = CausalGrassmannMixing(cfg.d_model, cfg.r, cfg.layer_offsets(layer), normalize=cfg.normalize,
                                      eps=cfg.eps, aggregate=cfg.aggregate, impl=cfg.impl,
                                      out_proj=cfg.out_proj, pair=cfg.pair)
        return Block(cfg, mixer, residual_mix=False)

    def set_impl(self, impl: str) -> "GrassmannLM":
        """Switch every layer to ``impl`` ("fast", "reference", "fused" or "native"; same parameters)."""
        LMConfig(impl=impl, pair=self.config.pair)  # validates
        for block in self.blocks:
            block.mix.impl = impl
        return self


class TransformerLM(_LM):
    """The size-matched decoder-only Transformer baseline (``attn_window > 0``: local attention)."""

    architecture = "transformer"

    def make_block(self, layer: int) -> Block:
        cfg = self.config
        attn = CausalSelfAttention(cfg.d_model, cfg.n_heads, cfg.dropout, window=cfg.attn_window)
        return Block(cfg, attn, residual_mix=True)


ARCHITECTURES = {"grassmann": GrassmannLM, "transformer": TransformerLM}


def build_model(architecture: str, cfg: LMConfig) -> _LM:
    """``build_model("grassmann" | "transformer", cfg)``."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](cfg)
