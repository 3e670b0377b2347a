"""The machinery every exercise check shares.

A check calls the learner's function on a list of cases and compares each answer with the library's,
with explicit tolerances. It never raises: it prints one status line and returns a bool.

* ``PASS``: every case agrees.
* ``FAIL``: a case disagrees or the learner's code raised; the line names the case, the size of the
  error and a hint.
* ``NOT DONE YET``: the function still raises ``NotImplementedError`` (the stub).

Results are remembered per exercise name, so that `ChapterExercises.summary` can report a chapter.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Optional

import torch
from torch import Tensor

__all__ = ["Status", "CheckResult", "Mismatch", "run_check", "expect_close", "expect_equal", "results",
           "results_seq", "make_generator"]


class Status(str, enum.Enum):
    PASSED = "pass"
    FAILED = "fail"
    NOT_DONE = "not done yet"


@dataclass(frozen=True)
class CheckResult:
    exercise: str  # the learner's function name
    check: str  # the check's name
    status: Status
    message: str
    seq: int  # order in which checks ran in this process


class Mismatch(AssertionError):
    """A learner's answer that disagrees with the library's on one case."""


_RESULTS: Dict[str, CheckResult] = {}
_SEQ = [0]


def results_seq() -> int:
    """How many checks have run in this process (results newer than this have a larger ``seq``)."""
    return _SEQ[0]


def results() -> Dict[str, CheckResult]:
    """The last result of every exercise checked in this process, keyed by the function's name."""
    return dict(_RESULTS)


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
        raise Mismatch(f"{case}: max |yours - library| = {err:.3g} (tolerance atol={atol:g}, rtol={rtol:g})")


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
            raise Mismatch(f"{case}: {wrong} of {expected.numel()} entries differ from the library's")
        return
    if actual != expected:
        raise Mismatch(f"{case}: got {actual!r}, expected {expected!r}")


def run_check(
    check: str,
    fn: Callable,
    cases: Iterable[Callable[[Callable], Optional[str]]],
    hint: str,
) -> bool:
    """Run ``fn`` through ``cases`` (each calls ``fn`` and raises `Mismatch` on a wrong answer).

    Prints one status line (and a hint on failure) and returns True only if every case passed.
    """
    name = getattr(fn, "__name__", repr(fn))
    head = f"[{check}] {name}"
    n = 0
    try:
        if not callable(fn):
            raise Mismatch(f"expected a function, got {type(fn).__name__}")
        with torch.random.fork_rng(devices=[]):  # the notebook's random stream is left untouched
            for case in cases:
                case(fn)
                n += 1
    except NotImplementedError:
        msg = f"{head}: NOT DONE YET. Replace `raise NotImplementedError` in `{name}` with your code and re-run."
        status = Status.NOT_DONE
    except Mismatch as err:
        msg = f"{head}: FAIL. {err}\n    hint: {hint}"
        status = Status.FAILED
    except Exception as err:  # the learner's code crashed: report it, never crash the notebook
        msg = f"{head}: FAIL. Your function raised {type(err).__name__}: {err}\n    hint: {hint}"
        status = Status.FAILED
    else:
        msg = f"{head}: PASS ({n} cases agree with the library)"
        status = Status.PASSED
    _SEQ[0] += 1
    _RESULTS[name] = CheckResult(name, check, status, msg, _SEQ[0])
    print(msg)
    return status is Status.PASSED
