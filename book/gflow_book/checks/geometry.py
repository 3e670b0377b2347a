"""Checks for chapter 1 (geometry): Plücker coordinates, the Lagrange norm, the Grassmann–Plücker test."""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Callable

import torch

from gflow_lite.geometry import grassmann_plucker_residual, n_plucker, plucker
from .core import expect_close, expect_equal, largest_intermediate, make_generator, no_python_loops, run_check

__all__ = ["check_plucker_coordinates", "check_lagrange_norm", "check_on_grassmannian", "check_causal_attention",
           "check_plucker_features"]


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
    def loops(f):
        found = no_python_loops(getattr(f, "__wrapped_learner__", f))
        return None if found is None else f"the exercise asks for no Python loops; found {found}"

    return run_check("1.1 Plücker coordinates", fn, cases, constraints=[loops], allowed=("n_plucker",), hint=[
        "each coordinate is a 2 x 2 minor of the r x 2 matrix [u v], one for every pair of rows i < j; "
        "index all pairs at once instead of looping over them",
        "two index tensors i and j listing the pairs (0,1), (0,2), ..., (1,2), ... let you write every "
        "minor in one expression on the last dimension; torch.triu_indices builds such index tensors",
        "i, j = torch.triu_indices(r, r, offset=1); p = u[..., i] * v[..., j] - u[..., j] * v[..., i]"])


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

    def linear_memory(f):
        """O(r): at r = 1024 no intermediate may come near the r(r-1)/2 = 523,776 coordinates per pair."""
        u, v = _pair((3, 1024), 7)
        _, largest = largest_intermediate(f, u, v)
        if largest > 64 * u.numel():
            return (f"the exercise asks for O(r) work without forming the Plücker vector; at r = 1024 your "
                    f"function built a tensor of {largest:,} numbers (3 pairs, {n_plucker(1024):,} "
                    f"coordinates each)")
        return None

    return run_check("1.2 Lagrange norm", fn, cases, constraints=[linear_memory], hint=[
        "the area of the parallelogram spanned by u and v can be written with |u|, |v| and the angle "
        "between them, and the angle with <u, v>: three sums over the last dimension, no Plücker vector",
        "Lagrange's identity: ||u ∧ v||^2 = |u|^2 |v|^2 - <u, v>^2; for (nearly) parallel vectors rounding "
        "can make the right-hand side slightly negative",
        "uu, vv, uv = (u*u).sum(-1), (v*v).sum(-1), (u*v).sum(-1); return (uu*vv - uv*uv).clamp_min(0).sqrt()"])


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
            elif kind == "two disjoint wedges":  # e_a∧e_b + e_c∧e_d: only the relation (a,b,c,d) fails
                p = torch.zeros(batch, n_plucker(r), dtype=torch.float64)
                i, j = torch.triu_indices(r, r, offset=1).tolist()
                index = {pair: k for k, pair in enumerate(zip(i, j))}
                for row in range(batch):
                    a, b, c, d = sorted(torch.randperm(r, generator=g)[:4].tolist())
                    p[row, index[a, b]], p[row, index[c, d]] = 1.0, 1.0
                p = torch.cat([p, plucker(*_pair((batch, r), seed))])  # and wedges: True
            elif kind == "e0∧e1 + e4∧e5":  # fails no relation among indices 0..3
                p = torch.zeros(1, n_plucker(r), dtype=torch.float64)
                i, j = torch.triu_indices(r, r, offset=1).tolist()
                index = {pair: k for k, pair in enumerate(zip(i, j))}
                p[0, index[0, 1]], p[0, index[4, 5]] = 1.0, 1.0
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
             case(3, 5, 4, "generic"), case(2, 3, 5, "generic"), case(6, 1, 6, "e0∧e1 + e4∧e5"),
             case(7, 6, 7, "two disjoint wedges"), case(9, 8, 8, "two disjoint wedges")]
    return run_check("1.3 on the Grassmannian?", fn, cases, allowed=("n_plucker",), hint=[
        "a vector is a wedge exactly when it satisfies every Grassmann–Plücker relation: one relation for "
        "each choice of four indices, not only the first four; for r < 4 there is none to violate",
        "for every i < j < k < l the relation is p_ij p_kl - p_ik p_jl + p_il p_jk = 0; map each pair "
        "(i, j) to its position in p (the order of torch.triu_indices) and test all quadruples "
        "(itertools.combinations(range(r), 4)); a sum of two wedges in disjoint coordinates, such as "
        "e0∧e1 + e4∧e5, breaks only the relation of its own four indices",
        "ok = all(|p_ij p_kl - p_ik p_jl + p_il p_jk| <= tol for i < j < k < l), per vector: return a bool "
        "tensor of shape p.shape[:-1] (all True when r < 4)"])


