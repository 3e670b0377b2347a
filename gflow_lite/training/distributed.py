"""Data-parallel training with ``torchrun`` and DistributedDataParallel.

Launch: ``torchrun --nproc_per_node N -m gflow_lite train ...``. The backend is NCCL on CUDA and gloo on
the CPU. Every process draws the same global batch (the batch generator has the same seed everywhere)
and keeps its own contiguous shard of ``batch_size / world_size`` rows, so the shards of a global batch
are disjoint and together the whole batch; DDP averages gradients, which equals the gradient of the
mean loss over the global batch. Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) everything
here is a no-op for a single process.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import ContextManager, Tuple

import torch
import torch.distributed as dist
from torch import nn

from .device import choose_device


@dataclass(frozen=True)
class DistContext:
    """Rank, world size and local rank of this process (``world_size == 1`` without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


#: The context of a run without torchrun.
SINGLE_PROCESS = DistContext()


def init_distributed(device_override: str = "auto") -> Tuple[DistContext, torch.device]:
    """Join the process group started by torchrun (if any) and pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return SINGLE_PROCESS, choose_device(device_override)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = choose_device(device_override)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world_size, local_rank), device


def shard(batch: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's contiguous slice of a global batch (dimension 0)."""
    if not ctx.enabled:
        return batch
    if batch.shape[0] % ctx.world_size:
        raise ValueError(
            f"batch_size={batch.shape[0]} is not divisible by the number of processes {ctx.world_size}"
        )
    per_rank = batch.shape[0] // ctx.world_size
    return batch[ctx.rank * per_rank : (ctx.rank + 1) * per_rank]


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``tensor`` over all processes (in place; returned for chaining)."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def wrap_model(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` under torchrun, else ``model``."""
    if not ctx.enabled:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def no_sync(model: nn.Module, skip_sync: bool) -> ContextManager:
    """Skip DDP's gradient all-reduce for accumulation micro-steps before the last."""
    if skip_sync and isinstance(model, nn.parallel.DistributedDataParallel):
        return model.no_sync()
    return contextlib.nullcontext()


def shutdown() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
