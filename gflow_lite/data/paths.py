"""Where the shipped data, the committed results and the token cache live.

Shipped data and committed results resolve through the installed package, never through the current
directory and never by guessing the repository layout from this file's location:

* **data** (the datasets and their ``SHA256SUMS`` manifest): ``$GFLOW_DATA_DIR`` if set, else the
  package ``gflow_lite.datasets``;
* **results** (the committed JSON/PNG runs the chapters read): ``$GFLOW_RESULTS_DIR`` if set, else the
  package ``gflow_lite.results``.

Both packages are data-only: the repository keeps the folders ``data/`` and ``results/`` at its root and
``pyproject.toml`` (``[tool.setuptools.package-dir]``) installs them as ``gflow_lite/datasets`` and
``gflow_lite/results``, so a wheel or an sdist carries them and ``importlib.resources`` finds them. An
editable install from a clone (``pip install -e .``) has no copies: setuptools cannot map a folder without
``__init__.py`` under a regular package in editable mode, so the resolver reads where the clone is from the
install record (``direct_url.json``, which pip writes for every editable install) and uses the clone's
``data/`` and ``results/`` folders, i.e. ``<repo>/data`` and ``<repo>/results``.

The cache directory (token ids, trained tokenizers) is ``$GFLOW_CACHE_DIR`` or ``~/.cache/gflow_lite``.
"""

from __future__ import annotations

import errno
import functools
import importlib.metadata
import importlib.util
import importlib.resources
import json
import os
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlparse

from .errors import CacheWriteError, DataFileMissingError

DATA_DIR_ENV = "GFLOW_DATA_DIR"
RESULTS_DIR_ENV = "GFLOW_RESULTS_DIR"
CACHE_DIR_ENV = "GFLOW_CACHE_DIR"

DISTRIBUTION = "gflow_lite"
#: The data-only packages and, for an editable install, the folder of the clone each one maps to
#: (the same mapping as ``[tool.setuptools.package-dir]`` in pyproject.toml; a test checks they agree).
DATA_PACKAGE, RESULTS_PACKAGE = "gflow_lite.datasets", "gflow_lite.results"
SOURCE_FOLDERS = {DATA_PACKAGE: "data", RESULTS_PACKAGE: "results"}


class ResultsNotFoundError(FileNotFoundError):
    """Neither ``$GFLOW_RESULTS_DIR`` nor the installed package provides the results folder."""


def _package_folder(package: str) -> Optional[Path]:
    """The folder of an installed data-only package, through ``importlib.resources`` (None if absent)."""
    try:
        root = importlib.resources.files(package)
    except (ImportError, TypeError):
        return None
    if isinstance(root, Path):
        return root.resolve() if root.is_dir() else None
    # A package without __init__.py is a namespace package: files() gives a MultiplexedPath whose
    # children are real paths.
    for child in root.iterdir():
        if isinstance(child, Path):
            return child.resolve().parent
    return None


@functools.lru_cache(maxsize=1)
def editable_source() -> Optional[Path]:
    """The clone an editable install points at (from pip's ``direct_url.json``), or None.

    Only if the ``gflow_lite`` being imported is the one inside that clone: another copy on ``sys.path``
    must not read a different clone's files.
    """
    # the gflow_lite package folder, from its import spec (importing the package root would import the model)
    imported = Path(importlib.util.find_spec("gflow_lite").origin).resolve().parent
    # Every record of the name, not only the first: a clone's root may hold a stale gflow_lite.egg-info
    # that comes first on sys.path and has no direct_url.json.
    for dist in importlib.metadata.distributions(name=DISTRIBUTION):
        source = _editable_url(dist.read_text("direct_url.json"))
        if source is not None and imported.is_relative_to(source):
            return source
    return None


def _editable_url(record: Optional[str]) -> Optional[Path]:
    """The local folder of a PEP 610 ``direct_url.json`` record of an editable install, else None."""
    try:
        info = json.loads(record or "")
    except ValueError:
        return None
    url = urlparse(info.get("url", ""))
    if not info.get("dir_info", {}).get("editable") or url.scheme != "file":
        return None
    return Path(unquote(url.path)).resolve()


