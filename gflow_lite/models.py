"""`GrassmannLM` and its size-matched `TransformerLM`, built from one `LMConfig`.

Block structure (digest 1.8-1.9), ``norm="post"`` is the paper's block:

    ĥ  = Dropout(LayerNorm(Mix(h)))          Mix = Grassmann blend (G6) or attention + residual
    h' = LayerNorm(ĥ + FFN(ĥ))               FFN = W2 GELU(W1 ĥ + b1) + b2, then dropout

For attention the post-LN block is the classic ``LN(h + Attn(h))``: the Grassmann blend carries its own
skip path ``α ⊙ h``, attention needs the residual. ``norm="pre"`` is the GPT-style block for both:
``h = h + Dropout(Mix(LN(h)))``, ``h = h + FFN(LN(h))``. Both models: token + learned absolute position
embeddings, embedding dropout, a final LayerNorm and a head tied to the token embedding (the only
reading that matches the paper's Transformer parameter counts, digest 1.12).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import LMConfig
from .layers import CausalGrassmannMixing, CausalSelfAttention, KVCache, MixCache

__all__ = ["GrassmannLM", "TransformerLM", "StreamCache", "build_model", "ARCHITECTURES"]


class FeedForward(nn.Module):
    """φ = Dropout(W2 GELU(W1 x + b1) + b2), d_ff = 4d in the paper."""

    def __init__(self, d_model: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(F.gelu(self.fc1(x))))


class Block(nn.Module):
    """One layer: a mixer (Grassmann or attention) and the FFN, with post- or pre-LayerNorm."""

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


@dataclass
class StreamCache:
    """Per-layer streaming state for `generate`: `MixCache` (Grassmann) or `KVCache` (attention)."""

    layers: list = field(default_factory=list)
    pos: int = 0

    def nbytes(self) -> int:
        return sum(c.nbytes() for c in self.layers)


class _LM(nn.Module):
    """Embeddings, a stack of blocks, final LayerNorm and a tied head; subclasses choose the mixer."""

    architecture = "base"

    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        if not isinstance(cfg, LMConfig):
            raise TypeError(f"expected an LMConfig, got {type(cfg).__name__}")
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.d_model) if cfg.pos_emb == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(self._make_block(i) for i in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)
        if cfg.tie_weights:
            self.lm_head.weight = self.tok_emb.weight

    def _make_block(self, layer: int) -> Block:  # pragma: no cover - abstract
        raise NotImplementedError

    def _init_weights(self, module: nn.Module) -> None:
        """N(0, init_std) weights and zero biases for every Linear and Embedding (digest 1.11)."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (shared tied weights counted once)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.tok_emb.weight.numel() + (0 if self.pos_emb is None else self.pos_emb.weight.numel())
        return n

    # ------------------------------------------------------------------------------------- validation
    def _check_tokens(self, idx: Tensor, name: str = "idx") -> None:
        if not isinstance(idx, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of token ids, got {type(idx).__name__}")
        if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool:
            raise ValueError(f"{name} must hold integer token ids (torch.long), got dtype {idx.dtype}")
        if idx.dim() != 2:
            raise ValueError(f"{name} must have shape [batch, seq_len], got {tuple(idx.shape)}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.config.vocab_size):
            bad = int(idx.min()) if int(idx.min()) < 0 else int(idx.max())
            raise ValueError(
                f"{name} contains token id {bad} outside [0, vocab_size={self.config.vocab_size}); "
                f"check that the tokenizer matches the model's vocab_size"
            )

    def _positions(self, T: int, start: int, device: torch.device) -> Optional[Tensor]:
        if self.pos_emb is None:
            return None
        if start + T > self.config.block_size:
            raise ValueError(
                f"input reaches position {start + T} but block_size={self.config.block_size} (learned "
                f"absolute positions); crop the input to block_size tokens or use pos_emb='none'"
            )
        return self.pos_emb(torch.arange(start, start + T, device=device))

    # ---------------------------------------------------------------------------------------- forward
    def forward(
        self, idx: Tensor, targets: Optional[Tensor] = None, cache: Optional[StreamCache] = None
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """``idx: [B, T]`` -> logits ``[B, T, V]``; with ``targets`` -> ``(logits, loss)``.

        With ``cache``, ``idx`` continues the cached stream (prefill, then one token at a time).
        """
        self._check_tokens(idx)
        B, T = idx.shape
        start = 0 if cache is None else cache.pos
        h = self.tok_emb(idx)
        pos = self._positions(T, start, idx.device)
        if pos is not None:
            h = h + pos
        h = self.drop(h)
        for i, block in enumerate(self.blocks):
            h = block(h, None if cache is None else cache.layers[i])
        if cache is not None:
            cache.pos = start + T
        logits = self.lm_head(self.ln_f(h))
        if targets is None:
            return logits
        self._check_targets(targets, idx)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def _check_targets(self, targets: Tensor, idx: Tensor) -> None:
        if not isinstance(targets, Tensor) or targets.shape != idx.shape:
            raise ValueError(f"targets must be a tensor of shape {tuple(idx.shape)}")
        t = targets[targets != -100]
        if targets.dtype.is_floating_point or (t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.config.vocab_size)):
            raise ValueError(f"targets must be integer ids in [0, {self.config.vocab_size}) or -100 (ignored)")

    # ------------------------------------------------------------------------------------- generation
    def new_cache(self) -> StreamCache:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def streams_past_block_size(self) -> bool:
        """Whether cached generation can continue beyond ``block_size`` (only without absolute positions)."""
        return self.pos_emb is None

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: Optional[int] = None,
        use_cache: bool = True,
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        """Sample ``max_new_tokens`` tokens after ``idx: [B, T]``.

        With ``use_cache`` each new token costs one step over a cache (constant size for Grassmann, a
        growing KV cache for attention). With learned absolute positions the cache cannot go past
        ``block_size``; from there on we fall back to re-encoding the last ``block_size`` tokens.
        """
        if temperature <= 0:
            raise ValueError(f"temperature={temperature} must be > 0")
        self._check_tokens(idx)
        was_training = self.training
        self.eval()
        cache = self.new_cache() if use_cache else None
        logits = self._next_logits(idx, cache)
        for _ in range(max_new_tokens):
            logits = logits / temperature
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits = logits.masked_fill(logits < v[:, [-1]], float("-inf"))
            nxt = torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
            if cache is not None and (self.streams_past_block_size or cache.pos < self.config.block_size):
                logits = self(nxt, cache=cache)[:, -1]
            else:
                cache = None
                logits = self._next_logits(idx, None)
        self.train(was_training)
        return idx

    def _next_logits(self, idx: Tensor, cache: Optional[StreamCache]) -> Tensor:
        if self.pos_emb is not None and idx.shape[1] > self.config.block_size:
            idx = idx[:, -self.config.block_size :]
            if cache is not None:
                cache.layers, cache.pos = self.new_cache().layers, 0
        return self(idx, cache=cache)[:, -1]


class GrassmannLM(_LM):
    """The paper's attention-free language model: Causal Grassmann mixing in every layer."""

    architecture = "grassmann"

    def _make_block(self, layer: int) -> Block:
        cfg = self.config
        mixer = CausalGrassmannMixing(
            cfg.d_model,
            cfg.r,
            cfg.layer_offsets(layer),
            normalize=cfg.normalize,
            eps=cfg.eps,
            aggregate=cfg.aggregate,
            impl=cfg.impl,
            out_proj=cfg.out_proj,
        )
        return Block(cfg, mixer, residual_mix=False)

    def new_cache(self) -> StreamCache:
        return StreamCache(layers=[MixCache() for _ in self.blocks])

    def set_impl(self, impl: str) -> "GrassmannLM":
        """Switch every layer between the "fast" and "reference" implementation (same parameters)."""
        if impl not in ("fast", "reference"):
            raise ValueError(f"impl={impl!r} must be 'fast' or 'reference'")
        for block in self.blocks:
            block.mix.impl = impl
        return self


class TransformerLM(_LM):
    """The size-matched decoder-only Transformer baseline (causal SDPA attention)."""

    architecture = "transformer"

    def _make_block(self, layer: int) -> Block:
        cfg = self.config
        return Block(cfg, CausalSelfAttention(cfg.d_model, cfg.n_heads, cfg.dropout), residual_mix=True)

    def new_cache(self) -> StreamCache:
        return StreamCache(layers=[KVCache() for _ in self.blocks])


ARCHITECTURES = {"grassmann": GrassmannLM, "transformer": TransformerLM}


def build_model(architecture: str, cfg: LMConfig) -> _LM:
    """``build_model("grassmann" | "transformer", cfg)``."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](cfg)

