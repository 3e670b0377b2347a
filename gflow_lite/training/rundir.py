"""The run directory: what it holds, and the rules for starting or resuming a run in it.

Files: ``config.json`` (the resolved TrainConfig), ``metrics.jsonl``, ``last.pt``, ``best.pt`` and, once
the run has finished, ``summary.json``; ``.lock`` while a training process writes there; ``.gflow_run``, the
marker that says the folder holds a run the trainer started (nothing in a folder without it is ever
removed or overwritten: a user's own ``config.json`` is theirs).

* One writer at a time: `RunDir.lock` takes an exclusive ``flock`` on ``.lock``; a second training into the
  same directory is refused (the lock dies with its process, so a killed run leaves no stale lock).
* Starting a run in a directory that holds a checkpoint is refused (nothing is overwritten). A directory
  of ours (with the marker) whose run stopped before its first checkpoint (only ``config.json`` /
  ``metrics.jsonl``) holds nothing to keep: a fresh start, or ``--resume``, starts it again from step 0
  and says so. A folder without the marker that holds files with a run's names is refused: not ours.
* Resuming requires the same configuration, except for the fields in `RESUMABLE_CHANGES` and a longer
  ``max_steps`` with the cosine's end kept (`extension_problem`).
* The directory is created and checked writable before any data or model is loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, List, Optional

from ..options import ConfigError
from .checkpoint import BEST, LAST, ArchitectureMismatchError
from .config import EXTENDABLE, RESUMABLE_CHANGES, TrainConfig, extension_problem

try:  # POSIX; elsewhere runs go unlocked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


#: The file the trainer writes first into a run directory: what marks the folder as a run of ours.
MARKER = ".gflow_run"


class RunDirError(RuntimeError):
    """The output directory cannot be used as asked (exists without --resume, nothing to resume...)."""


def _say(message: str) -> None:
    print(f"gflow_lite: {message}", file=sys.stderr)


@dataclass
class RunDir:
    path: Path
    _lock_handle: Optional[IO[str]] = field(default=None, repr=False, compare=False)
    _created: List[Path] = field(default_factory=list, repr=False, compare=False)
    _lock_is_new: bool = field(default=False, repr=False, compare=False)

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    @property
    def marker(self) -> Path:
        return self.path / MARKER

    def is_ours(self) -> bool:
        """Whether the trainer started a run here (the marker it writes); only then may it clear files."""
        return self.marker.is_file()

    def run_files(self) -> List[Path]:
        return [p for p in (self.config, self.metrics, self.last, self.best, self.summary) if p.exists()]

    def holds_run(self) -> bool:
        return bool(self.run_files())

    def mark(self) -> None:
        """Write the marker (before any other file of the run)."""
        self.marker.write_text('{"gflow_lite_run": 1}\n', encoding="utf-8")

    def holds_checkpoint(self) -> bool:
        """Whether a checkpoint or a summary is there: the only things of a run worth keeping."""
        return any(p.exists() for p in (self.last, self.best, self.summary))

    def stored_config(self) -> Dict[str, Any]:
        if not self.config.is_file():
            raise RunDirError(f"{self.config} not found: {self.path} does not hold a gflow_lite run")
        try:
            return json.loads(self.config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise RunDirError(f"{self.config} cannot be read ({err}); the run directory is damaged") from None

    # -------------------------------------------------------------------------------- writer lock
    def lock(self) -> None:
        """Create the directory (if needed) and take the writer lock; refuse if it is unusable or taken."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"--out {self.path} exists and is not a directory; choose another --out")
        for parent in self.path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise RunDirError(
                        f"--out {self.path} is below {parent}, which is a file, not a directory; choose another --out"
                    )
                break
        missing = [d for d in (self.path, *self.path.parents) if not d.exists()]
        self._lock_is_new = not self.lock_file.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._created = missing
            handle = open(self.lock_file, "a+", encoding="utf-8")
        except OSError as err:
            raise RunDirError(
                f"cannot write to --out {self.path} ({err.strerror or err}); choose a writable directory"
            ) from None
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise RunDirError(
                    f"{self.path} is in use by another training ({holder}); wait for it to finish or choose "
                    f"another --out"
                ) from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
        except OSError as err:  # a full disk, a quota
            handle.close()
            raise RunDirError(f"cannot write to --out {self.path} ({err.strerror or err}); free some space or "
                              f"choose another --out") from None
        self._lock_handle = handle

    def unlock(self, remove_if_unused: bool = False) -> None:
        """Release the lock; with ``remove_if_unused``, also remove the directories `lock` created if
        nothing but the lock file was written there (a run refused before it began leaves no trace)."""
        if self._lock_handle is None:
            return
        with contextlib.suppress(OSError):
            self._lock_handle.truncate(0)
            self._lock_handle.close()
        self._lock_handle = None
        if remove_if_unused and self._lock_is_new and not self.is_ours():  # a refused start leaves no lock
            with contextlib.suppress(OSError):
                self.lock_file.unlink()
        if remove_if_unused and self._created and not any(self.path.iterdir()):
            with contextlib.suppress(OSError):
                for directory in self._created:  # deepest first
                    directory.rmdir()

    def clear_failed_start(self) -> None:
        """Remove what a run of ours that stopped before its first checkpoint left (config and metrics)."""
        if not self.is_ours():  # never a file the trainer did not write
            return
        for leftover in (self.config, self.metrics):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def config_differences(stored: Dict[str, Any], current: Dict[str, Any]) -> List[str]:
    """``"key: stored -> current"`` for every differing field (model fields flattened)."""

    def flat(d: Dict[str, Any]) -> Dict[str, Any]:
        out = {k: v for k, v in d.items() if k != "model"}
        out.update(d.get("model", {}))
        return out

    a, b = flat(stored), flat(current)
    return [
        f"{k}: {a.get(k)!r} -> {b.get(k)!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES
    ]