def check_causal_attention(fn: Callable) -> bool:
    """``fn(q, k, v)`` must equal single-head causal attention (`scaled_dot_product_attention`, is_causal)."""
    import torch.nn.functional as F

    def case(shape, seed, kind="random"):
        def run(f):
            g = make_generator(seed)
            q, k, v = (torch.randn(*shape, generator=g, dtype=torch.float64) for _ in range(3))
            if kind == "large":
                q, k = 30 * q, 30 * q.clone()
            expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            expect_close(f(q.clone(), k.clone(), v.clone()), expected, f"{kind} q, k, v of shape {shape}",
                         rtol=1e-7, atol=1e-9)
        return run

    cases = [case((1, 1, 3), 0), case((2, 5, 4), 1), case((1, 12, 8), 2), case((3, 2, 6, 4), 3),
             case((2, 6, 4), 4, "large")]

    def no_library_attention(f):
        found = _calls(getattr(f, "__wrapped_learner__", f), {"scaled_dot_product_attention", "MultiheadAttention"})
        return None if found is None else f"the exercise asks for the attention written out; found {found}"

    return run_check("1.4 causal attention", fn, cases, constraints=[no_library_attention], hint=[
        "score every pair (t, s) by a scaled dot product, forbid the pairs where s is after t, turn each row into "
        "weights that sum to 1, and average the values with them",
        "scores = q @ k^T / sqrt(d) is the L x L lift; set the entries above the diagonal to -inf before the "
        "softmax over the last dimension (torch.softmax subtracts the row maximum, so large scores do not overflow)",
        "scores.masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), float('-inf')); "
        "return torch.softmax(scores, -1) @ v"])


def _calls(fn: Callable, names) -> "str | None":
    tree = _tree(fn)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in names:
            return f"`{node.attr}`"
        if isinstance(node, ast.Name) and node.id in names:
            return f"`{node.id}`"
    return None


def _tree(fn: Callable):
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None


def check_plucker_features(fn: Callable) -> bool:
    """``fn(z, delta, eps)`` must equal ``normalize_plucker(plucker(z_t, z_{t-Δ}), eps)``, zero where t < Δ."""
    from gflow_lite.geometry import normalize_plucker

    def case(B, T, r, delta, eps, seed, kind="random", scale=1.0):
        def run(f):
            z = scale * torch.randn(B, T, r, generator=make_generator(seed), dtype=torch.float64)
            if kind == "parallel":
                z[:, 3] = 2.0 * z[:, 2]
            partner = torch.zeros_like(z)
            if delta < T:
                partner[:, delta:] = z[:, : T - delta]
            expected = normalize_plucker(plucker(z, partner), eps)
            expect_close(f(z.clone(), delta, eps), expected,
                         f"{kind} z of shape {(B, T, r)}, delta={delta}, eps={eps:g}", rtol=1e-7, atol=1e-9)
        return run

    cases = [case(1, 5, 3, 1, 1e-6, 0), case(2, 9, 5, 3, 1e-6, 1), case(2, 4, 5, 6, 1e-6, 2),
             case(2, 6, 4, 1, 1e-6, 3, "parallel"), case(1, 5, 4, 2, 1.0, 4, "tiny", scale=0.01)]
    return run_check("1.5 Plücker features", fn, cases, allowed=("n_plucker",), hint=[
        "pair every token with the token delta steps back (a zero vector where there is none), take the Plücker "
        "coordinates of each pair, then scale each coordinate vector to length 1, but never divide by less than eps",
        "partner = z shifted right by delta along the time dimension, zeros in front; p from exercise 1.1; "
        "p / max(||p||, eps) with the norm over the last dimension",
        "partner[:, delta:] = z[:, :T - delta]; p = plucker_coordinates(z, partner); "
        "return p / p.norm(dim=-1, keepdim=True).clamp_min(eps)"])
