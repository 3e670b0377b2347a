"""Render the tables of issue 22's closing note from the fair comparison's results files.

    python scripts/fair_tables.py            # write results/wikitext2/fair/RESULTS.md and print it
    python scripts/fair_tables.py --print    # print only

Every number comes from a run's ``summary.json`` (or a recorded failure), gathered by
``scripts/fair_queue.py``'s ``collect``; the decision rule is the one stated in
``results/wikitext2/fair/README.md`` and coded in ``fair_queue.verdicts``:

* a model's best rate is its non-failed rate with the lowest mean best validation perplexity over its seeds;
* every ratio is between two models, each at its own best rate (the rates are in the tables);
* with two seeds a difference is *provisional*; a difference smaller than the larger of the two models'
  seed ranges is *within seed noise*;
* a plateau run counts as a plateau when its best step lies before the last 15% of its steps.

``render(plan, results)`` is a pure function of the plan and the results (the tests feed it synthetic
ones); the output holds no date or commit, so the same files always give the same text.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fair_queue as fq  # noqa: E402  (the plan, the results and the decision rule)

OUT_NAME = "RESULTS.md"
PLATEAU_TAIL = 0.15  # a plateau: the best step lies before the last 15% of the run's steps
Seeds = Dict[int, dict]  # seed -> summary (or failure record)
Runs = Dict[float, Seeds]  # rate -> seeds


# ------------------------------------------------------------------------------------------- numbers
def failed(res: dict) -> bool:
    """A recorded failure, or a run whose best validation perplexity is not a finite number."""
    return res.get("status") == "failed" or not math.isfinite(fq.ppl(res))


def val_cell(res: Optional[dict]) -> str:
    """The best validation perplexity, 'failed', or blank when there is no run."""
    if res is None:
        return ""
    return "failed" if failed(res) else f"{fq.ppl(res):.2f}"


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
    vals = [fq.ppl(r) for r in seeds.values()]
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
        best = fq.verdicts(runs, plan["fail_factor"])[1] if runs else None
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
    return min(names, key=lambda n: fq.mean_ppl(runs_by_model[n][bests[n]])) if names else None


def noise_notes(a: Seeds, b: Seeds) -> List[str]:
    """The README's labels for the difference between two models' means (each at its own best rate)."""
    notes = []
    diff = abs(fq.mean_ppl(a) - fq.mean_ppl(b))
    ranges = [r for r in (seed_range(a), seed_range(b)) if r is not None]
    if min(len(a), len(b)) < 2:
        notes.append("1 seed")
    elif not (ranges and diff < max(ranges)):
        notes.append("provisional (2 seeds)")
    if ranges and diff < max(ranges):
        notes.append("within seed noise")
    return notes


def still_to_come(plan: dict, results: fq.Results, stage: str) -> str:
    """The runs of a stage that fair_queue would start now (or that are running now), in one line."""
    todo = [f"{m} {fq.rate_name(lr)} s{s}" for st, m, lr, s in fq.next_runs(plan, results, []) if st == stage]
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
    status, best = fq.verdicts(runs, plan["fail_factor"])
    cells = []
    for lr in sorted(runs):
        name = f"**{fq.rate_name(lr)}**" if lr == best else fq.rate_name(lr)
        cells.append(name + (" failed" if status[lr] == "failed" else ""))
    return ", ".join(cells)


def sweep_row(plan: dict, results: fq.Results, name: str, ref: Optional[str], bests: Dict[str, float],
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
        r = ratio(fq.mean_ppl(seeds), fq.mean_ppl(ref_seeds))
        notes += ["reference"] if name == ref else noise_notes(seeds, ref_seeds)
    return [name, rates_tried(plan, runs), fq.rate_name(bests[name]),
            val_cell(seeds.get(0)), val_cell(seeds.get(1)),
            num(test_value(seeds.get(0))), num(test_value(seeds.get(1))),
            num(fq.mean_ppl(seeds)), num(seed_range(seeds)), num(r, 3), "; ".join(notes)]


def sweep_section(plan: dict, results: fq.Results) -> List[str]:
    """Table 1: each model at its own best rate after the fixed 2000-step budget."""
    out = ["## 1. Fixed budget (cpu-small, 2000 steps): the learning-rate sweep", ""]
    names = sweep_models(plan)
    if not any(results["sweep"][n] for n in names):
        return out + ["no runs yet", ""]
    bests = best_rates(plan, {n: results["sweep"][n] for n in names})
    settled = fq.settled(plan, results, [])
    ref = transformer_reference(plan, results["sweep"], bests)
    if ref is not None:
        out += [sweep_reference_line(plan, results, bests, settled, ref), ""]
    head = ["model", "rates tried (best in bold)", "best rate", "val s0", "val s1", "test s0", "test s1",
            "mean val", "seed range", "ratio to Transformer", "note"]
    out += table(head, [sweep_row(plan, results, n, ref, bests, settled) for n in names])
    out += ["", still_to_come(plan, results, "sweep")]
    return out + failures(plan, results) + [""]


def sweep_reference_line(plan: dict, results: fq.Results, bests: Dict[str, float], settled: Dict[str, float],
                         ref: str) -> str:
    """What the sweep's ratios divide by: the better Transformer, each Transformer at its own best rate."""
    names = [n for n in plan["stages"]["plateau"]["transformers"] if n in bests]
    each = "; ".join(f"{n} {num(fq.mean_ppl(results['sweep'][n][bests[n]]))} at {fq.rate_name(bests[n])}"
                     for n in names)
    text = (f"Ratio: the model's mean best-val ppl at its own best rate over the better Transformer's at its "
            f"own best rate, **{ref}** at {fq.rate_name(bests[ref])} (Transformers: {each}).")
    if not all(n in settled for n in plan["stages"]["plateau"]["transformers"]):
        text += " The Transformers' sweeps are not both settled: the reference may change."
    return text


