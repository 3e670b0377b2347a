"""Shared by tests/test_book.py, tests/test_exercises.py and tests/test_browser.py (not a test module).

The website is built at most once per pytest session (`built_book`), into a fresh temporary folder, with
every chapter executed as a learner first sees it: stubs, no solutions, quick mode.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Optional

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
BIN = Path(sys.executable).parent
SOLUTIONS = BOOK / "solutions"

#: Wall-clock budget per chapter for the nbval run (seconds). The contract is 90 s on 2 CPU cores; the
#: default allows twice that for shared, busy machines. Override with GFLOW_CHAPTER_BUDGET_S.
CHAPTER_BUDGET_S = float(os.environ.get("GFLOW_CHAPTER_BUDGET_S", "180"))


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=None)
def sync_module() -> ModuleType:
    """``book/sync.py``, the generator of notebooks, badges and Colab cells."""
    return load_module(BOOK / "sync.py", "gflow_book_sync")


def chapter_sources() -> List[Path]:
    return sync_module().chapters()


def chapter_ids() -> List[str]:
    return [p.stem for p in chapter_sources()]


def toc_files() -> List[str]:
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = []
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
    return files


def exercise_names(source: str) -> List[str]:
    """Functions decorated with ``@exercise`` in a chapter's source, in order."""
    return re.findall(r"^@exercise\s*\ndef (\w+)\(", source, flags=re.M)


def figure_count(source: str) -> int:
    """Figures a chapter shows: its ``plt.show()`` calls (the book's convention)."""
    return len(re.findall(r"^\s*plt\.show\(\)", source, flags=re.M))


def notebook_env(solutions: bool) -> Dict[str, str]:
    """The environment the chapters run under in the tests: quick mode, no progress bars, one thread."""
    env = dict(os.environ)
    env.update(GFLOW_QUICK="1", TQDM_DISABLE="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    env.pop("GFLOW_SOLUTIONS", None)
    if solutions:
        env["GFLOW_SOLUTIONS"] = "1"
    return env


def run_nbval(notebook: Path, solutions: bool, timeout: float = 900) -> subprocess.CompletedProcess:
    """nbval in lax mode on one notebook, as its own pytest process (what `make test` relies on)."""
    env = notebook_env(solutions)
    env["MPLBACKEND"] = "Agg"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
           "--nbval-current-env", "--nbval-cell-timeout=300", str(notebook)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@dataclass
class BookBuild:
    html: Optional[Path]
    returncode: int
    log: str
    seconds: float

    def require(self) -> Path:
        if self.returncode != 0 or self.html is None:
            raise AssertionError(f"jupyter-book build failed (exit {self.returncode}):\n{self.log[-6000:]}")
        return self.html


def jupyter_book_build(source: Path, out: Path, env: Dict[str, str], timeout: float = 1800) -> subprocess.CompletedProcess:
    """``jupyter-book build -W -n --keep-going`` (warnings and cell errors fail) into ``out``."""
    cmd = [str(BIN / "jupyter-book"), "build", "-W", "-n", "--keep-going", "--path-output", str(out), str(source)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@functools.lru_cache(maxsize=1)
def built_book() -> BookBuild:
    """Build the website once per session (stubs, quick mode) into a fresh temporary folder."""
    out = Path(tempfile.mkdtemp(prefix="gflow-book-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    env = notebook_env(solutions=False)
    env.pop("MPLBACKEND", None)  # the chapters draw with the inline backend, as a reader's Jupyter does
    start = time.perf_counter()
    proc = jupyter_book_build(BOOK, out, env)
    seconds = time.perf_counter() - start
    html = out / "_build" / "html"
    return BookBuild(html if proc.returncode == 0 else None, proc.returncode, proc.stdout + proc.stderr, seconds)


def find_chromium() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None
