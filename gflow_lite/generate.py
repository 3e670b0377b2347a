"""Streaming generation: the per-layer caches and the sampling loop.

A Grassmann layer only ever looks ``max(offsets)`` tokens back, so its cache (`MixCache`) holds that many
reduced vectors ``z`` whatever the context length: decoding costs the same per token at position 10 and
at position 10,000. Attention's `KVCache` grows with the context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import torch
from torch import Tensor

__all__ = ["MixCache", "KVCache", "StreamCache", "new_cache", "check_tokens", "generate"]


@dataclass
class MixCache:
    """One Grassmann layer's stream: the last ``max(offsets)`` reduced vectors and the position."""

    z: Optional[Tensor] = None  # [B, <= max(offsets), r]
    pos: int = 0

    def nbytes(self) -> int:
        return 0 if self.z is None else self.z.numel() * self.z.element_size()


@dataclass
class KVCache:
    """One attention layer's keys and values, preallocated and grown by doubling."""

    k: Optional[Tensor] = None  # [B, H, capacity, head_dim]
    v: Optional[Tensor] = None
    bad: Optional[Tensor] = None  # [B, capacity]: tokens whose k or v was not finite (model.CausalSelfAttention)
    length: int = 0
    pos: int = 0

    def append(self, k: Tensor, v: Tensor, bad: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Store new keys/values ``[B, H, T, hd]`` and flags ``[B, T]``; return all of them so far."""
        need = self.length + k.shape[2]
        if self.k is None or need > self.k.shape[2]:
            capacity = max(need, 2 * (0 if self.k is None else self.k.shape[2]), 16)
            new_k = k.new_zeros(k.shape[0], k.shape[1], capacity, k.shape[3])
            new_v = torch.zeros_like(new_k)
            new_bad = bad.new_zeros(bad.shape[0], capacity)
            if self.k is not None:
                new_k[:, :, : self.length] = self.k[:, :, : self.length]
                new_v[:, :, : self.length] = self.v[:, :, : self.length]
                new_bad[:, : self.length] = self.bad[:, : self.length]
            self.k, self.v, self.bad = new_k, new_v, new_bad
        self.k[:, :, self.length : need] = k
        self.v[:, :, self.length : need] = v
        self.bad[:, self.length : need] = bad
        self.pos += need - self.length
        self.length = need
        return self.k[:, :, :need], self.v[:, :, :need], self.bad[:, :need]

    def nbytes(self) -> int:
        if self.k is None:
            return 0
        return 2 * self.k.element_size() * self.k.shape[0] * self.k.shape[1] * self.k.shape[3] * self.length


@dataclass
class StreamCache:
    """The whole model's stream: one cache per layer and the number of tokens seen."""

    layers: List = field(default_factory=list)
    pos: int = 0

    def nbytes(self) -> int:
        return sum(c.nbytes() for c in self.layers)


def new_cache(model) -> StreamCache:
    """An empty `StreamCache` for ``model`` (`MixCache` per Grassmann layer, `KVCache` per attention)."""
    kind = MixCache if model.architecture == "grassmann" else KVCache
    return StreamCache(layers=[kind() for _ in model.blocks])


def check_tokens(idx: Tensor, vocab_size: int, name: str = "idx") -> None:
    """A ValueError naming what is wrong unless ``idx`` is a non-empty ``[B, T]`` tensor of ids in
    ``[0, vocab_size)``. Called where ids enter (a prompt, a loaded dataset), once, not on every forward:
    reading the ids' range waits for the device."""
    if not isinstance(idx, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of token ids, got {type(idx).__name__}")
    if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer token ids (torch.long), got dtype {idx.dtype}")
    if idx.dim() != 2 or idx.numel() == 0:
        raise ValueError(f"{name} must have shape [batch, seq_len] with at least one token, got {tuple(idx.shape)}")
    low, high = int(idx.min()), int(idx.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(f"{name} contains token id {low if low < 0 else high} outside [0, vocab_size="
                         f"{vocab_size}); check that the tokenizer matches the model's vocab_size")


def _check_options(max_new_tokens, temperature, top_k) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens={max_new_tokens!r} must be an integer >= 0")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature={temperature!r} must be a finite number > 0 (1.0 samples from the "
                         f"model's distribution; smaller is greedier)")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k={top_k!r} must be None (no cut) or an integer >= 1")


@torch.no_grad()
def generate(model, idx: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: Optional[int] = None,
             use_cache: bool = True, generator: Optional[torch.Generator] = None) -> Tensor:
    """Sample ``max_new_tokens`` tokens after ``idx: [B, T]``; returns ``[B, T + max_new_tokens]``.

    With ``use_cache`` each new token is one step over the cache. With learned absolute positions the
    cache cannot pass ``block_size``; from there on the last ``block_size`` tokens are re-encoded.
    """
    _check_options(max_new_tokens, temperature, top_k)
    check_tokens(idx, model.config.vocab_size)
    block_size, streams = model.config.block_size, model.pos_emb is None
    was_training = model.training
    model.eval()
    cache = new_cache(model) if use_cache else None

    def next_logits(idx: Tensor, cache: Optional[StreamCache]) -> Tuple[Tensor, Optional[StreamCache]]:
        if not streams and idx.shape[1] > block_size:
            idx = idx[:, -block_size:]
            cache = None if cache is None else new_cache(model)
        return model(idx, cache=cache)[:, -1], cache

    logits, cache = next_logits(idx, cache)
    for _ in range(max_new_tokens):
        logits = logits.float() / temperature
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)
        idx = torch.cat([idx, nxt], dim=1)
        if cache is not None and (streams or cache.pos < block_size):
            logits = model(nxt, cache=cache)[:, -1]
        else:
            logits, cache = next_logits(idx, None)
    model.train(was_training)
    return idx
