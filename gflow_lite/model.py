"""The Causal Grassmann language model of arXiv 2512.19428 and its size-matched Transformer, in one file.

Read top to bottom: the configuration, the Grassmann layer, causal self-attention, the block, and the two
language models. For each position t of the hidden states ``h`` (paper §3; paper notes §1.2-§1.7):

    (G1)  z_t    = W_red h_t + b_red                                     reduce d -> r
    (G2)  p_t^Δ  = z_t ∧ z_{t-Δ},   Δ in offsets with t - Δ >= 0          Plücker coordinates of a 2-plane
    (G3)  p̂_t^Δ  = p_t^Δ / max(||p_t^Δ||, eps)                            optional normalisation
    (G4)  g_t    = Σ_Δ a_t^Δ (W_plu p̂_t^Δ + b_plu)                         a_t^Δ = 1 / #valid offsets
    (G5)  α_t    = σ(W_gate [h_t; g_t] + b_gate)                          gate
    (G6)  h̃_t    = α_t ⊙ h_t + (1 - α_t) ⊙ g_t                             blend

Pairing is causal: t pairs with the *earlier* token t - Δ (the paper's text pairs with t + Δ, which lets
position t see its own target; paper notes §1.3). Where no offset is valid (t < min Δ), ``g_t = 0``.
(G2)-(G4) are computed two ways from the same parameters: ``g_reference`` in the paper's order, and
``g_fast`` (the default) by linearity, ``Σ_Δ c^Δ z_t ∧ z_{t-Δ} = z_t ∧ w_t``: one Plücker vector per token.

One numerics rule for every implementation: autocast off, the geometry from (G1)'s output on in >= float32,
pair norms from `geometry.wedge_height` (base x height; never the Lagrange identity, which cancels to noise
in float32 for nearly parallel pairs). `gflow_lite.kernels` and `gflow_lite.controls` add themselves to
`KERNELS` and `CONTROLS`; this file imports only torch, `geometry` and `generate`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import generate as streaming
from .geometry import n_plucker, plucker, wedge_height

__all__ = ["PAPER_OFFSETS", "PAPER_SCHEDULE_12", "LMConfig", "KERNELS", "CONTROLS", "shift_back",
           "CausalGrassmannMixing", "CausalSelfAttention", "FeedForward", "Block", "init_weights",
           "LanguageModel", "GrassmannLM", "TransformerLM", "ARCHITECTURES", "build_model"]

#: The paper's offsets for the 6-layer model (paper §4.1), and its 12-layer schedule read as one per layer.
PAPER_OFFSETS: Tuple[int, ...] = (1, 2, 4, 8, 12, 16)
PAPER_SCHEDULE_12: Tuple[int, ...] = (1, 1, 2, 2, 4, 4, 8, 8, 12, 12, 16, 16)


# ============================================================================================ config
@dataclass(frozen=True)
class LMConfig:
    """Both models' settings; the defaults are the paper's 6-layer model (§4). Where the paper is silent, a
    switch (paper notes §5.2): ``offset_mode`` ("all" offsets in every layer, or "per_layer": ``offsets[i]``
    is layer i's only one), ``norm`` ("post": the paper's block; "pre": GPT-style), ``normalize``/``eps``
    for (G3), ``aggregate`` ("mean" or "learned"), ``out_proj`` (an extra d x d linear, notes §1.12).
    ``impl`` picks how the layer is computed (one function); ``pair``, ``attn_window`` pick the controls.
    A plain record: user input is checked where it arrives (`gflow_lite.options.check_lm_config`)."""

    vocab_size: int = 30522
    block_size: int = 128
    d_model: int = 256
    n_layers: int = 6
    d_ff: int = 1024
    dropout: float = 0.1
    r: int = 32  # the Grassmann layer
    offsets: Tuple[int, ...] = PAPER_OFFSETS
    offset_mode: str = "all"
    normalize: bool = True
    eps: float = 1e-6
    aggregate: str = "mean"
    out_proj: bool = False
    impl: str = "fast"
    pair: str = "plucker"
    n_heads: int = 4  # the Transformer
    attn_window: int = 0  # 0: full causal attention; w > 0: each token sees itself and the w before it
    norm: str = "post"  # both
    mix_residual: str = "auto"  # a residual around the mixer: "auto" (the block's own, see Block), "on", "off"
    pos_emb: str = "learned"
    tie_weights: bool = True
    init_std: float = 0.02

    def layer_offsets(self, layer: int) -> Tuple[int, ...]:  # all distinct offsets, or ``(offsets[layer],)``
        return (self.offsets[layer],) if self.offset_mode == "per_layer" else tuple(sorted(set(self.offsets)))

    def receptive_field(self) -> int:  # how far back, in tokens, the Grassmann stack sees (notes §1.3)
        return sum(max(self.layer_offsets(i)) for i in range(self.n_layers))

    def replace(self, **changes: Any) -> "LMConfig":  # a copy with some fields changed
        return dataclasses.replace(self, **changes)


#: ``impl`` -> ``kernel(layer, h, past, a) -> (h̃, z_ctx)``, the layer's `mix` as one hand-written node
KERNELS: Dict[str, Callable] = {}  # (`gflow_lite.kernels` adds "fused" and "native")
#: control -> mixer class (`gflow_lite.controls` adds "concat", "outer" for ``pair``, "window" for attention)
CONTROLS: Dict[str, Callable[..., nn.Module]] = {}


# ============================================================================= the Grassmann layer
def shift_back(z: Tensor, delta: int) -> Tensor:
    """``out[:, t] = z[:, t - delta]``, zeros where ``t < delta``; ``z: [B, T, r]``."""
    T = z.shape[1]
    return F.pad(z[:, : max(T - delta, 0)], (0, 0, min(delta, T), 0))


class CausalGrassmannMixing(nn.Module):
    """Causal Grassmann mixing, (G1)-(G6): ``h [B, T, d] -> h̃ [B, T, d]``."""

    def __init__(self, d_model: int, r: int, offsets: Sequence[int], *, normalize: bool = True,
                 eps: float = 1e-6, aggregate: str = "mean", impl: str = "fast", out_proj: bool = False,
                 pair_width: Optional[int] = None) -> None:
        super().__init__()
        assert r >= 2 and len(offsets) > 0 and min(offsets) >= 1, (r, offsets)
        assert impl in ("fast", "reference", *KERNELS), f"unknown impl {impl!r}"
        self.d_model, self.r, self.offsets = d_model, r, tuple(offsets)
        self.normalize, self.eps, self.aggregate, self.impl = normalize, eps, aggregate, impl
        self.W_red = nn.Linear(d_model, r)  # (G1)
        self.W_plu = nn.Linear(pair_width or n_plucker(r), d_model)  # (G4)
        self.W_gate = nn.Linear(2 * d_model, d_model)  # (G5)
        self.out_proj = nn.Linear(d_model, d_model) if out_proj else None
        self.offset_logits = nn.Parameter(torch.zeros(len(offsets))) if aggregate == "learned" else None
        self.register_buffer("delta", torch.tensor(self.offsets), persistent=False)

    def offset_weights(self, t: Tensor, dtype: torch.dtype = torch.float32) -> Tuple[Tensor, Tensor]:
        """(G4)'s weights ``a_t^Δ`` at positions ``t: [T]`` -> ``(a [T, m], any_valid [T])``; rows with no
        valid offset are 0 by a ``where`` (a division by a clamped 0 gave NaN gradients, notes §5.3)."""
        valid = t[:, None] >= self.delta  # the partner t - Δ exists
        e = valid.to(dtype)  # "mean"; "learned": softmax weights over the valid offsets
        e = e if self.offset_logits is None else torch.softmax(self.offset_logits.to(dtype), -1) * e
        s = e.sum(-1, keepdim=True)
        return torch.where(s > 0, e / torch.where(s > 0, s, 1.0), 0.0), s[:, 0] > 0

    def pair_feature(self, z: Tensor, z_past: Tensor) -> Tensor:  # (G2): Plücker coordinates of the 2-plane
        return plucker(z, z_past)

    def g_reference(self, z: Tensor, partners: List[Tensor], a: Tensor) -> Tensor:
        """(G2)-(G4) in the paper's order: per offset a pair feature, its normalisation, a projection."""
        g = 0.0
        for k, z_past in enumerate(partners):
            p = self.pair_feature(z, z_past)  # (G2)
            if self.normalize:
                p = p / p.norm(dim=-1, keepdim=True).clamp_min(self.eps)  # (G3)
            g = g + a[:, k, None] * self.W_plu(p.to(self.W_plu.weight.dtype))  # (G4), a = 0 where t < Δ
        return g

    def g_fast(self, z: Tensor, partners: List[Tensor], a: Tensor) -> Tensor:
        """(G2)-(G4) by linearity: ``g_t = W_plu (z_t ∧ w_t) + (Σ_Δ a^Δ) b_plu``, ``w_t = Σ_Δ c^Δ v^Δ``.

        ``v^Δ`` is the partner's part orthogonal to ``z_t`` (``z ∧ z' = z ∧ v``), so ``n^Δ = |z_t| |v^Δ|``
        and each term ``c^Δ z_t ∧ v^Δ`` has norm ``<= a^Δ`` as computed, even for nearly parallel pairs.
        """
        base, v = wedge_height(z.unsqueeze(-2), torch.stack(partners, dim=-2))  # |z_t|, v^Δ     [B, T, m, r]
        c = a.expand(v.shape[:-1])  # c^Δ = a^Δ ...
        if self.normalize:
            c = c / (base.squeeze(-1) * v.norm(dim=-1)).clamp_min(self.eps)  # ... / max(n^Δ, eps)   (G3)
        w = (c.unsqueeze(-1) * v).sum(-2)  # w_t = Σ_Δ c^Δ v^Δ                                   [B, T, r]
        W = self.W_plu  # (G4): Σ_Δ c^Δ (z_t ∧ z_{t-Δ}) = z_t ∧ w_t, one projection per token
        return F.linear(plucker(z, w).to(W.weight.dtype), W.weight) + a.sum(-1, keepdim=True) * W.bias

    def mix(self, h: Tensor, past: Optional[Tensor], a: Tensor) -> Tuple[Tensor, Tensor]:
        """(G1)-(G6) in plain PyTorch: ``(h̃, z_ctx)``, ``z_ctx`` the reduced states of ``[past; h]``."""
        z = self.W_red(h).to(torch.promote_types(self.W_red.weight.dtype, torch.float32))  # (G1)
        z_ctx = z if past is None else torch.cat([past.to(z.dtype), z], dim=1)  # a stream's states first
        partners = [shift_back(z_ctx, delta)[:, -h.shape[1]:] for delta in self.offsets]  # z_{t-Δ}
        g_of = self.g_reference if self.impl == "reference" else self.g_fast
        g = g_of(z, partners, a).to(h.dtype)  # (G2)-(G4)
        alpha = torch.sigmoid(self.W_gate(torch.cat([h, g], dim=-1)))  # (G5)
        return alpha * h + (1 - alpha) * g, z_ctx  # (G6)

    def forward(self, h: Tensor, cache=None) -> Tensor:
        """``h: [B, T, d] -> h̃``; with a `generate.MixCache`, ``h`` continues its stream."""
        start, past = (0, None) if cache is None else (cache.pos, cache.z)
        dtype = torch.promote_types(self.W_red.weight.dtype, torch.float32)
        a, _ = self.offset_weights(torch.arange(start, start + h.shape[1], device=h.device), dtype)
        with torch.autocast(h.device.type, enabled=False):  # the numerics rule of the module docstring
            kernel = KERNELS.get(self.impl, CausalGrassmannMixing.mix)  # a kernel: the same function, faster
            h_mix, z_ctx = kernel(self, h, past, a)
        if cache is not None:  # keep the last max(offsets) reduced states: a constant-size cache
            cache.z, cache.pos = z_ctx[:, -max(self.offsets):].detach(), start + h.shape[1]
        return h_mix if self.out_proj is None else self.out_proj(h_mix)


