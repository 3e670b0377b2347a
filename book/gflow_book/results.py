"""Read and verify the WikiText-2 results, and set them beside the published runs (book support: the
repository's ``results/`` folder is not part of the installed package, so neither is its reader).

Our results live in ``<results root>/wikitext2`` (the root is `gflow_lite.data.paths.results_dir`:
``$GFLOW_RESULTS_DIR`` or the committed ``results/`` folder), laid out as ``scripts/cpu_experiments.sh``
writes them::

    wikitext2/cpu-small/                  the main comparison (both models, several seeds)
    wikitext2/ablations/<name>/           one model, 1 seed, the same budget: a change to the Grassmann
                                          model, the variant grassmann-plus, or the pre-LN Transformer

each a ``compare`` output: ``compare.json`` plus ``<model>_seed<k>/{config.json, metrics.jsonl,
summary.json}`` (`gflow_lite.experiments.compare`).

This module

* loads a comparison, finished (``compare.json``) or not (then from the runs' ``summary.json`` files, with
  the unfinished runs' progress read from ``metrics.jsonl``): `load_comparison`;
* verifies it (`verify`, `check`): every run records its config, seed, git commit, hardware and wall time;
  every aggregate (mean, spread, ratio) is what the runs' numbers give; perplexity is exp(loss); the run
  directories agree with ``compare.json``; all runs had the same training budget;
* reads the ablations against the baseline run of the same seed and budget (`ablation_rows`);
* builds the tables chapter 5 displays (`Table`: HTML in a notebook, markdown for the README), beside
  the paper and the public reproductions (`published`);
* estimates how long the paper-sized presets would train, from our measured throughput (`estimate_run`).

``scripts/report_tables.py`` renders the README's tables from these. Nothing here types a result: every
number comes from a results file or from ``data/published.csv``.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from gflow_lite.data.paths import RESULTS_DIR_ENV, results_dir
from gflow_lite.experiments.compare import aggregate
from gflow_lite.flops import attention_cost, grassmann_fast_cost, grassmann_reference_cost
from gflow_lite.model import LMConfig
from gflow_lite.training.metrics import read_metrics
from gflow_lite.training.presets import TrainConfig

from . import published_runs as published

__all__ = [
    "RESULTS_ENV",
    "MAIN",
    "ABLATIONS",
    "GRASSMANN_ONLY",
    "ResultsError",
    "RunRecord",
    "Comparison",
    "AblationRow",
    "results_dir",
    "wikitext2_dir",
    "read_metrics",
    "load_comparison",
    "verify",
    "check",
    "ratio_and_spread",
    "config_diff",
    "ablation_status",
    "ablation_rows",
    "source_label",
    "markdown_table",
    "Table",
    "summary_table",
    "context_table",
    "ablation_table",
    "train_flops_per_token",
    "RunEstimate",
    "estimate_run",
]

#: Environment variable naming the results root (the folder that holds ``wikitext2/``).
RESULTS_ENV = RESULTS_DIR_ENV

#: The main comparison's folder under ``wikitext2/``.
MAIN = "cpu-small"

#: The single-seed runs `scripts/cpu_experiments.sh` makes besides the main comparison (folder under
#: ``wikitext2/ablations/`` -> what it changes), in the script's order. A test checks this against the script.
ABLATIONS: Dict[str, str] = {
    "grassmann-plus": "our variant, not the paper's layer: pre-LN + a residual around the mixer, offsets {1, 2, 4}, r = 24 (the "
                      "Transformer's parameter count)",
    "pre-ln-transformer": "the Transformer under the pre-LN switch (the like-for-like baseline of "
                          "pre-LN runs)",
    "offsets-1-2-4": "offsets {1, 2, 4} instead of the paper's six (the best set of "
                     "sherlok-xin/grassmann--flow)",
    "pre-ln": "GPT-style pre-LN block + a residual around the mixer instead of the paper's post-LN block",
    "r32": "reduced width r = 32 (the paper's) instead of 16",
    "no-normalize": "no normalisation p / max(||p||, eps) (the paper calls it optional)",
    "r64": "reduced width r = 64",
    "per-layer-1-2-4-8": "one offset per layer, (1, 2, 4, 8): the other reading of the schedule",
}

#: LMConfig fields only the Grassmann mixer reads: changing them leaves a Transformer as it was.
GRASSMANN_ONLY = frozenset({"r", "offsets", "offset_mode", "normalize", "eps", "aggregate", "out_proj",
                            "impl"})
#: Config keys that may differ between runs without changing what is computed or how long it trains.
_INCIDENTAL = frozenset({"seed", "num_threads", "device", "log_interval", "precision", "compile"})
#: Config keys that define the training budget: an ablation must keep them.
_BUDGET = ("tokenizer", "bpe_vocab_size", "train_tokens", "eval_tokens", "batch_size", "grad_accum",
           "max_steps", "epochs", "block_size", "eval_interval", "eval_batches")
_RUN_DIR = re.compile(r"^(?P<model>[a-z]+)_seed(?P<seed>\d+)$")
_REQUIRED_RUN_KEYS = ("model", "config", "seed", "git_commit", "hardware", "wall_time_s", "params",
                      "tokens_seen", "best_val_ppl", "best_val_loss", "test_ppl", "test_loss")
_REL = 1e-9  # relative tolerance for recomputed aggregates (they are the same float operations)


class ResultsError(ValueError):
    """A results file that is missing, malformed or inconsistent."""


# ------------------------------------------------------------------------------------------------- paths
def wikitext2_dir(root: Path | str | None = None) -> Path:
    """``<results root>/wikitext2``."""
    return (Path(root) if root is not None else results_dir()) / "wikitext2"


# ----------------------------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class RunRecord:
    """One (model, seed) run: its summary when finished, its progress (step, total steps) while not."""

    model: str
    seed: int
    path: Optional[Path]  # the run directory, when it exists on disk
    summary: Optional[Dict[str, Any]] = None
    progress: Optional[Tuple[int, Optional[int]]] = None

    @property
    def name(self) -> str:
        return f"{self.model}_seed{self.seed}"

    @property
    def finished(self) -> bool:
        return self.summary is not None

    def metrics(self) -> List[Dict[str, Any]]:
        """The run's ``metrics.jsonl`` records (``[]`` when the directory is not on disk)."""
        return read_metrics(self.path) if self.path is not None else []