def check_start(run: RunDir, resume: bool) -> bool:
    """Check, before anything is loaded, that a run may start or resume in ``run``.

    Returns whether to resume (from ``last.pt``, or ``best.pt`` where ``last.pt`` was never written; False:
    start at step 0). Nothing is changed here.
    """
    if run.path.exists() and not run.path.is_dir():
        raise RunDirError(f"--out {run.path} exists and is not a directory; choose another --out")
    theirs = run.run_files() if not run.is_ours() else []
    if theirs and not (resume and run.config.is_file() and run.last.is_file()):
        raise RunDirError(
            f"--out {run.path} holds {', '.join(p.name for p in theirs)} but no gflow_lite run marker "
            f"({MARKER}): these files are not a run the trainer started and are left alone; choose an empty "
            f"or new folder for --out"
        )
    if not resume:
        if run.holds_checkpoint():
            raise RunDirError(
                f"{run.path} already holds a run; pass --resume to continue it, or choose another --out"
            )
        if run.holds_run():
            _say(f"{run.path} holds a run that stopped before its first checkpoint; starting it afresh")
        return False
    if run.last.is_file():
        return True
    if not run.config.is_file():
        raise RunDirError(
            f"cannot resume: {run.path} holds no run ({run.config.name} not found); start a new run "
            f"without --resume"
        )
    if run.best.is_file() and not run.summary.is_file():  # best.pt holds the whole state of its step too
        _say(f"{run.last.name} was never written (the disk filled, or the run died between the two files); "
             f"resuming from {run.best.name}, which holds the full training state at its step")
        return True
    if run.best.is_file() or run.summary.is_file():
        raise RunDirError(
            f"cannot resume: {run.last} not found although the run has other results; restore last.pt "
            f"or choose another --out"
        )
    _say(f"{run.path} has no checkpoint yet (the run stopped before its first one); starting it from step 0")
    return False


def check_resume_config(run: RunDir, cfg: TrainConfig) -> None:
    """The stored configuration of ``run`` must match ``cfg`` (up to `RESUMABLE_CHANGES`)."""
    stored = run.stored_config()
    if stored.get("arch") != cfg.arch:
        raise ArchitectureMismatchError(
            f"cannot resume {run.path} as {cfg.arch!r}: it holds a {stored.get('arch')!r} run"
        )
    try:  # a config recorded before a field existed reads as that field's default
        stored = TrainConfig.from_dict(stored).to_dict()
    except (ConfigError, TypeError, ValueError, KeyError):
        pass
    current = cfg.to_dict()
    differences = config_differences(stored, current)
    if any(d.split(":")[0] in EXTENDABLE for d in differences):  # a longer run, same schedule so far
        problem = extension_problem(stored, current)
        if problem is not None:
            raise ConfigError(f"cannot resume {run.path} with max_steps={current.get('max_steps')}, "
                              f"decay_steps={current.get('decay_steps')}: {problem}")
        differences = [d for d in differences if d.split(":")[0] not in EXTENDABLE]
    if differences:
        raise ConfigError(
            f"cannot resume {run.path} with a different configuration: {'; '.join(differences)}"
        )
