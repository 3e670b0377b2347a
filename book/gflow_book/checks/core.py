"""The machinery every exercise check shares.

A check calls the learner's function on a list of cases and compares each answer with the library's,
with explicit tolerances. It never raises: it prints one status line and returns a bool.

* ``PASS``: every case agrees, and every constraint the exercise states holds.
* ``FAIL``: a case disagrees, the learner's code raised, or a stated constraint is broken (a Python loop
  where the exercise says "without loops", an intermediate of size r(r-1)/2 where it says "in O(r)"); the
  line names the case and gives a hint. Hints progress: the first failure of an exercise points at the
  idea, later failures get more concrete, and only repeated failures show the formula.
* ``ANSWERED BY CALLING THE LIBRARY``: the function is the library's own, or it called the part of
  ``gflow_lite`` that the exercise asks you to write. The answer may be right, but it is not counted as
  passed.
* ``NOT DONE YET``: the function still raises ``NotImplementedError`` (the stub).

How a library call is detected: while the learner's function runs (and only then), a profile hook
watches every Python call. A call into ``gflow_lite`` whose nearest caller outside torch and the
standard library is the learner's own code counts, unless the check allows that function (each check
lists the few helpers it allows, such as ``n_plucker``). Library objects that a check hands to the
learner (a layer to probe, say) may be used freely: those calls come from the check's code.

Results are remembered per exercise name, so that `ChapterExercises.summary` can report a chapter.
"""

from __future__ import annotations

import ast
import enum
import inspect
import os
import sys
import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

import gflow_lite

__all__ = ["Status", "CheckResult", "Mismatch", "ConstraintBroken", "LibraryCall", "run_check",
           "expect_close", "expect_equal", "results", "results_seq", "make_generator", "no_python_loops",
           "largest_intermediate", "reset_attempts"]


class Status(str, enum.Enum):
    PASSED = "pass"
    FAILED = "fail"
    LIBRARY = "answered by calling the library"
    NOT_DONE = "not done yet"


@dataclass(frozen=True)
class CheckResult:
    exercise: str  # the learner's function name
    check: str  # the check's name
    status: Status
    message: str
    seq: int  # order in which checks ran in this process
    hint_level: int = 0  # the most concrete hint this exercise has shown so far (0: none)
    hints: int = 0  # how many hints the exercise has


class Mismatch(AssertionError):
    """A learner's answer that disagrees with the library's on one case."""


class ConstraintBroken(AssertionError):
    """The answer is right but breaks a constraint the exercise states (loops, memory)."""


class LibraryCall(AssertionError):
    """The learner's function is, or calls, the library code the exercise asks for."""


_RESULTS: Dict[str, CheckResult] = {}
_SEQ = [0]
_FAILURES: Dict[str, int] = {}  # failed attempts per check, for progressive hints
_HINT_LEVEL: Dict[str, int] = {}  # the most concrete hint each exercise has shown (recorded for the summary)


def results_seq() -> int:
    """How many checks have run in this process (results newer than this have a larger ``seq``)."""
    return _SEQ[0]


def results() -> Dict[str, CheckResult]:
    """The last result of every exercise checked in this process, keyed by the function's name."""
    return dict(_RESULTS)


def reset_attempts() -> None:
    """Forget the failure counts (the next failure shows the first hint again); the record of the hints
    already shown, which `summary` reports, is kept."""
    _FAILURES.clear()


def hint_levels() -> Dict[str, int]:
    """The most concrete hint each exercise (by function name) has shown in this process."""
    return dict(_HINT_LEVEL)


def make_generator(seed: int) -> torch.Generator:
    """A private generator: checks never consume (or depend on) the notebook's global RNG."""
    return torch.Generator().manual_seed(seed)


def _as_tensor(x: Any, like: Tensor) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return torch.as_tensor(x, dtype=like.dtype)