@dataclass
class Comparison:
    """A ``compare`` output folder: ``data`` is ``compare.json`` (``complete``) or the aggregate of the
    runs finished so far (not ``complete``: the comparison is still running or was interrupted)."""

    name: str  # relative to the wikitext2 folder, e.g. "cpu-small" or "ablations/r64"
    path: Path
    data: Dict[str, Any]
    complete: bool
    runs: List[RunRecord] = field(default_factory=list)

    @property
    def finished_runs(self) -> List[RunRecord]:
        return [r for r in self.runs if r.finished]

    @property
    def unfinished_runs(self) -> List[RunRecord]:
        return [r for r in self.runs if not r.finished]

    @property
    def models(self) -> List[str]:
        return sorted({r.model for r in self.finished_runs})

    @property
    def label(self) -> str:
        return str(self.data.get("label") or self.name)

    def run(self, model: str, seed: int) -> Optional[RunRecord]:
        """The finished run of ``model`` with ``seed``, or None."""
        for r in self.finished_runs:
            if r.model == model and r.seed == seed:
                return r
        return None

    def values(self, model: str, key: str) -> Dict[int, float]:
        """``{seed: summary[key]}`` over the finished runs of ``model``."""
        return {r.seed: float(r.summary[key]) for r in self.finished_runs if r.model == model}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ResultsError(f"{path}: cannot read JSON ({err})") from None


def _progress(run_dir: Path) -> Tuple[int, Optional[int]]:
    """(last logged step, total steps if ``config.json`` says) of an unfinished run."""
    steps = [int(r["step"]) for r in read_metrics(run_dir) if "step" in r]
    total = None
    if (run_dir / "config.json").is_file():
        total = _read_json(run_dir / "config.json").get("max_steps")
    return (max(steps) if steps else 0, total)


def _run_dirs(path: Path) -> Dict[Tuple[str, int], Path]:
    out = {}
    for child in sorted(path.iterdir()):
        m = _RUN_DIR.match(child.name)
        if child.is_dir() and m:
            out[(m["model"], int(m["seed"]))] = child
    return out


