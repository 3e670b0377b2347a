"""Checks for chapter 2 (the layer): the fast partner w_t and a causality detector."""

from __future__ import annotations

from typing import Callable, Tuple

import torch
from torch import Tensor

from gflow_lite.geometry import normalize_plucker, plucker
from gflow_lite.model import CausalGrassmannMixing

from ..counterexamples import leaky_mixing
from .core import Mismatch, expect_close, expect_equal, largest_intermediate, make_generator, run_check

__all__ = ["check_fast_partner", "check_dependency_matrix", "mean_normalized_wedge", "check_grassmann_layer",
           "layer_weights"]


def mean_normalized_wedge(z: Tensor, offsets: Tuple[int, ...], eps: float) -> Tensor:
    """The reference side of (G2)-(G4) before projection: mean over valid Δ of ``normalise(z_t ∧ z_{t-Δ})``.

    Built from the library's `plucker` and `normalize_plucker`; zero where no offset is valid.
    """
    T = z.shape[1]
    t = torch.arange(T)
    n_valid = sum((t >= delta).to(z.dtype) for delta in offsets)
    out = torch.zeros(*z.shape[:-1], plucker(z[..., :1, :], z[..., :1, :]).shape[-1], dtype=z.dtype)
    for delta in offsets:
        partner = torch.zeros_like(z)
        partner[:, delta:] = z[:, : max(T - delta, 0)]
        a = torch.where(n_valid > 0, (t >= delta).to(z.dtype) / n_valid.clamp_min(1), torch.zeros_like(n_valid))
        out = out + a[:, None] * normalize_plucker(plucker(z, partner), eps)
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
    def no_wedges(f):
        """The norms by the Lagrange identity: at r = 512 no tensor of r(r-1)/2 coordinates per pair."""
        z = torch.randn(1, 6, 512, generator=make_generator(9), dtype=torch.float64)
        _, largest = largest_intermediate(f, z, (1, 2), 1e-6)
        if largest > 64 * z.numel():
            return (f"the exercise asks for the norms by the Lagrange identity, without forming the wedges; at "
                    f"r = 512 your function built a tensor of {largest:,} numbers")
        return None

    return run_check("2.1 fast partner w_t", fn, cases, constraints=[no_wedges], hint=[
        "the wedge is linear in its second argument, so a weighted sum of wedges z_t ∧ x_k is z_t ∧ (the "
        "same weighted sum of the x_k); fold the mean and the normalisation into the weights",
        "w_t = sum over the valid offsets Δ of a_t^Δ z_{t-Δ} / max(||z_t ∧ z_{t-Δ}||, eps), with a_t^Δ = "
        "1 / (number of offsets valid at t); the norm by the Lagrange identity, from three dot products",
        "for each Δ: past = z shifted right by Δ (zeros in front); n = sqrt(clamp(|z|^2 |past|^2 - "
        "<z, past>^2, 0)); w += ((t >= Δ) / n_valid(t) / n.clamp_min(eps))[..., None] * past; w_t = 0 where "
        "no offset is valid"])


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

    return run_check("2.2 dependency matrix", fn, [case(n) for n in mixers], hint=[
        "output t depends on input s exactly when changing input s changes output t: try it, one s at a time",
        "for each s, perturb h[:, s] (add 1, say), run the mixer again and compare with the unperturbed "
        "output; the mixer takes and returns tensors of shape [1, T, d]",
        "D[:, s] = (mixer(h2) - mixer(h))[0].abs().amax(-1) > 0 with h2 = h, h2[0, s] += 1, for every s"])


def layer_weights(layer: CausalGrassmannMixing) -> dict:
    """The six tensors of a `CausalGrassmannMixing` in `nn.Linear` layout (weight [out, in], bias [out])."""
    return {"W_red": layer.W_red.weight.detach().clone(), "b_red": layer.W_red.bias.detach().clone(),
            "W_plu": layer.W_plu.weight.detach().clone(), "b_plu": layer.W_plu.bias.detach().clone(),
            "W_gate": layer.W_gate.weight.detach().clone(), "b_gate": layer.W_gate.bias.detach().clone()}


def check_grassmann_layer(fn: Callable) -> bool:
    """``fn(h, weights, offsets, eps)`` must equal the library's `CausalGrassmannMixing` with those weights."""

    def case(B, T, d, r, offsets, seed):
        def run(f):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                layer = CausalGrassmannMixing(d, r, offsets).double().eval()
                for p in layer.parameters():  # biases away from zero, so that a forgotten bias shows
                    torch.nn.init.normal_(p, std=0.3)
            h = torch.randn(B, T, d, generator=make_generator(seed), dtype=torch.float64)
            with torch.no_grad():
                expected = layer(h)
                out = f(h.clone(), layer_weights(layer), tuple(offsets), layer.eps)
            expect_close(out, expected, f"h of shape {(B, T, d)}, r={r}, offsets={tuple(offsets)}",
                         rtol=1e-6, atol=1e-8)
        return run

    cases = [case(2, 12, 8, 4, (1, 2, 4), 0), case(1, 3, 6, 3, (1, 2, 4, 8), 1), case(2, 7, 5, 5, (2,), 2),
             case(1, 1, 4, 3, (1,), 3)]
    return run_check("2.3 the layer, end to end", fn, cases, hint=[
        "(G1) reduce h to z; fold the offsets into one partner per token with your fast_partner (2.1); one "
        "projection of z_t ∧ w_t; then the gate (G5) and the blend (G6)",
        "z = h W_red^T + b_red; w = fast_partner(z, offsets, eps); g_t = W_plu (z_t ∧ w_t) + b_plu, but g_t = 0 "
        "where no offset is valid (t < min(offsets)), bias included; alpha = sigmoid([h; g] W_gate^T + b_gate)",
        "p = plucker(z, w); g = (t >= min(offsets))[:, None] * (p @ W_plu.T + b_plu); "
        "return alpha * h + (1 - alpha) * g"])
