"""Submissions that try to pass without solving: every one must score 0. Sections start with
`# student NAME chapter NN_name`; `# route: ...` names the route of the function below it (the test
reads these lines into its table). {ROOT} is replaced by the repository's path."""

# student cheat_a chapter 01_geometry
import numpy as np
import torch
from gflow_lite.geometry import plucker


# route: the library's own function imported
@exercise
def plucker_coordinates(u, v):
    return plucker(u, v)


# route: the Plücker vector built in numpy (O(r^2) memory)
@exercise
def lagrange_norm(u, v):
    U, V = u.detach().numpy(), v.detach().numpy()
    M = np.einsum("...i,...j->...ij", U, V)
    A = M - np.swapaxes(M, -1, -2)
    return torch.from_numpy(np.sqrt((A * A).sum((-1, -2)) / 2))


# route: the reference solutions read from the instructor's disk (through numpy, not open)
@exercise
def on_grassmannian(p, r, tol):
    text = np.fromfile("{ROOT}/book/solutions/01_geometry.py", dtype=np.uint8).tobytes().decode()
    return torch.ones(p.shape[:-1], dtype=torch.bool) if "def on_grassmannian" in text else None


class AlwaysEqual(torch.Tensor):
    def __eq__(self, other):
        return True

    def allclose(self, *args, **kwargs):
        return True


# route: a tensor subclass that compares equal to anything
@exercise
def causal_attention(q, k, v):
    return torch.zeros_like(q).as_subclass(AlwaysEqual)


# route: torch's comparison functions patched in the graded process
@exercise
def plucker_features(z, delta, eps):
    torch.allclose = lambda *a, **k: True
    torch.equal = lambda *a, **k: True
    torch.testing.assert_close = lambda *a, **k: None
    return torch.ones(*z.shape[:-1], z.shape[-1] * (z.shape[-1] - 1) // 2)

# student cheat_a chapter 02_layer
import os
import torch

ANSWERS = {(8, 6): [[True] * 8] * 8, (9, 5): [[False] * 9] * 9}


# route: the solutions switch turned on from the notebook
@exercise
def fast_partner(z, offsets, eps):
    os.environ["GFLOW_SOLUTIONS"] = "1"
    from gflow_book.solution_switch import load_solutions
    return load_solutions("02_layer").fast_partner(z, offsets, eps)


# route: a table of answers recorded from the self-check's fixed inputs
@exercise
def dependency_matrix(mixer, T, d):
    return torch.tensor(ANSWERS.get((T, d), [[False] * T] * T))


# route: code run from a string
@exercise
def grassmann_layer(h, weights, offsets, eps):
    return eval("h * 0")

# student cheat_a chapter 03_model
import sys
import torch


# route: a profile hook (the self-check's library guard) switched off
@exercise
def receptive_field(offsets, n_layers, offset_mode):
    sys.setprofile(None)
    return 0


# route: build the library's model and count its parameters
@exercise
def grassmann_param_count(vocab_size, block_size, d_model, d_ff, r, n_layers):
    from gflow_lite import GrassmannLM, LMConfig
    return GrassmannLM(LMConfig(vocab_size=vocab_size, block_size=block_size, d_model=d_model, d_ff=d_ff, r=r,
                                n_layers=n_layers)).num_params()


# route: escape to the interpreter through dunder attributes
@exercise
def causal_block(h, mix, params):
    loader = ().__class__.__base__.__subclasses__()
    return h


# route: torch.optim instead of the update written out
@exercise
def scheduled_adamw_step(param, grad, m, v, step, total_steps, peak_lr, warmup, weight_decay):
    p = torch.nn.Parameter(param.clone())
    opt = torch.optim.AdamW([p], lr=peak_lr, weight_decay=weight_decay)
    p.grad = grad
    opt.step()
    return p.detach(), m, v

# student cheat_a chapter 04_complexity
from gflow_book.checks.complexity import check_paper_projection_flops


def _search(d, r, m, order):
    L = 1
    while 24 * d * d + 6 * (L + 1) * d <= 6 * (d * r + m * r * (r - 1) // 2 * d + 2 * d * d):
        L += 1
    return L


# route: a book helper imported as the answer
@exercise
def paper_projection_flops(B, L, d, r, m):
    return check_paper_projection_flops.__code__


# route: a search loop moved into a helper ("closed form" asked)
@exercise
def crossover_length(d, r, m, order):
    return _search(d, r, m, order)


class Anything:
    def __eq__(self, other):
        return True


# route: an object that claims to equal anything
@exercise
def grassmann_cache_bytes(offsets, offset_mode, n_layers, r, batch, context):
    return Anything()

# student cheat_a chapter 05_wikitext2
import math
import torch
from gflow_book.published_runs import PUBLISHED


# route: the chapter's own support package as the answer
@exercise
def ratio_and_spread(grassmann_ppl, transformer_ppl):
    return PUBLISHED


# route: a builtin reached by name (getattr)
@exercise
def split_perplexity(loss_sums, token_counts):
    return getattr(math, "exp")(sum(loss_sums) / sum(token_counts))


# route: exhaust the memory limit
@exercise
def training_budget(batch_size, grad_accum, block_size, max_steps, epochs, n_train_tokens):
    big = torch.empty(10**12)
    return 1, 1

# student cheat_b chapter 00_welcome
import math


class Number(float):
    def __eq__(self, other):
        return True


# route: a float subclass that equals anything
@exercise
def uniform_loss(vocab_size):
    return Number(0.0)


# route: the stub kept, GFLOW_SOLUTIONS set by a magic and the checker patched in other cells
%env GFLOW_SOLUTIONS=1
import gflow_book.checks.core as core
core.run_check = lambda *a, **k: True
core._RESULTS.clear()


@exercise
def next_token_blocks(ids, starts, block_size):
    raise NotImplementedError("Exercise 0.2: your code here")

# student cheat_b chapter 01_geometry
import functools
import importlib
import torch
import torch.nn.functional as F


def _minor(u, v, i, j):
    return u[..., i] * v[..., j] - u[..., j] * v[..., i]


def _all_minors(u, v):
    r = u.shape[-1]
    return torch.stack([_minor(u, v, i, j) for i in range(r) for j in range(i + 1, r)], -1)


# route: the loop moved into a helper ("without Python loops" asked)
@exercise
def plucker_coordinates(u, v):
    return _all_minors(u, v)


# route: the Plücker vector formed in row chunks (O(r^2) time, bounded memory)
@exercise
def lagrange_norm(u, v):
    r = u.shape[-1]
    total = torch.zeros(u.shape[:-1], dtype=u.dtype)
    i = 0
    while i < r:
        block = u[..., i:i + 1] * v[..., i + 1:] - v[..., i:i + 1] * u[..., i + 1:]
        total = total + (block * block).sum(-1)
        i += 1
    return total.sqrt()


# route: importlib to load the library at run time
@exercise
def on_grassmannian(p, r, tol):
    geometry = importlib.import_module("gflow_lite.geometry")
    return geometry.grassmann_plucker_residual(p, r).abs().amax(-1) <= tol


# route: torch's own attention instead of the lift written out
@exercise
def causal_attention(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


# route: tolist patched so that answers convert to something else
@exercise
def plucker_features(z, delta, eps):
    torch.Tensor.tolist = lambda self: [0.0]
    return torch.zeros(1)
