"""Exercise stubs, their reference solutions, and a chapter's summary.

A chapter creates one decorator for its exercises::

    exercise = chapter_exercises("01_geometry")

    @exercise
    def plucker_coordinates(u, v):
        raise NotImplementedError

Normally `exercise` returns the learner's function untouched. With ``GFLOW_SOLUTIONS=1`` it returns the
function of the same name from ``book/solutions/01_geometry.py`` instead (after checking that both have
the same signature), so that CI can verify that every check passes with the reference solutions.
``exercise.summary()`` at the end of a chapter reports each exercise's last check; with
``GFLOW_SOLUTIONS=1`` it raises unless every exercise passed.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, List

from .checks.core import Status, results, results_seq

__all__ = ["SOLUTIONS_ENV", "solutions_enabled", "solutions_dir", "load_solutions", "ChapterExercises",
           "chapter_exercises"]

SOLUTIONS_ENV = "GFLOW_SOLUTIONS"

#: ``book/solutions``: the folder beside this package (``book/gflow_book``), wherever the book was copied.
SOLUTIONS_DIR = Path(__file__).resolve().parent.parent / "solutions"


def solutions_enabled() -> bool:
    """Whether ``GFLOW_SOLUTIONS`` asks for the reference solutions (1/true/yes/on)."""
    return os.environ.get(SOLUTIONS_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def solutions_dir() -> Path:
    """``book/solutions``, found beside the `gflow_book` package, never through the current directory."""
    return SOLUTIONS_DIR


_LOADED: Dict[str, ModuleType] = {}


def load_solutions(chapter: str) -> ModuleType:
    """The module ``book/solutions/<chapter>.py`` (loaded once per process)."""
    if chapter not in _LOADED:
        path = solutions_dir() / f"{chapter}.py"
        if not path.is_file():
            raise FileNotFoundError(
                f"no solutions for chapter {chapter!r} at {path}; {SOLUTIONS_ENV}=1 needs the book's "
                f"solutions/ folder beside the gflow_book package (book/solutions in a clone)"
            )
        spec = importlib.util.spec_from_file_location(f"gflow_book_solutions_{chapter}", path)
        module = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(module)
        _LOADED[chapter] = module
    return _LOADED[chapter]


class ChapterExercises:
    """The ``@exercise`` decorator of one chapter, and its summary."""

    def __init__(self, chapter: str) -> None:
        self.chapter = chapter
        self.names: List[str] = []
        self._since = results_seq()  # only checks run after this chapter started count

    def __call__(self, stub: Callable) -> Callable:
        name = stub.__name__
        if name not in self.names:
            self.names.append(name)
        if not solutions_enabled():
            return stub
        solution = getattr(load_solutions(self.chapter), name, None)
        if solution is None:
            raise AttributeError(f"book/solutions/{self.chapter}.py has no function {name!r}")
        if inspect.signature(solution) != inspect.signature(stub):
            raise TypeError(
                f"{name}: the solution's signature {inspect.signature(solution)} differs from the "
                f"stub's {inspect.signature(stub)}"
            )
        print(f"{name}: using the reference solution ({SOLUTIONS_ENV}=1)")
        return solution

    def summary(self) -> Dict[str, str]:
        """Print and return each exercise's status; raise under ``GFLOW_SOLUTIONS=1`` unless all passed."""
        done = {name: r for name, r in results().items() if r.seq > self._since}
        status = {name: (done[name].status.value if name in done else "not checked") for name in self.names}
        counts = {s: sum(v == s for v in status.values()) for s in ("pass", "fail", "not done yet", "not checked")}
        counts["fail"] += sum(v == Status.LIBRARY.value for v in status.values())  # not passed: counted as failed
        print(f"exercises in {self.chapter}: {len(status)} | passed {counts['pass']} | failed {counts['fail']} "
              f"| not done yet {counts['not done yet']} | not checked {counts['not checked']}")
        for name, s in status.items():
            print(f"  {name}: {s}")
        if solutions_enabled():
            bad = {n: s for n, s in status.items() if s != Status.PASSED.value}
            if bad:
                raise AssertionError(f"with {SOLUTIONS_ENV}=1 every exercise must pass; not passing: {bad}")
        return status


def chapter_exercises(chapter: str) -> ChapterExercises:
    """The decorator for chapter ``chapter`` (the chapter file's name without ``.py``)."""
    return ChapterExercises(chapter)
