"""Checks for chapter 7 (the geometry of a trained model): the pair sine, offset ablation, plane angles."""

from __future__ import annotations

from typing import Callable, Tuple

import torch
from torch import Tensor

from gflow_lite.analysis import ablated_weights
from gflow_lite.geometry import pair_angle, principal_angles
from gflow_lite.model import CausalGrassmannMixing, shift_back

from .core import expect_close, largest_intermediate, make_generator, run_check

__all__ = ["check_pair_sine", "check_ablation_weights", "check_plane_angles"]


def _no_wedges(f) -> str | None:
    """The Lagrange identity, not the Plücker vector: at r = 512 nothing of r(r-1)/2 numbers per pair."""
    z = torch.randn(1, 6, 512, generator=make_generator(11), dtype=torch.float64)
    _, largest = largest_intermediate(f, z, 1)
    if largest > 64 * z.numel():
        return (f"the exercise asks for the Lagrange identity, without forming the Plücker vectors; at r = 512 "
                f"your function built a tensor of {largest:,} numbers")
    return None


def check_pair_sine(fn: Callable[[Tensor, int], Tensor]) -> bool:
    """``fn(z, delta)`` for ``z: [B, T, r]`` must return ``sin θ_t``, ``[B, T]``: the sine of the angle
    between ``z_t`` and ``z_{t-Δ}`` (0 where ``t < Δ`` or a vector is zero).

    The library's answer goes another way: ``sin(atan2(sin, cos))`` of `geometry.pair_angle`.
    """

    def case(B, T, r, delta, seed, kind="random", scale=1.0):
        def run(f):
            z = scale * torch.randn(B, T, r, generator=make_generator(seed), dtype=torch.float64)
            if kind == "parallel":  # z_3 parallel to z_{3-Δ}: the plane degenerates, sin θ = 0
                z[:, 3] = -1.5 * z[:, 3 - delta]
            elif kind == "zero":  # a zero vector has no direction: its sine is defined as 0
                z[:, 2] = 0.0
            expected = torch.sin(pair_angle(z, shift_back(z, delta)))
            # a parallel pair leaves ~1e-8 of rounding under the Lagrange square root (float64)
            expect_close(f(z.clone(), delta), expected, f"z of shape {(B, T, r)}, Δ={delta} ({kind})",
                         rtol=1e-6, atol=1e-6)
        return run

    cases = [case(2, 10, 4, 1, 0), case(1, 12, 8, 4, 1), case(3, 5, 3, 2, 2, scale=1e-3),
             case(1, 6, 6, 8, 3), case(2, 9, 5, 1, 4, "parallel"), case(2, 9, 5, 3, 5, "parallel"),
             case(1, 7, 4, 2, 6, "zero")]
    return run_check("7.1 pair sine", fn, cases,
                     constraints=[_no_wedges], hint=[
        "the sine of the angle is the parallelogram's area divided by the two lengths, and the area comes "
        "from three dot products (chapter 1's Lagrange identity)",
        "sin θ = ||z_t ∧ z_{t-Δ}|| / (|z_t| |z_{t-Δ}|) with ||u ∧ v||^2 = |u|^2 |v|^2 - <u, v>^2 (clamp at "
        "0 before the square root); the partner of t < Δ is a zero vector (shift z right by Δ, padding "
        "with zeros); guard the division so that zero vectors give 0"])


def check_ablation_weights(fn: Callable[[Tensor, int], Tensor]) -> bool:
    """``fn(a, k)`` must return the offset weights ``[T, m]`` with offset ``k`` removed and each row
    renormalised over the offsets that remain (rows with nothing left are 0), as `analysis.ablated_weights`.
    """

    def case(offsets: Tuple[int, ...], T: int, k: int, learned: bool = False, seed: int = 0):
        def run(f):
            layer = CausalGrassmannMixing(4, 2, offsets, aggregate="learned" if learned else "mean")
            if learned:
                with torch.no_grad():
                    layer.offset_logits.copy_(torch.randn(len(offsets), generator=make_generator(seed)))
            with torch.no_grad():
                a, _ = layer.offset_weights(torch.arange(T))
            what = f"{'learned' if learned else 'mean'} weights, offsets={offsets}, T={T}, k={k}"
            expect_close(f(a.clone(), k), ablated_weights(a, k)[0], what, rtol=1e-6, atol=1e-7)
        return run

    paper = (1, 2, 4, 8, 12, 16)
    cases = [case(paper, 20, 0), case(paper, 20, 5), case(paper, 20, 2), case((3, 1), 6, 1), case((1,), 4, 0),
             case((1, 2, 4), 10, 0, learned=True, seed=1), case(paper, 18, 3, learned=True, seed=2)]
    return run_check("7.2 ablation weights", fn, cases,
                     hint=[
        "removing an offset leaves weights that no longer sum to one; rows must be weights again",
        "zero column k, then divide each row by its new sum; where that sum is 0 (no other offset valid) the "
        "row stays 0 (torch.where, not a division by 0)"])


def check_plane_angles(fn: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """``fn(a, b)`` for ``a, b: [..., r, 2]`` must return the two principal angles (radians, ascending)
    between the column spans, ``[..., 2]``, as `geometry.principal_angles`."""

    def case(shape, r, seed, kind="random"):
        def run(f):
            g = make_generator(seed)
            a = torch.randn(*shape, r, 2, generator=g, dtype=torch.float64)
            b = torch.randn(*shape, r, 2, generator=g, dtype=torch.float64)
            if kind == "same plane, another basis":
                b = a @ torch.tensor([[2.0, -1.0], [0.5, 3.0]], dtype=torch.float64)
            elif kind == "sharing a line":
                b[..., 0] = -3.0 * a[..., 1]
            elif kind == "orthogonal":
                a, b = torch.zeros_like(a), torch.zeros_like(b)
                a[..., 0, 0] = a[..., 1, 1] = 1.0
                b[..., 2, 0] = b[..., 3, 1] = 1.0
            expect_close(f(a.clone(), b.clone()), principal_angles(a, b),
                         f"{kind} planes, shape {(*shape, r, 2)}", rtol=1e-6, atol=1e-6)
        return run

    cases = [case((), 3, 0), case((5,), 8, 1), case((2, 3), 4, 2),
             case((4,), 6, 3, "same plane, another basis"), case((4,), 5, 4, "sharing a line"),
             case((2,), 4, 5, "orthogonal"), case((3,), 2, 6)]
    return run_check("7.3 principal angles", fn, cases,
                     hint=[
        "principal angles compare orthonormal bases of the two planes: the cosines are how well each "
        "direction of one plane is matched in the other",
        "orthonormalise the columns of a and of b (torch.linalg.qr), take the singular values of Qa^T Qb "
        "(cosines of the angles), clamp them to [-1, 1], arccos, sort ascending"])
