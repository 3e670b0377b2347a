"""AdamW with linear warmup and cosine decay to ``min_lr``; weight decay only on weights of 2+ dims.

Biases, LayerNorm gains and other 1-D parameters are not decayed; matrices and embeddings (the tied
embedding / output matrix included, counted once) are.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> List[Dict]:
    """Two AdamW groups: parameters with ``dim() >= 2`` (decayed) and the rest (not decayed)."""
    decay, no_decay = [], []
    for _, param in model.named_parameters():  # named_parameters yields a tied tensor once
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(
    model: nn.Module, lr: float, weight_decay: float, betas: Tuple[float, float] = (0.9, 0.95)
) -> torch.optim.AdamW:
    """AdamW over `param_groups` (``foreach`` implementation; deterministic on the CPU)."""
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=betas)


def lr_at(step: int, *, lr: float, min_lr: float, warmup_steps: int, max_steps: int) -> float:
    """Learning rate for optimizer step ``step`` (0-based).

    Linear warmup ``lr * (step + 1) / warmup_steps`` for ``step < warmup_steps``, then cosine from ``lr``
    to ``min_lr`` at ``max_steps``; ``min_lr`` afterwards.
    """
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: torch.optim.Optimizer, *, lr: float, min_lr: float, warmup_steps: int, max_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following `lr_at` (its ``state_dict`` is the step count, enough to resume)."""
    if lr <= 0:
        raise ValueError(f"lr={lr} must be positive")

    def factor(step: int) -> float:
        return lr_at(step, lr=lr, min_lr=min_lr, warmup_steps=warmup_steps, max_steps=max_steps) / lr

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
