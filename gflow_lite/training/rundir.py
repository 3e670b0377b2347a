"""The run directory: what it holds, and the rules for starting or resuming a run in it.

Files: ``config.json`` (the resolved TrainConfig), ``metrics.jsonl``, ``last.pt``, ``best.pt`` and, once
the run has finished, ``summary.json``. Starting a run in a directory that already holds one is refused
(nothing is overwritten); resuming requires ``last.pt`` and the same configuration, except for the fields
in `RESUMABLE_CHANGES`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

from .checkpoint import BEST, LAST, ArchitectureMismatchError
from .presets import RESUMABLE_CHANGES, ConfigError, TrainConfig


class RunDirError(RuntimeError):
    """The output directory cannot be used as asked (exists without --resume, nothing to resume...)."""


@dataclass(frozen=True)
class RunDir:
    path: Path

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

    def holds_run(self) -> bool:
        return any(p.exists() for p in (self.config, self.metrics, self.last, self.best, self.summary))

    def stored_config(self) -> Dict[str, Any]:
        if not self.config.is_file():
            raise RunDirError(f"{self.config} not found: {self.path} does not hold a gflow_lite run")
        return json.loads(self.config.read_text(encoding="utf-8"))


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


def prepare(path: Path, cfg: TrainConfig, resume: bool) -> RunDir:
    """Check that a run may start (or resume) in ``path``; nothing is created or changed here."""
    run = RunDir(Path(path))
    if not resume:
        if run.holds_run():
            raise RunDirError(
                f"{run.path} already holds a run; pass --resume to continue it, or choose another --out"
            )
        if run.path.exists() and not run.path.is_dir():
            raise RunDirError(f"--out {run.path} exists and is not a directory")
        return run
    if not run.last.is_file():
        raise RunDirError(f"cannot resume: {run.last} not found (start a new run without --resume)")
    stored = run.stored_config()
    if stored.get("arch") != cfg.arch:
        raise ArchitectureMismatchError(
            f"cannot resume {run.path} as {cfg.arch!r}: it holds a {stored.get('arch')!r} run"
        )
    differences = config_differences(stored, cfg.to_dict())
    if differences:
        raise ConfigError(
            f"cannot resume {run.path} with a different configuration: {'; '.join(differences)}"
        )
    return run
