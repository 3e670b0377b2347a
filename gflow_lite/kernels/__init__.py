"""Speed, opt-in: the Grassmann layer as one hand-written autograd node, chosen by ``LMConfig.impl``.

* ``impl="fused"`` (`gflow_lite.kernels.fused`): (G1)-(G6) as one node of ATen ops, with the backward
  written by hand; any device.
* ``impl="native"`` (`gflow_lite.kernels.native`): the same node with its elementwise work in C++
  (``csrc/grassmann_cpu.cpp``), built once with the machine's compiler; the CPU only. Where it cannot be
  built, or on another device, it runs the fused node and says why once.

Both compute the function of the plain paths in `gflow_lite.model` (tested equal to them: tests/test_fused.py,
tests/test_native.py); chapter 4 derives them. The model names neither: importing this package adds them
to `gflow_lite.model.KERNELS`, where `CausalGrassmannMixing` looks its ``impl`` up once, when it is built.
"""

from __future__ import annotations

import torch

from ..model import KERNELS
from . import fused, native

__all__ = ["release_scratch"]


def release_scratch() -> int:
    """Free this thread's scratch buffers of both kernels; returns the bytes released (memory benchmarks
    call it first, so that the scratch is allocated inside the measured step)."""
    return fused.release_scratch() + native.release_scratch()


def _as_kernel(node):
    """``node(h, past, offsets, a, weights..., normalize, eps) -> (h̃, z)`` as a `KERNELS` entry: the
    layer's `mix` (``(layer, h, past, a) -> (h̃, z_ctx)``, ``z_ctx`` the reduced states of ``[past; h]``)."""

    def kernel(layer, h, past, a):
        h_mix, z = node(h, past, layer.offsets, a, layer.W_red.weight, layer.W_red.bias, layer.W_plu.weight,
                        layer.W_plu.bias, layer.W_gate.weight, layer.W_gate.bias, layer.normalize, layer.eps)
        return h_mix, (z if past is None else torch.cat([past.to(z.dtype), z], dim=1))

    return kernel


KERNELS["fused"] = _as_kernel(fused.fused_grassmann_layer)
KERNELS["native"] = _as_kernel(native.native_grassmann_layer)
