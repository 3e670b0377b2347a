"""`compare`: train both architectures on the same data, tokenizer, budget and schedule, over seeds.

Each (model, seed) run is an ordinary ``python -m gflow_lite train`` run in ``OUT/<model>_seed<seed>``, so
it can be inspected, evaluated and resumed on its own; finished runs (with a ``summary.json``) are reused,
interrupted ones resumed. ``OUT/compare.json`` holds every run's summary and the aggregate::

    {"preset", "label", "overrides", "runs": [summary.json, ...],
     "models": {model: {"best_val_ppl": {"mean", "std", "values"}, "test_ppl": {...}, "params", ...}},
     "ratio_val_ppl": grassmann mean / transformer mean, "ratio_test_ppl": ..., provenance}

Test perplexity is always that of the best-validation checkpoint (paper notes §5.5).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence

import torch

from ..options import ConfigError, parse_assignments
from ..training.config import ARCHITECTURES, TrainConfig
from ..training.metrics import git_commit, hardware_info, write_json
from ..training.presets import PRESETS, resolve
from ..training.rundir import config_differences


class CompareRunError(RuntimeError):
    """One training run of a comparison failed (its last lines of output are in the message)."""


@dataclass(frozen=True)
class CompareSpec:
    """What to compare: a preset, seeds, models and ``key=value`` overrides (shared or per model)."""

    preset: str
    seeds: Sequence[int]
    models: Sequence[str] = tuple(ARCHITECTURES)
    overrides: Sequence[str] = ()
    model_overrides: Dict[str, Sequence[str]] = field(default_factory=dict)
    label: str = ""
    jobs: int = 1

    def validate(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}")
        if not self.seeds:
            raise ConfigError("compare needs at least one seed (--seeds N with N >= 1)")
        for m in list(self.models) + list(self.model_overrides):
            if m not in ARCHITECTURES:
                raise ConfigError(f"unknown model {m!r}; choose from {tuple(ARCHITECTURES)}")
        if self.jobs < 1:
            raise ConfigError(f"jobs={self.jobs} must be >= 1")
        for m in self.models:  # resolve once now so a bad override fails before any training starts
            resolve(self.preset, m, parse_assignments(self.run_overrides(m, self.seeds[0])))

    def run_overrides(self, model: str, seed: int) -> List[str]:
        extra = [f"seed={seed}"] + (["num_threads=1"] if self.jobs > 1 else [])
        return list(self.overrides) + list(self.model_overrides.get(model, ())) + extra


def _stats(values: List[float]) -> Dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def aggregate(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Per-model mean and spread of best validation / test perplexity, and the Grassmann/Transformer ratios."""
    models: Dict[str, Any] = {}
    for name in sorted({r["model"] for r in runs}):
        mine = [r for r in runs if r["model"] == name]
        models[name] = {
            "seeds": [r["seed"] for r in mine],
            "best_val_ppl": _stats([r["best_val_ppl"] for r in mine]),
            "test_ppl": _stats([r["test_ppl"] for r in mine]),
            "params": mine[0]["params"],
            "tokens_seen": mine[0]["tokens_seen"],
            "wall_time_s": _stats([r["wall_time_s"] for r in mine]),
            "tokens_per_s": _stats([r["tokens_per_s"] for r in mine]),
        }
    out: Dict[str, Any] = {"models": models}
    if {"grassmann", "transformer"} <= models.keys():
        g, t = models["grassmann"], models["transformer"]
        out["ratio_val_ppl"] = g["best_val_ppl"]["mean"] / t["best_val_ppl"]["mean"]
        out["ratio_test_ppl"] = g["test_ppl"]["mean"] / t["test_ppl"]["mean"]
    return out


