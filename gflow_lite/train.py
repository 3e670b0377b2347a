"""Training a language model of `gflow_lite.model`: the whole loop in one short file.

Both models are trained the same way, on next-token cross-entropy. The paper states no optimiser,
learning rate, schedule or clipping (book/paper_notes.md §2.1); these are ours::

    for step = 0, 1, ..., max_steps - 1:
        lr   = lr_at(step)                       linear warmup, then a cosine down to min_lr
        loss = cross_entropy(model(x), y)        mean over the batch's tokens  (y = x shifted by one)
        loss.backward(); clip |grad| to grad_clip; AdamW step with rate lr
        every eval_interval steps: validation loss, perplexity = exp(loss)
    torch.save(model.state_dict(), out)

Typical use (batches are ``(x, y)`` pairs of token ids ``[B, T]`` on the model's device)::

    from gflow_lite.model import LMConfig, build_model
    from gflow_lite.train import Hyperparams, train
    model = build_model("grassmann", LMConfig(vocab_size=512, block_size=32, d_model=64, n_layers=2))
    losses = train(model, train_batches, val_batches, Hyperparams(max_steps=200, warmup_steps=20), "model.pt")

The run manager (`gflow_lite.training`: verified checkpoints, exact resume, signals, several GPUs, mixed
precision) runs this same `train` loop and this same `train_step`, passing its extras in through their
keyword arguments.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Iterator, List, Optional, Tuple

import torch
from torch import nn

__all__ = ["EvalResult", "Hyperparams", "NonFiniteLossError", "evaluate", "lm_loss", "lr_at",
           "make_optimizer", "perplexity", "train", "train_step"]


@dataclass(frozen=True)
class Hyperparams:
    """How long and how fast to train: the optimiser, the schedule and the evaluation interval."""

    max_steps: int = 2000
    lr: float = 6e-4  # the peak learning rate, reached after warmup_steps
    min_lr: float = 6e-5  # the rate at the end of the cosine
    warmup_steps: int = 200
    decay_steps: Optional[int] = None  # the cosine ends here (None: at max_steps); min_lr after it
    weight_decay: float = 0.01  # on matrices and embeddings only (see make_optimizer)
    betas: Tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # 0: no clipping
    eval_interval: int = 500


# ----------------------------------------------------------------------------------- the schedule
def lr_at(step: int, cfg: Any) -> float:
    """The learning rate of optimizer step ``step`` (counted from 0) under ``cfg`` (lr, min_lr,
    warmup_steps, max_steps, and optionally decay_steps): ``lr * (step + 1) / warmup_steps`` while
    ``step < warmup_steps``, then a cosine from ``lr`` down to ``min_lr`` at ``decay_steps`` (by default
    ``max_steps``), and ``min_lr`` after that."""
    end = getattr(cfg, "decay_steps", None) or cfg.max_steps  # where the cosine reaches min_lr
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if step >= end:
        return cfg.min_lr
    progress = (step - cfg.warmup_steps) / max(1, end - cfg.warmup_steps)  # 0 -> 1
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, cfg: Any) -> torch.optim.AdamW:
    """AdamW (``cfg.lr``, ``cfg.betas``) with weight decay ``cfg.weight_decay`` on the parameters of 2+
    dimensions (matrices, embeddings; a tied embedding counted once) and none on biases and LayerNorm gains."""
    params = [p for p in model.parameters() if p.requires_grad]  # a tied tensor is yielded once
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


# --------------------------------------------------------------------------------------- one step
class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the step stopped before updating the weights."""


