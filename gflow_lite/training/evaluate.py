"""Perplexity over a whole split: every token predicted exactly once, no overlap (see `eval_blocks`).

The run manager's version of `gflow_lite.train.evaluate`: the same mean loss per token and perplexity
(`EvalResult`), over a whole split cut into blocks, summed exactly, under autocast and sharded over
processes under DDP.
"""

from __future__ import annotations

import contextlib
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.batching import eval_blocks
from ..train import EvalResult, perplexity
from .device import Precision
from .distributed import SINGLE_PROCESS, DistContext, all_reduce_sum


@torch.no_grad()
def evaluate(
    model: nn.Module,
    ids: np.ndarray | torch.Tensor,
    *,
    block_size: int,
    batch_size: int,
    device: torch.device | str = "cpu",
    precision: Optional[Precision] = None,
    max_batches: Optional[int] = None,
    ctx: DistContext = SINGLE_PROCESS,
) -> EvalResult:
    """Loss and perplexity of ``model`` on ``ids`` with non-overlapping blocks of ``block_size``.

    The targets ``ids[1:]`` are each scored once (the last block may be shorter); ``max_batches`` scores
    only the first batches. Under DDP each process scores every ``world_size``-th batch and the sums are
    added up. The model is put in eval mode and restored afterwards.
    """
    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)  # [sum of losses, number of tokens]
    try:
        for i, batch in enumerate(eval_blocks(ids, block_size, batch_size, max_batches)):
            if i % ctx.world_size != ctx.rank:
                continue
            x, y = batch.x.to(device), batch.y.to(device)
            with precision.autocast() if precision is not None else contextlib.nullcontext():
                logits = model(x)
            loss = F.cross_entropy(
                logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"
            )
            total[0] += loss.double()
            total[1] += y.numel()
    finally:
        model.train(was_training)
    all_reduce_sum(total, ctx)
    loss_sum, count = float(total[0]), int(total[1])
    if count == 0:
        raise ValueError(f"nothing to evaluate: {len(ids)} tokens give no target")
    mean = loss_sum / count
    return EvalResult(loss=mean, ppl=perplexity(mean), tokens=count)
