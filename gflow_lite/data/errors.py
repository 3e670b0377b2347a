"""Exceptions raised by the data layer.

Each message is one line that names the file involved and says how to put things right, so that the
command line can print it as is.
"""

from __future__ import annotations


class DataError(RuntimeError):
    """Base class for every problem with shipped or cached data."""


class DataFileMissingError(DataError, FileNotFoundError):
    """A data file listed in the manifest (or the manifest itself) is absent."""


class DataUnreadableError(DataError):
    """A data file (or the folder holding it) exists but cannot be read: no permission, not a file, I/O error."""


def data_read_error(path: object, err: OSError) -> DataUnreadableError:
    """A `DataUnreadableError` for ``path`` saying why (from ``err``) and how to fix it."""
    reason = err.strerror or type(err).__name__
    return DataUnreadableError(f"cannot read the data file {path} ({reason}); make the data folder readable "
                               f"(e.g. `chmod -R u+rX` on it) or set GFLOW_DATA_DIR to a readable copy of the "
                               f"repository's data/")


class CacheWriteError(DataError):
    """The cache directory (token ids, trained tokenizers) cannot be written: read-only, no permission, full."""


def cache_write_error(path: object, err: OSError) -> CacheWriteError:
    """A `CacheWriteError` for ``path`` saying why (from ``err``) and how to fix it."""
    import errno

    if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return CacheWriteError(f"disk full writing the cache file {path}; free some space or set GFLOW_CACHE_DIR "
                               f"to a directory on another disk")
    reason = err.strerror or type(err).__name__
    return CacheWriteError(f"cannot write the cache file {path} ({reason}); set GFLOW_CACHE_DIR to a writable "
                           f"directory")


class ChecksumMismatchError(DataError):
    """A data file's SHA-256 differs from the manifest's."""

    def __init__(self, path: str, expected: str, actual: str, hint: str) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}; {hint}")