def _differences(stored: Dict[str, Any], spec: CompareSpec, model: str, seed: int) -> List[str]:
    """How a finished run's recorded config differs from what ``spec`` asks of (model, seed); fields that
    do not change what is computed (device, threads, ...) and fields added since (at their defaults) aside."""
    wanted = resolve(spec.preset, model, parse_assignments(spec.run_overrides(model, seed))).to_dict()
    try:  # a config recorded before a field existed reads as that field's default
        stored = TrainConfig.from_dict(stored).to_dict()
    except (ConfigError, TypeError, ValueError, KeyError):
        pass
    return config_differences(stored, wanted)


def _run_one(spec: CompareSpec, model: str, seed: int, out: Path, log) -> Dict[str, Any]:
    run_dir = out / f"{model}_seed{seed}"
    summary = run_dir / "summary.json"
    if summary.is_file():
        done = json.loads(summary.read_text())
        differences = _differences(done.get("config", {}), spec, model, seed)
        if differences:
            raise CompareRunError(
                f"{run_dir} holds a finished run trained with other settings ({'; '.join(differences)}); "
                f"a comparison reuses a run only when its recorded config equals the one asked for: give "
                f"another --out for these settings, or the settings of that run")
        log(f"[compare] {run_dir.name}: finished earlier with the same settings, reusing summary.json")
        return done
    cmd = [sys.executable, "-m", "gflow_lite", "train", "--model", model, "--preset", spec.preset,
           "--out", str(run_dir)]
    overrides = spec.run_overrides(model, seed)
    if overrides:
        cmd += ["--set", *overrides]
    if (run_dir / "last.pt").is_file():
        cmd.append("--resume")
    log(f"[compare] {run_dir.name}: {' '.join(cmd[1:])}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not summary.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise CompareRunError(f"run {run_dir} failed (exit {proc.returncode}): " + " | ".join(tail))
    return json.loads(summary.read_text())


def run_compare(spec: CompareSpec, out: Path | str, log=print) -> Dict[str, Any]:
    """Train every (model, seed) run (``spec.jobs`` at a time), aggregate, write ``compare.json`` + figure."""
    spec.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    jobs = [(m, s) for s in spec.seeds for m in spec.models]
    with ThreadPoolExecutor(max_workers=spec.jobs) as pool:
        runs = list(pool.map(lambda ms: _run_one(spec, ms[0], ms[1], out, log), jobs))
    result = {
        "preset": spec.preset,
        "label": spec.label,
        "overrides": list(spec.overrides),
        "model_overrides": {k: list(v) for k, v in spec.model_overrides.items()},
        "seeds": list(spec.seeds),
        **aggregate(runs),
        "runs": runs,
        "git_commit": git_commit(),
        "hardware": runs[0]["hardware"] if runs else hardware_info(torch.device("cpu")),
        "wall_time_s": time.time() - started,
    }
    write_json(out / "compare.json", result)
    try:
        from .figures import plot_learning_curves

        plot_learning_curves(out, out / "compare.png", title=spec.label or spec.preset)
    except ImportError:  # matplotlib missing: the JSON is the result, the figure is a view of it
        log("[compare] matplotlib not available: no figure written")
    return result


def format_compare(result: Dict[str, Any]) -> str:
    """A readable table of a compare result."""
    lines = [f"preset {result['preset']}  {result.get('label', '')}".rstrip(),
             f"{'model':<12}{'params':>12}{'best val ppl':>22}{'test ppl':>22}{'tok/s':>10}"]
    for name, m in result["models"].items():
        v, t = m["best_val_ppl"], m["test_ppl"]
        lines.append(f"{name:<12}{m['params']:>12,}{v['mean']:>14.2f} ± {v['std']:<5.2f}"
                     f"{t['mean']:>14.2f} ± {t['std']:<5.2f}{m['tokens_per_s']['mean']:>10.0f}")
    if "ratio_val_ppl" in result:
        lines.append(f"ratio grassmann / transformer: val {result['ratio_val_ppl']:.3f}, "
                     f"test {result['ratio_test_ppl']:.3f}")
    return "\n".join(lines)


def env_jobs() -> int:
    """Default parallel runs: one per core when there are several cores."""
    return max(1, min(2, os.cpu_count() or 1))

