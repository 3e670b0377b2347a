r"""The fused Grassmann layer with its elementwise work in C++ (CPU, opt-in: ``impl="native"``).

`gflow_lite.kernels.fused` writes (G1)-(G6) as one autograd node of ATen ops: matrix products, and between them
about 200 small ops per forward+backward (counted in chapter 4 §4.6), each a dispatch and a pass over memory,
that cost more than the products (scripts/speed_ceiling.py measures both). This module keeps the
function and the matrix products (ATen's, the same FLOPs) and does everything else in the loops of
``csrc/grassmann_cpu.cpp``, which states the formulas it implements at its top (chapter 4 §4.3 derives
them; the numerics of `gflow_lite.kernels.fused`'s docstring hold here too).
The node itself is a C++ ``torch::autograd::Function``: no Python runs between its steps. Per call::

    z   = W_red h + b_red                                         ATen addmm                      (G1)
    q, w_⊥, s, n, |z|^2 = the Plücker loop over token blocks      C++, vectorised over tokens     (G2)-(G3)
    g   = q W_pluᵀ + (Σ_Δ a^Δ) b_plu                              ATen addmm                      (G4)
    α   = σ(W_h h + W_g g + b_gate),  h̃ = g + α (h - g)           ATen addmm x 2, sigmoid, lerp    (G5)-(G6)

    backward, from dh̃:
    δ, α dh̃, (1 - α) dh̃                                           C++, elementwise
    dh = α dh̃ + δ W_h,  dg = (1 - α) dh̃ + δ W_g,  dW_gate = [δᵀ h | δᵀ g]      ATen
    dq = dg W_plu,  dW_plu = dgᵀ q (q recomputed in C++),  db_plu = Σ_t (Σ_Δ a^Δ) dg   ATen
    dz, da  (K z, K w_⊥, the chain rule through c = a / n, partners' gradients Δ tokens back)   C++
    dh += dz W_red,  dW_red = dzᵀ h,  db_red = Σ_t dz                                  ATen

Unlike fused.py, ``q`` is laid out in W_plu's own column order (pairs i < j), so the weight is used as it
is (no shift layout, no permuted copy), and the C++ loops run along the tokens, feature-major. Saved for
the backward: h, z, w_⊥, g, α, s, n, |z|^2, Σ_Δ a^Δ and the offset weights (`flops.grassmann_native_cost`
counts them exactly); temporaries live in per-thread buffers reused from call to call (`release_scratch`).

**Building.** The C++ file is compiled the first time it is needed (`torch.utils.cpp_extension.load`,
with the `ninja` package, ``pip install "gflow_lite[native]"``, and the machine's C++ compiler; about 40 s
of wall time on a busy 2-core machine, into an empty extension folder) into torch's extension cache
(``~/.cache/torch_extensions``, or ``TORCH_EXTENSIONS_DIR``), under a name that includes a digest of the
source, the torch version and this CPU's instruction-set flags (it is built with ``-march=native``), so
later processes load it in well under a second. Where it cannot be built (no compiler, say), or on
another device, ``impl="native"`` runs `gflow_lite.kernels.fused` (the same function), and one warning says
why (`available`, `build_error`; a missing compiler is named as such).

**The cache fails safe** (tests/test_native_cache.py). Builds of one extension folder are serialised by an
``fcntl.flock`` on ``gflow_lite_build.flock`` there, which the kernel releases when its holder dies: whoever
holds it and finds torch's own ``lock`` file (left by a build stopped with kill -9, an OOM kill, a closed
terminal) removes it as stale and says so, instead of waiting on it forever; waiting for another process's
build gives up after ``GFLOW_NATIVE_BUILD_TIMEOUT`` seconds (600) and falls back. SIGTERM and SIGHUP during
the build raise `BuildInterrupted` (a KeyboardInterrupt), so both locks are released on the way out. After a
build that loaded, the ``.so``'s SHA-256 is recorded beside it (``<name>.so.sha256``); a ``.so`` that does
not match (truncated, say, which ninja would call up to date and the loader would die on with SIGBUS) or has
no record is removed, and rebuilt. Nothing outside the ``gflow_lite_native_<digest>`` folder is touched.
tests/test_native.py checks it against the paper-order reference and the fused kernel, outputs and
gradients, float64 and float32, streaming through a cache and with several threads.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..provenance import cpu_info
from .fused import _layer_dtype, fused_grassmann_layer

try:
    import fcntl
except ImportError:  # Windows: no flock; torch's own build lock only
    fcntl = None  # type: ignore[assignment]

__all__ = ["available", "build_error", "native_grassmann_layer", "release_scratch", "SOURCE"]

#: The C++ source, shipped inside the package.
SOURCE = Path(__file__).with_name("csrc") / "grassmann_cpu.cpp"

#: Our build lock (an ``fcntl.flock`` on this file in the extension's folder; the kernel releases it when its
#: holder dies) and the SHA-256 of the ``.so`` recorded after a build that loaded.
FLOCK_NAME = "gflow_lite_build.flock"
DIGEST_SUFFIX = ".sha256"
#: Seconds to wait for another process's build before falling back (``GFLOW_NATIVE_BUILD_TIMEOUT``).
BUILD_TIMEOUT_S = 600.0
NO_COMPILER = "no C++ compiler found (install g++ / build-essential / Xcode command line tools)"

_MODULE = None
_ERROR: Optional[str] = None
_TRIED = False


class BuildInterrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived during the build (torch's build lock and ours were released first)."""


