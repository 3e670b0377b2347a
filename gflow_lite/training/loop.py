"""The training step every training in gflow_lite runs, and the loop around it.

One optimizer step (`train_step`) is::

    for each micro-batch:   loss = loss_fn(model, batch); (loss / n_micro).backward()
    if the mean loss is not finite: stop, before the weights change   (NonFiniteLossError)
    clip the gradient norm; optimizer.step(); optimizer.zero_grad(); scheduler.step()

and `train_steps` repeats it over an iterable of batches. The language-model `Trainer` (checkpoints,
resume, signals, DDP) calls `train_step` once per step with its extras passed in (gradient scaler,
autocast, DDP's ``no_sync`` and loss all-reduce); the SNLI heads and the book's small demonstrations call
`train_steps` directly.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, ContextManager, Iterable, List, Optional, Sequence

import torch
from torch import nn

__all__ = ["NonFiniteLossError", "lm_loss", "train_step", "train_steps"]

LossFn = Callable[[nn.Module, Any], torch.Tensor]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the run stopped before updating the weights."""


def lm_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """Next-token cross-entropy of a language model: ``batch`` is ``(x, y)``, ``model(x, y)`` -> (logits, loss)."""
    x, y = batch
    _, loss = model(x, y)
    return loss


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    micro_batches: Sequence[Any],
    *,
    loss_fn: LossFn = lm_loss,
    scheduler: Optional[Any] = None,
    grad_clip: float = 1.0,
    scaler: Optional[torch.amp.GradScaler] = None,
    autocast: Callable[[], ContextManager] = contextlib.nullcontext,
    no_sync: Callable[[bool], ContextManager] = lambda skip: contextlib.nullcontext(),
    mean_loss: Optional[Callable[[torch.Tensor, int], float]] = None,
    step: Optional[int] = None,
) -> float:
    """One optimizer step over ``micro_batches`` (gradient accumulation); returns the mean loss.

    ``scaler`` (fp16), ``autocast`` and ``no_sync(skip)`` (DDP: skip the gradient all-reduce on all but the
    last micro-batch) are the Trainer's extras; ``mean_loss(loss_sum, n)`` turns the summed float64 loss
    into the mean (the Trainer all-reduces it over processes). ``scheduler.step()`` runs after the update.
    Raises `NonFiniteLossError` (gradients cleared, weights untouched) if the mean loss is NaN or inf.
    """
    model.train()
    n = len(micro_batches)
    loss_sum = torch.zeros((), dtype=torch.float64)
    for i, batch in enumerate(micro_batches):
        with no_sync(i < n - 1), autocast():
            loss = loss_fn(model, batch)
        scaled = loss / n
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        loss_sum = loss_sum.to(loss.device) + loss.detach().double()
    mean = mean_loss(loss_sum, n) if mean_loss is not None else float(loss_sum) / n
    if not math.isfinite(mean):
        optimizer.zero_grad(set_to_none=True)
        where = f" at step {step}" if step is not None else ""
        lr = optimizer.param_groups[0]["lr"]
        raise NonFiniteLossError(
            f"training loss is {mean}{where} (lr {lr:.3g}); stopped before updating the weights"
        )
    if grad_clip > 0:
        if scaler is not None:
            scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if scheduler is not None:
        scheduler.step()
    return mean


def train_steps(
    model: nn.Module,
    batches: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    schedule: Optional[Any] = None,
    *,
    loss_fn: LossFn = lm_loss,
    grad_clip: float = 1.0,
    first_step: int = 0,
    on_step: Optional[Callable[[int, float], Optional[bool]]] = None,
) -> List[float]:
    """One `train_step` per item of ``batches``; returns the losses.

    ``schedule`` is None, a torch LR scheduler (stepped after each update) or a function
    ``step -> lr`` (0-based step count, set on every parameter group before each update). Steps are
    numbered from ``first_step + 1``; ``on_step(step, loss)`` runs after each and may return True to stop.
    """
    scheduler = schedule if hasattr(schedule, "step") else None
    losses: List[float] = []
    for step, batch in enumerate(batches, start=first_step + 1):
        if schedule is not None and scheduler is None:
            for group in optimizer.param_groups:
                group["lr"] = schedule(step - 1)
        loss = train_step(
            model, optimizer, [batch], loss_fn=loss_fn, scheduler=scheduler, grad_clip=grad_clip, step=step
        )
        losses.append(loss)
        if on_step is not None and on_step(step, loss):
            break
    return losses
