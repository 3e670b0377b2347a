"""The hidden tests: the points table, and for every exercise the inputs drawn at grade time, how an answer
is compared with the reference solution's, and the stated constraints the grader checks.

Instructor side only: this folder (``book/grading``) is not part of the student release. The inputs are
drawn from a seed chosen afresh for every grading run (``--seed`` repeats a run), so no table of
recorded answers can match them; the expected values are computed here, by the reference solutions in
``book/solutions``, in the grader's own process, and never leave it.
"""

from __future__ import annotations

import importlib.util
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from . import plain

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"

#: THE points table: (chapter, exercise) -> points. The substantive exercises weigh more.
POINTS: Dict[Tuple[str, str], float] = {
    ("00_welcome", "uniform_loss"): 1,
    ("00_welcome", "next_token_blocks"): 2,
    ("01_geometry", "plucker_coordinates"): 2,
    ("01_geometry", "lagrange_norm"): 2,
    ("01_geometry", "on_grassmannian"): 3,
    ("01_geometry", "causal_attention"): 4,
    ("01_geometry", "plucker_features"): 4,
    ("02_layer", "fast_partner"): 4,
    ("02_layer", "dependency_matrix"): 3,
    ("02_layer", "grassmann_layer"): 5,
    ("03_model", "receptive_field"): 1,
    ("03_model", "grassmann_param_count"): 2,
    ("03_model", "causal_block"): 4,
    ("03_model", "scheduled_adamw_step"): 5,
    ("04_complexity", "paper_projection_flops"): 1,
    ("04_complexity", "crossover_length"): 3,
    ("04_complexity", "grassmann_cache_bytes"): 2,
    ("05_wikitext2", "ratio_and_spread"): 1,
    ("05_wikitext2", "split_perplexity"): 1,
    ("05_wikitext2", "training_budget"): 2,
    ("06_snli", "pair_validity_mask"): 3,
    ("06_snli", "plucker_width"): 1,
    ("06_snli", "matching_features"): 2,
    ("07_geometry_trained", "pair_sine"): 2,
    ("07_geometry_trained", "ablation_weights"): 2,
    ("07_geometry_trained", "plane_angles"): 3,
}


@dataclass
class Test:
    args: List[Any]  # the inputs, as objects (encoded with plain.encode when sent)
    what: str  # how the feedback names this test
    reduce: Optional[Dict[str, Any]] = None  # for large answers: reduce both sides the same way


@dataclass
class Exercise:
    chapter: str
    name: str
    number: str
    tests: Callable[["Draw"], List[Test]]
    compare: str = "close"  # "close", "exact", "bool", "wedge_with_first"
    rtol: float = 1e-7
    atol: float = 1e-9
    constraints: Tuple[str, ...] = ()  # "no_loops", "closed_form", "no_optim"
    scale: Optional[Callable[["Draw"], List[Test]]] = None  # sizes only an O(r) answer finishes in time
    scale_note: str = ""
    instructions: str = ""  # constraints stated to the student that the grader cannot check
    forbidden: Tuple[str, ...] = ()  # names the exercise asks not to use (checked in all its code)

    @property
    def points(self) -> float:
        return POINTS[(self.chapter, self.name)]


class Draw:
    """Random inputs for one exercise in one grading run."""

    def __init__(self, seed: int, name: str) -> None:
        self.seed = (seed * 1_000_003 + sum(map(ord, name)) * 7919) % 2**62
        self.py = random.Random(self.seed)
        self.g = torch.Generator().manual_seed(self.seed)

    def randn(self, *shape: int, dtype=torch.float64) -> torch.Tensor:
        return torch.randn(*shape, generator=self.g, dtype=dtype)

    def int(self, lo: int, hi: int) -> int:
        return self.py.randint(lo, hi)

    def choice(self, seq):
        return self.py.choice(seq)

    def seed_int(self) -> int:
        return self.py.randrange(2**31)


