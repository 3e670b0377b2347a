"""The fair comparison of issue 22: its decision rule, what runs next, and the tables of its results.

Every model is tuned alike before any two are compared. The plan, ``results/wikitext2/fair/plan.json``,
names the models (an architecture and its overrides), the earlier runs that count (checked field by field
against the model's settings, `check_config`), the rates each sweep starts from and the later stages; the
rule, fixed before the results, is stated in words in ``results/wikitext2/fair/README.md``. In brief:

* **sweep** (cpu-small, 2000 steps, cosine decay to ``lr / 10``): a run *fails* when it ends without a
  summary, its best validation perplexity is not finite, or it is more than ``fail_factor`` (2x) the best
  that model reached at any rate; a rate at which any seed fails is a failure of that model at that rate.
  A model's best rate is its non-failed rate with the lowest mean best validation perplexity over its seeds
  (`verdicts`); while the best is the highest (lowest) rate tried the sweep adds twice (half) that rate,
  and when it lies inside the tried range seed 1 runs there (`sweep_next`); then the sweep is settled.
* **halves**: the two changes of grassmann-plus's pre-LN switch, each alone, at its best sweep rate.
* **plateau**: the better Transformer, grassmann-plus and the paper's layer, each at its own best rate,
  with early stopping; seed 0 of all three before any seed 1.
* **medium** (cpu-medium, 800 steps): the better Transformer and the models the stage names at their
  best sweep rate and half of it, extended while the best is at an edge (or, for a model marked "best",
  at its best sweep rate alone).
* **small-800** (cpu-small at the medium stage's 800 steps): the same re-tuning at the small size, the
  other point of the size comparison, so that both sizes are tuned at the budget they are compared at.
* ratios only between models each at its own best rate; with two seeds a difference is *provisional*, and
  one smaller than the larger of the two seed ranges is *within seed noise*.

`load_plan` and `collect` read the plan and every finished run (a ``summary.json`` or a recorded
``failed.json``); `next_runs` derives what runs next; `render` is a pure function of the plan and the
results that gives ``RESULTS.md`` (no date or commit in it: the same files always give the same text).
``scripts/fair_queue.py`` runs the queue and ``scripts/fair_tables.py`` writes ``RESULTS.md`` from these.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..data.paths import results_dir
from ..model import LMConfig

STAGES = ("sweep", "halves", "plateau", "medium", "small-800")
RETUNED = ("medium", "small-800")  # the stages that re-tune each model's rate at their own size and budget
Key = Tuple[str, str, float, int]  # (stage, model, peak rate, seed)
#: each model field's default: what older runs, which predate some fields, were trained with
MODEL_DEFAULTS: Dict[str, object] = {f.name: f.default for f in fields(LMConfig)}


class FairPlanError(ValueError):
    """The plan and the results on disk disagree (a run trained with other settings, a missing result)."""


def fair_dir() -> Path:
    """The comparison's folder, ``<results>/wikitext2/fair`` (see `gflow_lite.data.paths.results_dir`)."""
    return results_dir() / "wikitext2" / "fair"


def load_plan(root: Optional[Path] = None) -> dict:
    """The plan, ``plan.json`` in ``root`` (default `fair_dir`)."""
    return json.loads(((Path(root) if root is not None else fair_dir()) / "plan.json").read_text())


# ----------------------------------------------------------------------------------------------- results
def rate_name(lr: float) -> str:
    """2e-3 -> '2e-3' (the folder names of the earlier sweep)."""
    mant, exp = f"{lr:.0e}".split("e")
    return f"{mant}e{int(exp)}"


def run_result(folder: Path, arch: str, seed: int) -> Optional[dict]:
    """A finished run's summary, a recorded failure, or None (not run yet)."""
    run = folder / f"{arch}_seed{seed}"
    for name in ("summary.json", "failed.json"):
        if (run / name).is_file():
            return json.loads((run / name).read_text())
    return None


def overrides(plan: dict, stage: str, name: str) -> Dict[str, object]:
    """The model's settings in a stage: its own, and what the stage changes (the medium size's r)."""
    return {**plan["models"][name]["overrides"], **plan["stages"][stage].get("overrides", {}).get(name, {})}


