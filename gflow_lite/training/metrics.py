"""What a run records: ``metrics.jsonl`` (one JSON object per logged step), JSON files, run provenance."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from ..data.atomic import atomic_write_text


class MetricsLog:
    """Append-only JSON-lines log; `truncate_after` drops records past a resumed checkpoint's step."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: Dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def records(self) -> List[Dict[str, Any]]:
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill: ignore it
                continue
        return records

    def truncate_after(self, step: int) -> None:
        """Keep only records with ``record["step"] <= step`` (rewritten atomically)."""
        kept = [r for r in self.records() if r.get("step", 0) <= step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))


def write_json(path: Path, data: Any) -> None:
    """Pretty JSON, written atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def git_commit() -> Optional[str]:
    """The repository's HEAD commit (with ``-dirty`` if the tree has changes), or None outside git."""
    repo = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def hardware_info(device: torch.device, world_size: int = 1) -> Dict[str, Any]:
    """Where the run ran: platform, CPU count, torch version, device (and GPU name)."""
    info: Dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "world_size": world_size,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
