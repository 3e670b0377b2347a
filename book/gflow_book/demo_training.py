"""The short training loop of the book's small demonstrations, and a stream of random tokens.

Chapter 0 (two tiny models side by side), chapter 3 (the leak) and chapter 7 (snapshots of a trained
model) train small models with this loop: AdamW, a linear warmup then a cosine decay of the learning
rate (the library's `gflow_lite.train.lr_at`, down to a tenth of the peak), gradient clipping, one loss
per step; each step is the library's `gflow_lite.train.train_step`.
Chapter 3 writes the same loop out line by line and asserts that it gives the same losses. The
paper-sized runs use the library's run manager (``gflow_lite.training``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, List, Tuple

import torch
from torch import Tensor, nn

from gflow_lite.train import Hyperparams, lr_at, train_step

__all__ = ["TrainLog", "train_lm", "evaluate_lm", "random_token_batches", "model_device", "demo_schedule"]

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


def demo_schedule(steps: int, lr: float, warmup: int) -> Hyperparams:
    """The schedule of the demos, as the library's `Hyperparams`: ``gflow_lite.train.lr_at(step, ...)`` of
    it warms up linearly over ``warmup`` steps to ``lr``, then follows a cosine down to ``lr / 10`` at
    ``steps`` (``step`` counted from 0, as the library does)."""
    return Hyperparams(max_steps=steps, lr=lr, min_lr=lr / 10, warmup_steps=warmup)


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

    ``warmup > 0``: the learning rate of step ``step`` (from 0) is
    ``gflow_lite.train.lr_at(step, demo_schedule(steps, lr, warmup))`` (warmup, then cosine decay to a tenth);
    ``warmup = 0``: it stays ``lr``. ``next_batch()`` returns ``(x, y)`` on the CPU; they are moved to the model's device. With
    ``eval_batch`` and ``eval_every > 0`` the held-out loss is recorded every ``eval_every`` steps and at
    the end. Raises if the loss becomes non-finite.
    """
    device = model_device(model)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    log = TrainLog()
    start = time.perf_counter()

    schedule = demo_schedule(steps, lr, warmup) if warmup else None

    for step in range(steps):
        batch = tuple(t.to(device) for t in next_batch())
        rate = lr_at(step, schedule) if schedule is not None else None
        log.losses.append(train_step(model, batch, opt, lr=rate, grad_clip=clip or 0.0, step=step))
        done = step + 1  # steps taken so far: the held-out losses are recorded after steps done
        if eval_batch is not None and eval_every > 0 and (done % eval_every == 0 or done == steps):
            log.evals.append((done, evaluate_lm(model, eval_batch, eval_batches)))
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