def _say(msg: str) -> None:
    print(f"gflow_lite.kernels.native: {msg}", file=sys.stderr, flush=True)


def _name() -> str:
    digest = hashlib.sha256()
    for part in (SOURCE.read_bytes(), torch.__version__.encode(), cpu_info()["flags"].encode()):
        digest.update(part)
    return f"gflow_lite_native_{digest.hexdigest()[:12]}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _compiler_problem() -> Optional[str]:
    """Why the C++ compiler torch would call (``$CXX`` or ``c++``) cannot compile, or None."""
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        return f"{NO_COMPILER}: `{cxx}` is not on PATH"
    try:
        done = subprocess.run([cxx, "--version"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{NO_COMPILER}: `{cxx} --version` failed ({exc})"
    if done.returncode != 0:
        return f"{NO_COMPILER}: `{cxx} --version` exits with status {done.returncode}"
    return None


@contextlib.contextmanager
def _flock(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``, waiting up to ``timeout`` s for another builder."""
    if fcntl is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        start, said = time.monotonic(), False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            waited = time.monotonic() - start
            if waited >= timeout:
                raise TimeoutError(f"waited {timeout:.0f} s for another process building the C++ kernel "
                                   f"(it holds {path}); set GFLOW_NATIVE_BUILD_TIMEOUT to wait longer")
            if not said and waited > 2:
                _say(f"waiting for another process building the C++ kernel (lock {path}; at most "
                     f"{timeout:.0f} s)")
                said = True
            time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the flock


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """While active, SIGTERM and SIGHUP (left at their default action by the caller) raise `BuildInterrupted`
    instead of killing the process at once, so that torch's build lock is released on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        raise BuildInterrupted(f"{signal.Signals(signum).name} during the C++ kernel's build")

    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _remove(path: Path, build_dir: Path) -> None:
    if path.parent != build_dir:  # never anything outside our own gflow_lite_native_<digest> folder
        raise AssertionError(f"refusing to remove {path} outside {build_dir}")
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _build():
    from torch.utils import cpp_extension

    try:  # the ninja of the `ninja` package, whether or not the environment's bin/ is on PATH
        import ninja

        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
    except ImportError:
        if shutil.which("ninja") is None:
            raise RuntimeError("the ninja build tool is missing: pip install \"gflow_lite[native]\" "
                               "(or pip install ninja)") from None
    name = _name()
    build_dir = Path(cpp_extension._get_build_directory(name, verbose=False))  # creates it; as torch names it
    if build_dir.name != name:
        raise RuntimeError(f"unexpected extension folder {build_dir} for {name}")
    so = build_dir / f"{name}{cpp_extension.LIB_EXT}"
    recorded = build_dir / f"{so.name}{DIGEST_SUFFIX}"
    timeout = float(os.environ.get("GFLOW_NATIVE_BUILD_TIMEOUT", BUILD_TIMEOUT_S))
    flags = ["-O3", "-march=native", "-fopenmp"]
    with _interruptible(), _flock(build_dir / FLOCK_NAME, timeout):
        torch_lock = build_dir / "lock"
        if torch_lock.exists():  # every builder of this folder holds our flock: the lock's owner is gone
            _remove(torch_lock, build_dir)
            _say(f"removed a stale build lock {torch_lock} (left by a build that was stopped)")
        verified = False
        if so.exists():
            want = recorded.read_text().strip() if recorded.exists() else None
            verified = want is not None and _sha256(so) == want
            if not verified:  # truncated, changed, or built before digests were recorded: rebuild it
                why = ("no digest was recorded for it" if want is None
                       else "it does not match the digest recorded at its build")
                _say(f"the cached C++ kernel {so} cannot be trusted ({why}; truncated?): rebuilding it")
                _remove(so, build_dir)
                _remove(recorded, build_dir)
        if not verified:
            problem = _compiler_problem()
            if problem is not None:
                raise RuntimeError(problem)
            _say(f"building the C++ kernel for impl='native' (first use: ~40 s) in {build_dir}")

        def load():
            return cpp_extension.load(name=name, sources=[str(SOURCE)], build_directory=str(build_dir),
                                      extra_cflags=flags, extra_ldflags=["-fopenmp"], verbose=False)

        try:
            module = load()
        except Exception:
            if verified or not any(build_dir.glob("*.o")):
                raise
            # a damaged object file from an interrupted build? start this folder over once
            for f in build_dir.iterdir():
                if f.suffix in (".o", ".so") or f.name in (".ninja_log", ".ninja_deps", recorded.name):
                    _remove(f, build_dir)
            _say(f"the build failed; building again from scratch in {build_dir}")
            module = load()
        digest = _sha256(so)
        if not verified or recorded.read_text().strip() != digest:
            tmp = recorded.with_name(recorded.name + ".tmp")
            tmp.write_text(digest + "\n")
            os.replace(tmp, recorded)
    return module


def _module():
    """The compiled extension, built on first use; None (and `build_error` set) if it cannot be built."""
    global _MODULE, _ERROR, _TRIED
    if not _TRIED:
        _TRIED = True
        try:
            _MODULE = _build()
        except KeyboardInterrupt:
            _TRIED = False  # interrupted (Ctrl-C, SIGTERM): try again next time
            raise
        except Exception as exc:  # no compiler, no ninja, a read-only cache, a build lock held...: fall back, say why
            _ERROR = f"{type(exc).__name__}: {exc}"
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            first = next((ln for ln in lines if NO_COMPILER in ln), None)
            first = first or next((ln for ln in lines if "error:" in ln), lines[0] if lines else type(exc).__name__)
            warnings.warn(f"gflow_lite.kernels.native: the C++ kernels could not be built ({first[:300]}; "
                          f"gflow_lite.kernels.native.build_error() has the whole message); impl='native' runs "
                          f"the ATen kernels of gflow_lite.kernels.fused instead (same results, slower on the "
                          f"CPU). To build them: a C++ compiler and `pip install \"gflow_lite[native]\"` (ninja).",
                          RuntimeWarning, stacklevel=3)
    return _MODULE


def available() -> bool:
    """Whether the C++ kernels are built (building them now if this is the first call)."""
    return _module() is not None


def build_error() -> Optional[str]:
    """Why the C++ kernels could not be built, or None."""
    _module()
    return _ERROR


@lru_cache(maxsize=None)
def _offsets_tensor(offsets: Tuple[int, ...]) -> Tensor:
    return torch.tensor(offsets, dtype=torch.long)


def release_scratch() -> int:
    """Free this thread's C++ scratch buffers (if the kernels are loaded); returns the bytes released."""
    return _MODULE.release_scratch() if _MODULE is not None else 0


def native_grassmann_layer(
    h: Tensor, past: Optional[Tensor], offsets: Sequence[int], a: Tensor, w_red: Tensor, b_red: Tensor,
    w_plu: Tensor, b_plu: Tensor, w_gate: Tensor, b_gate: Tensor, normalize: bool, eps: float,
) -> Tuple[Tensor, Tensor]:
    """`gflow_lite.kernels.fused.fused_grassmann_layer` with the C++ kernels (same arguments, same results to
    rounding): ``h [B, T, d]``, ``past [B, P, r]`` or None, offset weights ``a [T, m]`` -> ``(h̃, z)``,
    ``z`` without gradient (for a streaming cache), in the compute dtype (``>= float32``).

    Where the kernels cannot be built (`build_error`), runs `fused_grassmann_layer` (a warning says so once).
    """
    mod = _module() if h.device.type == "cpu" else None
    if mod is None:  # another device, or not buildable here (a warning said why): the ATen kernels
        return fused_grassmann_layer(h, past, offsets, a, w_red, b_red, w_plu, b_plu, w_gate, b_gate, normalize,
                                     eps)
    dtype = _layer_dtype(h, w_red, w_plu, w_gate)
    args = [x if x.dtype == dtype else x.to(dtype) for x in (h, a, w_red, b_red, w_plu, b_plu, w_gate, b_gate)]
    args[1] = args[1].contiguous()
    past = args[0].new_empty(0) if past is None else past.detach().to(dtype).contiguous()
    offs = _offsets_tensor(tuple(int(o) for o in offsets))
    if torch.is_grad_enabled() and any(x.requires_grad for x in args):
        out, z = mod.grassmann_layer(args[0], past, *args[1:], offs, bool(normalize), float(eps))
    else:
        out, z = mod.grassmann_layer_forward(args[0], past, *args[1:], offs, bool(normalize), float(eps))
    return (out if out.dtype == h.dtype else out.to(h.dtype)), z
