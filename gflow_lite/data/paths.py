"""Where the shipped data and the token cache live.

The data directory resolves through the package, never through the current directory: it is the
``data/`` folder next to the ``gflow_lite`` package (the repository root), unless the environment
variable ``GFLOW_DATA_DIR`` names another. The cache directory is ``GFLOW_CACHE_DIR`` or
``~/.cache/gflow_lite``.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "GFLOW_DATA_DIR"
CACHE_DIR_ENV = "GFLOW_CACHE_DIR"

#: ``<repo>/data``: two levels above this file is the repository root holding the package.
PACKAGE_DATA_DIR: Path = Path(__file__).resolve().parents[2] / "data"


def data_dir() -> Path:
    """The directory holding the datasets and their ``SHA256SUMS`` manifest."""
    override = os.environ.get(DATA_DIR_ENV)
    return Path(override).expanduser().resolve() if override else PACKAGE_DATA_DIR


def cache_dir() -> Path:
    """The directory for derived files (token ids, trained tokenizers); created on demand."""
    override = os.environ.get(CACHE_DIR_ENV)
    root = Path(override).expanduser() if override else Path.home() / ".cache" / "gflow_lite"
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()
