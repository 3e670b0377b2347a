"""Exercise stubs and a chapter's summary.

A chapter creates one decorator for its exercises::

    exercise = chapter_exercises("01_geometry")

    @exercise
    def plucker_coordinates(u, v):
        raise NotImplementedError

`exercise` returns the learner's function untouched. (The instructor's copy of the book has a switch,
`solution_switch`, that swaps in the reference solutions for CI; the student release has neither.)
``exercise.summary()`` at the end of a chapter reports each exercise's last check and the hints it
showed; under the instructor's switch it raises unless every exercise passed.
"""

from __future__ import annotations

from typing import Callable, Dict, List

from .checks.core import Status, results, results_seq

try:  # the instructor's copy only
    from . import solution_switch as _switch
except ImportError:  # the student release
    _switch = None

__all__ = ["solutions_enabled", "ChapterExercises", "chapter_exercises"]


def solutions_enabled() -> bool:
    """Whether the reference solutions are swapped in (never in the student release)."""
    return _switch is not None and _switch.solutions_enabled()


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
        return _switch.swap(self.chapter, stub)

    def summary(self) -> Dict[str, str]:
        """Print and return each exercise's status; under the solutions switch, raise unless all passed."""
        done = {name: r for name, r in results().items() if r.seq > self._since}
        status = {name: (done[name].status.value if name in done else "not checked") for name in self.names}
        counts = {s: sum(v == s for v in status.values()) for s in ("pass", "fail", "not done yet", "not checked")}
        counts["fail"] += sum(v == Status.LIBRARY.value for v in status.values())  # not passed: counted as failed
        print(f"exercises in {self.chapter}: {len(status)} | passed {counts['pass']} | failed {counts['fail']} "
              f"| not done yet {counts['not done yet']} | not checked {counts['not checked']}")
        for name, s in status.items():
            seen = f" (hints seen: {done[name].hint_level} of {done[name].hints})" if (
                name in done and done[name].hint_level) else ""
            print(f"  {name}: {s}{seen}")
        if solutions_enabled():
            bad = {n: s for n, s in status.items() if s != Status.PASSED.value}
            if bad:
                raise AssertionError(f"with {_switch.SOLUTIONS_ENV}=1 every exercise must pass; not passing: {bad}")
        return status


def chapter_exercises(chapter: str) -> ChapterExercises:
    """The decorator for chapter ``chapter`` (the chapter file's name without ``.py``)."""
    return ChapterExercises(chapter)
