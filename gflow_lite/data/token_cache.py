"""On-disk cache of derived data: token-id arrays (``.npy``) and texts (a trained tokenizer's JSON), each
with a ``.json`` sidecar holding its SHA-256.

A cached entry is used only if the sidecar exists, the entry loads, and its hash (and for arrays length
and dtype) match the sidecar; anything else (a truncated or edited file, a missing sidecar) counts as a
miss and the caller rebuilds it. The sidecar is written last, so a run killed mid-write leaves a miss,
never a wrong hit. A cache directory that cannot be written raises `CacheWriteError` naming the file.
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
from .errors import cache_write_error
from .paths import cache_dir


def entry_exists(path: Path) -> bool:
    """Whether ``path`` exists; a folder that cannot be searched counts as "no"."""
    try:
        return path.exists()
    except OSError:
        return False


def cache_path(*parts: str) -> Path:
    """``cache_dir() / parts...``; a cache directory that cannot be created is a `CacheWriteError`."""
    try:
        root = cache_dir()
    except OSError as err:
        raise cache_write_error(err.filename or "the cache directory", err) from None
    return root.joinpath(*parts)


def sidecar(path: Path) -> Path:
    """The ``.json`` file that vouches for ``path`` (``x.npy`` -> ``x.json``, ``x.json`` -> ``x.json.sha256.json``)."""
    return path.with_suffix(".json") if path.suffix != ".json" else path.with_name(path.name + ".sha256.json")


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
    meta_path = sidecar(path)
    try:  # an unreadable entry or folder (no permission) is a miss too
        if not (path.is_file() and meta_path.is_file()):
            return None
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

    def write(handle) -> None:
        np.save(handle, array, allow_pickle=False)

    meta = {"dtype": str(array.dtype), "n_tokens": int(len(array)), "sha256": _array_digest(array), **info}
    _save(path, write, "wb", meta)


def _save(path: Path, write: Callable, mode: str, meta: dict) -> None:
    meta_path = sidecar(path)
    try:
        with contextlib.suppress(FileNotFoundError):
            meta_path.unlink()  # a stale sidecar must not vouch for the new entry while it is written
        with atomic_open(path, mode) as handle:
            write(handle)
        atomic_write_text(meta_path, json.dumps(meta, indent=1, sort_keys=True))
    except OSError as err:
        raise cache_write_error(path, err) from None


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_cached_text(path: Path) -> Optional[str]:
    """The text cached at ``path`` if its sidecar vouches for it, else ``None``."""
    meta_path = sidecar(path)
    try:
        if not (path.is_file() and meta_path.is_file()):
            return None
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    return text if isinstance(meta, dict) and meta.get("sha256") == _text_digest(text) else None


def save_cached_text(path: Path, text: str, **info: object) -> None:
    """Store ``text`` at ``path`` atomically, then its sidecar with its SHA-256."""
    _save(path, lambda handle: handle.write(text), "w", {"sha256": _text_digest(text), **info})


def cached_array(path: Path, build: Callable[[], np.ndarray], **info: object) -> np.ndarray:
    """Load the array cached at ``path`` or build, store and return it."""
    array = load_cached(path)
    if array is None:
        array = build()
        save_cached(path, array, **info)
    return array
