"""What a run records: ``metrics.jsonl`` (one JSON object per logged step), JSON files, run provenance."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from ..data.atomic import atomic_write_text
from ..provenance import cpu_info


def read_jsonl(path: Path | str) -> List[Dict[str, Any]]:
    """The records of a JSON-lines file (``[]`` if absent; a line cut by a kill is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def read_metrics(run_dir: Path | str) -> List[Dict[str, Any]]:
    """The records of ``run_dir/metrics.jsonl``."""
    return read_jsonl(Path(run_dir) / "metrics.jsonl")


class MetricsLog:
    """Append-only JSON-lines log; `truncate_after` drops records past a resumed checkpoint's step."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: Dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(strict_json(record) + "\n")

    def records(self) -> List[Dict[str, Any]]:
        return read_jsonl(self.path)

    def truncate_after(self, step: int) -> None:
        """Keep only records with ``record["step"] <= step`` (rewritten atomically)."""
        kept = [r for r in self.records() if r.get("step", 0) <= step]
        atomic_write_text(self.path, "".join(strict_json(r) + "\n" for r in kept))


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value


def strict_json(data: Any, **options: Any) -> str:
    """JSON that every reader accepts: a non-finite number (NaN, Infinity: not JSON) is written as null."""
    return json.dumps(_finite_or_null(data), allow_nan=False, **options)


def write_json(path: Path, data: Any) -> None:
    """Pretty, strict JSON (`strict_json`), written atomically: the package's one JSON writer."""
    atomic_write_text(path, strict_json(data, indent=2, sort_keys=False) + "\n")


UNKNOWN_COMMIT = "unknown"


def _git(args: List[str], cwd: Path) -> Optional[str]:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit() -> str:
    """The HEAD commit (with ``-dirty`` if tracked files changed) of the git repository holding the imported
    package or, failing that, the current directory (``git rev-parse``); ``"unknown"`` outside any."""
    from importlib.resources import files

    package_dir = Path(str(files("gflow_lite")))
    for start in (package_dir, Path.cwd()):
        top = _git(["rev-parse", "--show-toplevel"], start)
        if top is None:
            continue
        head = _git(["rev-parse", "HEAD"], Path(top))
        if head is None:
            continue
        dirty = _git(["status", "--porcelain", "--untracked-files=no"], Path(top))
        return head + ("-dirty" if dirty else "")
    return UNKNOWN_COMMIT


def _memory_gb() -> Optional[float]:
    try:
        return round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def hardware_info(device: torch.device, world_size: int = 1) -> Dict[str, Any]:
    """Where a result was computed, the one hardware record of runs, benchmarks and SNLI: platform, Python,
    torch, CPU model, logical cores, memory, torch's CPU capability and threads, device, processes (and
    the GPU's name and memory on CUDA)."""
    info: Dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_model": cpu_info()["model"],
        "cpu_count": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: None)(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "world_size": world_size,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1))
    return info