def check_config(summary: dict, spec: dict, lr: float, stage: dict, where: Path) -> None:
    """A run counts only if it was trained with exactly this model's settings, rate and stage."""
    cfg = summary.get("config")
    if cfg is None:  # a recorded failure carries the command instead
        return
    want = {"lr": lr, "min_lr": lr / 10, "preset": stage["preset"], **stage.get("set", {})}
    for k, v in want.items():
        if not (cfg.get(k) == v or (isinstance(v, float) and math.isclose(cfg.get(k, math.nan), v))):
            raise FairPlanError(f"{where}: {k}={cfg.get(k)!r}, the plan expects {v!r}")
    for k, v in spec["overrides"].items():
        got = cfg["model"].get(k, MODEL_DEFAULTS[k])  # older runs predate some fields: they had the default
        if isinstance(got, list):
            got = ",".join(map(str, got))
        if str(got).lower() != str(v).lower():
            raise FairPlanError(f"{where}: model.{k}={got!r}, the plan expects {v!r}")
    if summary.get("model") != spec["arch"]:
        raise FairPlanError(f"{where}: architecture {summary.get('model')!r}, "
                            f"the plan expects {spec['arch']!r}")


Results = Dict[str, Dict[str, Dict[float, Dict[int, dict]]]]  # stage -> model -> rate -> seed -> summary


def earlier_folder(root: Path, rel: str) -> Path:
    """An earlier run's folder, named in the plan from the repository root (``results/...``), found in the
    results folder that holds ``root`` (``<results>/wikitext2/fair``), wherever that folder is installed."""
    parts = Path(rel).parts
    if not parts or parts[0] != "results":
        raise FairPlanError(f"{rel}: an earlier run's folder must lie under results/, as the plan names them")
    return root.resolve().parents[1].joinpath(*parts[1:])


def earlier_runs(plan: dict, stage: str, name: str) -> Dict[str, list]:
    """The runs committed before the plan that count for a model in a stage: rate -> one source per seed."""
    if stage == "sweep":
        return plan["models"][name].get("earlier", {})
    return plan["stages"][stage].get("earlier", {}).get(name, {})


def collect(plan: dict, root: Optional[Path] = None) -> Results:
    """Every result the plan knows: the earlier folders (sweep) and each stage's own folders below ``root``
    (default `fair_dir`)."""
    root = Path(root) if root is not None else fair_dir()
    out: Results = {stage: {name: {} for name in plan["models"]} for stage in STAGES}
    for name, model in plan["models"].items():
        for stage in (st for st in STAGES if st in plan["stages"]):
            spec, mine = {**model, "overrides": overrides(plan, stage, name)}, out[stage][name]
            earlier = earlier_runs(plan, stage, name)
            for rate, sources in earlier.items():
                lr = float(rate)
                for seed, rel in enumerate(sources):
                    if isinstance(rel, dict):  # stopped by hand after it failed to train: its note says why
                        mine.setdefault(lr, {})[seed] = {"status": "failed", **rel}
                        continue
                    folder = earlier_folder(root, rel)
                    res = run_result(folder, spec["arch"], seed)
                    if res is None:
                        raise FairPlanError(f"{folder}: no {spec['arch']}_seed{seed} result, "
                                            "as the plan says")
                    check_config(res, spec, lr, plan["stages"][stage], folder)
                    mine.setdefault(lr, {})[seed] = res
            for d in sorted((root / stage).glob(f"{name}-lr*-s*")):
                lr, seed = float(d.name[len(name) + 3:].rsplit("-s", 1)[0]), int(d.name.rsplit("-s", 1)[1])
                res = run_result(d, spec["arch"], seed)
                if res is not None:
                    check_config(res, spec, lr, plan["stages"][stage], d)
                    mine.setdefault(lr, {})[seed] = res
    return out


def run_folder(plan: dict, stage: str, name: str, lr: float, seed: int,
               root: Optional[Path] = None) -> Optional[Path]:
    """One run's own folder (``<arch>_seed<seed>``, holding its ``metrics.jsonl``): the earlier run the plan
    names for that rate and seed, else the stage's own; None when there is no such run yet."""
    root = Path(root) if root is not None else fair_dir()
    model = plan["models"][name]
    for rate, sources in earlier_runs(plan, stage, name).items():
        if math.isclose(float(rate), lr) and seed < len(sources) and isinstance(sources[seed], str):
            return earlier_folder(root, sources[seed]) / f"{model['arch']}_seed{seed}"
    own = root / stage / f"{name}-lr{rate_name(lr)}-s{seed}" / f"{model['arch']}_seed{seed}"
    return own if own.is_dir() else None


