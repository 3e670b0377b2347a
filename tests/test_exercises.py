"""The book's exercises (`book/gflow_book`): every check passes the reference solutions, says NOT DONE YET to
stubs, fails wrong answers with a hint, never raises; it cannot be fooled by the library's own answer, by
a partial answer or by an answer that breaks a stated constraint; hints progress; stubs and solutions
agree; the loader, summary and helpers."""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import math
import statistics

import pytest
import torch

from book_support import BOOK, SOLUTIONS, chapter_sources, exercise_names, load_module
import gflow_book.checks as ex
from gflow_book import exercises as sol
from gflow_book.counterexamples import leaky_mixing
from gflow_book.demo_training import demo_schedule, random_token_batches, train_lm
from gflow_lite import CausalGrassmannMixing, GrassmannLM, LMConfig
from gflow_lite.train import Hyperparams, lr_at
from gflow_lite import geometry

#: exercise name -> the check's name in gflow_book.checks (looked up when a test runs)
CHECK_NAMES = [
    "uniform_loss",
    "next_token_blocks",
    "plucker_coordinates",
    "lagrange_norm",
    "on_grassmannian",
    "causal_attention",
    "plucker_features",
    "fast_partner",
    "dependency_matrix",
    "grassmann_layer",
    "receptive_field",
    "grassmann_param_count",
    "causal_block",
    "scheduled_adamw_step",
    "paper_projection_flops",
    "crossover_length",
    "grassmann_cache_bytes",
    "pair_sine",
    "ablation_weights",
    "plane_angles",
    "pair_validity_mask",
    "plucker_width",
    "matching_features",
    "ratio_and_spread",
    "split_perplexity",
    "training_budget",
]


class _Checks(dict):
    def __getitem__(self, name):
        return getattr(ex, f"check_{name}")

    def items(self):
        return [(n, self[n]) for n in CHECK_NAMES]


CHECKS = _Checks.fromkeys(CHECK_NAMES)


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
    if name == "causal_attention":  # forgets the 1/sqrt(d) scale
        return lambda q, k, v: good(q * q.shape[-1] ** 0.5, k, v)
    if name == "plucker_features":  # pairs with the future instead of the past
        return lambda z, delta, eps: good(z.flip(1), delta, eps).flip(1)
    if name == "grassmann_layer":  # keeps the bias where no offset is valid
        def keeps_bias(h, weights, offsets, eps):
            return good(h, weights, tuple(o - min(offsets) + 1 for o in offsets) if min(offsets) > 1 else offsets,
                        eps) if h.shape[1] > 1 else good(h, weights, offsets, eps) + 1.0
        return keeps_bias
    if name == "causal_block":  # a pre-LN block instead of the paper's post-LN one
        return lambda h, mix, p: good(h, lambda x: mix(x) + x, p)
    if name == "scheduled_adamw_step":  # no bias correction
        def no_correction(param, grad, m, v, step, total, lr, warmup, wd):
            return good(param, grad, m, v, 10_000, total + 10_000, lr, warmup, wd)
        return no_correction
    if name == "receptive_field":
        return lambda offsets, n, mode: sum(offsets[:n])
    if name == "grassmann_param_count":  # counts the head although it is tied
        return lambda V, block, d, d_ff, r, n: good(V, block, d, d_ff, r, n) + V * d
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
    exercise = sol.chapter_exercises("01_geometry")

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


def test_solutions_are_found_beside_the_book_package():
    from gflow_book import solution_switch

    assert solution_switch.solutions_dir() == BOOK / "solutions"
    with pytest.raises(FileNotFoundError, match="no solutions"):
        solution_switch.load_solutions("99_missing")


def test_summary_counts_and_raises_only_under_solutions(monkeypatch, capsys):
    monkeypatch.delenv("GFLOW_SOLUTIONS", raising=False)
    exercise = sol.chapter_exercises("01_geometry")

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
        leaked = (leaky_mixing(layer, h) != leaky_mixing(layer, h2)).any(-1)[0]
    assert leaked[2] and leaked[3] and not leaked[0] and not leaked[1]