def load_comparison(path: Path | str, name: Optional[str] = None) -> Optional[Comparison]:
    """The comparison in folder ``path``, or None when the folder does not exist or holds no run yet.

    With ``compare.json`` the comparison is ``complete`` and its runs are those recorded there. Without
    it, ``data`` aggregates the runs that have a ``summary.json`` (as `compare.aggregate` does, plus the
    settings read from the runs' configs), and the other run folders are listed with their progress.
    """
    path = Path(path)
    name = name or path.name
    if not path.is_dir():
        return None
    dirs = _run_dirs(path)
    compare_json = path / "compare.json"
    if compare_json.is_file():
        data = _read_json(compare_json)
        runs = []
        for summary in data.get("runs", []):
            key = (summary.get("model"), summary.get("seed"))
            runs.append(RunRecord(str(key[0]), int(key[1]), dirs.get(key), summary))
        recorded = {(r.model, r.seed) for r in runs}
        for key, run_dir in dirs.items():  # a folder compare.json does not list (verify reports it)
            if key not in recorded:
                runs.append(RunRecord(key[0], key[1], run_dir, None, _progress(run_dir)))
        return Comparison(name, path, data, True, runs)
    runs = []
    for (model, seed), run_dir in dirs.items():
        summary_path = run_dir / "summary.json"
        if summary_path.is_file():
            runs.append(RunRecord(model, seed, run_dir, _read_json(summary_path)))
        else:
            runs.append(RunRecord(model, seed, run_dir, None, _progress(run_dir)))
    if not runs:
        return None
    finished = [r.summary for r in runs if r.summary is not None]
    data: Dict[str, Any] = {"label": "", "seeds": sorted({r.seed for r in runs})}
    if finished:
        data.update(preset=finished[0].get("preset"), **aggregate(finished))
    else:
        config = _read_json(runs[0].path / "config.json") if (runs[0].path / "config.json").is_file() else {}
        data.update(preset=config.get("preset"), models={})
    return Comparison(name, path, data, False, runs)


# --------------------------------------------------------------------------------------------- verifying
def _close(a: float, b: float, rel: float = _REL) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


def _flat_config(config: Mapping[str, Any]) -> Dict[str, Any]:
    """A run's config with the model's fields brought to the top level (lists as tuples)."""
    flat = {k: v for k, v in config.items() if k != "model"}
    flat.update(config.get("model", {}))
    return {k: tuple(v) if isinstance(v, list) else v for k, v in flat.items()}


def config_diff(config: Mapping[str, Any], baseline: Mapping[str, Any]) -> Dict[str, Tuple[Any, Any]]:
    """``{key: (baseline value, value)}`` for every field that differs, ignoring incidental ones (seed,
    threads, device, logging) and the architecture."""
    a, b = _flat_config(baseline), _flat_config(config)
    keys = (set(a) | set(b)) - _INCIDENTAL - {"arch"}
    return {k: (a.get(k), b.get(k)) for k in sorted(keys) if a.get(k) != b.get(k)}


def _verify_run(run: RunRecord, where: str) -> List[str]:
    s = run.summary or {}
    problems = [f"{where}: missing {k!r}" for k in _REQUIRED_RUN_KEYS if k not in s]
    if problems:
        return problems
    if not isinstance(s["config"], dict) or not s["config"]:
        problems.append(f"{where}: config is empty")
    elif s["config"].get("seed") != s["seed"] or s["config"].get("arch") != s["model"]:
        problems.append(f"{where}: seed/model disagree with its config")
    if not isinstance(s["git_commit"], str) or not s["git_commit"]:
        problems.append(f"{where}: no git commit recorded")
    if not isinstance(s["hardware"], dict) or not s["hardware"]:
        problems.append(f"{where}: no hardware recorded")
    if not isinstance(s["wall_time_s"], (int, float)) or not s["wall_time_s"] > 0:
        problems.append(f"{where}: wall_time_s={s['wall_time_s']!r} is not a positive time")
    for ppl, loss in (("best_val_ppl", "best_val_loss"), ("test_ppl", "test_loss")):
        if not _close(s[ppl], math.exp(s[loss]), 1e-9):
            problems.append(f"{where}: {ppl}={s[ppl]} is not exp({loss}={s[loss]})")
    if run.path is not None:
        on_disk = run.path / "summary.json"
        if on_disk.is_file() and _read_json(on_disk) != s:
            problems.append(f"{where}: {on_disk} differs from the run recorded in compare.json")
        config_file = run.path / "config.json"
        if config_file.is_file():  # a resumed run may have changed only incidental fields (threads, ...)
            on_disk_config = _read_json(config_file)
            if config_diff(on_disk_config, s["config"]) or on_disk_config.get("seed") != s["seed"]:
                problems.append(f"{where}: config.json differs from the summary's config")
        evals = [(r["step"], r["val_ppl"]) for r in run.metrics() if r.get("val_ppl") is not None]
        if evals and s["config"].get("eval_batches") is None:
            # periodic validation used the full split too: the best one must be the checkpoint's
            step, best = min(evals, key=lambda e: e[1])
            if not _close(best, s["best_val_ppl"], 1e-4) or step != s.get("best_step", step):
                problems.append(f"{where}: metrics.jsonl's best validation ({best:.4f} at step {step}) "
                                f"is not the summary's ({s['best_val_ppl']:.4f} at step "
                                f"{s.get('best_step')})")
    return problems


