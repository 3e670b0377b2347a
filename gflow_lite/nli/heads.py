"""The two SNLI heads over frozen token features: Grassmann–Plücker and a size-matched Transformer.

Both heads share everything except the two mixing layers (paper notes §1.14 leaves the rest open; the
choices are ours and documented here):

1. **Sequence.** Premise and hypothesis token features (each at most 48 tokens, encoded separately)
   are packed into one sequence, premise first (`gflow_lite.nli.features.PairBatch`); each slot
   carries its sentence (segment) and its position inside that sentence, and no head reads anything
   else about the layout.
2. **Input embedding.** ``e = LayerNorm(W_in f + P[position] + S[segment])``, then dropout: a linear map
   384 -> d_model, a learned in-sentence position table (48 rows) and a learned segment table
   (premise / hypothesis).
3. **Two mixing blocks**, both post-LN as in the paper's LM (and `gflow_lite.model.Block`):

   * Grassmann: ``ĥ = Dropout(LN(Mix(h)))``, ``h' = LN(ĥ + FFN(ĥ))`` with `WindowGrassmannMixing`
     (window 8, stride 8, bidirectional within a window, real pairs only, d_proj 64 in 4 groups);
     a token never pairs across sentences or windows: all cross-sentence interaction is left to 4.
   * Transformer: ``h = LN(h + Dropout(Attn(h)))``, ``h' = LN(h + FFN(h))`` with bidirectional
     4-head self-attention over the whole pair (premise and hypothesis tokens see each other), keys
     on padding masked out.

   FFN: ``W2 GELU(W1 h + b1) + b2`` with d_ff 512, dropout 0.1 (`gflow_lite.model.FeedForward`).
4. **Pooling and classifier.** Masked mean over the real tokens of each sentence gives ``u`` (premise)
   and ``v`` (hypothesis); ``logits = W_cls Dropout([u; v; |u - v|; u ⊙ v]) + b_cls`` (the InferSent /
   Sentence-BERT matching features), one 3-way linear layer.

Initialisation as the LM (paper notes §1.11): N(0, 0.02) weights, zero biases, unit LayerNorms.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..model import CausalSelfAttention, FeedForward, init_weights
from .features import PairBatch
from .window_mixing import WindowGrassmannMixing, window_pair_mask

__all__ = ["HEADS", "HeadConfig", "GrassmannPluckerHead", "TransformerHead", "build_head", "count_params"]

HEADS: Tuple[str, ...] = ("grassmann", "transformer")
N_CLASSES = 3


@dataclass(frozen=True)
class HeadConfig:
    """Sizes of both heads. Paper values (paper notes §1.14): d_model 256, 2 layers, d_ff 512, dropout 0.1;
    Grassmann d_proj 64, window 8, stride 8, 4 groups. The Transformer's 4 attention heads are our
    choice (the LM baseline's)."""

    d_in: int = 384
    max_len: int = 48
    d_model: int = 256
    n_layers: int = 2
    d_ff: int = 512
    dropout: float = 0.1
    d_proj: int = 64
    groups: int = 4
    window: int = 8
    stride: int = 8
    causal: bool = False
    eps: float = 1e-6
    impl: str = "fast"
    n_heads: int = 4
    init_std: float = 0.02

    def __post_init__(self) -> None:
        sizes = ("d_in", "max_len", "d_model", "n_layers", "d_ff", "d_proj", "groups", "window", "stride",
                 "n_heads")
        for name in sizes:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"HeadConfig.{name}={value!r} must be a positive integer")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"HeadConfig.dropout={self.dropout!r} must be in [0, 1)")
        if self.stride > self.window:
            raise ValueError(
                f"HeadConfig.stride={self.stride} > window={self.window} would leave tokens in no window"
            )
        if self.d_model % self.n_heads:
            raise ValueError(f"HeadConfig.d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.d_proj % self.groups or self.d_proj // self.groups < 2:
            raise ValueError(
                f"HeadConfig.d_proj={self.d_proj} must split into groups={self.groups} of >= 2 dims"
            )

    def to_dict(self) -> Dict:
        return asdict(self)


class PairEmbedding(nn.Module):
    """``LayerNorm(W_in f + P[position] + S[segment])`` then dropout (item 2 of the module docstring)."""

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.max_len = cfg.max_len
        self.W_in = nn.Linear(cfg.d_in, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.seg = nn.Embedding(2, cfg.d_model)
        self.ln = nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, batch: PairBatch) -> Tensor:
        if batch.x.shape[-1] != self.W_in.in_features:
            raise ValueError(
                f"features have width {batch.x.shape[-1]}, the head expects {self.W_in.in_features}"
            )
        if int(batch.position.max()) >= self.max_len:
            raise ValueError(
                f"a sentence has {int(batch.position.max()) + 1} tokens; the head allows {self.max_len}"
            )
        h = self.W_in(batch.x) + self.pos(batch.position) + self.seg(batch.segment)
        return self.drop(self.ln(h))


class PairClassifier(nn.Module):
    """Masked mean per sentence, then one linear layer on ``[u; v; |u - v|; u ⊙ v]``."""

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(4 * cfg.d_model, N_CLASSES)

    @staticmethod
    def sentence_mean(h: Tensor, batch: PairBatch, segment: int) -> Tensor:
        """Mean of ``h`` over the real tokens of one sentence (0 premise, 1 hypothesis), ``[B, d]``."""
        weight = (batch.real & (batch.segment == segment)).to(h.dtype)
        return (weight[..., None] * h).sum(1) / weight.sum(1, keepdim=True).clamp_min(1.0)

    def forward(self, h: Tensor, batch: PairBatch) -> Tensor:
        u, v = self.sentence_mean(h, batch, 0), self.sentence_mean(h, batch, 1)
        return self.out(self.drop(torch.cat([u, v, (u - v).abs(), u * v], dim=-1)))


class GrassmannBlock(nn.Module):
    """``ĥ = Dropout(LN(Mix(h)))``, ``h' = LN(ĥ + FFN(ĥ))``: the paper's post-LN Grassmann layer."""

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.mix = WindowGrassmannMixing(cfg.d_model, cfg.d_proj, cfg.groups, cfg.eps, cfg.impl)
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg.d_model, cfg.d_ff, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, h: Tensor, valid: Tensor) -> Tensor:
        h_hat = self.drop(self.ln1(self.mix(h, valid)))
        return self.ln2(h_hat + self.ffn(h_hat))


