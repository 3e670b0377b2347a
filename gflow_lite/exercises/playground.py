"""Small tasks and a minimal training loop for the book's demonstrations.

The book trains tiny models in a few chapters (the side-by-side tour of chapter 0, the leak experiment
of chapter 2). They share this loop instead of copying it: AdamW, gradient clipping, one loss per step,
seeded. It is deliberately small; the paper-sized runs use the full trainer.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, List, Tuple

import torch
from torch import Tensor, nn

__all__ = ["TrainLog", "train_lm", "evaluate_lm", "random_token_batches", "model_device"]

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


def train_lm(
    model: nn.Module,
    next_batch: Callable[[], Batch],
    steps: int,
    lr: float,
    *,
    weight_decay: float = 0.01,
    clip: float = 1.0,
    eval_batch: Callable[[], Batch] | None = None,
    eval_every: int = 0,
    eval_batches: int = 4,
) -> TrainLog:
    """Train ``model`` (returning ``(logits, loss)`` from ``model(x, y)``) for ``steps`` AdamW steps.

    ``next_batch()`` returns ``(x, y)`` on the CPU; they are moved to the model's device. With
    ``eval_batch`` and ``eval_every > 0`` the held-out loss is recorded every ``eval_every`` steps and at
    the end. Raises if the loss becomes non-finite.
    """
    device = model_device(model)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    log = TrainLog()
    start = time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        x, y = next_batch()
        _, loss = model(x.to(device), y.to(device))
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"loss became {value} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        log.losses.append(value)
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