def test_train_lm_learns_a_deterministic_sequence():
    torch.manual_seed(0)
    cfg = LMConfig(vocab_size=7, block_size=16, d_model=16, n_layers=1, d_ff=32, r=4, offsets=(1,), dropout=0.0)
    model = GrassmannLM(cfg)
    seq = torch.arange(17) % 7  # next token = current + 1 (mod 7): learnable from offset 0 alone

    def batch():
        return seq[:-1][None].repeat(4, 1), seq[1:][None].repeat(4, 1)

    log = train_lm(model, batch, steps=60, lr=1e-2, eval_batch=batch, eval_every=20, eval_batches=1)
    assert len(log.losses) == 60 and [s for s, _ in log.evals] == [20, 40, 60]
    assert log.evals[-1][1] < 0.2 * log.losses[0]
    assert len(log.smoothed(5)) == 60 and log.smoothed(5)[0] == log.losses[0]


def test_random_token_batches_are_shifted_and_seeded():
    a = random_token_batches(11, 3, 5, seed=0)()
    b = random_token_batches(11, 3, 5, seed=0)()
    assert torch.equal(a[0], b[0]) and a[0].shape == (3, 5) and torch.equal(a[0][:, 1:], a[1][:, :-1])


# ------------------------------------------------------------------ checks that cannot be fooled
def _library_status(capsys):
    out = capsys.readouterr().out
    return "ANSWERED BY CALLING THE LIBRARY" in out and "PASS" not in out and "hint" not in out


def test_the_library_itself_is_not_a_pass(capsys):
    """The issue's examples: the library's function, its bound method, a lambda or partial around it."""
    cfg = LMConfig(n_layers=6)
    fooled = [
        (ex.check_plucker_coordinates, geometry.plucker),
        (ex.check_plucker_coordinates, lambda u, v: geometry.plucker(u, v)),
        (ex.check_plucker_coordinates, functools.partial(geometry.plucker)),
        (ex.check_lagrange_norm, geometry.plucker_norm),
        (ex.check_lagrange_norm, lambda u, v: geometry.plucker(u, v).norm(dim=-1)),
        (ex.check_receptive_field, lambda offsets, n, mode: LMConfig(
            n_layers=n, offsets=offsets, offset_mode=mode).receptive_field()),
        (ex.check_on_grassmannian, lambda p, r, tol: geometry.grassmann_plucker_residual(p, r).abs().amax(-1)
         <= tol if r >= 4 else torch.ones(p.shape[:-1], dtype=torch.bool)),
        (ex.check_pair_sine, lambda z, d: torch.sin(geometry.pair_angle(z, torch.roll(z, d, 1)))),
        (ex.check_plane_angles, geometry.principal_angles),
    ]
    for check, fn in fooled:
        assert check(fn) is False
        assert _library_status(capsys), check.__name__
    assert cfg.receptive_field() == 96  # (the bound method of a config is the library's too)
    assert ex.check_receptive_field(cfg.receptive_field) is False
    assert _library_status(capsys)


@pytest.mark.parametrize("name", list(CHECKS))
def test_every_check_reports_a_library_call(name, capsys):
    """The right answer, with one call into gflow_lite on the way: not counted as passed."""
    good = _solution(name)

    def cheat(*args):
        geometry.plucker(torch.ones(3), torch.ones(3))
        return good(*args)

    cheat.__name__ = name
    assert CHECKS[name](cheat) is False
    assert _library_status(capsys)
    assert ex.results()[name].status is ex.Status.LIBRARY


def test_a_library_call_counts_as_not_passed_in_the_summary(monkeypatch, capsys):
    monkeypatch.delenv("GFLOW_SOLUTIONS", raising=False)
    exercise = sol.chapter_exercises("01_geometry")

    @exercise
    def plucker_coordinates(u, v):
        return geometry.plucker(u, v)

    ex.check_plucker_coordinates(plucker_coordinates)
    status = exercise.summary()
    assert status["plucker_coordinates"] == "answered by calling the library"
    assert "| passed 0 | failed 1 |" in capsys.readouterr().out


def test_library_objects_handed_to_the_learner_may_be_used(capsys):
    """Exercise 2.2 hands the learner mixers built from the library: calling them is the exercise."""
    assert ex.check_dependency_matrix(_solution("dependency_matrix")) is True


def _loop_plucker(u, v):
    r = u.shape[-1]
    return torch.stack([u[..., i] * v[..., j] - u[..., j] * v[..., i]
                        for i in range(r) for j in range(i + 1, r)], dim=-1)


