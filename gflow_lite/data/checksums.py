"""SHA-256 verification of the shipped data against ``data/SHA256SUMS``.

The manifest has the ``sha256sum`` format (``<hex>  <path relative to the data directory>``). A file is
hashed once per process: the result is cached under its path, size and modification time, so a file
changed on disk is hashed again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, Tuple

from .errors import ChecksumMismatchError, DataFileMissingError, data_read_error
from .paths import data_dir, restore_hint

MANIFEST_NAME = "SHA256SUMS"

_verified: Dict[Tuple[str, int, int], str] = {}


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(root: Path | None = None) -> Dict[str, str]:
    """The manifest of ``root`` (default: the data directory) as ``{relative path: sha256}``."""
    root = data_dir() if root is None else root
    manifest = root / MANIFEST_NAME
    try:
        if not manifest.is_file():
            raise DataFileMissingError(
                f"data manifest {manifest} not found; the data directory must hold the shipped files and "
                f"{MANIFEST_NAME} ({restore_hint(MANIFEST_NAME, root)})"
            )
        text = manifest.read_text(encoding="utf-8")
    except DataFileMissingError:
        raise
    except OSError as err:  # the folder or the file exists but cannot be read
        raise data_read_error(manifest, err) from None
    entries: Dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            entries[name.lstrip("*").strip()] = digest.lower()
    return entries


def verified_path(relative: str) -> Path:
    """Absolute path of the data file ``relative`` after checking it against the manifest.

    Raises `DataFileMissingError` when the file is absent and `ChecksumMismatchError` when its hash
    differs; both messages name the file and say how to restore it.
    """
    root = data_dir()
    manifest = read_manifest(root)
    if relative not in manifest:
        raise DataFileMissingError(
            f"{relative} is not listed in {root / MANIFEST_NAME}; known files: {sorted(manifest)}"
        )
    path = root / relative
    try:
        if not path.is_file():
            raise DataFileMissingError(f"data file {path} is missing; {restore_hint(relative, root)}")
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        actual = _verified.get(key) or sha256_file(path)
    except DataFileMissingError:
        raise
    except OSError as err:
        raise data_read_error(path, err) from None
    expected = manifest[relative]
    if actual != expected:
        raise ChecksumMismatchError(str(path), expected, actual, restore_hint(relative, root))
    _verified[key] = actual
    return path


def file_hash(relative: str) -> str:
    """The verified SHA-256 of a shipped data file (from the manifest, after checking the file)."""
    verified_path(relative)
    return read_manifest()[relative]
