"""Will a training configuration fit in memory? An estimate made before the large allocations.

Training memory is, roughly, the parameters four times (weights, gradients and AdamW's two moments) plus
the activations kept for the backward pass, which grow linearly with the micro-batch. The activations
per sequence are measured, not guessed: one forward pass (eval mode, so no dropout mask is drawn; the
margin covers those masks) at batch 1 and at batch 2 under
``torch.autograd.graph.saved_tensors_hooks`` adds up the bytes of every tensor autograd keeps, and the
difference is the cost of one more sequence. With a margin of 1.5 for transient buffers the estimate is
compared with the memory the device has available (``MemAvailable`` and the cgroup limit on the CPU,
``torch.cuda.mem_get_info`` on CUDA); `MemoryEstimateError` refuses a configuration that cannot fit,
with a batch size that would. ``GFLOW_NO_MEMORY_CHECK=1`` skips the check.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Optional

import torch
from torch import nn

from ..geometry import n_plucker
from ..model import LMConfig
from ..options import ConfigError, env_flag

#: Bytes per parameter during training: fp32 weights, gradients and two AdamW moments.
BYTES_PER_PARAM = 16
#: Head room for buffers that are not kept for backward (softmax temporaries, allocator slack).
MARGIN = 1.5

GiB = 2**30


class MemoryEstimateError(ConfigError):
    """The configuration needs more memory than the device has available."""


@dataclass(frozen=True)
class MemoryEstimate:
    static_bytes: int  # parameters, gradients, optimizer state, and what a forward keeps regardless of batch
    per_sequence_bytes: int  # activations kept for backward, per sequence of block_size tokens
    batch: int  # sequences per micro-step (on this process)

    @property
    def total_bytes(self) -> int:
        return int(self.static_bytes + MARGIN * self.per_sequence_bytes * self.batch)

    def largest_batch(self, available: int) -> int:
        return max(0, int((available - self.static_bytes) / (MARGIN * max(self.per_sequence_bytes, 1))))


def saved_bytes(model: nn.Module, batch: int, block_size: int, vocab_size: int, device: torch.device,
                autocast: Callable[[], ContextManager] = contextlib.nullcontext) -> int:
    """Bytes of the tensors autograd keeps for one forward of ``batch`` random sequences (graph freed)."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    x = torch.randint(0, vocab_size, (batch, block_size), generator=torch.Generator().manual_seed(0))
    x = x.to(device)
    was_training = model.training
    model.eval()  # no dropout: the RNG and the model's training-mode forwards stay untouched
    try:
        with torch.random.fork_rng(devices=[]), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            with autocast():
                _, loss = model(x, x)
        del loss
    finally:
        model.train(was_training)
    return total


def estimate(model: nn.Module, batch: int, block_size: int, vocab_size: int, device: torch.device,
             autocast: Callable[[], ContextManager] = contextlib.nullcontext) -> MemoryEstimate:
    """The `MemoryEstimate` of training ``model`` with micro-batches of ``batch`` sequences."""
    params = sum(p.numel() for p in model.parameters())
    one = saved_bytes(model, 1, block_size, vocab_size, device, autocast)
    two = saved_bytes(model, 2, block_size, vocab_size, device, autocast)
    per_sequence = max(two - one, 0)
    return MemoryEstimate(params * BYTES_PER_PARAM + max(one - per_sequence, 0), per_sequence, batch)


def _cgroup_available() -> Optional[int]:
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((root / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None


def available_bytes(device: torch.device) -> Optional[int]:
    """Memory available for a new allocation on ``device`` (None where it cannot be told)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    cgroup = _cgroup_available()
    if cgroup is not None:
        found.append(cgroup)
    return min(found) if found else None


def param_count(arch: str, cfg: LMConfig) -> int:
    """The parameters of ``build_model(arch, cfg)`` counted from the config alone (no allocation; tied
    weights once): what lets a size be refused before a 2 TB tensor is asked for."""
    d = cfg.d_model
    total = cfg.vocab_size * d + (cfg.block_size * d if cfg.pos_emb == "learned" else 0) + 2 * d
    total += 0 if cfg.tie_weights else cfg.vocab_size * d
    for layer in range(cfg.n_layers):
        total += 4 * d + 2 * d * cfg.d_ff + cfg.d_ff + d  # two LayerNorms, the FFN
        if arch == "transformer":
            total += 4 * d * d + 4 * d  # qkv and the output projection
            continue
        width = {"plucker": n_plucker(cfg.r), "concat": 2 * cfg.r, "outer": cfg.r * cfg.r}[cfg.pair]
        total += d * cfg.r + cfg.r + width * d + d + 2 * d * d + d  # W_red, W_plu, W_gate
        total += d * d + d if cfg.out_proj else 0
        total += len(cfg.layer_offsets(layer)) if cfg.aggregate == "learned" else 0
    return total


def check_size(arch: str, cfg: LMConfig, device: torch.device, *, training: bool) -> None:
    """Before the model is built: `MemoryEstimateError` if its parameters alone (with gradients and AdamW's
    moments when training) cannot fit in the memory available."""
    if env_flag("GFLOW_NO_MEMORY_CHECK"):
        return
    n = param_count(arch, cfg)
    need = n * (BYTES_PER_PARAM if training else 4)
    available = available_bytes(device)
    if available is not None and need > available:
        raise MemoryEstimateError(
            f"a {arch} model with d_model={cfg.d_model}, n_layers={cfg.n_layers}, d_ff={cfg.d_ff}, "
            f"vocab_size={cfg.vocab_size} has {n:,} parameters: {need / GiB:,.1f} GiB to "
            f"{'train' if training else 'load'} on {device}, but {available / GiB:.1f} GiB are available; choose a "
            f"smaller model (GFLOW_NO_MEMORY_CHECK=1 skips this check)"
        )


def check_fits(model: nn.Module, *, batch: int, block_size: int, vocab_size: int, device: torch.device,
               autocast: Callable[[], ContextManager] = contextlib.nullcontext,
               available: Optional[int] = None) -> Optional[MemoryEstimate]:
    """Raise `MemoryEstimateError` if training ``model`` at micro-batch ``batch`` cannot fit on ``device``."""
    if env_flag("GFLOW_NO_MEMORY_CHECK"):
        return None
    available = available_bytes(device) if available is None else available
    if available is None:
        return None
    est = estimate(model, batch, block_size, vocab_size, device, autocast)
    if est.total_bytes > available:
        fits = est.largest_batch(available)
        advice = (
            f"lower batch_size (at most about {fits} per process fits; e.g. --set batch_size={max(fits, 1)} "
            f"grad_accum=N keeps the effective batch)"
            if fits >= 1
            else "the model alone does not fit: choose a smaller model (d_model, n_layers, vocab)"
        )
        raise MemoryEstimateError(
            f"batch_size {batch} x block_size {block_size} needs about {est.total_bytes / GiB:.1f} GiB to "
            f"train on {device} but {available / GiB:.1f} GiB are available; {advice} "
            f"(GFLOW_NO_MEMORY_CHECK=1 skips this check)"
        )
    return est
