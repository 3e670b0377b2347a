"""The short training loop of the book's small demonstrations, and a stream of random tokens.

Chapter 0 (two tiny models side by side), chapter 3 (the leak) and chapter 7 (snapshots of a trained
model) train small models with this loop: AdamW, a linear warmup then a cosine decay of the learning
rate, gradient clipping, one loss per step; each step is the library's `gflow_lite.train.train_step`.
Chapter 3 writes the same loop out line by line and asserts that it gives the same losses. The
paper-sized runs use the library's run manager (``gflow_lite.training``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, List, Tuple

import torch
from torch import Tensor, nn

from gflow_lite.train import train_step

__all__ = ["TrainLog", "train_lm", "evaluate_lm", "random_token_batches", "model_device", "lr_at"]

Batch = Tuple[Tensor, Tensor]


@dataclass
class TrainLog:
    """Per-step training losses, held-out losses (step, loss), and wall time."""

    losses: List[float] = field(default_factory=list)
    evals: List[Tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0

    def smoothed(self, window: int = 20) -> List[float]:
        """Trailing moving average of the training loss (for plots)."""
        out, acc = [], 0.0
        for i, x in enumerate(self.losses):
            acc += x
            if i >= window:
                acc -= self.losses[i - window]
            out.append(acc / min(i + 1, window))
        return out


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def evaluate_lm(model: nn.Module, next_batch: Callable[[], Batch], n_batches: int) -> float:
    """Mean loss over ``n_batches`` batches, in eval mode (dropout off); restores the mode."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    total = 0.0
    for _ in range(n_batches):
        x, y = next_batch()
        _, loss = model(x.to(device), y.to(device))
        total += loss.item()
    model.train(was_training)
    return total / n_batches


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Learning rate of step ``step`` (1-based): linear warmup over ``warmup`` steps, then cosine to 0.1 lr."""
    if step <= warmup:
        return lr * step / warmup
    progress = (step - warmup) / max(steps - warmup, 1)
    return lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def train_lm(
    model: nn.Module,
    next_batch: Callable[[], Batch],
    steps: int,
    lr: float,
    *,
    warmup: int = 0,
    weight_decay: float = 0.01,
    clip: float = 1.0,
    eval_batch: Callable[[], Batch] | None = None,
    eval_every: int = 0,
    eval_batches: int = 4,
) -> TrainLog:
    """Train ``model`` (returning ``(logits, loss)`` from ``model(x, y)``) for ``steps`` AdamW steps.

    ``warmup > 0``: the learning rate follows `lr_at` (warmup, then cosine decay); ``warmup = 0``: it stays
    ``lr``. ``next_batch()`` returns ``(x, y)`` on the CPU; they are moved to the model's device. With
    ``eval_batch`` and ``eval_every > 0`` the held-out loss is recorded every ``eval_every`` steps and at
    the end. Raises if the loss becomes non-finite.
    """
    device = model_device(model)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    log = TrainLog()
    start = time.perf_counter()

    for step in range(1, steps + 1):
        batch = tuple(t.to(device) for t in next_batch())
        rate = lr_at(step, steps, lr, warmup) if warmup else None
        log.losses.append(train_step(model, batch, opt, lr=rate, grad_clip=clip or 0.0, step=step))
        if eval_batch is not None and eval_every > 0 and (step % eval_every == 0 or step == steps):
            log.evals.append((step, evaluate_lm(model, eval_batch, eval_batches)))
    log.seconds = time.perf_counter() - start
    return log


def random_token_batches(vocab_size: int, batch_size: int, block_size: int, seed: int) -> Callable[[], Batch]:
    """Batches of i.i.d. uniform tokens: ``y`` is ``x`` shifted by one inside a stream of ``block_size + 1``.

    No causal model can predict such a stream: its best loss is ``ln(vocab_size)``.
    """
    gen = torch.Generator().manual_seed(seed)

    def next_batch() -> Batch:
        block = torch.randint(0, vocab_size, (batch_size, block_size + 1), generator=gen)
        return block[:, :-1], block[:, 1:]

    return next_batch