# ===================================================================================== attention
class _FillTokens(torch.autograd.Function):
    """``t.masked_fill(mask, value)`` whose backward passes the gradient through unchanged: exact wherever the
    mask is False (everywhere, on finite inputs), and it saves nothing for the backward pass (for attention's
    guard against non-finite values, below)."""

    @staticmethod
    def forward(ctx, t: Tensor, mask: Tensor, value: float) -> Tensor:
        return t.masked_fill(mask, value)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None, None


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention (the baseline), through ``F.scaled_dot_product_attention``.

    Causal for non-finite values too: the fused kernel gives a hidden key the weight exp(-inf) = 0 and still
    multiplies it by its value, and 0 · NaN = NaN, so one NaN or inf in a *later* token's k or v would reach
    every earlier output. The k and v of a token whose k or v is not finite are therefore zeroed before the
    kernel; after it, a query whose own q is not finite, or that sees such a token (itself included), is set
    to NaN. On finite inputs neither step changes a bit, and autograd saves nothing more than before.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        assert d_model % n_heads == 0, (d_model, n_heads)
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv, self.proj = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)

    def attention_mask(self, past: int, T: int, device: torch.device) -> Optional[Tensor]:
        """Which keys each query sees: None for plain causal attention over this call's tokens, else a
        ``[T, past + T]`` mask: query i (absolute position past + i) sees key j iff ``j <= past + i``."""
        if past == 0:
            return None
        return torch.arange(past + T, device=device) <= torch.arange(past, past + T, device=device)[:, None]

    def forward(self, x: Tensor, cache=None) -> Tensor:
        """``x: [B, T, d]``; with a `generate.KVCache`, ``x`` continues the cached stream."""
        B, T, C = x.shape
        qkv = self.qkv(x)
        finite = torch.isfinite(qkv.detach().view(B, T, 3, C).sum(-1, dtype=torch.float32))  # [B, T, 3]
        bad_q, bad = ~finite[..., 0], ~finite[..., 1:].all(-1)  # [B, T]: q not finite; k or v not finite
        kv_part = torch.arange(3 * C, device=x.device) >= C
        qkv = _FillTokens.apply(qkv, bad[..., None] & kv_part, 0.0)  # such a token's k and v: 0
        q, k, v = (y.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for y in qkv.split(C, dim=2))
        past = 0 if cache is None else cache.length
        k, v, bad = (k, v, bad) if cache is None else cache.append(k, v, bad)
        mask = self.attention_mask(past, T, x.device)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None,
                                           dropout_p=self.dropout if self.training else 0.0)
        sees_bad = bad.cumsum(-1) > 0 if mask is None else (bad.float() @ mask.T.float()) > 0  # [B, T]
        y = self.proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return _FillTokens.apply(y, (sees_bad | bad_q)[..., None], float("nan"))