# ---------------------------------------------------------------------------------------- chapter 0
def _uniform_loss(d: Draw) -> List[Test]:
    return [Test([V], f"vocab_size={V}") for V in [1, 2, d.int(3, 50), d.int(100, 5000), d.int(20000, 60000)]]


def _next_token_blocks(d: Draw) -> List[Test]:
    tests = []
    for _ in range(4):
        n, T, B = d.int(20, 200), d.int(1, 16), d.int(1, 6)
        ids = torch.randint(0, 1000, (n,), generator=d.g)
        starts = torch.randint(0, n - T, (B,), generator=d.g)
        starts[-1] = n - T - 1  # the last start that still has every target
        tests.append(Test([ids, starts, T], f"n={n}, batch={B}, block_size={T}"))
    return tests


# ---------------------------------------------------------------------------------------- chapter 1
def _pairs(d: Draw) -> List[Test]:
    tests = []
    for shape in [(2,), (d.int(3, 9),), (d.int(2, 5), d.int(3, 12)), (2, d.int(1, 4), d.int(4, 10))]:
        tests.append(Test([d.randn(*shape), d.randn(*shape)], f"random u, v of shape {shape}"))
    # Parallel pairs: |u|^2 |v|^2 - (u.v)^2 is 0 in exact arithmetic and rounds to either sign, so one row
    # catches a missing clamp only about half the time; 48 rows with random non-dyadic multiples catch it always.
    # Unit rows and multiples in [0.6, 1.9] keep the honest error, about sqrt(eps) |u||v|, far below atol.
    u = torch.nn.functional.normalize(d.randn(48, 7), dim=-1)
    c = (0.6 + 1.3 * torch.rand(48, 1, generator=d.g, dtype=torch.float64)) * torch.sign(d.randn(48, 1))
    tests.append(Test([u, c * u], "parallel u, v (48 rows)"))
    tests.append(Test([torch.zeros(4, 5), d.randn(4, 5)], "u = 0"))
    return tests


def _lagrange_scale(d: Draw) -> List[Test]:
    r = 2**22
    return [Test([plain.randn((2, r), d.seed_int()), plain.randn((2, r), d.seed_int())], f"r = {r:,}")]


def _on_grassmannian(d: Draw) -> List[Test]:
    tests = []
    for r in (d.int(4, 6), d.int(6, 9)):
        i, j = torch.triu_indices(r, r, offset=1)
        B = d.int(3, 6)
        u, v = d.randn(B, r), d.randn(B, r)
        wedges = u[:, i] * v[:, j] - u[:, j] * v[:, i]
        generic = d.randn(B, len(i))
        disjoint = torch.zeros(B, len(i), dtype=torch.float64)
        index = {(a, b): k for k, (a, b) in enumerate(zip(i.tolist(), j.tolist()))}
        for row in range(B):
            a, b, c, e = sorted(d.py.sample(range(r), 4))
            disjoint[row, index[a, b]], disjoint[row, index[c, e]] = 1.0, 1.0
        p = torch.cat([wedges, generic, disjoint])
        p = p[torch.randperm(len(p), generator=d.g)]
        tests.append(Test([p, r, 1e-8], f"r={r}: wedges, generic vectors and sums of two disjoint wedges"))
    tests.append(Test([d.randn(3, 3), 3, 1e-8], "r=3 (no relation to violate)"))
    tests.append(Test([d.randn(2, 1), 2, 1e-8], "r=2"))
    return tests


def _causal_attention(d: Draw) -> List[Test]:
    tests = []
    for shape in [(1, 1, 3), (d.int(1, 3), d.int(2, 9), d.int(2, 8)), (2, d.int(10, 20), 4), (3, 5, 16)]:
        tests.append(Test([d.randn(*shape), d.randn(*shape), d.randn(*shape)], f"q, k, v of shape {shape}"))
    q = 30 * d.randn(2, 6, 4)
    tests.append(Test([q, q.clone(), d.randn(2, 6, 4)], "large scores (softmax overflow if not stabilised)"))
    return tests


