"""Atomic file writes: a temporary file in the destination's directory, fsync, then ``os.replace``.

A process killed mid-write leaves at worst a stray ``.<name>.tmp-*`` file; the destination is either
its previous content or the complete new content, never a mixture.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


def temp_prefix(path: PathLike) -> str:
    """Prefix of the temporary files used while writing ``path`` (hidden, in the same directory)."""
    return f".{Path(path).name}.tmp-"


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms (Windows) cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` only if the ``with`` block completes.

    >>> with atomic_open("out.bin") as f:   # doctest: +SKIP
    ...     f.write(b"all or nothing")
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports modes 'wb' and 'w', not {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(target), dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def remove_stale_temps(path: PathLike) -> int:
    """Delete temporary files left by interrupted writes of ``path``; return how many were removed."""
    target = Path(path)
    removed = 0
    if target.parent.is_dir():
        for leftover in target.parent.glob(temp_prefix(target) + "*"):
            with contextlib.suppress(OSError):
                leftover.unlink()
                removed += 1
    return removed
