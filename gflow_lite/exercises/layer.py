"""Checks for chapter 2 (the layer): receptive field, the fast partner w_t, a causality detector."""

from __future__ import annotations

from typing import Callable, Tuple

import torch
from torch import Tensor

from ..model import LMConfig
from ..geometry import normalize_plucker, plucker
from ..model import CausalGrassmannMixing, shift_back
from ._core import Mismatch, expect_close, expect_equal, make_generator, run_check
from .counterexamples import leaky_mixing

__all__ = ["check_receptive_field", "check_fast_partner", "check_dependency_matrix",
           "mean_normalized_wedge"]


def check_receptive_field(fn: Callable[[Tuple[int, ...], int, str], int]) -> bool:
    """``fn(offsets, n_layers, offset_mode)`` must equal `LMConfig.receptive_field`."""

    def case(offsets, n_layers, mode):
        def run(f):
            cfg = LMConfig(vocab_size=8, block_size=8, d_model=8, n_heads=1, d_ff=8, r=2, n_layers=n_layers,
                           offsets=offsets, offset_mode=mode)
            out = f(tuple(offsets), n_layers, mode)
            expect_equal(None if out is None else int(out), cfg.receptive_field(),
                         f"offsets={tuple(offsets)}, n_layers={n_layers}, offset_mode={mode!r}")
        return run

    paper6, paper12 = (1, 2, 4, 8, 12, 16), (1, 1, 2, 2, 4, 4, 8, 8, 12, 12, 16, 16)
    cases = [case(paper6, 6, "per_layer"), case(paper6, 6, "all"), case(paper12, 12, "per_layer"),
             case(paper12, 12, "all"), case((1, 2, 4, 8, 8, 8), 6, "per_layer"), case((3,), 1, "all"),
             case((5, 1, 2), 3, "per_layer"), case((2, 7, 7, 1), 2, "all")]
    return run_check("2.1 receptive field", fn, cases,
                     hint="a token can travel back at most max(offsets of the layer) per layer; 'all' gives "
                          "every layer every offset, 'per_layer' gives layer i only offsets[i]")


def mean_normalized_wedge(z: Tensor, offsets: Tuple[int, ...], eps: float) -> Tensor:
    """The reference side of (G2)-(G4) before projection: mean over valid Δ of ``normalise(z_t ∧ z_{t-Δ})``.

    Built from the library's pieces (`shift_back`, `plucker`, `normalize_plucker` and the layer's own
    offset weights); zero where no offset is valid.
    """
    layer = CausalGrassmannMixing(2, z.shape[-1], offsets, eps=eps)
    a, _ = layer.offset_weights(torch.arange(z.shape[1]), z.dtype)  # [T, m]
    out = 0.0
    for k, delta in enumerate(layer.offsets):
        p = normalize_plucker(plucker(z, shift_back(z, delta)), eps)
        out = out + a[:, k, None] * p
    return out


def check_fast_partner(fn: Callable[[Tensor, Tuple[int, ...], float], Tensor]) -> bool:
    """``fn(z, offsets, eps) -> w`` must satisfy ``z_t ∧ w_t = mean_Δ normalise(z_t ∧ z_{t-Δ})``.

    ``w`` is only defined up to adding multiples of ``z_t`` (``z_t ∧ z_t = 0``), so the check compares
    ``plucker(z, w)`` with the library's mean of normalised wedges, not ``w`` itself.
    """

    def case(B, T, r, offsets, eps, seed, kind="random", scale=1.0):
        def run(f):
            z = scale * torch.randn(B, T, r, generator=make_generator(seed), dtype=torch.float64)
            if kind == "parallel":  # z_1 parallel to z_0: a degenerate pair
                z[:, 1] = 2.0 * z[:, 0]
            w = f(z.clone(), tuple(offsets), eps)
            what = f"z of shape {(B, T, r)}, offsets={tuple(offsets)}, eps={eps:g} ({kind})"
            if w is None:
                raise Mismatch(f"{what}: your function returned None")
            if tuple(w.shape) != tuple(z.shape):
                raise Mismatch(f"{what}: w has shape {tuple(w.shape)}, expected {tuple(z.shape)} (one w_t per z_t)")
            expect_close(plucker(z, w), mean_normalized_wedge(z, tuple(offsets), eps), what, rtol=1e-7, atol=1e-9)
        return run

    cases = [case(2, 20, 5, (1, 2, 4), 1e-6, 0), case(1, 3, 4, (1, 2, 4, 8), 1e-6, 1),
             case(1, 1, 3, (1,), 1e-6, 2), case(2, 12, 6, (3, 1), 1e-6, 3, "parallel"),
             case(2, 10, 4, (1, 2), 1.0, 4, scale=0.1)]
    return run_check("2.2 fast partner w_t", fn, cases,
                     hint="w_t = sum over valid Δ of a_t^Δ z_{t-Δ} / max(n_t^Δ, eps), n by the Lagrange "
                          "identity, a_t^Δ = 1/(number of valid offsets at t); w_t = 0 where none is valid")


def _true_dependencies(mixer: Callable[[Tensor], Tensor], T: int, d: int) -> Tensor:
    """D[t, s] = (output t depends on input s), from the exact Jacobian (an independent method)."""
    h = torch.randn(1, T, d, generator=make_generator(T * 31 + d), dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda x: mixer(x)[0], h)  # [T, d, 1, T, d]
    return J[:, :, 0].abs().amax(dim=(1, 3)) > 0


def check_dependency_matrix(fn: Callable[[Callable[[Tensor], Tensor], int, int], Tensor]) -> bool:
    """``fn(mixer, T, d)`` must return the bool matrix ``D[t, s]``: does output t change with input s?

    Tested on the library's causal layer, on the leaky (future-pairing) counterexample, on a running
    mean and on the identity; the truth comes from the exact Jacobian.
    """
    with torch.random.fork_rng(devices=[]):  # fixed weights, and the notebook's RNG left untouched
        torch.manual_seed(0)
        causal = CausalGrassmannMixing(6, 4, (1, 3)).double().eval()
        wide = CausalGrassmannMixing(5, 3, (2, 5)).double().eval()

    def f64(mixer: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
        return lambda h: mixer(h.to(torch.float64))  # accept float32 or float64 inputs

    def running_mean(h: Tensor) -> Tensor:
        return h.cumsum(1) / torch.arange(1, h.shape[1] + 1, dtype=h.dtype)[:, None]

    mixers = {
        "causal Grassmann layer, offsets (1, 3)": (f64(causal), 8, 6),
        "leaky (future-pairing) layer, offsets (1, 3)": (f64(lambda h: leaky_mixing(causal, h)), 8, 6),
        "causal Grassmann layer, offsets (2, 5)": (f64(wide), 9, 5),
        "running mean over the past": (f64(running_mean), 7, 3),
        "identity": (f64(lambda h: h.clone()), 5, 2),
    }

    def case(name):
        def run(f):
            mixer, T, d = mixers[name]
            expected = _true_dependencies(mixer, T, d)
            with torch.no_grad():
                out = f(mixer, T, d)
            expect_equal(None if out is None else torch.as_tensor(out).bool(), expected, f"{name}, T={T}")
        return run

    return run_check("2.3 dependency matrix", fn, [case(n) for n in mixers],
                     hint="for each s, perturb h[:, s] (e.g. add 1), run the mixer again, and mark every t "
                          "whose output changed; the mixer takes and returns tensors of shape [1, T, d]")
