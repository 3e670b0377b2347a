"""Training one SNLI head on frozen features, with early stopping on dev accuracy.

Per seed: seed everything (head initialisation, dropout, batch order), train with AdamW (weight decay
on matrices only) under linear warmup and cosine decay over ``max_epochs`` (each step is
`gflow_lite.train.train_step` at the rate `gflow_lite.train.lr_at`, as in every training here), evaluate dev accuracy after
every epoch, keep the weights of the best dev epoch (ties keep the earlier), stop after ``patience``
epochs without improvement, and report dev and test accuracy of those weights. The test set is read
once per seed, after selection.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F

from ..train import Hyperparams, lr_at, make_optimizer, train_step
from ..training.device import seed_everything
from .dataset import EncodedSplit, eval_batches, train_batches
from .heads import HeadConfig, build_head, count_params

__all__ = ["TrainSettings", "SeedResult", "evaluate", "train_one_seed", "head_params"]


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings. The paper gives only "20 epochs"; the rest is ours. ``max_epochs`` is 6
    (early stopping with patience 3 inside it) so that three seeds of both heads fit in ~20 CPU-minutes
    on one core (~35 s of CPU per Grassmann epoch on the 1% sample, dev evaluation included)."""

    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    batch_size: int = 64
    eval_batch_size: int = 256
    max_epochs: int = 6
    patience: int = 3
    warmup_frac: float = 0.1
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        for name in ("batch_size", "eval_batch_size", "max_epochs", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainSettings.{name}={value!r} must be a positive integer")
        if not self.lr > 0:
            raise ValueError(f"TrainSettings.lr={self.lr!r} must be positive")

    def to_dict(self) -> Dict:
        return asdict(self)


@dataclass
class SeedResult:
    """What one seed produced."""

    seed: int
    dev_acc: float
    test_acc: float
    best_epoch: int
    epochs_run: int
    wall_s: float
    history: List[Dict] = field(default_factory=list)

    def to_dict(self) -> Dict:
        return asdict(self)


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: EncodedSplit, batch_size: int) -> Dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``data``."""
    was_training = model.training
    model.eval()
    correct, loss_sum = 0, 0.0
    for batch in eval_batches(data, batch_size):
        logits = model(batch)
        loss_sum += float(F.cross_entropy(logits, batch.labels, reduction="sum"))
        correct += int((logits.argmax(-1) == batch.labels).sum())
    model.train(was_training)
    return {"acc": correct / len(data), "loss": loss_sum / len(data)}


def train_one_seed(
    head: str,
    cfg: HeadConfig,
    settings: TrainSettings,
    train: EncodedSplit,
    dev: EncodedSplit,
    test: EncodedSplit,
    seed: int,
    log: Optional[Callable[[str], None]] = None,
) -> SeedResult:
    """Train ``head`` from seed ``seed``; return dev/test accuracy at the best dev epoch."""
    start = time.perf_counter()
    seed_everything(seed)
    model = build_head(head, cfg)
    steps_per_epoch = math.ceil(len(train) / settings.batch_size)
    max_steps = steps_per_epoch * settings.max_epochs
    hyper = Hyperparams(max_steps=max_steps, lr=settings.lr, min_lr=settings.lr * settings.min_lr_ratio,
                        warmup_steps=max(1, int(settings.warmup_frac * max_steps)),
                        weight_decay=settings.weight_decay, betas=(0.9, 0.999), grad_clip=settings.grad_clip)
    optimizer = make_optimizer(model, hyper)
    generator = torch.Generator().manual_seed(seed)
    best_acc, best_epoch, best_state = -1.0, 0, copy.deepcopy(model.state_dict())
    history: List[Dict] = []
    step, epoch = 0, 0

    def loss_fn(m: torch.nn.Module, batch) -> torch.Tensor:
        return F.cross_entropy(m(batch), batch.labels)

    for epoch in range(1, settings.max_epochs + 1):
        sizes: List[int] = []
        losses: List[float] = []
        for batch in train_batches(train, settings.batch_size, generator):
            sizes.append(len(batch))
            losses.append(train_step(model, batch, optimizer, lr=lr_at(step, hyper), grad_clip=hyper.grad_clip,
                                     loss_fn=loss_fn, step=step + 1))
            step += 1
        train_loss = sum(loss * n for loss, n in zip(losses, sizes, strict=True)) / sum(sizes)
        dev_metrics = evaluate(model, dev, settings.eval_batch_size)
        record = {"epoch": epoch, "train_loss": train_loss, "dev_acc": dev_metrics["acc"],
                  "dev_loss": dev_metrics["loss"], "elapsed_s": time.perf_counter() - start}
        history.append(record)
        if log is not None:
            log(f"  [{head} seed {seed}] epoch {epoch}: train loss {record['train_loss']:.4f}, "
                f"dev acc {record['dev_acc']:.4f} ({record['elapsed_s']:.0f}s)")
        if dev_metrics["acc"] > best_acc:
            best_acc, best_epoch, best_state = dev_metrics["acc"], epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= settings.patience:
            break
    model.load_state_dict(best_state)
    test_metrics = evaluate(model, test, settings.eval_batch_size)
    return SeedResult(
        seed=seed,
        dev_acc=best_acc,
        test_acc=test_metrics["acc"],
        best_epoch=best_epoch,
        epochs_run=epoch,
        wall_s=time.perf_counter() - start,
        history=history,
    )


def head_params(head: str, cfg: HeadConfig) -> int:
    """Trainable parameters of ``head`` under ``cfg``."""
    return count_params(build_head(head, cfg))