def lm_loss(model: nn.Module, batch: Tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Next-token cross-entropy: ``model(x, y)`` returns ``(logits, loss)``."""
    x, y = batch
    _, loss = model(x, y)
    return loss


def train_step(model: nn.Module, batch: Any, optimizer: torch.optim.Optimizer, *,
               lr: Optional[float] = None, grad_clip: float = 1.0, loss_fn: Callable = lm_loss,
               step: Optional[int] = None, scaler: Optional[torch.amp.GradScaler] = None,
               autocast: Callable[[], ContextManager] = contextlib.nullcontext,
               no_sync: Callable[[bool], ContextManager] = lambda skip: contextlib.nullcontext(),
               mean_loss: Optional[Callable[[torch.Tensor, int], float]] = None) -> float:
    """One optimizer step on ``batch``; returns its loss.

    ``batch`` is one ``(x, y)``, or a list of them: gradient accumulation, one backward per micro-batch
    and one update with their mean gradient. ``lr`` (if given) is set on every parameter group first.
    The run manager's extras: ``scaler`` (fp16 loss scaling), ``autocast`` (a bf16/fp16 forward),
    ``no_sync(skip)`` (several GPUs: no gradient exchange before the last micro-batch) and
    ``mean_loss(loss_sum, n)`` (the loss averaged over all processes). Raises `NonFiniteLossError`, weights
    untouched and gradients cleared, if the loss is NaN or infinite (``step`` names the step in the message).
    """
    micro_batches = batch if isinstance(batch, list) else [batch]
    n = len(micro_batches)
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64)
    for i, micro in enumerate(micro_batches):
        with no_sync(i < n - 1), autocast():
            loss = loss_fn(model, micro)
        scaled = loss / n  # the gradient of the mean over micro-batches
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        loss_sum = loss_sum.to(loss.device) + loss.detach().double()
    mean = mean_loss(loss_sum, n) if mean_loss is not None else float(loss_sum) / n
    if not math.isfinite(mean):  # stop before the weights change
        optimizer.zero_grad(set_to_none=True)
        where = f" at step {step}" if step is not None else ""
        raise NonFiniteLossError(f"training loss is {mean}{where} (lr {optimizer.param_groups[0]['lr']:.3g}); "
                                 f"stopped before updating the weights")
    if grad_clip > 0:
        if scaler is not None:
            scaler.unscale_(optimizer)  # clip the true gradient, not the scaled one
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return mean


# ------------------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class EvalResult:
    """Mean cross-entropy per predicted token (nats), its exponential, and the number of tokens scored."""

    loss: float
    ppl: float
    tokens: int

    def to_dict(self) -> dict:
        return {"loss": self.loss, "ppl": self.ppl, "tokens": self.tokens}


def perplexity(loss: float) -> float:
    """``exp(loss)``, ``inf`` when it overflows."""
    return math.exp(loss) if loss < 700 else float("inf")


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[Tuple[torch.Tensor, torch.Tensor]]) -> EvalResult:
    """Mean loss per token over ``batches`` (dropout off) and its perplexity; the model's mode is restored."""
    was_training = model.training
    model.eval()
    loss_sum, tokens = 0.0, 0
    for x, y in batches:
        _, loss = model(x, y)  # the mean over this batch's tokens
        loss_sum += float(loss) * y.numel()
        tokens += y.numel()
    model.train(was_training)
    mean = loss_sum / max(tokens, 1)
    return EvalResult(mean, perplexity(mean), tokens)


# ----------------------------------------------------------------------------------------- the loop
def train(model: nn.Module, train_batches: Iterator[Any], val_batches: Any, cfg: Any,
          out: Optional[Path | str] = None, *, optimizer: Optional[torch.optim.Optimizer] = None,
          first_step: int = 0, step_fn: Callable[..., float] = train_step,
          evaluate_fn: Callable[[nn.Module, Any], Any] = evaluate,
          on_step: Optional[Callable[[int, float, float, Any], Optional[bool]]] = None) -> List[float]:
    """Train ``model`` for steps ``first_step .. cfg.max_steps - 1``; save it to ``out``; return the losses.

    Each step takes the next batch of ``train_batches``; every ``cfg.eval_interval`` steps and after the
    last, ``evaluate_fn(model, val_batches)`` scores the validation batches. ``on_step(step, loss, lr,
    val)`` runs after each step (``step`` counted from 1, ``val`` None between evaluations; without it
    the evaluations are printed) and may return True to stop. The run manager passes its own optimizer
    (restored on resume), ``first_step``, ``step_fn`` (the same step with its extras) and hooks.
    """
    optimizer = make_optimizer(model, cfg) if optimizer is None else optimizer
    losses: List[float] = []
    for step in range(first_step, cfg.max_steps):
        lr = lr_at(step, cfg)
        loss = step_fn(model, next(train_batches), optimizer, lr=lr, grad_clip=cfg.grad_clip, step=step + 1)
        losses.append(loss)
        done = step + 1
        val = None
        if done % cfg.eval_interval == 0 or done == cfg.max_steps:
            val = evaluate_fn(model, val_batches)
        if on_step is not None:
            if on_step(done, loss, lr, val):
                break
        elif val is not None:
            print(f"step {done}: train loss {loss:.4f}, val loss {val.loss:.4f}, ppl {val.ppl:.2f}")
    if out is not None:
        torch.save(model.state_dict(), out)
    return losses