# ========================================================================================= block
class FeedForward(nn.Module):
    """``Dropout(W2 GELU(W1 x + b1) + b2)`` with ``d_ff = 4d`` in the paper."""

    def __init__(self, d_model: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.fc1, self.fc2, self.drop = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model), nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(F.gelu(self.fc1(x))))


class Block(nn.Module):
    """One layer: a mixer and the FFN (paper §3.3; paper notes §1.8-§1.9). ``norm="post"`` (the paper's)::

        ĥ  = Dropout(LN(Mix(h)))      Grassmann: the blend (G6) carries its own skip path α ⊙ h
        ĥ  = LN(h + Dropout(Mix(h)))  attention: the classic residual
        h' = LN(ĥ + FFN(ĥ))

    ``norm="pre"`` (GPT-style): ``h += Dropout(Mix(LN(h)))``, ``h += FFN(LN(h))``: for the Grassmann model,
    two changes at once (the norm moves before the mixer, and a residual is added around the mixer).
    ``mix_residual="on"``/``"off"`` takes the two apart: the residual without the move (post-LN,
    ``ĥ = LN(h + Dropout(Mix(h)))``), or the move without the residual (``h = Dropout(Mix(LN(h)))``)."""

    def __init__(self, cfg: LMConfig, mixer: nn.Module, residual_mix: bool) -> None:
        super().__init__()
        self.mix, self.norm = mixer, cfg.norm
        self.residual_mix = residual_mix if cfg.mix_residual == "auto" else cfg.mix_residual == "on"
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg.d_model, cfg.d_ff, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, h: Tensor, cache=None) -> Tensor:
        if self.norm == "pre":
            m = self.drop(self.mix(self.ln1(h), cache))
            h = h + m if self.residual_mix else m
            return h + self.ffn(self.ln2(h))
        m = self.mix(h, cache)
        h_hat = self.ln1(h + self.drop(m)) if self.residual_mix else self.drop(self.ln1(m))
        return self.ln2(h_hat + self.ffn(h_hat))


