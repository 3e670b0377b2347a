"""Device, numeric precision, optional compilation and seeding.

* Device: ``"auto"`` picks CUDA, then Apple MPS, then the CPU; any ``torch.device`` string overrides.
* Precision: ``"auto"`` is bf16 autocast on CUDA GPUs that support it, fp16 autocast with a
  ``torch.amp.GradScaler`` on older CUDA GPUs, and plain fp32 on CPU and MPS. ``"fp32"``, ``"bf16"``
  and ``"fp16"`` force a choice (fp16 only on CUDA).
* ``torch.compile`` is optional and off by default.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass
from typing import ContextManager, Optional

import numpy as np
import torch

from ..options import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def choose_device(override: str = "auto") -> torch.device:
    """``"auto"`` -> cuda, mps or cpu (first available); otherwise ``torch.device(override)``, checked."""
    if override == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(override)
    except RuntimeError as err:
        raise ConfigError(
            f"device={override!r} is not a valid torch device ('auto', 'cpu', 'cuda', 'cuda:1', 'mps')"
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={override!r} requested but CUDA is not available; use device=auto or device=cpu"
        )
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ConfigError(
            f"device={override!r} requested but MPS is not available; use device=auto or device=cpu"
        )
    return device


@dataclass(frozen=True)
class Precision:
    """How forward passes run: ``name`` in fp32/bf16/fp16, and whether a gradient scaler is needed."""

    name: str
    device_type: str

    @property
    def dtype(self) -> Optional[torch.dtype]:
        """The autocast dtype, or None for plain fp32."""
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def uses_scaler(self) -> bool:
        return self.name == "fp16"

    def autocast(self) -> ContextManager:
        """An autocast context for this precision (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler, enabled only for fp16 (a disabled scaler is a transparent pass-through)."""
        return torch.amp.GradScaler(self.device_type if self.uses_scaler else "cpu", enabled=self.uses_scaler)


def choose_precision(device: torch.device, override: str = "auto") -> Precision:
    """The precision for ``device`` (see the module docstring)."""
    if override not in PRECISIONS:
        raise ConfigError(f"precision={override!r} is not one of {PRECISIONS}")
    if override == "auto":
        if device.type == "cuda":
            return Precision("bf16" if torch.cuda.is_bf16_supported() else "fp16", "cuda")
        return Precision("fp32", device.type)
    if override == "fp16" and device.type != "cuda":
        raise ConfigError(f"precision=fp16 needs a CUDA device (got {device}); use fp32 or bf16")
    return Precision(override, device.type)


def maybe_compile(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """``torch.compile(model)`` when ``enabled``, else ``model`` unchanged."""
    return torch.compile(model) if enabled else model


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices); optionally ask torch for deterministic kernels.

    ``deterministic=True`` sets ``torch.use_deterministic_algorithms(True, warn_only=True)``, turns off
    cuDNN autotuning and sets ``CUBLAS_WORKSPACE_CONFIG`` if unset, so CUDA matmuls are reproducible.
    CPU runs in this package are bitwise reproducible with it.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
