"""Ragged token features of sentences, and the padded pair batches the heads read.

`TokenFeatures` stores the frozen encoder's last hidden states of many sentences back to back
(``data: [total_tokens, d]``, fp16) with ``offsets: [n + 1]``: sentence ``i`` owns rows
``offsets[i]:offsets[i + 1]``. Only real tokens are stored (``[CLS]`` and ``[SEP]`` included, padding
never), so nothing downstream can read a padded encoder state by accident.

`PairBatch` packs one premise and its hypothesis into a single sequence per row:

    slots [0, lp)            the premise's lp tokens
    slots [lp, lp + lh)      the hypothesis's lh tokens
    slots [lp + lh, L)       padding up to L, the longest pair of the batch

with, per slot, ``segment`` (0 premise, 1 hypothesis; 1 on padding), ``position`` (index inside its
own sentence, the coordinate windows and position embeddings use; 0 on padding) and ``real`` (False on
padding). Nothing downstream reads a slot index: every head is defined through ``segment``,
``position`` and ``real``, so the layout only decides how much padding is computed (packing the pair
gives far less than padding premise and hypothesis separately).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import torch
from torch import Tensor

__all__ = ["TokenFeatures", "PairBatch", "collate_pairs", "pair_lengths"]


@dataclass
class TokenFeatures:
    """Token features of ``n`` sentences stored back to back (see module docstring)."""

    data: Tensor  # [total_tokens, d], fp16 on disk and in memory
    offsets: Tensor  # [n + 1], long, offsets[0] = 0

    def __post_init__(self) -> None:
        if self.data.dim() != 2:
            raise ValueError(f"TokenFeatures.data must be [tokens, d], got shape {tuple(self.data.shape)}")
        if self.offsets.dim() != 1 or self.offsets.numel() < 1 or int(self.offsets[0]) != 0:
            raise ValueError("TokenFeatures.offsets must be a 1-D tensor starting at 0")
        if int(self.offsets[-1]) != self.data.shape[0]:
            raise ValueError(
                f"TokenFeatures.offsets ends at {int(self.offsets[-1])} "
                f"but data has {self.data.shape[0]} rows"
            )
        if bool((self.offsets[1:] < self.offsets[:-1]).any()):
            raise ValueError("TokenFeatures.offsets must be non-decreasing")

    def __len__(self) -> int:
        return self.offsets.numel() - 1

    @property
    def dim(self) -> int:
        return self.data.shape[1]

    def lengths(self) -> Tensor:
        """Number of tokens of each sentence, ``[n]``."""
        return self.offsets[1:] - self.offsets[:-1]

    def sentence(self, i: int) -> Tensor:
        """The ``[length_i, d]`` features of sentence ``i``."""
        return self.data[int(self.offsets[i]) : int(self.offsets[i + 1])]

    @classmethod
    def from_list(cls, sentences: Sequence[Tensor], dim: int) -> "TokenFeatures":
        """Concatenate per-sentence ``[length, dim]`` tensors (stored as fp16)."""
        lengths = torch.tensor([s.shape[0] for s in sentences], dtype=torch.long)
        offsets = torch.zeros(len(sentences) + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(lengths, 0)
        data = torch.cat(list(sentences), 0) if sentences else torch.zeros(0, dim)
        return cls(data.to(torch.float16).contiguous(), offsets)


@dataclass
class PairBatch:
    """A padded batch of (premise, hypothesis) pairs in one sequence (see module docstring)."""

    x: Tensor  # [B, L, d] float32 encoder features (zeros on padding)
    segment: Tensor  # [B, L] long: 0 premise, 1 hypothesis
    position: Tensor  # [B, L] long: index of the token inside its own sentence
    real: Tensor  # [B, L] bool: False on padding
    labels: Tensor  # [B] long

    def __len__(self) -> int:
        return self.labels.shape[0]


def collate_pairs(
    features: TokenFeatures, premise_ids: Sequence[int], hypothesis_ids: Sequence[int], labels: Sequence[int]
) -> PairBatch:
    """Build a packed `PairBatch` from sentence indices into ``features`` and integer labels."""
    if not (len(premise_ids) == len(hypothesis_ids) == len(labels)) or len(labels) == 0:
        raise ValueError("collate_pairs needs equally many (>= 1) premises, hypotheses and labels")
    B = len(labels)
    pairs = [(features.sentence(p), features.sentence(h)) for p, h in zip(premise_ids, hypothesis_ids)]
    L = max(prem.shape[0] + hyp.shape[0] for prem, hyp in pairs)
    x = torch.zeros(B, L, features.dim)
    segment = torch.ones(B, L, dtype=torch.long)
    position = torch.zeros(B, L, dtype=torch.long)
    real = torch.zeros(B, L, dtype=torch.bool)
    for row, (prem, hyp) in enumerate(pairs):
        lp, lh = prem.shape[0], hyp.shape[0]
        x[row, :lp] = prem.float()
        x[row, lp : lp + lh] = hyp.float()
        segment[row, :lp] = 0
        position[row, :lp] = torch.arange(lp)
        position[row, lp : lp + lh] = torch.arange(lh)
        real[row, : lp + lh] = True
    labels_t = torch.as_tensor(list(labels), dtype=torch.long)
    return PairBatch(x=x, segment=segment, position=position, real=real, labels=labels_t)


def pair_lengths(
    features: TokenFeatures, premise_ids: Sequence[int], hypothesis_ids: Sequence[int]
) -> List[int]:
    """Total real tokens of each pair (used to bucket batches by length)."""
    lengths = features.lengths()
    return [int(lengths[p]) + int(lengths[h]) for p, h in zip(premise_ids, hypothesis_ids)]