def failure_reason(plan: dict, runs: Runs, res: dict) -> str:
    """Why a run counts as failed: its recorded reason, a non-finite value, or the 2x rule."""
    if res.get("status") == "failed":
        return str(res.get("reason") or f"ended without a summary (exit {res.get('returncode')})")
    if not math.isfinite(fq.ppl(res)):
        return "best val ppl not finite"
    floor = min(fq.ppl(r) for s in runs.values() for r in s.values() if math.isfinite(fq.ppl(r)))
    if fq.ppl(res) > plan["fail_factor"] * floor:
        return f"val ppl {fq.ppl(res):.2f} > {plan['fail_factor']:g} x the model's best {floor:.2f}"
    return ""


def failures(plan: dict, results: fq.Results) -> List[str]:
    """The failed runs of every stage, each with its reason (a rate fails when any of its seeds does)."""
    lines = []
    for stage in fq.STAGES:
        for name in plan["models"]:
            runs = results[stage][name]
            for lr in sorted(runs):
                for seed in sorted(runs[lr]):
                    why = failure_reason(plan, runs, runs[lr][seed])
                    if why:
                        lines.append(f"- {stage} {name} {fq.rate_name(lr)} seed {seed}: {why}")
    return (["", "Failed runs (a rate at which any seed fails is a failure of that model at that rate):"]
            + lines) if lines else []


# ------------------------------------------------------------------------------------------ 2. halves
def mixer_layout(plan: dict, name: str) -> Tuple[str, str]:
    """(norm placement, residual around the mixer) of a Grassmann model from its overrides."""
    o = plan["models"][name]["overrides"]
    norm, mix = str(o.get("norm", "post")), str(o.get("mix_residual", "auto"))
    residual = mix == "on" or (mix == "auto" and norm == "pre")
    return f"{norm}-LN", "yes" if residual else "no"


def halves_section(plan: dict, results: fq.Results) -> List[str]:
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
            rows.append([f"{base} (both)", *mixer_layout(plan, base), fq.rate_name(lr), str(seed),
                         val_cell(res), num(test_value(res)), "", "", "its sweep run"])
    head = ["model", "norm", "residual around mixer", "rate", "seed", "val ppl", "test ppl",
            "val - both", "test - both", "note"]
    out += [f"Each half at {base}'s best sweep rate, beside 'both' ({base}'s own sweep run at that rate and "
            f"seed). A difference smaller than the seed range of either is within seed noise.", ""]
    return out + table(head, rows) + ["", still_to_come(plan, results, "halves"), ""]


def halves_row(plan: dict, results: fq.Results, name: str, lr: float, seed: int,
               best: Dict[str, float]) -> List[str]:
    """One half: its perplexities, the differences to 'both' at the same rate and seed, and the notes."""
    base = plan["models"][name]["base"]
    res, base_seeds = results["halves"][name][lr][seed], results["sweep"][base].get(lr, {})
    both = base_seeds.get(seed)
    dv = fq.ppl(res) - fq.ppl(both) if both and not failed(res) and not failed(both) else None
    t, t_both = test_value(res), test_value(both)
    dt = t - t_both if t is not None and t_both is not None else None
    notes = [] if best.get(base) == lr else \
        [f"not at {base}'s best rate ({fq.rate_name(best[base]) if base in best else 'none'})"]
    ranges = [r for r in (seed_range(results["halves"][name][lr]), seed_range(base_seeds)) if r is not None]
    if len(results["halves"][name][lr]) < 2:
        notes.append("1 seed")
    if dv is not None and ranges and abs(dv) < max(ranges):
        notes.append("within seed noise")
    return [name, *mixer_layout(plan, name), fq.rate_name(lr), str(seed), val_cell(res), num(t),
            num(dv, sign=True), num(dt, sign=True), "; ".join(notes)]


# ----------------------------------------------------------------------------------------- 3. plateau
def same_seed(seeds: Seeds, seed: int) -> Tuple[Optional[float], str]:
    """The reference's value for ``seed`` (same seed where possible, else its mean, labelled)."""
    if seed in seeds and not failed(seeds[seed]):
        return fq.ppl(seeds[seed]), ""
    ok = [fq.ppl(r) for r in seeds.values() if not failed(r)]
    return (mean(ok), "vs the Transformer's mean") if ok else (None, "")