def test_python_loops_break_the_stated_constraint(capsys):
    assert ex.check_plucker_coordinates(_loop_plucker) is False
    out = capsys.readouterr().out
    assert "cases agree, but a stated constraint is broken" in out and "a comprehension" in out

    def while_plucker(u, v):
        r, cols, i = u.shape[-1], [], 0
        while i < r:
            cols += [u[..., i] * v[..., j] - u[..., j] * v[..., i] for j in range(i + 1, r)]
            i += 1
        return torch.stack(cols, -1)

    assert ex.check_plucker_coordinates(while_plucker) is False
    assert "no Python loops" in capsys.readouterr().out


def test_search_instead_of_closed_form_breaks_the_stated_constraint(capsys):
    closed = _solution("crossover_length")

    def crossover_length(d, r, m, order):
        L = 1
        while L < closed(d, r, m, order):
            L += 1
        return L

    assert ex.check_crossover_length(crossover_length) is False
    assert "closed form, not a search" in capsys.readouterr().out


def test_forming_the_plucker_vector_breaks_O_of_r(capsys):
    """Right values, but through the r(r-1)/2 coordinates (the learner's own, not the library's)."""
    coords = _solution("plucker_coordinates")
    assert ex.check_lagrange_norm(lambda u, v: coords(u, v).norm(dim=-1)) is False
    assert "O(r)" in capsys.readouterr().out
    assert ex.check_pair_sine(lambda z, d: _sine_via_wedges(coords, z, d)) is False
    assert "without forming the Plücker vectors" in capsys.readouterr().out

    def fast_partner_with_wedges(z, offsets, eps):
        T = z.shape[1]
        t = torch.arange(T)
        n_valid = sum((t >= d).to(z.dtype) for d in offsets).clamp_min(1)
        w = torch.zeros_like(z)
        for d in offsets:
            past = torch.zeros_like(z)
            past[:, d:] = z[:, : max(T - d, 0)]
            norm = coords(z, past).norm(dim=-1)
            w = w + ((t >= d).to(z.dtype) / n_valid / norm.clamp_min(eps))[..., None] * past
        return w

    assert ex.check_fast_partner(fast_partner_with_wedges) is False
    assert "without forming the wedges" in capsys.readouterr().out


def _sine_via_wedges(coords, z, delta):
    past = torch.zeros_like(z)
    past[:, delta:] = z[:, : max(z.shape[1] - delta, 0)]
    den = z.norm(dim=-1) * past.norm(dim=-1)
    return torch.where(den > 0, coords(z, past).norm(dim=-1) / torch.where(den > 0, den, 1), 0.0)


def test_a_partial_grassmann_plucker_test_fails(capsys):
    """Exercise 1.3 answered with the (0, 1, 2, 3) relation only: e0∧e1 + e4∧e5 at r = 6 catches it."""

    def first_relation_only(p, r, tol):
        if r < 4:
            return torch.ones(p.shape[:-1], dtype=torch.bool)
        index = {pair: k for k, pair in enumerate(itertools.combinations(range(r), 2))}
        res = (p[..., index[0, 1]] * p[..., index[2, 3]] - p[..., index[0, 2]] * p[..., index[1, 3]]
               + p[..., index[0, 3]] * p[..., index[1, 2]])
        return res.abs() <= tol

    assert ex.check_on_grassmannian(first_relation_only) is False
    out = capsys.readouterr().out
    assert ": FAIL." in out and "e0∧e1 + e4∧e5" in out


def test_correct_alternative_routes_pass(capsys):
    def plucker_by_outer_product(u, v):
        r = u.shape[-1]
        M = u[..., :, None] * v[..., None, :]
        i, j = torch.triu_indices(r, r, offset=1)
        return (M - M.transpose(-1, -2))[..., i, j]

    def lagrange_by_angle(u, v):
        nu, nv = u.norm(dim=-1), v.norm(dim=-1)
        cos = ((u * v).sum(-1) / (nu * nv)).clamp(-1, 1)
        return nu * nv * (1 - cos * cos).clamp_min(0).sqrt()

    def on_grassmannian_by_rank(p, r, tol):  # a bivector is a wedge iff its r x r matrix has rank <= 2
        i, j = torch.triu_indices(r, r, offset=1)
        A = torch.zeros(*p.shape[:-1], r, r, dtype=p.dtype)
        A[..., i, j], A[..., j, i] = p, -p
        if r < 4:
            return torch.ones(p.shape[:-1], dtype=torch.bool)
        # all 4 x 4 Pfaffians vanish <=> rank <= 2; Pfaffian of rows/cols (a,b,c,d) is the relation
        ok = torch.ones(p.shape[:-1], dtype=torch.bool)
        for a, b, c, d in itertools.combinations(range(r), 4):
            pf = A[..., a, b] * A[..., c, d] - A[..., a, c] * A[..., b, d] + A[..., a, d] * A[..., b, c]
            ok &= pf.abs() <= tol
        return ok

    assert ex.check_plucker_coordinates(plucker_by_outer_product) is True
    assert ex.check_lagrange_norm(lagrange_by_angle) is True
    assert ex.check_on_grassmannian(on_grassmannian_by_rank) is True
    assert capsys.readouterr().out.count(": PASS (") == 3


