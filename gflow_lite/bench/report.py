"""The results file and the printed table of a benchmark.

A results file is one JSON object::

    {"benchmark": NAME, "torch", "device", "threads", "git_commit", "hardware", "wall_time_s",
     "config": {...}, "records": [...], "summary": {...}, "methods": {...}, ...}

``records`` holds one flat object per measured case; ``summary`` the ratios and slopes derived from
them (what the targets in the README are checked against); ``methods`` how time and memory were
measured. `REQUIRED_KEYS` are always present.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from ..training.metrics import write_json as save_json

__all__ = ["REQUIRED_KEYS", "write_json", "format_table", "loglog_slope", "check_result", "ratio", "by_key"]

REQUIRED_KEYS = (
    "benchmark",
    "torch",
    "device",
    "threads",
    "git_commit",
    "hardware",
    "wall_time_s",
    "config",
    "records",
)


def write_json(path: os.PathLike, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` (checked by `check_result`) to ``path`` atomically; return the path."""
    check_result(payload)
    save_json(Path(path), dict(payload))  # the package's one JSON writer (atomic)
    return Path(path)


def check_result(payload: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``payload`` has the required keys and a list of record objects."""
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise ValueError(f"benchmark result lacks {missing}")
    if not isinstance(payload["records"], list) or not all(isinstance(r, dict) for r in payload["records"]):
        raise ValueError("benchmark result 'records' must be a list of objects")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e5:
            return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"
        return f"{value:.3g}"
    return str(value)


def format_table(
    records: Iterable[Mapping[str, Any]], columns: Sequence[str], title: Optional[str] = None
) -> str:
    """A fixed-width text table of ``columns`` from ``records`` (missing values shown as ``-``)."""
    rows: List[List[str]] = [[_cell(r.get(c)) for c in columns] for r in records]
    widths = [max([len(c)] + [len(row[i]) for row in rows]) for i, c in enumerate(columns)]
    lines = []
    if title:
        lines.append(title)
    lines.append("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows)
    return "\n".join(lines)


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> Optional[float]:
    """Least-squares slope of log(y) against log(x): 1 for linear growth, 2 for quadratic."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x and y and x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    """``a / b`` rounded to 3 decimals, or None when either is missing or ``b`` is 0."""
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def by_key(records: Iterable[Mapping[str, Any]], *keys: str) -> Dict[tuple, Mapping[str, Any]]:
    """Index records by the tuple of their values at ``keys``."""
    return {tuple(r[k] for k in keys): r for r in records}
