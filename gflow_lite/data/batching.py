"""Blocks of tokens for language modelling.

A block is ``block_size + 1`` contiguous tokens: the input is its first ``block_size`` tokens and the
target the same tokens shifted by one.

* Training (`RandomBlockSampler`): each row of a batch starts at a position drawn uniformly from
  ``[0, n - block_size - 1]`` by a seeded ``torch.Generator``. Starts are drawn with replacement, so
  blocks **may overlap** (within a batch and across steps); one "epoch" is defined as
  ``n_tokens / (batch_size * block_size)`` batches. The generator's state is the whole data position:
  the run manager saves ``sampler.generator``'s state with each checkpoint, so a resumed run draws the
  same batches.
* Evaluation (`eval_blocks`): non-overlapping blocks that predict every token of the split except the
  first exactly once; the last block may be shorter than ``block_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

import numpy as np
import torch


def _as_tensor(ids: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(ids, torch.Tensor):
        return ids.long()
    return torch.from_numpy(np.asarray(ids).astype(np.int64, copy=False))


class RandomBlockSampler:
    """Random (possibly overlapping) training blocks from a 1-D token array, reproducible by state."""

    def __init__(self, ids: np.ndarray | torch.Tensor, block_size: int, batch_size: int, seed: int) -> None:
        self.data = _as_tensor(ids)
        self.block_size = int(block_size)
        self.batch_size = int(batch_size)
        self.n_starts = len(self.data) - self.block_size
        if self.n_starts < 1:
            raise ValueError(
                f"the training split has {len(self.data)} tokens, too few for blocks of {self.block_size}+1"
            )
        self.generator = torch.Generator().manual_seed(int(seed))
        self._offsets = torch.arange(self.block_size + 1)

    def starts(self) -> torch.Tensor:
        """Draw the next batch's block starts (advances the generator)."""
        return torch.randint(0, self.n_starts, (self.batch_size,), generator=self.generator)

    def next_batch(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)``, each ``[batch_size, block_size]`` int64 on the CPU."""
        blocks = self.data[self.starts()[:, None] + self._offsets]
        return blocks[:, :-1], blocks[:, 1:]


@dataclass(frozen=True)
class EvalBatch:
    """Inputs and targets of equal-length blocks, with the position of each block's first target."""

    x: torch.Tensor
    y: torch.Tensor


def eval_block_starts(n_tokens: int, block_size: int) -> List[Tuple[int, int]]:
    """``(start, length)`` of the non-overlapping evaluation blocks: inputs ``ids[start:start+length]``."""
    n_targets = n_tokens - 1
    return [(s, min(block_size, n_targets - s)) for s in range(0, max(n_targets, 0), block_size)]


def eval_blocks(
    ids: np.ndarray | torch.Tensor, block_size: int, batch_size: int, max_batches: Optional[int] = None
) -> Iterator[EvalBatch]:
    """Batches of non-overlapping blocks covering targets ``ids[1:]`` exactly once, in order.

    Full blocks come in batches of ``batch_size``; a final shorter block (if any) comes alone.
    ``max_batches`` stops early (an estimate on a prefix of the split).
    """
    data = _as_tensor(ids)
    spans = eval_block_starts(len(data), block_size)
    full = [s for s, length in spans if length == block_size]
    partial = [(s, length) for s, length in spans if length < block_size]
    offsets = torch.arange(block_size + 1)
    produced = 0
    for i in range(0, len(full), batch_size):
        if max_batches is not None and produced >= max_batches:
            return
        starts = torch.tensor(full[i : i + batch_size])
        blocks = data[starts[:, None] + offsets]
        produced += 1
        yield EvalBatch(blocks[:, :-1], blocks[:, 1:])
    for start, length in partial:
        if max_batches is not None and produced >= max_batches:
            return
        block = data[start : start + length + 1][None, :]
        produced += 1
        yield EvalBatch(block[:, :-1], block[:, 1:])