def _plucker_features(d: Draw) -> List[Test]:
    tests = []
    for B, T, r, delta in [(1, 5, 3, 1), (d.int(1, 3), d.int(6, 12), d.int(4, 8), d.int(1, 4)), (2, 4, 5, 6)]:
        tests.append(Test([d.randn(B, T, r), delta, 1e-6], f"z of shape {(B, T, r)}, delta={delta}"))
    z = d.randn(2, 6, 4)
    z[:, 3] = 2.0 * z[:, 2]
    tests.append(Test([z, 1, 1e-6], "a parallel pair (norm below eps)"))
    tests.append(Test([0.01 * d.randn(1, 5, 4), 2, 1.0], "tiny vectors, eps = 1"))
    return tests


# ---------------------------------------------------------------------------------------- chapter 2
def _fast_partner(d: Draw) -> List[Test]:
    tests = []
    for B, T, r, offsets in [(2, d.int(8, 20), d.int(3, 7), (1, 2, 4)), (1, 3, 4, (1, 2, 4, 8)), (1, 1, 3, (1,)),
                             (2, d.int(5, 12), 6, (3, 1))]:
        tests.append(Test([d.randn(B, T, r), offsets, 1e-6], f"z of shape {(B, T, r)}, offsets={offsets}"))
    z = d.randn(2, 8, 5)
    z[:, 1] = 2.0 * z[:, 0]
    tests.append(Test([z, (1, 2), 1e-6], "a parallel pair"))
    tests.append(Test([0.1 * d.randn(2, 10, 4), (1, 2), 1.0], "eps = 1 (the floor active)"))
    return tests


def _fast_partner_scale(d: Draw) -> List[Test]:
    r = 2**20
    return [Test([plain.randn((1, 4, r), d.seed_int()), (1, 2), 1e-6], f"z of shape (1, 4, {r:,})",
                 reduce={"perp_dot": d.seed_int(), "arg": 0})]


def _dependency_matrix(d: Draw) -> List[Test]:
    tests = []
    for offsets, what in [((-1, -3), "a causal mixer reading offsets 1 and 3"),
                          ((-1, 2), "a leaky mixer reading one token back and two ahead"),
                          ((-d.int(2, 4),), "a causal mixer with one offset"), ((), "a token-wise mixer")]:
            T, dim = d.int(5, 9), d.int(2, 5)
            weights = d.randn(1 + len(offsets), dim, dim)
            tests.append(Test([plain.mixer("offset", weights=weights, offsets=tuple(offsets)), T, dim], f"{what}, T={T}"))
    T = d.int(4, 8)
    tests.append(Test([plain.mixer("running_mean", scale=1.0 + d.py.random()), T, 3], f"a running mean, T={T}"))
    return tests


def _layer_weights(d: Draw, dim: int, r: int) -> Dict[str, torch.Tensor]:
    P = r * (r - 1) // 2
    return {"W_red": d.randn(r, dim) / math.sqrt(dim), "b_red": 0.1 * d.randn(r),
            "W_plu": d.randn(dim, P) / math.sqrt(P), "b_plu": 0.1 * d.randn(dim),
            "W_gate": d.randn(dim, 2 * dim) / math.sqrt(2 * dim), "b_gate": 0.1 * d.randn(dim)}


def _grassmann_layer(d: Draw) -> List[Test]:
    tests = []
    for B, T, dim, r, offsets in [(2, d.int(8, 16), 8, 4, (1, 2, 4)), (1, 3, 6, 3, (1, 2, 4, 8)),
                                  (2, d.int(5, 10), d.int(5, 10), d.int(3, 6), (2,)), (1, 1, 4, 3, (1,))]:
        tests.append(Test([d.randn(B, T, dim), _layer_weights(d, dim, r), offsets, 1e-6],
                          f"h of shape {(B, T, dim)}, r={r}, offsets={offsets}"))
    return tests