def test_hints_progress_from_the_idea_to_the_formula(capsys):
    ex.reset_attempts()
    wrong = _wrong("lagrange_norm")
    hints = []
    for _ in range(4):
        ex.check_lagrange_norm(wrong)
        hints.append(capsys.readouterr().out.split("hint: ", 1)[1])
    assert "hint 1 of 3" in hints[0] and "hint 2 of 3" in hints[1] and "hint 3 of 3" in hints[2]
    assert hints[3] == hints[2]  # the last hint stays
    assert "clamp_min" not in hints[0] and "|u|^2 |v|^2 - <u, v>^2" not in hints[0]  # the idea only
    assert "clamp_min(0).sqrt()" in hints[2]  # the formula, after repeated failures
    ex.reset_attempts()
    ex.check_lagrange_norm(wrong)
    assert "hint 1 of 3" in capsys.readouterr().out


def _rates_of_train_lm(steps, lr, warmup):
    """The learning rate of every optimizer step `train_lm` takes (read by a global step hook)."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    seen = []
    handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"]))
    try:
        torch.manual_seed(0)
        model = GrassmannLM(LMConfig(vocab_size=11, block_size=8, d_model=8, n_layers=1, d_ff=16, r=3,
                                     n_heads=2, offsets=(1, 2), dropout=0.0))
        train_lm(model, random_token_batches(11, 2, 8, seed=0), steps, lr, warmup=warmup)
    finally:
        handle.remove()
    return seen


def test_train_lm_follows_the_library_schedule():
    """The demo loop has no schedule of its own: its rates are `gflow_lite.train.lr_at`'s, step 0 first."""
    assert demo_schedule(12, 1e-2, 3) == Hyperparams(max_steps=12, lr=1e-2, min_lr=1e-3, warmup_steps=3)
    rates = _rates_of_train_lm(12, 1e-2, 3)
    assert rates == pytest.approx([lr_at(s, demo_schedule(12, 1e-2, 3)) for s in range(12)], rel=1e-12, abs=0)
    assert rates[:3] == pytest.approx([1e-2 / 3, 2e-2 / 3, 1e-2], rel=1e-12)  # warmup to the peak
    assert rates[3] == pytest.approx(rates[2], rel=1e-12) and all(a > b for a, b in zip(rates[3:], rates[4:]))  # the cosine from the peak
    assert rates[-1] > lr_at(12, demo_schedule(12, 1e-2, 3)) == pytest.approx(1e-3)  # ... reaches lr / 10 after
    assert _rates_of_train_lm(5, 1e-2, 0) == [1e-2] * 5  # warmup=0: a constant rate


def test_the_library_never_imports_the_book():
    lib = BOOK.parent / "gflow_lite"
    offenders = [str(p.relative_to(lib)) for p in lib.rglob("*.py") if "gflow_book" in p.read_text()]
    assert offenders == [], f"gflow_lite must not import the book's support package: {offenders}"


def test_result_tables_print_as_aligned_text_outside_html():
    """A `gflow_book.results.Table` shown where HTML is not (a terminal, a text-only output) reads as a table."""
    from IPython.core.formatters import PlainTextFormatter

    from gflow_book.results import Table

    table = Table(["preset", "lr"], [["tiny", "1e-3"], ["cpu-small", "**6e-4**"]])
    expected = "preset     lr\n---------  --------\ntiny       1e-3\ncpu-small  **6e-4**"
    assert repr(table) == table.text() == PlainTextFormatter()(table) == expected
    assert " at 0x" not in repr(table)