def expect_close(actual: Any, expected: Tensor, case: str, *, rtol: float, atol: float) -> None:
    """Raise `Mismatch` unless ``actual`` has ``expected``'s shape and values within the tolerances."""
    if actual is None:
        raise Mismatch(f"{case}: your function returned None (did you forget `return`?)")
    actual = _as_tensor(actual, expected)
    if tuple(actual.shape) != tuple(expected.shape):
        raise Mismatch(f"{case}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    if not actual.is_floating_point() and expected.is_floating_point():
        actual = actual.to(expected.dtype)
    a, e = actual.detach().to(torch.float64), expected.detach().to(torch.float64)
    if not torch.isfinite(a).all() and torch.isfinite(e).all():
        raise Mismatch(f"{case}: your answer contains NaN or inf")
    if not torch.allclose(a, e, rtol=rtol, atol=atol):
        err = (a - e).abs().max().item()
        raise Mismatch(f"{case}: max |yours - expected| = {err:.3g} (tolerance atol={atol:g}, rtol={rtol:g})")


def expect_equal(actual: Any, expected: Any, case: str) -> None:
    """Raise `Mismatch` unless ``actual == expected`` (ints, bools, tuples, or tensors compared exactly)."""
    if actual is None and expected is not None:
        raise Mismatch(f"{case}: your function returned None (did you forget `return`?)")
    if isinstance(expected, Tensor):
        if not isinstance(actual, Tensor):
            actual = torch.as_tensor(actual)
        if tuple(actual.shape) != tuple(expected.shape):
            raise Mismatch(f"{case}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
        if not torch.equal(actual.to(expected.dtype), expected):
            wrong = int((actual.to(expected.dtype) != expected).sum())
            raise Mismatch(f"{case}: {wrong} of {expected.numel()} entries differ from the expected answer")
        return
    if actual != expected:
        raise Mismatch(f"{case}: got {actual!r}, expected {expected!r}")


# ------------------------------------------------------------------------------- stated constraints
def _source_tree(fn: Callable) -> Optional[ast.AST]:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None


_LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def no_python_loops(fn: Callable) -> Optional[str]:
    """None if ``fn``'s source has no for/while loop and no comprehension, else what was found.

    A function whose source cannot be read (built with `exec`, say) is reported as such.
    """
    tree = _source_tree(fn)
    if tree is None:
        return "its source could not be read, so 'without Python loops' cannot be checked"
    for node in ast.walk(tree):
        if isinstance(node, _LOOPS):
            kind = {ast.For: "a for loop", ast.AsyncFor: "a for loop", ast.While: "a while loop"}.get(
                type(node), "a comprehension")
            return f"{kind} at line {getattr(node, 'lineno', '?')} of your function"
    return None


class _LargestTensor(TorchFunctionMode):
    """Records the largest tensor any torch function or tensor operation returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def largest_intermediate(fn: Callable, *args: Any) -> tuple:
    """``(fn(*args), numel of the largest tensor created while it ran)``."""
    mode = _LargestTensor()
    with mode:
        out = fn(*args)
    return out, mode.largest


# ---------------------------------------------------------------------------------- library guard
_LIB = os.path.dirname(os.path.abspath(gflow_lite.__file__)) + os.sep
_BOOK = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # book/gflow_book/
_TORCH = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
_STDLIB = os.path.dirname(os.path.abspath(os.__file__)) + os.sep


def _is_library_callable(fn: Any) -> bool:
    """``fn`` is itself library code: a gflow_lite function, method or bound method."""
    target = getattr(fn, "__func__", fn)
    target = inspect.unwrap(target) if callable(target) else target
    code = getattr(target, "__code__", None)
    if code is not None:
        return os.path.abspath(code.co_filename).startswith(_LIB)
    return getattr(target, "__module__", "").startswith("gflow_lite")


class _Guard:
    """While active, records the first call into gflow_lite made by the learner's own code."""

    def __init__(self, allowed: Sequence[str]) -> None:
        self.allowed = set(allowed)
        self.calls: List[str] = []
        self._files: Dict[str, str] = {}

    def _where(self, filename: str) -> str:
        kind = self._files.get(filename)
        if kind is None:
            path = os.path.abspath(filename)
            if path.startswith(_LIB):
                kind = "library"
            elif path.startswith(_BOOK) and os.sep + "solutions" + os.sep not in path:
                kind = "check"
            elif path.startswith(_TORCH) or path.startswith(_STDLIB) or filename.startswith("<frozen"):
                kind = "passthrough"
            else:
                kind = "learner"
            self._files[filename] = kind
        return kind

    def __call__(self, frame, event, arg):
        if event != "call" or self.calls:
            return
        code = frame.f_code
        if self._where(code.co_filename) != "library" or code.co_name in self.allowed:
            return
        caller = frame.f_back
        while caller is not None and self._where(caller.f_code.co_filename) == "passthrough":
            caller = caller.f_back
        if caller is not None and (caller.f_code is _RUN_CODE
                                   or self._where(caller.f_code.co_filename) == "learner"):
            module = frame.f_globals.get("__name__", "gflow_lite")
            self.calls.append(f"{module}.{getattr(code, 'co_qualname', code.co_name)}")


def _guarded(fn: Callable, allowed: Sequence[str]) -> Callable:
    """``fn`` run under `_Guard`; raises `LibraryCall` after it returns if it called the library."""

    def run(*args, **kwargs):
        guard = _Guard(allowed)
        previous = sys.getprofile()
        sys.setprofile(guard)
        try:
            out = fn(*args, **kwargs)
        finally:
            sys.setprofile(previous)
        if guard.calls:
            raise LibraryCall(f"your function calls `{guard.calls[0]}`")
        return out

    run.__name__ = getattr(fn, "__name__", "fn")
    run.__wrapped_learner__ = fn  # type: ignore[attr-defined]
    return run


# a library function called directly by the wrapper (a functools.partial of it, say) is the learner's call
_RUN_CODE = _guarded(len, ()).__code__


# -------------------------------------------------------------------------------------- the check
def _pick_hint(hints: Union[str, Sequence[str]], failures: int) -> str:
    if isinstance(hints, str):
        hints = [hints]
    k = min(failures, len(hints)) - 1
    more = (f" (hint {k + 1} of {len(hints)}; a later failed attempt shows the next)"
            if k + 1 < len(hints) else (f" (hint {k + 1} of {len(hints)})" if len(hints) > 1 else ""))
    return hints[k] + more


def run_check(
    check: str,
    fn: Callable,
    cases: Iterable[Callable[[Callable], Optional[str]]],
    hint: Union[str, Sequence[str]],
    *,
    allowed: Sequence[str] = (),
    constraints: Sequence[Callable[[Callable], Optional[str]]] = (),
) -> bool:
    """Run ``fn`` through ``cases`` (each calls ``fn`` and raises `Mismatch` on a wrong answer).

    ``hint``: one hint, or hints from the idea to the formula (the k-th failure of this check shows the
    k-th). ``allowed``: names of gflow_lite functions the learner may call. ``constraints``: functions
    of the learner's function returning None or what breaks a constraint the exercise states.
    Prints one status line and returns True only if every case passed and every constraint holds.
    """
    name = getattr(fn, "__name__", repr(fn))
    head = f"[{check}] {name}"
    n = 0
    status = Status.PASSED
    try:
        if not callable(fn):
            raise Mismatch(f"expected a function, got {type(fn).__name__}")
        if _is_library_callable(fn):
            raise LibraryCall(f"`{name}` is the library's own `{getattr(fn, '__qualname__', name)}`")
        guarded = _guarded(fn, allowed)
        with torch.random.fork_rng(devices=[]):  # the notebook's random stream is left untouched
            for case in cases:
                case(guarded)
                n += 1
            for constraint in constraints:
                broken = constraint(guarded)
                if broken:
                    raise ConstraintBroken(broken)
    except NotImplementedError:
        msg = f"{head}: NOT DONE YET. Replace `raise NotImplementedError` in `{name}` with your code and re-run."
        status = Status.NOT_DONE
    except LibraryCall as err:
        msg = (f"{head}: ANSWERED BY CALLING THE LIBRARY, not counted as passed. {err}; this exercise asks "
               f"you to compute it yourself (with torch, not gflow_lite).")
        status = Status.LIBRARY
    except (Mismatch, ConstraintBroken) as err:
        status = Status.FAILED
        what = "FAIL" if isinstance(err, Mismatch) else f"FAIL (all {n} cases agree, but a stated constraint is broken)"
        msg = f"{head}: {what}. {err}"
    except Exception as err:  # the learner's code crashed: report it, never crash the notebook
        status = Status.FAILED
        msg = f"{head}: FAIL. Your function raised {type(err).__name__}: {err}"
    else:
        msg = f"{head}: PASS ({n} cases agree with the library)"
    n_hints = 1 if isinstance(hint, str) else len(hint)
    if status is Status.FAILED:
        _FAILURES[check] = _FAILURES.get(check, 0) + 1
        msg += f"\n    hint: {_pick_hint(hint, _FAILURES[check])}"
        _HINT_LEVEL[name] = max(_HINT_LEVEL.get(name, 0), min(_FAILURES[check], n_hints))
    _SEQ[0] += 1
    _RESULTS[name] = CheckResult(name, check, status, msg, _SEQ[0], _HINT_LEVEL.get(name, 0), n_hints)
    print(msg)
    return status is Status.PASSED
