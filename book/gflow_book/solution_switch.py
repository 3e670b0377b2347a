"""The instructor's switch ``GFLOW_SOLUTIONS=1``: the chapters run with the reference solutions.

With ``GFLOW_SOLUTIONS=1`` a chapter's ``@exercise`` returns the function of the same name from
``book/solutions/<chapter>.py`` instead of the stub (after checking that both have the same signature),
so that CI can verify that every check passes with the reference solutions, and ``summary()`` raises
unless every exercise passed. This file and ``book/solutions`` are left out of the student release
(``make student-release``); without them the decorator returns the learner's function, always.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict

__all__ = ["SOLUTIONS_ENV", "solutions_enabled", "solutions_dir", "load_solutions", "swap"]

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


def swap(chapter: str, stub: Callable) -> Callable:
    """The reference solution of the same name and signature as ``stub`` (under ``GFLOW_SOLUTIONS=1``)."""
    name = stub.__name__
    solution = getattr(load_solutions(chapter), name, None)
    if solution is None:
        raise AttributeError(f"book/solutions/{chapter}.py has no function {name!r}")
    if inspect.signature(solution) != inspect.signature(stub):
        raise TypeError(
            f"{name}: the solution's signature {inspect.signature(solution)} differs from the "
            f"stub's {inspect.signature(stub)}"
        )
    print(f"{name}: using the reference solution ({SOLUTIONS_ENV}=1)")
    return solution