def val_curve(run: Path) -> List[Tuple[int, float]]:
    """(step, validation perplexity) at every evaluation of a run, read from its ``metrics.jsonl``."""
    with open(Path(run) / "metrics.jsonl", encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [(r["step"], r["val_ppl"]) for r in records if "val_ppl" in r]


def ppl(res: dict) -> float:
    v = res.get("best_val_ppl")
    return float(v) if isinstance(v, (int, float)) else math.inf


def verdicts(runs: Dict[float, Dict[int, dict]],
             fail_factor: float) -> Tuple[Dict[float, str], Optional[float]]:
    """Each tried rate -> 'ok' | 'failed'; and the best rate (None if every rate failed)."""
    finite = [ppl(r) for seeds in runs.values() for r in seeds.values() if math.isfinite(ppl(r))]
    floor = min(finite) if finite else math.inf
    status = {}
    for lr, seeds in runs.items():
        bad = any(not math.isfinite(ppl(r)) or ppl(r) > fail_factor * floor for r in seeds.values())
        status[lr] = "failed" if bad else "ok"
    ok = {lr: sum(ppl(r) for r in s.values()) / len(s) for lr, s in runs.items() if status[lr] == "ok"}
    return status, (min(ok, key=ok.get) if ok else None)


def mean_ppl(runs: Dict[int, dict]) -> float:
    return sum(ppl(r) for r in runs.values()) / len(runs)


# ------------------------------------------------------------------------------------------ what runs next
def sweep_next(plan: dict, name: str, runs: Dict[float, Dict[int, dict]],
               busy: bool) -> List[Tuple[float, int]]:
    """The sweep's next runs of one model ([] when it is settled, or while one of its runs is going)."""
    if not plan["models"][name].get("sweep", True):  # a variant run at its base model's best rate only
        return []
    start = [float(x) for x in plan["models"][name].get("start", [])]
    missing = [(lr, 0) for lr in start if 0 not in runs.get(lr, {})]
    if missing or busy:
        return missing  # the start rates first; the adaptive part waits for them
    _, best = verdicts(runs, plan["fail_factor"])
    if best is None:
        return []
    tried = sorted(runs)
    if best == tried[-1]:
        return [(best * 2, 0)]
    if best == tried[0]:
        return [(best / 2, 0)]
    return [] if 1 in runs[best] else [(best, 1)]


def settled(plan: dict, results: Results, running: List[Key]) -> Dict[str, float]:
    """The models whose sweep is over (best inside the tried rates, two seeds there): name -> best rate."""
    out = {}
    for name in plan["models"]:
        runs = results["sweep"][name]
        busy = any(k[0] == "sweep" and k[1] == name for k in running)
        if plan["models"][name].get("sweep", True) and not busy and not sweep_next(plan, name, runs, busy):
            best = verdicts(runs, plan["fail_factor"])[1]
            if best is not None and 1 in runs[best]:
                out[name] = best
    return out


def best_transformer(plan: dict, results: Results, bests: Dict[str, float]) -> Optional[str]:
    """The Transformer block that wins at its own best rate (both sweeps settled), or None."""
    names = plan["stages"]["plateau"]["transformers"]
    if not all(n in bests for n in names):
        return None
    return min(names, key=lambda n: mean_ppl(results["sweep"][n][bests[n]]))


def next_runs(plan: dict, results: Results, running: List[Key]) -> List[Key]:
    """The runs that can start now, shortest and most decisive first: the sweep in the plan's model order,
    then the halves of the pre-LN switch, then the re-tuned stages (800 steps a run: cpu-medium, then
    cpu-small), then the plateau runs (up to 48,000 steps each; seed 0 of all three before any seed 1)."""
    todo: List[Key] = []
    for name in plan["models"]:
        busy = any(k[0] == "sweep" and k[1] == name for k in running)
        todo += [("sweep", name, lr, s) for lr, s in sweep_next(plan, name, results["sweep"][name], busy)]
    bests = settled(plan, results, running)
    for name in plan["stages"]["halves"]["models"]:  # item 4: each half of a switch, at its base's best rate
        base = plan["models"][name]["base"]
        if base in bests and 0 not in results["halves"][name].get(bests[base], {}):
            todo.append(("halves", name, bests[base], 0))
    t_best = best_transformer(plan, results, bests)
    for stage in (st for st in RETUNED if st in plan["stages"]):
        todo += retune_next(plan, results, running, stage, bests, t_best)
    trio = [n for n in (t_best, *plan["stages"]["plateau"]["models"]) if n in bests]
    for seed in plan["stages"]["plateau"]["seeds"]:
        for name in trio:
            if seed not in results["plateau"][name].get(bests[name], {}):
                todo.append(("plateau", name, bests[name], seed))
        if len(trio) < 3 or any(0 not in results["plateau"][n].get(bests[n], {}) for n in trio):
            break  # seed 1 where time allows: after seed 0 of all three
    return [k for k in todo if k not in running]


def retune_next(plan: dict, results: Results, running: List[Key], stage: str, bests: Dict[str, float],
                t_best: Optional[str]) -> List[Key]:
    """A re-tuned stage's next runs (seed 0): each model at its best sweep rate and half of it, then twice
    (half) the best while the best is the highest (lowest) rate tried; a model marked "best" at its best
    sweep rate alone."""
    todo: List[Key] = []
    spec = plan["stages"][stage]
    for name, how in ((t_best, "retune"), *((n, spec["models"][n]) for n in spec["models"])):
        if name not in bests:
            continue
        runs = results[stage][name]
        if how == "best":
            rates = [bests[name]]
        else:
            rates = [bests[name], bests[name] / 2]
            done = {lr: r for lr, r in runs.items() if 0 in r}
            busy = any(k[0] == stage and k[1] == name for k in running)
            if all(lr in done for lr in rates) and not busy:
                _, best = verdicts(done, plan["fail_factor"])
                tried = sorted(done)
                rates += [best * 2] if best == tried[-1] else [best / 2] if best == tried[0] else []
        todo += [(stage, name, lr, 0) for lr in rates if 0 not in runs.get(lr, {})]
    return todo



# ------------------------------------------------------------------------------------------------ tables
PLATEAU_TAIL = 0.15  # a plateau: the best step lies before the last 15% of the run's steps
Seeds = Dict[int, dict]  # seed -> summary (or failure record)
Runs = Dict[float, Seeds]  # rate -> seeds


# ------------------------------------------------------------------------------------------- numbers
def failed(res: dict) -> bool:
    """A recorded failure, or a run whose best validation perplexity is not a finite number."""
    return res.get("status") == "failed" or not math.isfinite(ppl(res))


def val_cell(res: Optional[dict]) -> str:
    """The best validation perplexity, 'failed', or blank when there is no run."""
    if res is None:
        return ""
    return "failed" if failed(res) else f"{ppl(res):.2f}"


def test_value(res: Optional[dict]) -> Optional[float]:
    """The test perplexity when the summary has a finite one; None otherwise (never invented)."""
    v = (res or {}).get("test_ppl")
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def num(v: Optional[float], digits: int = 2, sign: bool = False) -> str:
    """A number with fixed digits (a leading sign if asked), blank for None."""
    if v is None:
        return ""
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def mean(values: List[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


def seed_range(seeds: Seeds) -> Optional[float]:
    """max - min of the best validation perplexities over the seeds (None with fewer than two)."""
    vals = [ppl(r) for r in seeds.values()]
    return max(vals) - min(vals) if len(vals) > 1 else None


def mean_test(seeds: Seeds) -> Optional[float]:
    """The mean test perplexity, only when every seed has one."""
    vals = [test_value(r) for r in seeds.values()]
    return None if not vals or None in vals else mean(vals)


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b and math.isfinite(a) and math.isfinite(b) else None


def is_plateau(res: dict) -> Optional[bool]:
    """Whether the run's best step lies before the last 15% of its steps (None when a field is missing)."""
    steps, best = steps_run(res), res.get("best_step")
    if not isinstance(steps, int) or not isinstance(best, int) or steps <= 0:
        return None
    return best < (1 - PLATEAU_TAIL) * steps


def steps_run(res: dict) -> Optional[int]:
    """The steps the run made: its early-stop step, its recorded step count, or its configured maximum."""
    for v in (res.get("early_stop_step"), res.get("steps"), (res.get("config") or {}).get("max_steps")):
        if isinstance(v, int):
            return v
    return None


# ------------------------------------------------------------------------------------- the rule, shared
def best_rates(plan: dict, runs_by_model: Dict[str, Runs]) -> Dict[str, float]:
    """Each model's best rate among its runs in one stage (models with no non-failed rate left out)."""
    out = {}
    for name, runs in runs_by_model.items():
        best = verdicts(runs, plan["fail_factor"])[1] if runs else None
        if best is not None:
            out[name] = best
    return out


def transformer_reference(plan: dict, runs_by_model: Dict[str, Runs], bests: Dict[str, float],
                          prefer: Optional[str] = None) -> Optional[str]:
    """The Transformer block to divide by: ``prefer`` when it has a best rate here, otherwise the better
    of the plan's Transformers, each at its own best rate (lowest mean best-val ppl)."""
    names = [n for n in plan["stages"]["plateau"]["transformers"] if n in bests]
    if prefer in names:
        return prefer
    return min(names, key=lambda n: mean_ppl(runs_by_model[n][bests[n]])) if names else None


def noise_notes(a: Seeds, b: Seeds) -> List[str]:
    """The README's labels for the difference between two models' means (each at its own best rate)."""
    notes = []
    diff = abs(mean_ppl(a) - mean_ppl(b))
    ranges = [r for r in (seed_range(a), seed_range(b)) if r is not None]
    if min(len(a), len(b)) < 2:
        notes.append("1 seed")
    elif not (ranges and diff < max(ranges)):
        notes.append("provisional (2 seeds)")
    if ranges and diff < max(ranges):
        notes.append("within seed noise")
    return notes


def still_to_come(plan: dict, results: Results, stage: str) -> str:
    """The runs of a stage that fair_queue would start now (or that are running now), in one line."""
    todo = [f"{m} {rate_name(lr)} s{s}" for st, m, lr, s in next_runs(plan, results, []) if st == stage]
    return "Still to come (runnable now or running): " + (", ".join(todo) if todo else "none")


def table(head: List[str], rows: List[List[str]]) -> List[str]:
    """A markdown table."""
    def line(cells: List[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    return [line(head), "|" + "---|" * len(head)] + [line(r) for r in rows]


# ------------------------------------------------------------------------------------------ 1. sweep
def sweep_models(plan: dict) -> List[str]:
    return [n for n, m in plan["models"].items() if m.get("sweep", True)]


def rates_tried(plan: dict, runs: Runs) -> str:
    """'5e-4, 1e-3, **2e-3**, 4e-3 failed': every rate tried, the best in bold, failures marked."""
    status, best = verdicts(runs, plan["fail_factor"])
    cells = []
    for lr in sorted(runs):
        name = f"**{rate_name(lr)}**" if lr == best else rate_name(lr)
        cells.append(name + (" failed" if status[lr] == "failed" else ""))
    return ", ".join(cells)


def sweep_row(plan: dict, results: Results, name: str, ref: Optional[str], bests: Dict[str, float],
              settled: Dict[str, float]) -> List[str]:
    """One model's row of the fixed-budget table."""
    runs = results["sweep"][name]
    if not runs:
        return [name, "", "", "", "", "", "", "", "", "", "no runs yet"]
    if name not in bests:
        return [name, rates_tried(plan, runs), "none", "", "", "", "", "", "", "", "every rate failed"]
    seeds = runs[bests[name]]
    notes = [] if name in settled else ["sweep not settled"]
    r = None
    if ref is not None:
        ref_seeds = results["sweep"][ref][bests[ref]]
        r = ratio(mean_ppl(seeds), mean_ppl(ref_seeds))
        notes += ["reference"] if name == ref else noise_notes(seeds, ref_seeds)
    return [name, rates_tried(plan, runs), rate_name(bests[name]),
            val_cell(seeds.get(0)), val_cell(seeds.get(1)),
            num(test_value(seeds.get(0))), num(test_value(seeds.get(1))),
            num(mean_ppl(seeds)), num(seed_range(seeds)), num(r, 3), "; ".join(notes)]


def sweep_section(plan: dict, results: Results) -> List[str]:
    """Table 1: each model at its own best rate after the fixed 2000-step budget."""
    out = ["## 1. Fixed budget (cpu-small, 2000 steps): the learning-rate sweep", ""]
    names = sweep_models(plan)
    if not any(results["sweep"][n] for n in names):
        return out + ["no runs yet", ""]
    bests = best_rates(plan, {n: results["sweep"][n] for n in names})
    done = settled(plan, results, [])
    ref = transformer_reference(plan, results["sweep"], bests)
    if ref is not None:
        out += [sweep_reference_line(plan, results, bests, done, ref), ""]
    head = ["model", "rates tried (best in bold)", "best rate", "val s0", "val s1", "test s0", "test s1",
            "mean val", "seed range", "ratio to Transformer", "note"]
    out += table(head, [sweep_row(plan, results, n, ref, bests, done) for n in names])
    out += ["", still_to_come(plan, results, "sweep")]
    return out + failures(plan, results) + [""]


def sweep_reference_line(plan: dict, results: Results, bests: Dict[str, float], settled: Dict[str, float],
                         ref: str) -> str:
    """What the sweep's ratios divide by: the better Transformer, each Transformer at its own best rate."""
    names = [n for n in plan["stages"]["plateau"]["transformers"] if n in bests]
    each = "; ".join(f"{n} {num(mean_ppl(results['sweep'][n][bests[n]]))} at {rate_name(bests[n])}"
                     for n in names)
    text = (f"Ratio: the model's mean best-val ppl at its own best rate over the better Transformer's at its "
            f"own best rate, **{ref}** at {rate_name(bests[ref])} (Transformers: {each}).")
    if not all(n in settled for n in plan["stages"]["plateau"]["transformers"]):
        text += " The Transformers' sweeps are not both settled: the reference may change."
    return text


def failure_reason(plan: dict, runs: Runs, res: dict) -> str:
    """Why a run counts as failed: its recorded reason, a non-finite value, or the 2x rule."""
    if res.get("status") == "failed":
        return str(res.get("reason") or f"ended without a summary (exit {res.get('returncode')})")
    if not math.isfinite(ppl(res)):
        return "best val ppl not finite"
    floor = min(ppl(r) for s in runs.values() for r in s.values() if math.isfinite(ppl(r)))
    if ppl(res) > plan["fail_factor"] * floor:
        return f"val ppl {ppl(res):.2f} > {plan['fail_factor']:g} x the model's best {floor:.2f}"
    return ""


def failures(plan: dict, results: Results) -> List[str]:
    """The failed runs of every stage, each with its reason (a rate fails when any of its seeds does)."""
    lines = []
    for stage in STAGES:
        for name in plan["models"]:
            runs = results[stage][name]
            for lr in sorted(runs):
                for seed in sorted(runs[lr]):
                    why = failure_reason(plan, runs, runs[lr][seed])
                    if why:
                        lines.append(f"- {stage} {name} {rate_name(lr)} seed {seed}: {why}")
    return (["", "Failed runs (a rate at which any seed fails is a failure of that model at that rate):"]
            + lines) if lines else []


# ------------------------------------------------------------------------------------------ 2. halves
def mixer_layout(plan: dict, name: str) -> Tuple[str, str]:
    """(norm placement, residual around the mixer) of a Grassmann model from its overrides."""
    o = plan["models"][name]["overrides"]
    norm, mix = str(o.get("norm", "post")), str(o.get("mix_residual", "auto"))
    residual = mix == "on" or (mix == "auto" and norm == "pre")
    return f"{norm}-LN", "yes" if residual else "no"


def halves_section(plan: dict, results: Results) -> List[str]:
    """Table 2: the pre-LN switch taken apart, each half beside grassmann-plus ('both') at the same rate."""
    out = ["## 2. Halves of grassmann-plus's pre-LN switch (cpu-small, 2000 steps)", ""]
    names = plan["stages"]["halves"]["models"]
    if not any(results["halves"][n] for n in names):
        return out + ["no runs yet", ""]
    best = best_rates(plan, {n: results["sweep"][n] for n in sweep_models(plan)})
    base = plan["models"][names[0]]["base"]
    rows = [halves_row(plan, results, name, lr, seed, best)
            for name in names for lr, seeds in sorted(results["halves"][name].items())
            for seed in sorted(seeds)]
    for lr in sorted({lr for n in names for lr in results["halves"][n]}):
        for seed, res in sorted(results["sweep"][base].get(lr, {}).items()):
            rows.append([f"{base} (both)", *mixer_layout(plan, base), rate_name(lr), str(seed),
                         val_cell(res), num(test_value(res)), "", "", "its sweep run"])
    head = ["model", "norm", "residual around mixer", "rate", "seed", "val ppl", "test ppl",
            "val - both", "test - both", "note"]
    out += [f"Each half at {base}'s best sweep rate, beside 'both' ({base}'s own sweep run at that rate and "
            f"seed). A difference smaller than the seed range of either is within seed noise.", ""]
    return out + table(head, rows) + ["", still_to_come(plan, results, "halves"), ""]


def halves_row(plan: dict, results: Results, name: str, lr: float, seed: int,
               best: Dict[str, float]) -> List[str]:
    """One half: its perplexities, the differences to 'both' at the same rate and seed, and the notes."""
    base = plan["models"][name]["base"]
    res, base_seeds = results["halves"][name][lr][seed], results["sweep"][base].get(lr, {})
    both = base_seeds.get(seed)
    dv = ppl(res) - ppl(both) if both and not failed(res) and not failed(both) else None
    t, t_both = test_value(res), test_value(both)
    dt = t - t_both if t is not None and t_both is not None else None
    notes = [] if best.get(base) == lr else \
        [f"not at {base}'s best rate ({rate_name(best[base]) if base in best else 'none'})"]
    ranges = [r for r in (seed_range(results["halves"][name][lr]), seed_range(base_seeds)) if r is not None]
    if len(results["halves"][name][lr]) < 2:
        notes.append("1 seed")
    if dv is not None and ranges and abs(dv) < max(ranges):
        notes.append("within seed noise")
    return [name, *mixer_layout(plan, name), rate_name(lr), str(seed), val_cell(res), num(t),
            num(dv, sign=True), num(dt, sign=True), "; ".join(notes)]


# ----------------------------------------------------------------------------------------- 3. plateau
def same_seed(seeds: Seeds, seed: int) -> Tuple[Optional[float], str]:
    """The reference's value for ``seed`` (same seed where possible, else its mean, labelled)."""
    if seed in seeds and not failed(seeds[seed]):
        return ppl(seeds[seed]), ""
    ok = [ppl(r) for r in seeds.values() if not failed(r)]
    return (mean(ok), "vs the Transformer's mean") if ok else (None, "")


def plateau_cells(res: dict) -> List[str]:
    """Best step, steps run, and whether the plateau criterion holds."""
    steps, early = steps_run(res), res.get("early_stop_step")
    run = "" if steps is None else f"{steps}" + (" (early stop)" if isinstance(early, int) else "")
    flag = is_plateau(res)
    best = res.get("best_step")
    return [str(best) if isinstance(best, int) else "", run, "" if flag is None else "yes" if flag else "no"]


def plateau_section(plan: dict, results: Results) -> List[str]:
    """Table 3: each model trained to a plateau at its own best sweep rate, beside its fixed-budget ratio."""
    out = ["## 3. Plateau (cpu-small, early stopping, up to the plan's max_steps)", ""]
    names = [n for n in plan["models"] if results["plateau"][n]]
    if not names:
        return out + ["no runs yet", ""]
    sweep_bests = best_rates(plan, {n: results["sweep"][n] for n in sweep_models(plan)})
    sweep_ref = transformer_reference(plan, results["sweep"], sweep_bests)
    plateau_ts = {n: sweep_bests[n] for n in plan["stages"]["plateau"]["transformers"]
                  if n in sweep_bests and sweep_bests[n] in results["plateau"][n]}
    ref = transformer_reference(plan, results["plateau"], plateau_ts, prefer=sweep_ref)
    rows = []
    for name in names:
        for lr in sorted(results["plateau"][name]):
            for seed, res in sorted(results["plateau"][name][lr].items()):
                rows.append(plateau_row(results, name, lr, seed, res, sweep_bests, ref, sweep_ref))
    head = ["model", "seed", "rate", "best step", "steps run", "plateau", "best val ppl", "test ppl",
            "ratio to Transformer (plateau)", "ratio to Transformer (2000 steps, same seed)", "note"]
    out += [f"Each model at its own best sweep rate. Plateau: the best step lies before the last "
            f"{PLATEAU_TAIL:.0%} of the steps run. Ratios: best-val ppl over the Transformer's "
            f"({ref or 'none yet'} at its own best rate; same seed where possible).", ""]
    return out + table(head, rows) + ["", still_to_come(plan, results, "plateau"), ""]


def plateau_row(results: Results, name: str, lr: float, seed: int, res: dict,
                sweep_bests: Dict[str, float], ref: Optional[str], sweep_ref: Optional[str]) -> List[str]:
    """One plateau run: its steps, the criterion, its perplexities and both ratios."""
    notes, r_plateau, r_fixed = [], None, None
    at_best = sweep_bests.get(name) == lr
    if not at_best:
        notes.append(f"not at the sweep's best rate ({rate_name(sweep_bests[name])})"
                     if name in sweep_bests else "no best sweep rate")
    elif ref is not None and not failed(res):
        value, label = same_seed(results["plateau"][ref][sweep_bests[ref]], seed)
        r_plateau = ratio(ppl(res), value)
        notes += [label] if label else []
    fixed = results["sweep"][name].get(sweep_bests.get(name), {})
    if at_best and sweep_ref is not None and seed in fixed and not failed(fixed[seed]):
        value, label = same_seed(results["sweep"][sweep_ref][sweep_bests[sweep_ref]], seed)
        r_fixed = ratio(ppl(fixed[seed]), value)
        notes += [f"{label} (2000 steps)"] if label else []
    return [name, str(seed), rate_name(lr), *plateau_cells(res), val_cell(res), num(test_value(res)),
            num(r_plateau, 3), num(r_fixed, 3), "; ".join(notes)]


# ------------------------------------------------------------------------------------------ 4. medium
RETUNED_HEADINGS = {"medium": "## 4. Medium (cpu-medium: d 256, 6 layers, 800 steps)",
                    "small-800": "## 5. Small at 800 steps (cpu-small, re-tuned at the medium stage's budget)"}


def medium_section(plan: dict, results: Results) -> List[str]:
    """Table 4: cpu-medium, every rate run, each model's best, and the ratio at the best rates."""
    return retuned_section(plan, results, "medium")


def small_800_section(plan: dict, results: Results) -> List[str]:
    """Table 5: cpu-small at 800 steps, re-tuned like cpu-medium (the size comparison's small point)."""
    return retuned_section(plan, results, "small-800")


def retuned_section(plan: dict, results: Results, stage: str) -> List[str]:
    """A re-tuned stage's table: every rate run, each model's best, and the ratio at the best rates."""
    out = [RETUNED_HEADINGS[stage], ""]
    runs = {n: results[stage][n] for n in plan["models"] if results[stage][n]}
    if not runs:
        return out + ["no runs yet", ""]
    bests = best_rates(plan, runs)
    sweep_bests = best_rates(plan, {n: results["sweep"][n] for n in sweep_models(plan)})
    ref = transformer_reference(plan, runs, bests,
                                prefer=transformer_reference(plan, results["sweep"], sweep_bests))
    done = settled(plan, results, [])
    rows = []
    for name, model_runs in runs.items():
        status = verdicts(model_runs, plan["fail_factor"])[0]
        for lr in sorted(model_runs):
            seeds = model_runs[lr]
            r = None
            notes = [] if name in done or name not in sweep_bests else ["sweep not settled"]
            if lr == bests.get(name) and ref is not None:
                r = ratio(mean_ppl(seeds), mean_ppl(runs[ref][bests[ref]]))
                notes += ["reference"] if name == ref else \
                    [f"vs {ref} at {rate_name(bests[ref])}", *noise_notes(seeds, runs[ref][bests[ref]])]
            if lr == bests.get(name) and name in sweep_bests and sweep_bests[name] not in model_runs:
                notes.append(f"its sweep best rate {rate_name(sweep_bests[name])} not run here yet")
            val = "failed" if status[lr] == "failed" else num(mean_ppl(seeds))
            rows.append([name, rate_name(lr), ",".join(map(str, sorted(seeds))), val,
                         num(mean_test(seeds)), "yes" if lr == bests.get(name) else "", num(r, 3),
                         "; ".join(notes)])
    label = "medium" if stage == "medium" else "800-step"
    head = ["model", "rate", "seeds", "val ppl", "test ppl", f"best {label} rate", "ratio to Transformer",
            "note"]
    out += [f"Ratio only on each model's best {label} rate, over the Transformer's ({ref or 'none'}) at its "
            f"own best {label} rate. While runs are still to come a best rate may move.", ""]
    return out + table(head, rows) + ["", still_to_come(plan, results, stage), ""]


# ------------------------------------------------------------------------------------------- document
def render(plan: dict, results: Results) -> str:
    """The whole RESULTS.md: a header and the five tables."""
    head = ["# The fair comparison (issue 22): results", "",
            "Generated by `python scripts/fair_tables.py` from `plan.json` and the run folders (the rule is "
            "in `README.md`); do not edit by hand. While the queue runs every table is provisional.", ""]
    body = sweep_section(plan, results) + halves_section(plan, results) + plateau_section(plan, results) \
        + medium_section(plan, results)
    if "small-800" in plan["stages"]:
        body += small_800_section(plan, results)
    return "\n".join(head + body).rstrip("\n") + "\n"