def _shipped(package: str) -> Optional[Path]:
    """Installed package folder, else the clone's folder for an editable install, else None."""
    found = _package_folder(package)
    if found is not None:
        return found
    source = editable_source()
    if source is not None and (source / SOURCE_FOLDERS[package]).is_dir():
        return source / SOURCE_FOLDERS[package]
    return None


#: The shipped data folder as installed (``<repo>/data`` for an editable install), or None if missing.
PACKAGE_DATA_DIR: Optional[Path] = _shipped(DATA_PACKAGE)


def _not_found(what: str, package: str, env: str) -> str:
    folder = SOURCE_FOLDERS[package]
    return (
        f"the {what} folder was not found: ${env} is not set and the installed gflow_lite has no "
        f"{package.replace('.', '/')} package folder. Fix: set {env} to a folder holding a copy of the "
        f"repository's {folder}/; or, for a pip install, reinstall from a wheel or sdist, which carry "
        f"{folder}/ (`pip install --force-reinstall gflow_lite`, or `pip install .` in a clone); or, in a "
        f"clone, run `pip install -e .` at the repository root (and `git checkout -- {folder}` if the "
        f"folder was deleted)"
    )


def data_dir() -> Path:
    """The directory holding the datasets and their ``SHA256SUMS`` manifest.

    Raises `DataFileMissingError` (naming ``GFLOW_DATA_DIR`` and the fix) if no data folder is installed.
    """
    override = os.environ.get(DATA_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser().resolve()
    if PACKAGE_DATA_DIR is None:
        raise DataFileMissingError(_not_found("shipped data", DATA_PACKAGE, DATA_DIR_ENV))
    return PACKAGE_DATA_DIR


def results_dir() -> Path:
    """The committed results: ``$GFLOW_RESULTS_DIR``, else the installed ``gflow_lite.results``.

    In a clone (editable install) that is ``<repo>/results``; a wheel carries a read-only copy of the
    results the chapters read (JSON, JSONL, PNG and README files). Raises `ResultsNotFoundError`
    (naming ``GFLOW_RESULTS_DIR`` and the fix) if neither is there.
    """
    override = os.environ.get(RESULTS_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser().resolve()
    found = _shipped(RESULTS_PACKAGE)
    if found is None:
        raise ResultsNotFoundError(_not_found("committed results", RESULTS_PACKAGE, RESULTS_DIR_ENV))
    return found


def restore_hint(relative: str, root: Path) -> str:
    """How to restore ``relative`` (a path inside the data folder ``root``) for a pip user and in a clone."""
    if PACKAGE_DATA_DIR is not None and root == PACKAGE_DATA_DIR and editable_source() is None:
        return (f"reinstall gflow_lite (`pip install --force-reinstall gflow_lite`; its wheel carries "
                f"data/{relative}), or set {DATA_DIR_ENV} to a folder holding a copy of the repository's data/")
    restore = f"`git checkout -- data/{relative}` in the gflow_lite repository"
    if PACKAGE_DATA_DIR is not None and root == PACKAGE_DATA_DIR:
        return f"restore it with {restore} (or set {DATA_DIR_ENV} to another copy of data/)"
    return (f"copy data/{relative} from the gflow_lite repository into {root} (restore that copy with "
            f"{restore}), or unset {DATA_DIR_ENV} to use the installed data")


def cache_dir() -> Path:
    """The directory for derived files (token ids, trained tokenizers); created on demand."""
    override = os.environ.get(CACHE_DIR_ENV)
    root = Path(override).expanduser() if override else Path.home() / ".cache" / "gflow_lite"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.R_OK | os.X_OK):  # writing is checked where a file is written
            raise PermissionError(errno.EACCES, "no permission to read it", str(root))
    except OSError as err:
        reason = "it is a file, not a folder" if os.path.isfile(root) else err.strerror or type(err).__name__
        raise CacheWriteError(f"cannot use the cache folder {root} ({reason}); set {CACHE_DIR_ENV} to a folder "
                              f"you can read and write") from None
    return root.resolve()