def _verify_stats(stats: Mapping[str, Any], values: List[float], where: str) -> List[str]:
    problems = []
    if list(stats.get("values", [])) != values:
        return [f"{where}: values {stats.get('values')} are not the runs' {values}"]
    expected = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values), "max": max(values)}
    for key, value in expected.items():
        if key not in stats or not _close(stats[key], value) and not (value == 0 and stats[key] == 0):
            problems.append(f"{where}: {key}={stats.get(key)} but the runs give {value}")
    return problems


def verify(comparison: Comparison) -> List[str]:
    """Every inconsistency found in ``comparison`` (an empty list: consistent).

    Checks each finished run (provenance recorded, perplexity = exp(loss), its folder agrees with the
    record, its best validation is the one in ``metrics.jsonl``), that all runs share one training
    budget and tokenizer, and, for a complete comparison, that every aggregate and ratio in
    ``compare.json`` is what the runs give.
    """
    c, problems = comparison, []
    finished = c.finished_runs
    for run in finished:
        problems += _verify_run(run, f"{c.name}/{run.name}")
    if problems:
        return problems
    base = finished[0].summary if finished else None
    for run in finished[1:]:
        diff = {k: v for k, v in config_diff(run.summary["config"], base["config"]).items() if k in _BUDGET}
        if diff or run.summary["tokens_seen"] != base["tokens_seen"]:
            problems.append(f"{c.name}/{run.name}: a different training budget from {finished[0].name}: "
                            f"{diff or 'tokens_seen'}")
        if run.summary.get("tokenizer") != base.get("tokenizer"):
            problems.append(f"{c.name}/{run.name}: a different tokenizer from {finished[0].name}")
    if not c.complete:
        return problems
    d = c.data
    for key in ("preset", "seeds", "models", "runs", "git_commit", "hardware", "wall_time_s"):
        if key not in d:
            problems.append(f"{c.name}/compare.json: missing {key!r}")
    if c.unfinished_runs:
        problems.append(f"{c.name}: run folders not recorded in compare.json: "
                        f"{[r.name for r in c.unfinished_runs]}")
    if problems:
        return problems
    for run in finished:
        if run.summary.get("preset") != d["preset"]:
            problems.append(f"{c.name}/{run.name}: preset {run.summary.get('preset')!r}, not {d['preset']!r}")
    if set(d["models"]) != set(c.models):
        problems.append(f"{c.name}: models {sorted(d['models'])} but runs of {c.models}")
    for model in c.models:
        mine = [r.summary for r in finished if r.model == model]
        m = d["models"].get(model, {})
        where = f"{c.name}/compare.json models.{model}"
        if sorted(r["seed"] for r in mine) != sorted(d["seeds"]):
            problems.append(f"{where}: seeds {sorted(r['seed'] for r in mine)}, not {d['seeds']}")
        for key in ("best_val_ppl", "test_ppl", "wall_time_s", "tokens_per_s"):
            problems += _verify_stats(m.get(key, {}), [float(r[key]) for r in mine], f"{where}.{key}")
        for key in ("params", "tokens_seen"):
            if any(r[key] != m.get(key) for r in mine):
                problems.append(f"{where}.{key}={m.get(key)} differs from a run's")
    if {"grassmann", "transformer"} <= set(c.models):
        g, t = d["models"]["grassmann"], d["models"]["transformer"]
        for key, ratio in (("best_val_ppl", "ratio_val_ppl"), ("test_ppl", "ratio_test_ppl")):
            if ratio not in d or not _close(d[ratio], g[key]["mean"] / t[key]["mean"]):
                problems.append(f"{c.name}/compare.json: {ratio}={d.get(ratio)} is not "
                                f"mean/mean = {g[key]['mean'] / t[key]['mean']}")
    elif "ratio_val_ppl" in d:
        problems.append(f"{c.name}/compare.json: a ratio without both models")
    return problems


