"""Checks for chapter 1 (geometry): Plücker coordinates, the Lagrange norm, the Grassmann–Plücker test."""

from __future__ import annotations

from typing import Callable

import torch

from ..geometry import grassmann_plucker_residual, n_plucker, plucker
from ._core import expect_close, expect_equal, make_generator, run_check

__all__ = ["check_plucker_coordinates", "check_lagrange_norm", "check_on_grassmannian"]


def _pair(shape, seed, dtype=torch.float64):
    g = make_generator(seed)
    return torch.randn(*shape, generator=g, dtype=dtype), torch.randn(*shape, generator=g, dtype=dtype)


def check_plucker_coordinates(fn: Callable) -> bool:
    """``fn(u, v)`` must equal `gflow_lite.geometry.plucker` (order of `torch.triu_indices`), batched."""

    def case(shape, seed, kind="random", dtype=torch.float64):
        def run(f):
            u, v = _pair(shape, seed, dtype)
            if kind == "parallel":
                v = -2.5 * u
            elif kind == "zero":
                u = torch.zeros_like(u)
            tol = 1e-10 if dtype == torch.float64 else 1e-5
            expect_close(f(u, v), plucker(u, v), f"{kind} u, v of shape {tuple(shape)} ({dtype})",
                         rtol=tol, atol=tol)
        return run

    cases = [case((2,), 0), case((3,), 1), case((4, 5), 2), case((2, 3, 8), 3), case((6,), 4, "parallel"),
             case((6,), 5, "zero"), case((5, 32), 6, dtype=torch.float32)]
    return run_check("1.1 Plücker coordinates", fn, cases,
                     hint="p_ij = u_i v_j - u_j v_i for i < j, ordered (0,1), (0,2), ..., (1,2), ...; "
                          "torch.triu_indices(r, r, offset=1) gives that order; work on the last dimension")


def check_lagrange_norm(fn: Callable) -> bool:
    """``fn(u, v)`` must equal ``||u ∧ v||`` (computed by the library from the full Plücker vector)."""

    def case(shape, seed, kind="random"):
        def run(f):
            u, v = _pair(shape, seed)
            if kind == "parallel":
                v = 3.0 * u
            elif kind == "orthogonal":
                v = v - (u * v).sum(-1, keepdim=True) / (u * u).sum(-1, keepdim=True) * u
            # parallel pairs: the Lagrange form cancels to ~sqrt(machine eps) * |u||v|, not to 0
            atol = 1e-5 if kind == "parallel" else 1e-9
            expect_close(f(u, v), plucker(u, v).norm(dim=-1), f"{kind} u, v of shape {tuple(shape)}",
                         rtol=1e-7, atol=atol)
        return run

    cases = [case((3,), 0), case((4, 7), 1), case((2, 3, 32), 2), case((5, 16), 3, "parallel"),
             case((5, 16), 4, "orthogonal")]
    return run_check("1.2 Lagrange norm", fn, cases,
                     hint="||u ∧ v||^2 = |u|^2 |v|^2 - <u, v>^2; clamp at 0 before the square root "
                          "(rounding makes it slightly negative for parallel vectors)")


def check_on_grassmannian(fn: Callable) -> bool:
    """``fn(p, r, tol)`` must say, per vector, whether every Grassmann–Plücker residual is within ``tol``."""

    def case(r, batch, seed, kind):
        def run(f):
            g = make_generator(seed)
            if kind == "wedge":
                u, v = _pair((batch, r), seed)
                p = plucker(u, v)
            elif kind == "generic":
                p = torch.randn(batch, n_plucker(r), generator=g, dtype=torch.float64)
            else:  # mixed: half wedges, half generic, shuffled
                u, v = _pair((batch, r), seed)
                p = torch.cat([plucker(u, v), torch.randn(batch, n_plucker(r), generator=g, dtype=torch.float64)])
                p = p[torch.randperm(2 * batch, generator=g)]
            tol = 1e-8
            expected = grassmann_plucker_residual(p, r).abs().amax(-1) <= tol if r >= 4 else torch.ones(
                p.shape[:-1], dtype=torch.bool)
            out = f(p, r, tol)
            expect_equal(None if out is None else torch.as_tensor(out).bool(), expected,
                         f"{kind} bivectors, r={r}, {p.shape[0]} vectors")
        return run

    cases = [case(4, 6, 0, "wedge"), case(4, 6, 1, "generic"), case(6, 5, 2, "mixed"), case(8, 4, 3, "mixed"),
             case(3, 5, 4, "generic"), case(2, 3, 5, "generic")]
    return run_check("1.3 on the Grassmannian?", fn, cases,
                     hint="for every i < j < k < l: p_ij p_kl - p_ik p_jl + p_il p_jk must vanish; for r < 4 "
                          "there is no such quadruple and every bivector is a wedge; return a bool tensor "
                          "of shape p.shape[:-1]")