class MaskedSelfAttention(CausalSelfAttention):
    """The library's attention parameters (``qkv``, ``proj``) used bidirectionally with a key-padding mask."""

    def forward(self, x: Tensor, real: Tensor) -> Tensor:  # type: ignore[override]
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (y.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for y in (q, k, v))
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=real[:, None, None, :], dropout_p=drop)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


class AttentionBlock(nn.Module):
    """``h = LN(h + Dropout(Attn(h)))``, ``h' = LN(h + FFN(h))``: the post-LN Transformer layer."""

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.attn = MaskedSelfAttention(cfg.d_model, cfg.n_heads)
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg.d_model, cfg.d_ff, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, h: Tensor, real: Tensor) -> Tensor:
        h = self.ln1(h + self.drop(self.attn(h, real)))
        return self.ln2(h + self.ffn(h))


class _Head(nn.Module):
    """Embedding, two blocks, pooling and classifier; subclasses choose the blocks and their mask."""

    name = "base"

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embed = PairEmbedding(cfg)
        self.blocks = nn.ModuleList(self._block(cfg) for _ in range(cfg.n_layers))
        self.classify = PairClassifier(cfg)
        self.apply(lambda module: init_weights(module, cfg.init_std))

    def _block(self, cfg: HeadConfig) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def _mask(self, batch: PairBatch) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def hidden(self, batch: PairBatch) -> Tensor:
        """Token states after the mixing blocks, ``[B, L, d_model]``."""
        h = self.embed(batch)
        mask = self._mask(batch)
        for block in self.blocks:
            h = block(h, mask)
        return h

    def forward(self, batch: PairBatch) -> Tensor:
        """Class logits ``[B, 3]`` (entailment, neutral, contradiction)."""
        return self.classify(self.hidden(batch), batch)


class GrassmannPluckerHead(_Head):
    """The Grassmann–Plücker head: windowed, grouped Plücker mixing over real token pairs."""

    name = "grassmann"

    def _block(self, cfg: HeadConfig) -> nn.Module:
        return GrassmannBlock(cfg)

    def _mask(self, batch: PairBatch) -> Tensor:
        c = self.config
        return window_pair_mask(batch.segment, batch.position, batch.real, c.window, c.stride, c.causal)

    @torch.no_grad()
    def first_layer_plucker(self, batch: PairBatch) -> Tuple[Tensor, Tensor]:
        """First layer's mean normalised Plücker vectors ``[B, L, G, C(r,2)]``, and ``any_valid [B, L]``."""
        mix = self.blocks[0].mix
        return mix.plucker_mean(mix.reduce(self.embed(batch)), self._mask(batch))


class TransformerHead(_Head):
    """The Transformer head: bidirectional self-attention over all real tokens of the pair."""

    name = "transformer"

    def _block(self, cfg: HeadConfig) -> nn.Module:
        return AttentionBlock(cfg)

    def _mask(self, batch: PairBatch) -> Tensor:
        return batch.real


def build_head(name: str, cfg: HeadConfig | None = None) -> _Head:
    """``"grassmann"`` or ``"transformer"`` head with configuration ``cfg`` (paper sizes by default)."""
    cfg = cfg or HeadConfig()
    if name == "grassmann":
        return GrassmannPluckerHead(cfg)
    if name == "transformer":
        return TransformerHead(cfg)
    raise ValueError(f"unknown head {name!r}; choose one of {HEADS}")


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