# ---------------------------------------------------------------------------------------- chapter 3
def _receptive_field(d: Draw) -> List[Test]:
    paper6, paper12 = (1, 2, 4, 8, 12, 16), (1, 1, 2, 2, 4, 4, 8, 8, 12, 12, 16, 16)
    tests = [Test([paper6, 6, "per_layer"], "paper 6 layers, per_layer"), Test([paper12, 12, "all"], "paper 12, all")]
    for mode in ("per_layer", "all", "per_layer"):
        n = d.int(1, 5)
        offsets = tuple(d.int(1, 9) for _ in range(n + d.int(0, 3)))
        tests.append(Test([offsets, n, mode], f"offsets={offsets}, n_layers={n}, {mode}"))
    return tests


def _param_count(d: Draw) -> List[Test]:
    tests = [Test([30522, 128, 256, 1024, 32, 6], "the paper's 6-layer model")]
    for _ in range(4):
        args = [d.int(5, 500), d.int(2, 64), d.int(2, 64), d.int(2, 128), d.int(2, 12), d.int(1, 6)]
        tests.append(Test(args, "V, block, d, d_ff, r, n_layers = " + ", ".join(map(str, args))))
    return tests


def _block_params(d: Draw, dim: int, d_ff: int) -> Dict[str, Any]:
    return {"ln1_weight": 1 + 0.1 * d.randn(dim), "ln1_bias": 0.1 * d.randn(dim),
            "fc1_weight": d.randn(d_ff, dim) / math.sqrt(dim), "fc1_bias": 0.1 * d.randn(d_ff),
            "fc2_weight": d.randn(dim, d_ff) / math.sqrt(d_ff), "fc2_bias": 0.1 * d.randn(dim),
            "ln2_weight": 1 + 0.1 * d.randn(dim), "ln2_bias": 0.1 * d.randn(dim), "eps": 1e-5}


def _causal_block(d: Draw) -> List[Test]:
    tests = []
    for B, T, dim, d_ff in [(2, d.int(4, 10), 6, 12), (1, 1, 4, 8), (3, d.int(3, 7), d.int(3, 9), d.int(4, 20))]:
        mix = plain.mixer("offset", weights=d.randn(3, dim, dim) / math.sqrt(dim), offsets=(-1, -2))
        tests.append(Test([3 * d.randn(B, T, dim), mix, _block_params(d, dim, d_ff)],
                          f"h of shape {(B, T, dim)}, d_ff={d_ff}"))
    return tests


def _adamw(d: Draw) -> List[Test]:
    tests = []
    for step, total, warmup in [(1, 100, 10), (d.int(2, 9), 100, 10), (d.int(11, 99), 100, 10), (50, 50, 5),
                                (d.int(1, 40), 40, 1)]:
        shape = (d.int(1, 4), d.int(1, 5))
        m, v = (0.1 * d.randn(*shape), (0.01 * d.randn(*shape)).abs()) if step > 1 else (
            torch.zeros(shape, dtype=torch.float64), torch.zeros(shape, dtype=torch.float64))
        tests.append(Test([d.randn(*shape), d.randn(*shape), m, v, step, total, 10 ** -d.py.uniform(2, 4), warmup,
                           d.choice([0.0, 0.01, 0.1])], f"step {step} of {total}, warmup {warmup}"))
    return tests


# ---------------------------------------------------------------------------------------- chapter 4
def _flops(d: Draw) -> List[Test]:
    return [Test(a, "B, L, d, r, m = " + ", ".join(map(str, a))) for a in
            [[d.int(1, 64), d.int(1, 512), d.int(8, 512), d.int(2, 64), d.int(1, 12)] for _ in range(5)]]


