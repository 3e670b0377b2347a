"""On-disk cache of token-id arrays (``.npy`` plus a ``.json`` sidecar holding its SHA-256).

A cached array is used only if the sidecar exists, the array loads, and its length, dtype and hash match
the sidecar; anything else (a truncated or edited file, a missing sidecar) counts as a miss and the
caller rebuilds it. The sidecar is written last, so a run killed mid-write leaves a miss, never a wrong hit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .atomic import atomic_open, atomic_write_text


def _array_digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def safe_key(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``_`` (a file-name-safe key)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def storage_dtype(vocab_size: int) -> np.dtype:
    """``uint16`` when every id fits, else ``int32``."""
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.int32)


def load_cached(path: Path) -> Optional[np.ndarray]:
    """The array at ``path`` if it and its sidecar are intact, else ``None``."""
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if (
        array.ndim != 1
        or str(array.dtype) != meta.get("dtype")
        or len(array) != meta.get("n_tokens")
        or _array_digest(array) != meta.get("sha256")
    ):
        return None
    return array


def save_cached(path: Path, array: np.ndarray, **info: object) -> None:
    """Store ``array`` at ``path`` atomically, then its sidecar (``info`` is recorded there too)."""
    meta_path = path.with_suffix(".json")
    with contextlib.suppress(FileNotFoundError):
        meta_path.unlink()  # a stale sidecar must not vouch for the new array while it is written
    with atomic_open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
    meta = {"dtype": str(array.dtype), "n_tokens": int(len(array)), "sha256": _array_digest(array), **info}
    atomic_write_text(meta_path, json.dumps(meta, indent=1, sort_keys=True))


def cached_array(path: Path, build: Callable[[], np.ndarray], **info: object) -> np.ndarray:
    """Load the array cached at ``path`` or build, store and return it."""
    array = load_cached(path)
    if array is None:
        array = build()
        save_cached(path, array, **info)
    return array
