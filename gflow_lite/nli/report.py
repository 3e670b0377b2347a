"""The results file of an SNLI run: ``<out>/snli_<head>.json``, and its validation.

One file per head holds the configuration, the seeds, per-seed dev/test accuracy (at the best dev
epoch) with training histories, mean and sample standard deviation over seeds, the parameter count, the
git commit (and a hash of this package's source, since results may be written before the code is
committed), the hardware, the wall and CPU time, the encoder and the caveat about it, and the paper's
numbers for reference.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Dict, List, Sequence

from ..published import published_value

__all__ = ["paper_snli", "mean_std", "results_path", "build_results", "load_results", "validate_results"]


def paper_snli() -> Dict[str, Dict[str, float]]:
    """The paper's single-run SNLI accuracies (paper notes §3.2, its Table 3; DistilBERT backbone, full
    training set) as ``{head: {"dev_acc", "test_acc"}}``, read from ``data/published.csv``."""
    return {head: {"dev_acc": published_value(source="paper", model=head, metric="val_acc"),
                   "test_acc": published_value(source="paper", model=head, metric="test_acc")}
            for head in ("grassmann", "transformer")}

REQUIRED = ("head", "config", "train_settings", "seeds", "per_seed", "summary", "params", "git_commit",
            "hardware", "wall_time_s", "encoder", "caveat", "data")


def mean_std(values: Sequence[float]) -> Dict[str, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def results_path(out_dir: Path, head: str) -> Path:
    """``<out_dir>/snli_<head>.json``."""
    return Path(out_dir) / f"snli_{head}.json"


def build_results(
    *,
    head: str,
    config: Dict,
    train_settings: Dict,
    per_seed: List[Dict],
    params: int,
    git_commit: str | None,
    code_sha256: str,
    hardware: Dict,
    wall_time_s: float,
    cpu_time_s: float,
    encoder: str,
    caveat: str,
    data: Dict,
    quick: bool,
    notes: List[str],
) -> Dict:
    """Assemble the results dictionary (see module docstring)."""
    return {
        "head": head,
        "quick": quick,
        "config": config,
        "train_settings": train_settings,
        "seeds": [r["seed"] for r in per_seed],
        "per_seed": per_seed,
        "summary": {
            "dev_acc": mean_std([r["dev_acc"] for r in per_seed]),
            "test_acc": mean_std([r["test_acc"] for r in per_seed]),
            "best_epoch": mean_std([r["best_epoch"] for r in per_seed]),
        },
        "params": params,
        "git_commit": git_commit,
        "code_sha256": code_sha256,
        "hardware": hardware,
        "wall_time_s": wall_time_s,
        "cpu_time_s": cpu_time_s,
        "encoder": encoder,
        "caveat": caveat,
        "paper": paper_snli().get(head, {}),
        "data": data,
        "notes": notes,
    }


def validate_results(results: Dict) -> None:
    """Raise ValueError if ``results`` lacks a required field or holds an impossible accuracy."""
    missing = [key for key in REQUIRED if key not in results]
    if missing:
        raise ValueError(f"SNLI results miss fields {missing}")
    if len(results["seeds"]) != len(results["per_seed"]) or not results["seeds"]:
        raise ValueError("SNLI results: seeds and per_seed disagree or are empty")
    for record in results["per_seed"]:
        for key in ("dev_acc", "test_acc"):
            value = record[key]
            if not (isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"SNLI results: seed {record['seed']} has {key}={value!r}")


def load_results(path: Path) -> Dict:
    """Read and validate one results file."""
    results = json.loads(Path(path).read_text(encoding="utf-8"))
    validate_results(results)
    return results
