"""Quick or full: the one switch that sizes the book's experiments.

Every chapter asks `quick_mode()` (or `sizes()`) and prints `describe_mode()` so that a reader always
knows which mode produced the numbers on the page.

The switch is the environment variable ``GFLOW_QUICK``:

* ``GFLOW_QUICK=1`` (also ``true``, ``yes``, ``on``): quick mode. Tiny models and few steps: every
  chapter runs on 2 CPU cores in about a minute. CI, ``make test`` and ``make book`` set it.
* ``GFLOW_QUICK=0`` (also ``false``, ``no``, ``off``): full mode. Larger models, more steps; meant for a
  CUDA GPU (Colab with a GPU runtime, a workstation).
* unset or empty: full mode when a CUDA GPU is visible, quick mode otherwise (a laptop, Binder).

Any other value is an error: a typo must not silently pick a mode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["QUICK_ENV", "quick_mode", "Sizes", "QUICK", "FULL", "sizes", "by_mode", "describe_mode"]

#: The environment variable read by `quick_mode`.
QUICK_ENV = "GFLOW_QUICK"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

T = TypeVar("T")


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def quick_mode() -> bool:
    """True for quick mode, False for full mode (see the module docstring for the rule)."""
    raw = os.environ.get(QUICK_ENV)
    if raw is None or raw.strip() == "":
        return not _cuda_available()
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{QUICK_ENV}={raw!r} is not understood; use {QUICK_ENV}=1 (quick, CPU-sized) or "
        f"{QUICK_ENV}=0 (full, GPU-sized), or leave it unset (full only when a CUDA GPU is present)"
    )


@dataclass(frozen=True)
class Sizes:
    """Sizes of the small language models the book trains for its demonstrations.

    Chapters use these for the tiny side-by-side runs (chapter 0), the leak experiment (chapter 2) and
    similar; the paper-sized runs of later chapters have their own presets.
    """

    name: str
    block_size: int  # tokens per training sequence
    d_model: int  # model width d
    n_layers: int  # layers
    r: int  # reduced width of the Grassmann layer
    d_ff: int  # feed-forward width
    n_heads: int  # attention heads of the Transformer baseline
    batch_size: int  # sequences per step
    steps: int  # optimisation steps per run
    lr: float  # AdamW learning rate
    eval_batches: int  # batches averaged for a held-out loss


QUICK = Sizes("quick", block_size=64, d_model=64, n_layers=2, r=8, d_ff=256, n_heads=4,
              batch_size=16, steps=300, lr=3e-3, eval_batches=8)
FULL = Sizes("full", block_size=128, d_model=128, n_layers=4, r=16, d_ff=512, n_heads=4,
             batch_size=32, steps=3000, lr=1e-3, eval_batches=50)


def sizes(quick: bool | None = None) -> Sizes:
    """`QUICK` or `FULL`; ``quick=None`` asks `quick_mode()`."""
    return QUICK if (quick_mode() if quick is None else quick) else FULL


def by_mode(quick: T, full: T) -> T:
    """``quick`` in quick mode, ``full`` in full mode: for a one-off size a chapter needs."""
    return quick if quick_mode() else full


def describe_mode() -> str:
    """One line saying which mode runs and why; every chapter prints it."""
    raw = os.environ.get(QUICK_ENV)
    why = f"{QUICK_ENV}={raw}" if raw not in (None, "") else (
        f"{QUICK_ENV} unset, " + ("a CUDA GPU is present" if _cuda_available() else "no CUDA GPU"))
    s = sizes()
    return f"{s.name} mode ({why}): d_model={s.d_model}, {s.n_layers} layers, {s.steps} training steps"
