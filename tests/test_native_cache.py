"""The C++ kernel's build cache fails safe (issue 24, items 1 and 2): a build killed with kill -9 leaves torch's
``lock`` file, and the next process builds instead of waiting on it forever; a truncated ``.so`` that ninja
considers up to date is rebuilt instead of loaded (SIGBUS, exit 135); a build held by another process is waited
for with a timeout, then falls back with a message; a missing compiler is named as the cause of the fallback.

Every case runs a real ``torch.utils.cpp_extension.load`` in a child process (under ``timeout``), into a temporary
``TORCH_EXTENSIONS_DIR``; one extension folder is built once for the module and copied for each case."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # the children import gflow_lite from this checkout

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32" or shutil.which("timeout") is None,
                       reason="needs POSIX and timeout"),
    pytest.mark.skipif(shutil.which(os.environ.get("CXX", "c++")) is None,
                       reason="no C++ compiler to build with"),
]

USE = """
import torch, gflow_lite.kernels.native as n
ok = n.available()
print("AVAILABLE", ok, n.build_error(), flush=True)
args = (torch.randn(1, 5, 12, dtype=torch.float64), None, (1, 2), torch.full((5, 2), 0.5, dtype=torch.float64),
        torch.randn(6, 12, dtype=torch.float64), torch.zeros(6, dtype=torch.float64),
        torch.randn(12, 15, dtype=torch.float64), torch.zeros(12, dtype=torch.float64),
        torch.randn(12, 24, dtype=torch.float64), torch.zeros(12, dtype=torch.float64))
y, z = n.native_grassmann_layer(*args, True, 1e-6)
print("RAN", tuple(y.shape), bool(torch.isfinite(y).all()), flush=True)
"""


def child(ext_dir: Path, code: str = USE, timeout: int = 400, env: dict | None = None, **kw) -> subprocess.Popen:
    e = dict(os.environ, TORCH_EXTENSIONS_DIR=str(ext_dir), PYTHONWARNINGS="default", **(env or {}))
    cmd = [shutil.which("timeout"), "-s", "KILL", str(timeout), sys.executable, "-c", code]
    return subprocess.Popen(cmd, cwd=ROOT, env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def run(ext_dir: Path, **kw) -> subprocess.CompletedProcess:
    proc = child(ext_dir, **kw)
    out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def ext_folder(ext_dir: Path) -> Path:
    (folder,) = [p for p in ext_dir.iterdir() if p.name.startswith("gflow_lite_native_")]
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """One extension folder, built once (about a minute on a busy 2-core machine)."""
    ext = tmp_path_factory.mktemp("ext_built")
    res = run(ext)
    assert res.returncode == 0 and "AVAILABLE True" in res.stdout, res.stdout + res.stderr
    return ext_folder(ext)


@pytest.fixture
def copy_of(built, tmp_path):
    ext = tmp_path / "ext"
    ext.mkdir()
    shutil.copytree(built, ext / built.name, symlinks=True)  # copy2: mtimes kept, so ninja sees it up to date
    return ext


def test_a_killed_build_leaves_no_lock_that_hangs_the_next_one(tmp_path):
    ext = tmp_path / "ext"
    first = child(ext, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(ext.glob("gflow_lite_native_*/lock")):  # torch's FileBaton: the build has started
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the build never took torch's lock"
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(first.pid, signal.SIGKILL)  # the child, its compiler and ninja: as an OOM kill or kill -9 would
    first.communicate()
    folder = ext_folder(ext)
    assert (folder / "lock").exists()  # what used to make every later use wait forever
    res = run(ext, timeout=400)
    assert res.returncode == 0, f"exit {res.returncode} (124/137: hung on the lock)\n{res.stdout}\n{res.stderr}"
    assert "AVAILABLE True" in res.stdout and "RAN (1, 5, 12) True" in res.stdout, res.stdout + res.stderr
    assert "removed a stale build lock" in res.stderr and str(folder / "lock") in res.stderr
    assert not (folder / "lock").exists()


def test_a_stale_lock_beside_a_good_build_is_cleared(copy_of):
    folder = ext_folder(copy_of)
    (folder / "lock").touch()
    res = run(copy_of, timeout=120)
    assert res.returncode == 0, f"exit {res.returncode} (124/137: hung on the lock)\n{res.stdout}\n{res.stderr}"
    assert "AVAILABLE True" in res.stdout and "removed a stale build lock" in res.stderr
    assert "building the C++ kernel" not in res.stderr  # the verified build was loaded, not rebuilt


def test_a_truncated_library_is_rebuilt_not_loaded(copy_of):
    folder = ext_folder(copy_of)
    (so,) = folder.glob("*.so")
    size = so.stat().st_size
    with open(so, "r+b") as f:
        f.truncate(size // 2)  # newer than its inputs: ninja considers it up to date
    res = run(copy_of, timeout=400)
    assert res.returncode == 0, f"exit {res.returncode} (135: SIGBUS)\n{res.stdout}\n{res.stderr}"
    assert "AVAILABLE True" in res.stdout and "RAN (1, 5, 12) True" in res.stdout, res.stdout + res.stderr
    assert "cannot be trusted" in res.stderr and "rebuilding it" in res.stderr, res.stderr
    assert so.stat().st_size == size


def test_a_build_held_by_another_process_times_out_into_the_fallback(copy_of):
    folder = ext_folder(copy_of)
    fd = os.open(folder / "gflow_lite_build.flock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process is building
        start = time.monotonic()
        res = run(copy_of, timeout=120, env={"GFLOW_NATIVE_BUILD_TIMEOUT": "4"})
        took = time.monotonic() - start
    finally:
        os.close(fd)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "AVAILABLE False" in res.stdout and "RAN (1, 5, 12) True" in res.stdout  # the fused kernels ran
    assert "waited 4 s for another process building the C++ kernel" in res.stderr, res.stderr
    assert "GFLOW_NATIVE_BUILD_TIMEOUT" in res.stderr and took < 100


def test_a_missing_compiler_is_named_in_the_fallback(tmp_path):
    bin_dir = tmp_path / "bin"  # a PATH with python and nothing else: no c++, g++, cc
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {"CXX": "/bin/false", "PATH": str(bin_dir)}
    code = USE.replace("import torch", "import warnings; warnings.simplefilter('always'); import torch")
    res = run(tmp_path / "ext", code=code, timeout=120, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "AVAILABLE False" in res.stdout and "RAN (1, 5, 12) True" in res.stdout
    want = "no C++ compiler found (install g++ / build-essential / Xcode command line tools)"
    assert want in res.stderr and "/bin/false" in res.stderr, res.stderr
    env["CXX"] = "no-such-compiler-here"
    res = run(tmp_path / "ext", code=code, timeout=120, env=env)
    assert res.returncode == 0 and want in res.stderr and "`no-such-compiler-here` is not on PATH" in res.stderr