def plateau_cells(res: dict) -> List[str]:
    """Best step, steps run, and whether the plateau criterion holds."""
    steps, early = steps_run(res), res.get("early_stop_step")
    run = "" if steps is None else f"{steps}" + (" (early stop)" if isinstance(early, int) else "")
    flag = is_plateau(res)
    best = res.get("best_step")
    return [str(best) if isinstance(best, int) else "", run, "" if flag is None else "yes" if flag else "no"]


def plateau_section(plan: dict, results: fq.Results) -> List[str]:
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


def plateau_row(results: fq.Results, name: str, lr: float, seed: int, res: dict,
                sweep_bests: Dict[str, float], ref: Optional[str], sweep_ref: Optional[str]) -> List[str]:
    """One plateau run: its steps, the criterion, its perplexities and both ratios."""
    notes, r_plateau, r_fixed = [], None, None
    at_best = sweep_bests.get(name) == lr
    if not at_best:
        notes.append(f"not at the sweep's best rate ({fq.rate_name(sweep_bests[name])})"
                     if name in sweep_bests else "no best sweep rate")
    elif ref is not None and not failed(res):
        value, label = same_seed(results["plateau"][ref][sweep_bests[ref]], seed)
        r_plateau = ratio(fq.ppl(res), value)
        notes += [label] if label else []
    fixed = results["sweep"][name].get(sweep_bests.get(name), {})
    if at_best and sweep_ref is not None and seed in fixed and not failed(fixed[seed]):
        value, label = same_seed(results["sweep"][sweep_ref][sweep_bests[sweep_ref]], seed)
        r_fixed = ratio(fq.ppl(fixed[seed]), value)
        notes += [f"{label} (2000 steps)"] if label else []
    return [name, str(seed), fq.rate_name(lr), *plateau_cells(res), val_cell(res), num(test_value(res)),
            num(r_plateau, 3), num(r_fixed, 3), "; ".join(notes)]


# ------------------------------------------------------------------------------------------ 4. medium
def medium_section(plan: dict, results: fq.Results) -> List[str]:
    """Table 4: cpu-medium, every rate run, each model's best, and the ratio at the best rates."""
    out = ["## 4. Medium (cpu-medium: d 256, 6 layers, 800 steps)", ""]
    runs = {n: results["medium"][n] for n in plan["models"] if results["medium"][n]}
    if not runs:
        return out + ["no runs yet", ""]
    bests = best_rates(plan, runs)
    sweep_bests = best_rates(plan, {n: results["sweep"][n] for n in sweep_models(plan)})
    ref = transformer_reference(plan, runs, bests,
                                prefer=transformer_reference(plan, results["sweep"], sweep_bests))
    settled = fq.settled(plan, results, [])
    rows = []
    for name, model_runs in runs.items():
        status = fq.verdicts(model_runs, plan["fail_factor"])[0]
        for lr in sorted(model_runs):
            seeds = model_runs[lr]
            r = None
            notes = [] if name in settled or name not in sweep_bests else ["sweep not settled"]
            if lr == bests.get(name) and ref is not None:
                r = ratio(fq.mean_ppl(seeds), fq.mean_ppl(runs[ref][bests[ref]]))
                notes += ["reference"] if name == ref else \
                    [f"vs {ref} at {fq.rate_name(bests[ref])}", *noise_notes(seeds, runs[ref][bests[ref]])]
            if lr == bests.get(name) and name in sweep_bests and sweep_bests[name] not in model_runs:
                notes.append(f"its sweep best rate {fq.rate_name(sweep_bests[name])} not run here yet")
            val = "failed" if status[lr] == "failed" else num(fq.mean_ppl(seeds))
            rows.append([name, fq.rate_name(lr), ",".join(map(str, sorted(seeds))), val,
                         num(mean_test(seeds)), "yes" if lr == bests.get(name) else "", num(r, 3),
                         "; ".join(notes)])
    head = ["model", "rate", "seeds", "val ppl", "test ppl", "best medium rate", "ratio to Transformer",
            "note"]
    out += [f"Ratio only on each model's best medium rate, over the Transformer's ({ref or 'none'}) at its "
            "own best medium rate. While runs are still to come a best rate may move.", ""]
    return out + table(head, rows) + ["", still_to_come(plan, results, "medium"), ""]


# ------------------------------------------------------------------------------------------- document
def render(plan: dict, results: fq.Results) -> str:
    """The whole RESULTS.md: a header and the four tables."""
    head = ["# The fair comparison (issue 22): results", "",
            "Generated by `python scripts/fair_tables.py` from `plan.json` and the run folders (the rule is "
            "in `README.md`); do not edit by hand. While the queue runs every table is provisional.", ""]
    body = sweep_section(plan, results) + halves_section(plan, results) + plateau_section(plan, results) \
        + medium_section(plan, results)
    return "\n".join(head + body).rstrip("\n") + "\n"


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--print", dest="only_print", action="store_true", help="print only; write no file")
    a = ap.parse_args(argv)
    plan = fq.load_plan()
    text = render(plan, fq.collect(plan))
    if not a.only_print:
        (fq.FAIR / OUT_NAME).write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
