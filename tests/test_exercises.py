"""`gflow_lite.exercises`: every check passes the reference solutions, says NOT DONE YET to stubs, fails
wrong answers with a hint, never raises; stubs and solutions agree; the loader, summary and helpers."""

from __future__ import annotations

import ast
import inspect
import math
import statistics

import pytest
import torch

from book_support import BOOK, SOLUTIONS, chapter_sources, exercise_names, load_module
from gflow_lite import CausalGrassmannMixing, GrassmannLM, LMConfig
from gflow_lite import exercises as ex
from gflow_lite.exercises import solutions as sol

CHECKS = {
    "uniform_loss": ex.check_uniform_loss,
    "next_token_blocks": ex.check_next_token_blocks,
    "plucker_coordinates": ex.check_plucker_coordinates,
    "lagrange_norm": ex.check_lagrange_norm,
    "on_grassmannian": ex.check_on_grassmannian,
    "receptive_field": ex.check_receptive_field,
    "fast_partner": ex.check_fast_partner,
    "dependency_matrix": ex.check_dependency_matrix,
    "paper_projection_flops": ex.check_paper_projection_flops,
    "crossover_length": ex.check_crossover_length,
    "grassmann_cache_bytes": ex.check_grassmann_cache_bytes,
    "pair_sine": ex.check_pair_sine,
    "ablation_weights": ex.check_ablation_weights,
    "plane_angles": ex.check_plane_angles,
    "pair_validity_mask": ex.check_pair_validity_mask,
    "plucker_width": ex.check_plucker_width,
    "matching_features": ex.check_matching_features,
    "ratio_and_spread": ex.check_ratio_and_spread,
    "split_perplexity": ex.check_split_perplexity,
    "training_budget": ex.check_training_budget,
}


def _solution(name):
    for path in sorted(SOLUTIONS.glob("*.py")):
        module = load_module(path, f"solutions_{path.stem}")
        if hasattr(module, name):
            return getattr(module, name)
    raise LookupError(name)


# ------------------------------------------------------------------------------ stubs ↔ solutions
def _signature(fn: ast.FunctionDef):
    a = fn.args
    return ([x.arg for x in a.posonlyargs], [x.arg for x in a.args], len(a.defaults), a.vararg and a.vararg.arg,
            [x.arg for x in a.kwonlyargs], a.kwarg and a.kwarg.arg)


@pytest.mark.parametrize("chapter", [p for p in chapter_sources()], ids=lambda p: p.stem)
def test_stubs_and_solutions_have_the_same_names_and_signatures(chapter):
    tree = ast.parse(chapter.read_text())
    stubs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)
             and any(isinstance(d, ast.Name) and d.id == "exercise" for d in f.decorator_list)}
    assert list(stubs) == exercise_names(chapter.read_text())
    solution_file = SOLUTIONS / f"{chapter.stem}.py"
    assert solution_file.is_file(), f"book/solutions/{chapter.stem}.py is missing"
    solved = {f.name: f for f in ast.parse(solution_file.read_text()).body if isinstance(f, ast.FunctionDef)}
    assert set(stubs) <= set(solved), f"no solution for {set(stubs) - set(solved)}"
    assert set(solved) == set(stubs), f"solutions without a stub: {set(solved) - set(stubs)}"
    for name, stub in stubs.items():
        assert _signature(stub) == _signature(solved[name]), f"{name}: stub and solution signatures differ"
        body = [s for s in stub.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        assert len(body) == 1 and isinstance(body[0], ast.Raise), f"{name}: a stub only raises"
        assert ast.unparse(body[0].exc).startswith("NotImplementedError")
        assert "raise NotImplementedError" not in ast.unparse(solved[name]), f"{name}: the solution is a stub"


def test_every_check_has_an_exercise_in_some_chapter():
    names = {n for p in chapter_sources() for n in exercise_names(p.read_text())}
    assert set(CHECKS) == names
    assert {n for n in dir(ex) if n.startswith("check_")} == {f"check_{n}" for n in CHECKS}


# ------------------------------------------------------------------------------------ the checks
@pytest.mark.parametrize("name", list(CHECKS))
def test_check_passes_the_reference_solution(name, capsys):
    assert CHECKS[name](_solution(name)) is True
    assert ": PASS (" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(CHECKS))