def check(comparison: Optional[Comparison], what: str = "comparison") -> Comparison:
    """``comparison`` if it exists and `verify` finds nothing; else raise `ResultsError` listing why."""
    if comparison is None:
        raise ResultsError(f"{what}: no results found")
    problems = verify(comparison)
    if problems:
        raise ResultsError(f"{comparison.path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return comparison


# ---------------------------------------------------------------------------------------------- analysis
def ratio_and_spread(grassmann: Sequence[float], transformer: Sequence[float]) -> Tuple[float, float, float]:
    """``(mean(g) / mean(t), min_k g_k / t_k, max_k g_k / t_k)`` for per-seed perplexities.

    The first is the ratio ``compare`` reports; the other two bound the seed-matched ratios (seed k of
    one model against seed k of the other), a first look at how much one seed can move it.
    """
    if len(grassmann) != len(transformer) or not grassmann:
        raise ValueError("need the same, non-zero number of seeds for both models")
    per_seed = [g / t for g, t in zip(grassmann, transformer)]
    return statistics.fmean(grassmann) / statistics.fmean(transformer), min(per_seed), max(per_seed)


def _seed_matched(c: Comparison, key: str) -> Tuple[List[float], List[float]]:
    g, t = c.values("grassmann", key), c.values("transformer", key)
    seeds = sorted(set(g) & set(t))
    return [g[s] for s in seeds], [t[s] for s in seeds]


def _fmt_change(diff: Mapping[str, Tuple[Any, Any]], model: str = "") -> str:
    """``key: before → after`` per changed setting. For the Grassmann model ``norm: post → pre`` is two
    changes (the block's LayerNorm moves before the mixer *and* a residual is added around the mixer,
    which the post-LN Grassmann block does not have): the label says so."""
    def show(v: Any) -> str:
        return "(" + ", ".join(map(str, v)) + ")" if isinstance(v, tuple) else str(v)

    def label(k: str, a: Any, b: Any) -> str:
        both = model == "grassmann" and k == "norm" and (a, b) == ("post", "pre")
        return f"{k}: {show(a)} → {show(b)}" + (" (+ a residual around the mixer)" if both else "")

    return "; ".join(label(k, a, b) for k, (a, b) in diff.items()) or "none"


@dataclass(frozen=True)
class AblationRow:
    """One finished ablation run beside the baseline runs of the same seed and budget.

    Ratios are of best validation perplexity (below 1: better than the baseline). ``vs_twin`` is set for
    a Grassmann run that also changes something the Transformer has (e.g. ``norm``), when a Transformer
    ablation with exactly those changes exists: the like-for-like gap.
    """

    name: str
    model: str
    seed: int
    change: str  # what differs from the baseline run's config
    params: int
    val_ppl: float
    test_ppl: float
    vs_same_model: Optional[float]  # / the baseline run of the same model and seed
    vs_transformer: Optional[float]  # / the baseline Transformer of the same seed
    vs_twin: Optional[float]  # a Grassmann run / the Transformer run with the same non-mixer changes
    published: str  # what public reproductions found for the same change ("" if none)


def _show_path(path: Path) -> str:
    """``path`` as ``results/wikitext2/...`` under the committed results folder, else as is."""
    if os.environ.get(RESULTS_ENV):
        return str(path)
    try:
        return str(path.resolve().relative_to(results_dir().resolve().parent))
    except ValueError:
        return str(path)


def _progress_text(run: RunRecord) -> str:
    """``"<run> at step S of N"`` for an unfinished run."""
    step, total = run.progress or (0, None)
    return f"{run.name} at step {step}" + (f" of {total}" if total else "")


def ablation_status(root: Path | str | None = None) -> Dict[str, str]:
    """``{ablation: "finished" | "running (...)" | "not yet run: <dir>"}`` for every planned ablation."""
    base = wikitext2_dir(root) / "ablations"
    out = {}
    for name in ABLATIONS:
        c = load_comparison(base / name, f"ablations/{name}")
        if c is None:
            out[name] = f"not yet run: {_show_path(base / name)}"
        elif c.complete:
            out[name] = "finished"
        else:
            done = ", ".join(r.name for r in c.finished_runs) or "no run"
            out[name] = f"running: {done} finished; {', '.join(map(_progress_text, c.unfinished_runs))}"
    return out


def source_label(run: published.LMResult) -> str:
    """``"owner/name (CODE)"`` for a reproduction, ``"paper"`` for the paper."""
    return run.source if run.source == "paper" else f"{run.source_name.split(' (')[0]} ({run.source})"


def _published_for(name: str) -> str:
    found = published.ablation_evidence(name)
    return "; ".join(f"{source_label(e)} {e.variant}: {r:.3f}" for e, r in found)


def ablation_rows(root: Path | str | None = None, baseline: Optional[Comparison] = None) -> List[AblationRow]:
    """A row per finished ablation run (with a ``summary.json``), in `ABLATIONS` order then extra folders.

    Each is compared with the baseline (``wikitext2/cpu-small``) run of the same model and seed, and with
    the baseline Transformer of the same seed. Raises `ResultsError` if an ablation run is inconsistent or
    changes the training budget (then it is not an ablation of the baseline).
    """
    folder = wikitext2_dir(root) / "ablations"
    baseline = baseline if baseline is not None else load_comparison(wikitext2_dir(root) / MAIN, MAIN)
    if baseline is None:
        raise ResultsError(f"no baseline comparison at {wikitext2_dir(root) / MAIN}")
    extra = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in ABLATIONS) \
        if folder.is_dir() else []
    names = list(ABLATIONS) + extra
    loaded = {n: c for n in names if (c := load_comparison(folder / n, f"ablations/{n}")) is not None}

    def base_of(run: RunRecord) -> Optional[RunRecord]:
        return baseline.run(run.model, run.seed) or next(
            (r for r in baseline.finished_runs if r.model == run.model), None)

    def diff_of(run: RunRecord) -> Dict[str, Tuple[Any, Any]]:
        base = base_of(run)
        return config_diff(run.summary["config"], base.summary["config"]) if base is not None else {}

    transformer_runs = [r for c in loaded.values() for r in c.finished_runs if r.model == "transformer"]
    rows = []
    for name, c in loaded.items():
        problems = verify(c)
        for run in c.finished_runs:
            base = base_of(run)
            if base is None:
                continue
            diff = diff_of(run)
            budget = {k: v for k, v in diff.items() if k in _BUDGET}
            if budget or run.summary["tokens_seen"] != base.summary["tokens_seen"]:
                problems.append(f"{c.name}/{run.name}: not the baseline's budget ({budget or 'tokens_seen'})")
            val = float(run.summary["best_val_ppl"])
            t_base = baseline.run("transformer", run.seed)
            shared = {k: v for k, v in diff.items() if k not in GRASSMANN_ONLY}
            twin_run = next((t for t in transformer_runs if t.seed == run.seed and diff_of(t) == shared),
                            None) if run.model == "grassmann" and shared else None
            rows.append(AblationRow(
                name=name, model=run.model, seed=run.seed, change=_fmt_change(diff, run.model),
                params=int(run.summary["params"]), val_ppl=val, test_ppl=float(run.summary["test_ppl"]),
                vs_same_model=val / float(base.summary["best_val_ppl"]) if base.seed == run.seed else None,
                vs_transformer=val / float(t_base.summary["best_val_ppl"]) if t_base is not None else None,
                vs_twin=val / float(twin_run.summary["best_val_ppl"]) if twin_run is not None else None,
                published=_published_for(name),
            ))
        if problems:
            raise ResultsError(f"{c.path}: " + "; ".join(problems))
    return rows