def _crossover(d: Draw) -> List[Test]:
    tests = [Test([256, 32, 6, order], f"the paper's sizes, {order}") for order in ("paper", "fast", "fused")]
    for order in ("paper", "fast", "fused", "fused"):
        args = [d.int(4, 600), d.int(2, 80), d.int(1, 12), order]
        tests.append(Test(args, "d, r, m, order = " + ", ".join(map(str, args))))
    return tests


def _cache(d: Draw) -> List[Test]:
    tests = []
    for mode in ("per_layer", "all", "per_layer", "all"):
        n = d.int(1, 6)
        offsets = tuple(d.int(1, 20) for _ in range(n if mode == "per_layer" else d.int(1, 4)))
        args = [offsets, mode, n, d.int(2, 64), d.int(1, 8), d.choice([1, d.int(2, 10), d.int(20, 500)])]
        tests.append(Test(args, f"offsets={offsets}, {mode}, n_layers={n}, context={args[-1]}"))
    return tests


# ---------------------------------------------------------------------------------------- chapter 5
def _ratio(d: Draw) -> List[Test]:
    tests = []
    for n in (1, 2, d.int(3, 6)):
        g = [d.py.uniform(50, 300) for _ in range(n)]
        t = [d.py.uniform(50, 300) for _ in range(n)]
        tests.append(Test([g, t], f"{n} seeds"))
    return tests


def _split(d: Draw) -> List[Test]:
    tests = []
    for n in (1, d.int(2, 5), d.int(6, 12)):
        counts = [d.int(100, 4000) for _ in range(n - 1)] + [d.int(1, 100)]
        sums = [c * d.py.uniform(3, 6) for c in counts]
        tests.append(Test([sums, counts], f"{n} batches, the last short"))
    return tests


def _budget(d: Draw) -> List[Test]:
    tests = []
    for _ in range(3):
        b, g, L = d.int(1, 64), d.int(1, 4), d.choice([64, 128, 256])
        tests.append(Test([b, g, L, None, d.int(1, 30), d.int(10_000, 3_000_000)], "a run given in epochs"))
    tests.append(Test([8, 2, 128, d.int(1, 10_000), None, 2_000_000], "a run given in steps"))
    tests.append(Test([d.int(2, 9), 1, 64, None, 0.3, d.int(1000, 9999)], "a fraction of an epoch"))
    return tests


# ---------------------------------------------------------------------------------------- chapter 6
def _mask(d: Draw) -> List[Test]:
    tests = []
    for window, stride in [(4, 4), (d.int(3, 6), d.int(1, 2)), (d.int(2, 5), d.int(3, 6)), (100, 100)]:
        lengths = [d.int(1, 14) for _ in range(d.int(1, 4))]
        tests.append(Test([lengths, window, stride], f"lengths={lengths}, window={window}, stride={stride}"))
    return tests


def _width(d: Draw) -> List[Test]:
    return [Test([64, 1], "64 in one group"), Test([64, 4], "4 groups of 16")] + [
        Test([k * g, g], f"{g} groups of {k}") for k, g in [(d.int(2, 30), d.int(1, 8)) for _ in range(3)]]


def _matching(d: Draw) -> List[Test]:
    tests = []
    for _ in range(3):
        B, L, dim = d.int(1, 4), d.int(3, 12), d.int(2, 6)
        segment = (torch.rand(B, L, generator=d.g) < 0.5).long()
        real = torch.rand(B, L, generator=d.g) < 0.8
        segment[:, 0], real[:, 0], segment[:, 1], real[:, 1] = 0, True, 1, True
        tests.append(Test([d.randn(B, L, dim), segment, real], f"h of shape {(B, L, dim)}"))
    return tests


