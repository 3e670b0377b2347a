"""Every chapter that touches ``impl="native"`` runs on a machine without a C++ compiler (a laptop without
build tools, Binder): the compiler hidden (``CXX=/bin/false``, ``CC=/bin/false``, a PATH without any C or
C++ compiler) and an empty extension folder, so that nothing compiled earlier is reused. The native
kernel must then fall back to the fused one (checked first, in the same environment), and the chapters
must still execute every cell and assert under nbval, in quick mode.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from book_support import BOOK, ROOT, notebook_env

#: Chapters whose code uses impl="native" (tested below to be exactly the ones that name it).
NATIVE_CHAPTERS = ["04_complexity"]
COMPILERS = re.compile(r"^(.*-)?(c\+\+|g\+\+|gcc|cc|clang|clang\+\+|cpp|ld|icx|icpx)(-[\d.]+)?$")


def hidden_compiler_env(tmp_path: Path) -> dict:
    """The chapters' environment with no C/C++ compiler to be found and an empty extension folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            src, dst = os.path.join(folder, name), bin_dir / name
            if COMPILERS.match(name) or dst.exists() or not os.access(src, os.X_OK):
                continue
            dst.symlink_to(src)
    ext = tmp_path / "torch_extensions"
    ext.mkdir()
    env = notebook_env(solutions=True)
    env.update(PATH=str(bin_dir), CXX="/bin/false", CC="/bin/false", TORCH_EXTENSIONS_DIR=str(ext))
    return env


def run_nbval_env(notebook: Path, env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    """nbval in lax mode on one notebook, as `book_support.run_nbval`, in ``env``."""
    env = dict(env, MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
           "--nbval-current-env", "--nbval-cell-timeout=300", str(notebook)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_native_chapters_are_the_ones_that_name_it():
    named = sorted(p.stem for p in BOOK.glob("[0-9][0-9]_*.py") if 'impl="native"' in p.read_text()
                   or "impl='native'" in p.read_text() or '"native"' in p.read_text())
    assert named == NATIVE_CHAPTERS


def test_the_compiler_is_hidden_and_native_falls_back(tmp_path):
    env = hidden_compiler_env(tmp_path)
    code = ("import warnings, torch\n"
            "from gflow_lite.kernels import native\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    assert not native.available(), 'the C++ kernels were built: the compiler is not hidden'\n"
            "print(native.build_error())\n"
            "assert any('could not be built' in str(w.message) for w in caught)\n"
            "from gflow_lite import CausalGrassmannMixing\n"
            "layer = CausalGrassmannMixing(8, 4, (1, 2), impl='native')\n"
            "layer(torch.randn(1, 5, 8)).sum().backward()  # runs (the fused kernel)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not any(Path(env["TORCH_EXTENSIONS_DIR"]).rglob("*.so")), "an extension was built"


@pytest.mark.slow
@pytest.mark.parametrize("stem", NATIVE_CHAPTERS)
def test_chapter_runs_without_a_compiler(stem, tmp_path):
    env = hidden_compiler_env(tmp_path)
    proc = run_nbval_env(BOOK / f"{stem}.ipynb", env)
    assert proc.returncode == 0, f"{stem} failed without a compiler:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert not any(Path(env["TORCH_EXTENSIONS_DIR"]).rglob("*.so")), "an extension was built"
