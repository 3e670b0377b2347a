"""Timing and memory of single mixing blocks (shared by the ``scaling`` and ``kernel`` benchmarks).

"One mixing block" is the sequence-mixer module alone, as the models use it: `CausalGrassmannMixing`
(reduction, Plücker pairing, projection, gate and blend) or `CausalSelfAttention` (QKV projection,
``scaled_dot_product_attention`` with ``is_causal=True``, output projection). No LayerNorm, FFN or
residual: those are identical in both models. One step is a forward on ``h: [B, L, d]`` (requiring a
gradient, as inside a network) and a backward from a fixed random output gradient, with the module's
and the input's gradients reset (``set_to_none``) before each step.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional

import torch
from torch import Tensor, nn

from ..kernels import release_scratch
from .memory import measure_memory
from .timing import interleaved

__all__ = ["block_step", "measure_blocks", "memory_methods", "split_lengths"]


def block_step(module: nn.Module, h: Tensor, grad_out: Tensor) -> Callable[[], None]:
    """A closure running one forward+backward of ``module`` on ``h``."""

    def step() -> None:
        module.zero_grad(set_to_none=True)
        h.grad = None
        module(h).backward(grad_out)

    return step


def block_options(cfg: Any) -> Dict[str, Any]:
    """The `measure_blocks` options a block benchmark's config holds (batch, width, rounds, budget, ...)."""
    names = ("batch", "d_model", "rounds", "budget_s", "memory", "seed")
    return {name: getattr(cfg, name) for name in names}


def measure_blocks(
    modules: Mapping[str, nn.Module],
    *,
    batch: int,
    seq_len: int,
    d_model: int,
    device: torch.device,
    rounds: int,
    budget_s: Optional[float],
    memory: bool,
    seed: int = 0,
) -> Dict[str, Dict[str, Optional[float]]]:
    """Median time (interleaved rounds) and memory of a forward+backward of each module at one length.

    Returns ``{name: {"ms", "cpu_ms", "iqr_ms", "rounds", "peak_mb", "saved_mb"}}``.
    """
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(batch, seq_len, d_model, generator=gen).to(device).requires_grad_(True)
    grad_out = torch.randn(batch, seq_len, d_model, generator=gen).to(device)
    steps = {name: block_step(m, h, grad_out) for name, m in modules.items()}
    timings = interleaved(steps, rounds=rounds, warmup=1, device=device, budget_s=budget_s)
    out: Dict[str, Dict[str, Optional[float]]] = {}
    for name, module in modules.items():
        row: Dict[str, Optional[float]] = dict(timings[name].summary())
        if memory:
            h.grad = None
            release_scratch()  # so that the kernels's scratch counts inside the measured step
            use = measure_memory(
                lambda: module(h), lambda y: y.backward(grad_out), module.parameters(), device
            )
            row.update(peak_mb=use.peak_mb, saved_mb=use.saved_mb)
        else:
            row.update(peak_mb=None, saved_mb=None)
        out[name] = row
    return out


def memory_methods() -> Dict[str, str]:
    from .memory import PEAK_METHOD_CPU, PEAK_METHOD_CUDA, SAVED_METHOD

    return {
        "peak_mb": f"CPU: {PEAK_METHOD_CPU}; CUDA: {PEAK_METHOD_CUDA}; MiB above the state before the step",
        "saved_mb": f"{SAVED_METHOD}; MiB",
    }


def split_lengths(records: List[dict], key: str, value: str) -> List[dict]:
    """The records whose ``key`` equals ``value``, sorted by ``seq_len``."""
    return sorted((r for r in records if r[key] == value), key=lambda r: r["seq_len"])