# =============================================================================== language models
def init_weights(module: nn.Module, std: float) -> None:
    """N(0, std) weights and zero biases for every Linear and Embedding (paper notes §1.11)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


class LanguageModel(nn.Module):
    """What both models share: token (+ learned position) embeddings, dropout, a stack of blocks, a final
    LayerNorm and a head tied to the token embedding (the reading of the paper's counts, notes §1.12)."""

    architecture = "base"  # each model defines `make_block(layer)`: its mixer in a Block

    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        assert all(isinstance(getattr(cfg, k), bool) for k in ("normalize", "out_proj", "tie_weights")), \
            "a switch given as a word: pass the config through gflow_lite.options.check_lm_config first"
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

    def num_params(self, non_embedding: bool = False) -> int:  # tied weights counted once
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.tok_emb.weight.numel() + (0 if self.pos_emb is None else self.pos_emb.weight.numel())
        return n

    def forward(self, idx: Tensor, targets: Optional[Tensor] = None,
                cache=None) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """``idx: [B, T]`` token ids -> logits ``[B, T, V]``; with ``targets`` -> ``(logits, loss)``; with a
        `generate.StreamCache`, ``idx`` continues the cached stream. Ids are checked where they enter
        (`generate.check_tokens`), not here: nothing on this path waits for the device."""
        (B, T), start = idx.shape, 0 if cache is None else cache.pos
        h = self.tok_emb(idx)
        if self.pos_emb is not None:
            if start + T > self.config.block_size:
                raise ValueError(f"input reaches position {start + T} but block_size={self.config.block_size}"
                                 " (learned positions); crop it to block_size tokens or use pos_emb='none'")
            h = h + self.pos_emb(torch.arange(start, start + T, device=idx.device))
        h = self.drop(h)
        for i, block in enumerate(self.blocks):
            h = block(h, None if cache is None else cache.layers[i])
        if cache is not None:
            cache.pos = start + T
        logits = self.lm_head(self.ln_f(h))
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.float().flatten(0, 1), targets.reshape(-1), ignore_index=-100)

    def generate(self, idx: Tensor, max_new_tokens: int, **options: Any) -> Tensor:  # see generate.generate
        return streaming.generate(self, idx, max_new_tokens, **options)

    def new_cache(self) -> "streaming.StreamCache":  # an empty streaming cache, see generate.new_cache
        return streaming.new_cache(self)