# ---------------------------------------------------------------------------------------- chapter 7
def _pair_sine(d: Draw) -> List[Test]:
    tests = [Test([d.randn(2, d.int(4, 12), d.int(2, 8)), d.int(1, 3)], "random z") for _ in range(3)]
    z = d.randn(1, 6, 4)
    z[:, 2] = 0
    z[:, 4] = -3 * z[:, 3]
    tests.append(Test([z, 1], "a zero vector and a parallel pair"))
    tests.append(Test([d.randn(1, 3, 4), 5], "delta longer than the sequence"))
    return tests


def _pair_sine_scale(d: Draw) -> List[Test]:
    r = 2**21
    return [Test([plain.randn((1, 3, r), d.seed_int()), 1], f"z of shape (1, 3, {r:,})")]


def _ablation(d: Draw) -> List[Test]:
    tests = []
    for T, m in [(6, 3), (d.int(4, 10), d.int(2, 6)), (5, 1)]:
        a = torch.softmax(d.randn(T, m), -1)
        a[0] = 0
        a[1, 1:] = 0
        a[1, 0] = 1 if m > 1 else a[1, 0]
        tests.append(Test([a, d.int(0, m - 1)], f"a of shape {(T, m)}"))
    return tests


def _angles(d: Draw) -> List[Test]:
    tests = []
    for shape in [(d.int(3, 8), 2), (d.int(2, 4), d.int(3, 6), 2)]:
        tests.append(Test([d.randn(*shape), d.randn(*shape)], f"a, b of shape {shape}"))
    a = d.randn(5, 2)
    mix = d.randn(2, 2)
    tests.append(Test([a, a @ mix], "the same plane in another basis"))
    b = d.randn(5, 2)
    b[:, 0] = a[:, 0]
    tests.append(Test([a, b], "planes sharing a line"))
    return tests


EXERCISES: List[Exercise] = [
    Exercise("00_welcome", "uniform_loss", "0.1", _uniform_loss, rtol=1e-6),
    Exercise("00_welcome", "next_token_blocks", "0.2", _next_token_blocks, compare="exact"),
    Exercise("01_geometry", "plucker_coordinates", "1.1", _pairs, constraints=("no_loops",)),
    Exercise("01_geometry", "lagrange_norm", "1.2", _pairs, atol=1e-6, scale=_lagrange_scale,
             scale_note="in O(r), without forming the Plücker vector"),
    Exercise("01_geometry", "on_grassmannian", "1.3", _on_grassmannian, compare="bool"),
    Exercise("01_geometry", "causal_attention", "1.4", _causal_attention,
             forbidden=("scaled_dot_product_attention", "MultiheadAttention", "multi_head_attention_forward")),
    Exercise("01_geometry", "plucker_features", "1.5", _plucker_features),
    Exercise("02_layer", "fast_partner", "2.1", _fast_partner, compare="wedge_with_first", scale=_fast_partner_scale,
             scale_note="the norms by the Lagrange identity, without forming the wedges"),
    Exercise("02_layer", "dependency_matrix", "2.2", _dependency_matrix, compare="bool"),
    Exercise("02_layer", "grassmann_layer", "2.3", _grassmann_layer, rtol=1e-6, atol=1e-8,
             instructions="by the fast identity: one projection per token, not one per offset"),
    Exercise("03_model", "receptive_field", "3.1", _receptive_field, compare="exact"),
    Exercise("03_model", "grassmann_param_count", "3.2", _param_count, compare="exact"),
    Exercise("03_model", "causal_block", "3.3", _causal_block, rtol=1e-6, atol=1e-8,
             instructions="LayerNorm and GELU written out, not torch.nn modules",
             forbidden=("layer_norm", "LayerNorm", "gelu", "GELU")),
    Exercise("03_model", "scheduled_adamw_step", "3.4", _adamw, rtol=1e-7, atol=1e-10, constraints=("no_optim",)),
    Exercise("04_complexity", "paper_projection_flops", "4.1", _flops, compare="exact"),
    Exercise("04_complexity", "crossover_length", "4.2", _crossover, compare="exact", constraints=("closed_form",)),
    Exercise("04_complexity", "grassmann_cache_bytes", "4.3", _cache, compare="exact"),
    Exercise("05_wikitext2", "ratio_and_spread", "5.1", _ratio, rtol=1e-9),
    Exercise("05_wikitext2", "split_perplexity", "5.2", _split, rtol=1e-9),
    Exercise("05_wikitext2", "training_budget", "5.3", _budget, compare="exact"),
    Exercise("06_snli", "pair_validity_mask", "6.1", _mask, compare="bool"),
    Exercise("06_snli", "plucker_width", "6.2", _width, compare="exact"),
    Exercise("06_snli", "matching_features", "6.3", _matching),
    Exercise("07_geometry_trained", "pair_sine", "7.1", _pair_sine, atol=1e-6, scale=_pair_sine_scale,
             scale_note="from the Lagrange identity, without forming the Plücker vector"),
    Exercise("07_geometry_trained", "ablation_weights", "7.2", _ablation),
    Exercise("07_geometry_trained", "plane_angles", "7.3", _angles, atol=1e-6),
]