# ------------------------------------------------------------------------------------------------ tables
def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table (cells converted with ``str``; ``|`` escaped)."""
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


class Table:
    """A table of strings: ``markdown()`` for the README, HTML when a notebook displays it, aligned plain text
    (``text()``, the ``repr``) where HTML is not shown: a terminal, a plain-text notebook output. ``str`` is
    the markdown.

    Notebooks and the book show ``_repr_html_`` (the book's markdown renderer has no tables); ``**x**`` in
    a cell becomes bold in HTML and markdown and stays as written in plain text.
    """

    def __init__(self, header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> None:
        self.header: Tuple[str, ...] = tuple(str(h) for h in header)
        self.rows: Tuple[Tuple[str, ...], ...] = tuple(tuple(str(v) for v in row) for row in rows)
        if any(len(row) != len(self.header) for row in self.rows):
            raise ValueError("every row needs one cell per column")

    def markdown(self) -> str:
        return markdown_table(self.header, self.rows)

    def html(self) -> str:
        def cell(tag: str, text: str) -> str:
            inner = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))
            return f"<{tag}>{inner}</{tag}>"

        head = "<tr>" + "".join(cell("th", h) for h in self.header) + "</tr>"
        body = "".join("<tr>" + "".join(cell("td", v) for v in row) + "</tr>" for row in self.rows)
        return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"

    def text(self) -> str:
        """The table as aligned plain text: the header, a rule, one line per row, columns padded."""
        widths = [max(len(v) for v in column) for column in zip(self.header, *self.rows)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(v.ljust(w) for v, w in zip(cells, widths)).rstrip()

        return "\n".join([line(self.header), line(["-" * w for w in widths])] + [line(row) for row in self.rows])

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        return self.text()

    def __str__(self) -> str:
        return self.markdown()

    def __len__(self) -> int:
        return len(self.rows)


def _pm(stats: Mapping[str, Any]) -> str:
    n = len(stats.get("values", []))
    return f"{stats['mean']:.1f} ± {stats['std']:.1f}" if n > 1 else f"{stats['mean']:.1f}"


def _opt(x: Optional[float], digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _describe_run_setting(summary: Mapping[str, Any]) -> str:
    cfg = summary["config"]
    m = cfg["model"]
    budget = (f"{cfg['max_steps']} steps" if cfg.get("max_steps") else f"{cfg['epochs']:g} epochs")
    return (f"{m['n_layers']}L d{m['d_model']} L{m['block_size']} r{m['r']}, {m['norm']}-LN; "
            f"peak lr {cfg['lr']:g}; {budget} × {cfg['batch_size'] * cfg['grad_accum']} × {m['block_size']} = "
            f"{summary['tokens_seen'] / 1e6:.2f}M tokens")


def _tokenizer(summary: Mapping[str, Any]) -> str:
    tok = summary.get("tokenizer") or {}
    name = {"bpe": "byte-level BPE", "wordpiece": "WordPiece", "gpt2": "GPT-2 BPE", "word": "words"}.get(
        tok.get("name"), str(tok.get("name")))
    return f"{name} {tok.get('vocab_size', 0):,}; WikiText-2 v1 (tokenized)"


def summary_table(c: Comparison) -> Table:
    """Per model: parameters, seeds, best validation and test perplexity (mean ± std), tokens, speed."""
    rows = []
    for model in c.models:
        runs = [r.summary for r in c.finished_runs if r.model == model]
        stats = aggregate(runs)["models"][model]
        rows.append([model, f"{stats['params']:,}", ", ".join(str(s) for s in sorted(stats["seeds"])),
                     _pm(stats["best_val_ppl"]), _pm(stats["test_ppl"]), f"{stats['tokens_seen']:,}",
                     f"{stats['tokens_per_s']['mean']:,.0f}", f"{stats['wall_time_s']['mean'] / 60:.1f}"])
    return Table(["model", "params", "seeds", "best val PPL", "test PPL (at best val)",
                           "training tokens", "tokens/s", "wall time (min)"], rows)


def context_table(c: Comparison, compact: bool = False) -> Table:
    """Ours beside the paper's Table 1 and every reproduction's matched-configuration gap.

    Perplexities are comparable only within a row (tokenizers and data preparation differ); the
    Grassmann / Transformer ratio is the quantity to compare across rows. ``compact`` (for a book page)
    leaves out the recipe column and the data release.
    """
    rows = []
    gv, tv = _seed_matched(c, "best_val_ppl")
    gt, tt = _seed_matched(c, "test_ppl")
    if gv:
        s = c.finished_runs[0].summary
        rv, lo, hi = ratio_and_spread(gv, tv)
        rt, tlo, thi = ratio_and_spread(gt, tt)
        spread = (lambda a, b: f" ({a:.3f}–{b:.3f})") if len(gv) > 1 else (lambda a, b: "")
        rows.append([f"**ours** ({c.name}, {len(gv)} seed{'s' * (len(gv) > 1)})", _describe_run_setting(s),
                     _tokenizer(s), f"{statistics.fmean(tv):.1f}", f"{statistics.fmean(gv):.1f}",
                     f"**{rv:.3f}**{spread(lo, hi)}", f"{rt:.3f}{spread(tlo, thi)}",
                     "mean over seeds; per-seed range in brackets"])
    for gap in published.headline_gaps():
        g, t = gap.grassmann, gap.transformer
        ppl = (lambda e: f"{e.val:.1f}" if e.val is not None else f"{e.test:.1f} (test)")
        params = f"G {g.params_m:.2f}M, T {t.params_m:.2f}M" if g.params_m and t.params_m else ""
        rows.append([source_label(g), f"{gap.setting}; {params}".rstrip("; "),
                     g.tokenizer, ppl(t), ppl(g), _opt(gap.ratio_val), _opt(gap.ratio_test),
                     "; ".join(x for x in (g.recipe, g.notes) if x)])
    header = ["source", "setting", "tokenizer / data", "Transformer PPL", "Grassmann PPL", "G/T (val)",
              "G/T (test)", "recipe / notes"]
    if compact:
        header = header[:-1]
        rows = [[row[0], row[1], row[2].split(";")[0].split(" (")[0], *row[3:-1]] for row in rows]
    return Table(header, rows)


def ablation_table(rows: Sequence[AblationRow]) -> Table:
    """The ablation rows as markdown (ratios of best validation perplexity)."""
    body = [[r.name, r.model, r.seed, r.change, f"{r.params:,}", f"{r.val_ppl:.1f}", f"{r.test_ppl:.1f}",
             _opt(r.vs_same_model), _opt(r.vs_transformer), _opt(r.vs_twin), r.published or "–"]
            for r in rows]
    return Table(["ablation", "model", "seed", "change from the baseline", "params", "best val PPL",
                           "test PPL", "/ same model, baseline", "/ Transformer, baseline",
                           "/ pre-LN Transformer, both at the preset's lr", "reproductions (val ratio to their paper layer)"],
                          body)


# ---------------------------------------------------------------------------------------- comparisons
def complete_comparison(folder: str, root: Path | str | None = None) -> Optional[Comparison]:
    """The verified comparison in ``wikitext2/<folder>`` if it is complete, else None (raises if inconsistent)."""
    c = load_comparison(wikitext2_dir(root) / folder, folder)
    return check(c, folder) if c is not None and c.complete else None


# --------------------------------------------------------------------------------------------- estimates
def train_flops_per_token(cfg: TrainConfig) -> float:
    """Matmul FLOPs of one training step (forward + backward) per token: mixers, feed-forward, LM head.

    From the formulas of `gflow_lite.flops` (the Grassmann mixer in its ``impl``; attention with a causal
    kernel), plus ``6 * fan_in * fan_out`` per token for each feed-forward linear and the tied head.
    Elementwise work is left out, so this is a relative measure for scaling measured speeds.
    """
    m = cfg.model
    L, d = m.block_size, m.d_model
    per_layer = 6.0 * 2 * d * m.d_ff  # feed-forward: two linears
    for layer in range(m.n_layers):
        if cfg.arch == "grassmann":
            k = len(m.layer_offsets(layer))
            cost = (grassmann_fast_cost if m.impl == "fast" else grassmann_reference_cost)(1, L, d, m.r, k)
            extra = 6.0 * d * d if m.out_proj else 0.0
        else:
            cost, extra = attention_cost(1, L, d, m.n_heads, causal=True), 0.0
        per_layer += (cost.forward_flops + cost.backward_flops) / L + extra
    return per_layer + 6.0 * d * m.vocab_size


@dataclass(frozen=True)
class RunEstimate:
    """How long one run of a preset would train (an estimate, not a measurement)."""

    preset: str
    arch: str
    steps: int
    tokens: int
    cpu_hours: float  # on the machine that produced ``measured``, at its matmul FLOP rate
    gpu_hours: float  # on the GPU of `published.PUBLISHED_THROUGHPUT`, at the FLOP rate it implies


def estimate_run(target: TrainConfig, n_train_tokens: int, measured: Mapping[str, Any]) -> RunEstimate:
    """Estimate ``target``'s training time from a finished run's ``summary.json`` (``measured``).

    Both carry a measured matmul FLOP rate (tokens/s × `train_flops_per_token`) over to ``target``:
    CPU, the rate of our measured run on its machine; GPU, the rate implied by the throughput ARL reports
    on an H100 (`published.PUBLISHED_THROUGHPUT`). Both ignore evaluation and assume the rate does not
    change with the model's size: rough, order-of-magnitude numbers.
    """
    steps = target.total_steps(n_train_tokens)
    tokens = steps * target.tokens_per_step
    work = tokens * train_flops_per_token(target)
    ran = TrainConfig.from_dict(measured["config"])
    cpu_rate = float(measured["tokens_per_s"]) * train_flops_per_token(ran)
    tp = published.PUBLISHED_THROUGHPUT
    gpu_model = TrainConfig(arch="grassmann", tokenizer="gpt2", model=LMConfig(**dict(tp.model)), max_steps=1,
                            epochs=None)  # ARL's run: GPT-2 BPE (a TrainConfig's vocabulary follows its tokenizer)
    gpu_rate = tp.tokens_per_s * train_flops_per_token(gpu_model)
    return RunEstimate(target.preset, target.arch, steps, tokens, work / cpu_rate / 3600,
                       work / gpu_rate / 3600)