class GrassmannLM(LanguageModel):
    """The paper's attention-free language model: Causal Grassmann mixing in every layer."""

    architecture = "grassmann"

    def make_block(self, layer: int) -> Block:
        cfg = self.config
        layer_class = CausalGrassmannMixing if cfg.pair == "plucker" else CONTROLS[cfg.pair]
        mixer = layer_class(cfg.d_model, cfg.r, cfg.layer_offsets(layer), normalize=cfg.normalize,
                            eps=cfg.eps, aggregate=cfg.aggregate, impl=cfg.impl, out_proj=cfg.out_proj)
        return Block(cfg, mixer, residual_mix=cfg.norm == "pre")  # post-LN: the blend (G6) is the skip path

    def set_impl(self, impl: str) -> "GrassmannLM":
        """Switch every layer to ``impl`` ("fast", "reference", "fused" or "native"; same parameters)."""
        assert impl in ("fast", "reference", *KERNELS), f"unknown impl {impl!r}"
        for block in self.blocks:
            block.mix.impl = impl
        return self


class TransformerLM(LanguageModel):
    """The size-matched decoder-only Transformer baseline (``attn_window > 0``: local attention)."""

    architecture = "transformer"

    def make_block(self, layer: int) -> Block:
        cfg = self.config
        attn = CausalSelfAttention(cfg.d_model, cfg.n_heads, cfg.dropout) if not cfg.attn_window else \
            CONTROLS["window"](cfg.d_model, cfg.n_heads, cfg.dropout, window=cfg.attn_window)
        return Block(cfg, attn, residual_mix=True)


ARCHITECTURES = {"grassmann": GrassmannLM, "transformer": TransformerLM}


def build_model(architecture: str, cfg: LMConfig) -> LanguageModel:
    """``build_model("grassmann" | "transformer", cfg)``."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](cfg)