assert {(e.chapter, e.name) for e in EXERCISES} == set(POINTS), "every exercise has points, every point an exercise"


def chapters() -> List[str]:
    return sorted({e.chapter for e in EXERCISES})


def of_chapter(chapter: str) -> List[Exercise]:
    return [e for e in EXERCISES if e.chapter == chapter]


_LOADED: Dict[str, ModuleType] = {}


def solution(ex: Exercise) -> Callable:
    """The reference solution (``book/solutions/<chapter>.py``), loaded in the grader's process."""
    if ex.chapter not in _LOADED:
        path = SOLUTIONS / f"{ex.chapter}.py"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the grader needs the instructor's copy of the book")
        spec = importlib.util.spec_from_file_location(f"gflow_grading_solutions_{ex.chapter}", path)
        module = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(module)
        _LOADED[ex.chapter] = module
    return getattr(_LOADED[ex.chapter], ex.name)


# ---------------------------------------------------------------------------------------- comparing
def _as_tensor(x: Any, dtype=torch.float64) -> Optional[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return x.to(dtype)
    try:
        return torch.tensor(x, dtype=dtype)
    except (TypeError, ValueError, RuntimeError):
        return None


def _decode_answer(x: Any) -> Any:
    """A student's plain answer (already JSON-parsed in this process) as tensors and tuples."""
    if isinstance(x, dict):
        if "__tuple__" in x and isinstance(x["__tuple__"], list):
            return tuple(_decode_answer(v) for v in x["__tuple__"])
        if "__tensor__" in x:
            values = _finite(x["__tensor__"])
            t = _as_tensor(values, torch.float64)
            if t is None:
                raise ValueError("a tensor answer that is not a rectangular array of numbers")
            shape = x.get("shape")
            if isinstance(shape, list) and all(type(s) is int for s in shape) and t.numel() == math.prod(shape):
                t = t.reshape(shape)
            return t
        raise ValueError("an answer that is not plain data")
    if isinstance(x, str) and x in ("nan", "inf", "-inf"):
        return float(x)
    if x is None or type(x) in (bool, int, float):
        return x
    if isinstance(x, list):
        return [_decode_answer(v) for v in x]
    raise ValueError("an answer that is not plain data")


def _finite(values: Any) -> Any:
    if isinstance(values, list):
        return [_finite(v) for v in values]
    if isinstance(values, str) and values in ("nan", "inf", "-inf"):
        return float(values)
    if type(values) in (bool, int, float):
        return values
    raise ValueError("a tensor answer holding something other than numbers")


def _compare_one(got: Any, exp: Any, ex: Exercise, path: str) -> Optional[str]:
    where = f" ({path})" if path else ""
    if isinstance(exp, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(exp):
            return f"expected a tuple of {len(exp)} values{where}, got {_kind(got)}"
        for k, (g, e) in enumerate(zip(got, exp)):
            problem = _compare_one(g, e, ex, f"{path}[{k}]" if path else f"item {k}")
            if problem:
                return problem
        return None
    if got is None:
        return f"your function returned None{where} (did you forget `return`?)"
    if isinstance(exp, (bool, int)) and not isinstance(exp, torch.Tensor) and ex.compare == "exact":
        if type(got) is float and math.isfinite(got) and got == int(got):
            got = int(got)  # 12.0 for 12 is accepted
        if type(got) not in (int, bool) or got != exp:
            return f"got {got!r}, expected {exp!r}{where}"
        return None
    e = exp.to(torch.float64) if isinstance(exp, torch.Tensor) else _as_tensor(exp)
    g = _as_tensor(got)
    if g is None or e is None:
        return f"expected {_kind(exp)}{where}, got {_kind(got)}"
    if tuple(g.shape) != tuple(e.shape):
        return f"shape {tuple(g.shape)}, expected {tuple(e.shape)}{where}"
    if ex.compare in ("exact", "bool"):
        if ex.compare == "bool":
            g, e = g != 0, e != 0
        wrong = int((g != e).sum())
        return f"{wrong} of {e.numel()} entries differ from the expected answer{where}" if wrong else None
    if not torch.isfinite(g).all() and torch.isfinite(e).all():
        return f"your answer contains NaN or inf{where}"
    if not torch.allclose(g, e, rtol=ex.rtol, atol=ex.atol):
        err = (g - e).abs().max().item()
        return f"max |yours - expected| = {err:.3g}{where} (tolerance atol={ex.atol:g}, rtol={ex.rtol:g})"
    return None


def _kind(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)}"
    if isinstance(x, (tuple, list)):
        return f"a sequence of {len(x)}"
    return type(x).__name__


def _wedge(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r = z.shape[-1]
    i, j = torch.triu_indices(r, r, offset=1)
    return z[..., i] * w[..., j] - z[..., j] * w[..., i]


def compare(ex: Exercise, test: Test, got_plain: Any, expected: Any) -> Optional[str]:
    """None if the student's plain answer agrees with the expected one, else what differs."""
    try:
        got = _decode_answer(got_plain)
    except (ValueError, TypeError) as err:
        return str(err)
    if ex.compare == "wedge_with_first" and test.reduce is None:
        z = test.args[0].to(torch.float64)
        g = _as_tensor(got) if got is not None else None
        if g is None:
            return "your function returned None (did you forget `return`?)" if got is None else \
                f"expected a tensor, got {_kind(got)}"
        if tuple(g.shape) != tuple(z.shape):
            return f"w has shape {tuple(g.shape)}, expected {tuple(z.shape)} (one w_t per z_t)"
        e = _wedge(z, expected.to(torch.float64))
        return _compare_one(_wedge(z, g), e, ex, "z_t ∧ w_t")
    return _compare_one(got, expected, ex, "")


def expected_value(ex: Exercise, test: Test) -> Any:
    """The reference solution's answer to ``test``, computed here (never sent anywhere)."""
    args = [plain.decode(plain.encode(a)) for a in test.args]  # the same objects the sandbox gets
    with torch.no_grad() if ex.name != "scheduled_adamw_step" else _nullcontext():
        out = solution(ex)(*args)
    if test.reduce:
        out = plain.reduce_answer(out, test.reduce, args)
    return _decode_answer(plain.answer(_plainify(out)))


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _plainify(x: Any) -> Any:
    """Reference answers may be tensor subclasses of torch's own (Parameter); make them plain tensors."""
    if isinstance(x, torch.Tensor):
        return x.detach().clone().as_subclass(torch.Tensor)
    if isinstance(x, (tuple, list)):
        return type(x)(_plainify(v) for v in x)
    return x