def test_check_says_not_done_yet_to_a_stub(name, capsys):
    solution = _solution(name)

    def stub(*args):
        raise NotImplementedError("your code here")

    stub.__signature__ = inspect.signature(solution)
    assert CHECKS[name](stub) is False
    out = capsys.readouterr().out
    assert "NOT DONE YET" in out and "FAIL" not in out
    assert ex.results()["stub"].status is ex.Status.NOT_DONE


def _wrong(name):
    """A plausible mistake for each exercise."""
    good = _solution(name)
    if name == "uniform_loss":
        return lambda V: math.log2(V)
    if name == "next_token_blocks":
        return lambda ids, starts, T: (good(ids, starts, T)[0], good(ids, starts, T)[0])
    if name == "plucker_coordinates":
        return lambda u, v: -good(u, v)
    if name == "lagrange_norm":
        return lambda u, v: ((u * u).sum(-1) * (v * v).sum(-1) - (u * v).sum(-1) ** 2).sqrt()  # NaN when parallel
    if name == "on_grassmannian":
        return lambda p, r, tol: torch.ones(p.shape[:-1], dtype=torch.bool)
    if name == "receptive_field":
        return lambda offsets, n, mode: sum(offsets[:n])
    if name == "fast_partner":
        return lambda z, offsets, eps: torch.zeros_like(z)
    if name == "dependency_matrix":
        return lambda mixer, T, d: torch.ones(T, T, dtype=torch.bool).tril()
    if name == "paper_projection_flops":  # forward only
        return lambda B, L, d, r, m: 2 * B * L * (r * (r - 1) // 2) * d * m
    if name == "crossover_length":  # counted against the full L x L score matrix
        return lambda d, r, m, order: 1249 if order == "paper" else 17
    if name == "grassmann_cache_bytes":  # forgets that a short context holds fewer vectors
        return lambda offsets, mode, n, r, b, c: n * max(offsets) * b * r * 4
    if name == "pair_sine":  # returns the cosine's magnitude instead
        return lambda z, d: (1 - good(z, d) ** 2).sqrt()
    if name == "ablation_weights":  # drops the offset but forgets to renormalise
        return lambda a, k: a * (torch.arange(a.shape[1]) != k)
    if name == "plane_angles":  # angles in the wrong order
        return lambda a, b: good(a, b).flip(-1)
    if name == "pair_validity_mask":  # ignores the stride
        return lambda lengths, window, stride: good(lengths, window, window)
    if name == "plucker_width":  # counts one group only
        return lambda d_proj, groups: (d_proj // groups) * (d_proj // groups - 1) // 2
    if name == "matching_features":  # forgets the real mask
        return lambda h, segment, real: torch.cat([h[:, 0]] * 4, -1)
    if name == "ratio_and_spread":  # averages per-seed ratios instead of taking the ratio of means
        return lambda g, t: (statistics.fmean(a / b for a, b in zip(g, t)), min(a / b for a, b in zip(g, t)),
                             max(a / b for a, b in zip(g, t)))
    if name == "split_perplexity":  # averages per-batch mean losses, ignoring the token counts
        return lambda sums, counts: math.exp(statistics.fmean(s / c for s, c in zip(sums, counts)))
    if name == "training_budget":  # truncates instead of rounding the steps up
        return lambda b, g, L, steps, epochs, n: (steps or int(epochs * n / (b * g * L)),
                                                  (steps or int(epochs * n / (b * g * L))) * b * g * L)
    raise KeyError(name)


@pytest.mark.parametrize("name", list(CHECKS))
def test_check_fails_a_wrong_answer_with_a_hint(name, capsys):
    assert CHECKS[name](_wrong(name)) is False
    out = capsys.readouterr().out
    assert ": FAIL." in out and "hint:" in out


@pytest.mark.parametrize("name", list(CHECKS))
def test_check_never_raises_on_crashing_or_empty_code(name, capsys):
    def crashes(*args):
        return 1 / 0

    def forgets_return(*args):
        pass

    for fn in (crashes, forgets_return, 42):
        assert CHECKS[name](fn) is False
    out = capsys.readouterr().out
    assert "ZeroDivisionError" in out and out.count("FAIL") == 3


def test_checks_do_not_touch_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for name, check in CHECKS.items():
        check(_solution(name))
    assert torch.equal(torch.rand(3), expected)


# ----------------------------------------------------------------------------- loader and summary
def test_exercise_decorator_swaps_in_solutions_only_when_asked(monkeypatch, capsys):
    monkeypatch.delenv("GFLOW_SOLUTIONS", raising=False)
    exercise = ex.chapter_exercises("01_geometry")

    def plucker_coordinates(u, v):
        raise NotImplementedError

    assert exercise(plucker_coordinates) is plucker_coordinates
    monkeypatch.setenv("GFLOW_SOLUTIONS", "1")
    swapped = exercise(plucker_coordinates)
    assert swapped is not plucker_coordinates and swapped.__name__ == "plucker_coordinates"
    assert "using the reference solution" in capsys.readouterr().out

    def lagrange_norm(u):  # wrong signature
        raise NotImplementedError

    with pytest.raises(TypeError, match="signature"):
        exercise(lagrange_norm)

    def not_an_exercise(x):
        raise NotImplementedError

    with pytest.raises(AttributeError):
        exercise(not_an_exercise)


def test_solutions_are_found_through_the_package():
    assert sol.solutions_dir() == BOOK / "solutions"
    with pytest.raises(FileNotFoundError, match="no solutions"):
        sol.load_solutions("99_missing")


def test_summary_counts_and_raises_only_under_solutions(monkeypatch, capsys):
    monkeypatch.delenv("GFLOW_SOLUTIONS", raising=False)
    exercise = ex.chapter_exercises("01_geometry")

    @exercise
    def plucker_coordinates(u, v):
        raise NotImplementedError

    @exercise
    def lagrange_norm(u, v):
        raise NotImplementedError

    ex.check_plucker_coordinates(plucker_coordinates)
    status = exercise.summary()
    assert status["plucker_coordinates"] == "not done yet"
    out = capsys.readouterr().out
    assert "exercises in 01_geometry: 2 | passed 0" in out
    monkeypatch.setenv("GFLOW_SOLUTIONS", "1")
    with pytest.raises(AssertionError, match="every exercise must pass"):
        exercise.summary()


# --------------------------------------------------------------------------- helpers for chapters
def test_leaky_mixing_reads_the_future_and_the_library_does_not():
    torch.manual_seed(0)
    layer = CausalGrassmannMixing(8, 4, (1, 2)).eval()
    h = torch.randn(1, 6, 8)
    h2 = h.clone()
    h2[0, 4] += 1.0
    with torch.no_grad():
        assert torch.equal(layer(h)[0, :4], layer(h2)[0, :4])
        leaked = (ex.leaky_mixing(layer, h) != ex.leaky_mixing(layer, h2)).any(-1)[0]
    assert leaked[2] and leaked[3] and not leaked[0] and not leaked[1]


def test_train_lm_learns_a_deterministic_sequence():
    torch.manual_seed(0)
    cfg = LMConfig(vocab_size=7, block_size=16, d_model=16, n_layers=1, d_ff=32, r=4, offsets=(1,), dropout=0.0)
    model = GrassmannLM(cfg)
    seq = torch.arange(17) % 7  # next token = current + 1 (mod 7): learnable from offset 0 alone

    def batch():
        return seq[:-1][None].repeat(4, 1), seq[1:][None].repeat(4, 1)

    log = ex.train_lm(model, batch, steps=60, lr=1e-2, eval_batch=batch, eval_every=20, eval_batches=1)
    assert len(log.losses) == 60 and [s for s, _ in log.evals] == [20, 40, 60]
    assert log.evals[-1][1] < 0.2 * log.losses[0]
    assert len(log.smoothed(5)) == 60 and log.smoothed(5)[0] == log.losses[0]


def test_random_token_batches_are_shifted_and_seeded():
    a = ex.random_token_batches(11, 3, 5, seed=0)()
    b = ex.random_token_batches(11, 3, 5, seed=0)()
    assert torch.equal(a[0], b[0]) and a[0].shape == (3, 5) and torch.equal(a[0][:, 1:], a[1][:, :-1])
