"""Render the README's result tables from the committed results files, and verify those files.

    python scripts/report_tables.py results/wikitext2          # the WikiText-2 section (markdown)
    python scripts/report_tables.py results/wikitext2 --check  # only verify every comparison
    python scripts/report_tables.py results/bench              # the benchmark tables
    python scripts/report_tables.py results/snli               # the SNLI table
    python scripts/report_tables.py results/wikitext2 --size-figure results/wikitext2/sizes.png
                                                               # also the figure of perplexity at both sizes
    python scripts/report_tables.py results/* --readme README.md results/snli/README.md
                                                               # exit 1 unless the README files show them

The folder's name says what it holds (``wikitext2``, ``bench`` or ``snli``). Every number comes from a
results file or from ``data/published.csv``; one writer (`gflow_book.results.Table`) makes
every table. ``--readme`` checks each rendered table row by row against the given files, so a table
edited by hand, or results changed without the README, is caught.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from gflow_lite.bench.registry import BENCHMARKS
from gflow_lite.published import published

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))  # the book's support package
from gflow_book import results as R  # noqa: E402  (reads and verifies results/, shared with chapter 5)

# ------------------------------------------------------------------------------------------- WikiText-2


def _provenance(c: R.Comparison) -> str:
    s = c.finished_runs[0].summary
    hw = s["hardware"]
    commits = sorted({r.summary["git_commit"] for r in c.finished_runs})
    wall = c.data.get("wall_time_s")
    return (f"commit {', '.join(commits)}; {hw.get('device')} ({hw.get('cpu_count')} cores, "
            f"{hw.get('torch_threads')} thread(s) per run), torch {hw.get('torch')}"
            + (f"; {wall / 3600:.1f} h for the whole comparison" if wall else ""))


def wikitext2_report(root: Path) -> str:
    """The README section: our comparison beside the paper and the reproductions, and the ablations.

    ``root`` is the results root (the folder holding ``wikitext2/``). Raises `ResultsError` if the main
    comparison is missing or inconsistent; missing or running ablations are listed as such.
    """
    main_dir = R.wikitext2_dir(root) / R.MAIN
    c = R.check(R.load_comparison(main_dir, R.MAIN), str(main_dir))
    parts = [f"### WikiText-2: {c.label}", ""]
    if not c.complete:
        parts += [f"**Partial:** `compare.json` not written yet; finished: "
                  f"{', '.join(r.name for r in c.finished_runs) or 'none'}; still running: "
                  f"{', '.join(R._progress_text(r) for r in c.unfinished_runs) or 'none'}.", ""]
    if c.finished_runs:
        parts += [f"Preset `{c.data.get('preset')}`: {R._describe_run_setting(c.finished_runs[0].summary)}; "
                  f"test perplexity at the best-validation checkpoint. Produced by "
                  f"`scripts/cpu_experiments.sh` ({_provenance(c)}).", "", R.summary_table(c).markdown(), ""]
    parts += ["**Beside the paper and the public reproductions.** Perplexities compare only within a row "
              "(tokenizer, data version, model size and budget differ); compare the Grassmann / Transformer "
              "ratios. Sources: `data/published.csv` (paper notes §3).", "", R.context_table(c).markdown(), ""]
    status = R.ablation_status(root)
    rows = R.ablation_rows(root, c)
    parts += ["**Ablations and variants** (1 seed, the baseline's budget; ratios of best validation "
              "perplexity, below 1 is better; the last-but-one column compares with the Transformer given "
              "the same non-mixer changes, e.g. pre-LN):", ""]
    parts += [R.ablation_table(rows).markdown(), ""] if rows else ["(no ablation finished yet)", ""]
    pending = [f"- `{name}`: {s}" for name, s in status.items() if s != "finished"]
    if pending:
        parts += ["Not finished:", "", *pending, ""]
    if (R.wikitext2_dir(root) / "controls").is_dir():
        parts += [geometry_report(root), ""]
    if (R.wikitext2_dir(root) / "cpu-medium").is_dir():
        parts += [sizes_report(root), "", paper_estimate_report(root), ""]
    return "\n".join(parts)


#: grassmann-plus's controls (label, folder without the lr suffix, model); run at the preset's lr and,
#: with ``-lr<best>`` appended, at grassmann-plus's best lr of the sweep
PLUS_CONTROLS = (
    ("local attention, w = 4", "controls/plus-local-attention-w4", "transformer"),
    ("pair [z_t; z_t-Δ] (no interaction), r = 100", "controls/plus-concat", "grassmann"),
    ("pair z_t ⊗ z_t-Δ (bilinear), r = 17", "controls/plus-outer", "grassmann"),
)
#: the paper's layer (post-LN, six offsets, r = 16) and its controls, seed 0, the preset's lr
PAPER_CONTROLS = (
    ("the paper's layer (Plücker pairs), r = 16", "cpu-small", "grassmann"),
    ("local attention, w = 16", "controls/paper-local-attention-w16", "transformer"),
    ("pair [z_t; z_t-Δ] (no interaction), r = 46", "controls/paper-concat", "grassmann"),
    ("pair z_t ⊗ z_t-Δ (bilinear), r = 11", "controls/paper-outer", "grassmann"),
    ("Transformer, full attention", "cpu-small", "transformer"),
)


def _stats(c: R.Comparison, model: str, seeds: Optional[Sequence[int]]) -> Tuple[List[float], List[float]]:
    runs = [r for r in c.finished_runs if r.model == model and (seeds is None or r.seed in seeds)]
    return [r.summary["best_val_ppl"] for r in runs], [r.summary["test_ppl"] for r in runs]


def controls_table(root: Path, spec: Sequence[Tuple[str, str, str]], title: str,
                   seeds: Optional[Sequence[int]] = None) -> R.Table:
    """Each model of ``spec`` (the first row is the base the others are read against): parameters, seeds,
    best validation perplexity per seed, test perplexity, both as ratios to the base's means."""
    rows, base = [], None
    for label, folder, model in spec:
        c = R.complete_comparison(folder, root)
        val, test = _stats(c, model, seeds) if c else ([], [])
        if not val:
            rows.append([label, "not finished", "", "", "", "", ""])
            continue
        mean_val, mean_test = statistics.mean(val), statistics.mean(test)
        base = base or (mean_val, mean_test)
        used = sorted(r.seed for r in c.finished_runs if r.model == model and (seeds is None or r.seed in seeds))
        rows.append([label, f"{c.data['models'][model]['params']:,}", ", ".join(map(str, used)),
                     f"{mean_val:.1f} ({' / '.join(f'{v:.1f}' for v in val)})", f"{mean_test:.1f}",
                     f"{mean_val / base[0]:.3f}", f"{mean_test / base[1]:.3f}"])
    return R.Table([title, "params", "seeds", "best val PPL (per seed)", "test PPL", "val / first row",
                    "test / first row"], rows)


def param_gaps(root: Path, spec: Sequence[Tuple[str, str, str]]) -> Dict[str, float]:
    """``{label: params / the first row's params - 1}`` for the finished models of ``spec``."""
    params = {}
    for label, folder, model in spec:
        c = R.complete_comparison(folder, root)
        if c is not None and model in c.data.get("models", {}):
            params[label] = c.data["models"][model]["params"]
    base = params.get(spec[0][0])
    return {label: n / base - 1 for label, n in params.items() if base and label != spec[0][0]}


def _within(gaps: Mapping[str, float], labels: Sequence[str]) -> str:
    """The largest parameter gap among ``labels`` (those finished), as "x.y%"."""
    found = [abs(gaps[label]) for label in labels if label in gaps]
    return f"{max(found):.1%}" if found else "not yet known"


def geometry_report(root: Path) -> str:
    """Tables of "Is it the geometry?": the learning-rate sweep, both models at their best rate, and the
    controls of grassmann-plus (at its best rate and at the preset's) and of the paper's layer."""
    found, failed = R.sweep_runs(root), R.stopped_runs(root)
    val = {key: v for key, (_, v) in found.items()}
    sweep_rows = []
    for lr in sorted({lr for _, lr in found}):
        t, g = val.get(("transformer", lr)), val.get(("grassmann", lr))
        cells, trained = [], True
        for v, model in ((t, "transformer"), (g, "grassmann")):
            lowest = min(x for (m, _), x in val.items() if m == model)
            cell = "not run" if v is None else f"{v:.1f}" + (" (did not train)" if v > 3 * lowest else "")
            trained = trained and v is not None and v <= 3 * lowest
            if (model, lr) in failed:
                cell += f" (seed 0); {', '.join(failed[model, lr])}: stopped, did not train"
            cells.append(cell)
        sweep_rows.append([f"{lr:g}", *cells, f"{g / t:.3f}" if trained else "–"])
    sweep_table = R.Table(["peak lr (min_lr = lr / 10)", "Transformer best val PPL", "grassmann-plus best val PPL",
                           "grassmann-plus / Transformer"], sweep_rows)
    best = R.best_lrs(root, found)
    parts = ["### Is it the geometry? A tuned baseline, and controls with the same reach (cpu-small)", "",
             "**The learning-rate sweep** (seed 0; `results/wikitext2/lr-sweep/`):", "", sweep_table.markdown(), ""]
    if len(best) == 2:
        at_best = controls_table(root, [("grassmann-plus", best["grassmann"][1], "grassmann"),
                                        ("Transformer", best["transformer"][1], "transformer")],
                                 f"at each one's best reliable lr (grassmann-plus {best['grassmann'][0]:g}, "
                                 f"Transformer {best['transformer'][0]:g})")
        parts += ["**Both models at their best reliable learning rate**, every seed:", "", at_best.markdown(), ""]
        tuned = [("grassmann-plus (Plücker pairs)", best["grassmann"][1], "grassmann")] + [
            (f"{label}, lr {best[model][0]:g}", f"{folder}-lr{R.lr_tag(best[model][0])}", model)
            for label, folder, model in PLUS_CONTROLS]
        gaps = param_gaps(root, tuned)
        parts += [f"**Controls of grassmann-plus, tuned**: the two pair features at grassmann-plus's best rate "
                  f"({best['grassmann'][0]:g}), local attention (a Transformer block) at the Transformer's "
                  f"({best['transformer'][0]:g}); same data, tokenizer, budget and schedule; parameters within "
                  f"{_within(gaps, [label for label, _, _ in tuned[1:]])} of grassmann-plus "
                  "(`results/wikitext2/controls/`):",
                  "", controls_table(root, tuned, "model (cpu-small, tuned lr)").markdown(), ""]
    paper_gaps = param_gaps(root, PAPER_CONTROLS)
    preset = [("grassmann-plus (Plücker pairs)", R.SWEEP["grassmann"][0], "grassmann"), *PLUS_CONTROLS,
              ("Transformer, full attention", R.SWEEP["transformer"][0], "transformer")]
    parts += [f"**The same controls at the preset's learning rate** ({R.PRESET_LR:g}):", "",
              controls_table(root, preset, f"model (cpu-small, peak lr {R.PRESET_LR:g})").markdown(), "",
              f"**Controls of the paper's layer** (seed 0, the preset's learning rate; local attention and the "
              f"Transformer have {_within(paper_gaps, [c[0] for c in PAPER_CONTROLS if c[2] == 'transformer'])} more "
              f"parameters than the paper's layer, the two pair features are matched within "
              f"{_within(paper_gaps, [c[0] for c in PAPER_CONTROLS[1:] if c[2] == 'grassmann'])}):", "",
              controls_table(root, PAPER_CONTROLS, "model (cpu-small, seed 0)", seeds=(0,)).markdown()]
    return "\n".join(parts)


#: Two sizes at one budget (issue 14): 800 steps of 16 x 128 tokens (1.64M) for cpu-small (4L, d 128) and
#: cpu-medium (6L, d 256), one seed each; the Transformer and grassmann-plus at their best reliable rate of
#: the cpu-small sweep, the paper's layer at the preset's. (size, model label, folder, model)
SIZES = (("cpu-small", "Transformer", "cpu-small-800", "transformer"),
         ("cpu-small", "paper's layer", "cpu-small-800", "grassmann"),
         ("cpu-small", "grassmann-plus", "cpu-small-800-plus", "grassmann"),
         ("cpu-medium", "Transformer", "cpu-medium", "transformer"),
         ("cpu-medium", "paper's layer", "cpu-medium", "grassmann"),
         ("cpu-medium", "grassmann-plus", "cpu-medium-plus", "grassmann"))


def size_spec(root: Path) -> List[Tuple[str, str, str, str]]:
    """`SIZES`, then cpu-small at its full budget (2000 steps; every seed) for context."""
    best = R.best_lrs(root)
    full = [("cpu-small, 2000 steps", "Transformer", best.get("transformer", (0, R.MAIN))[1], "transformer"),
            ("cpu-small, 2000 steps", "paper's layer", R.MAIN, "grassmann"),
            ("cpu-small, 2000 steps", "grassmann-plus", best.get("grassmann", (0, R.SWEEP["grassmann"][0]))[1],
             "grassmann")]
    return list(SIZES) + full


def size_points(root: Path) -> List[Dict[str, Any]]:
    """One point per (size, model) of `size_spec` that has finished runs: params, lr, seeds, mean best
    validation and test perplexity, tokens/s and wall time (means over the runs)."""
    points = []
    for size, label, folder, model in size_spec(root):
        c = R.complete_comparison(folder, root)
        runs = [r.summary for r in c.finished_runs if r.model == model] if c else []
        if not runs:
            points.append(dict(size=size, model=label, folder=folder, finished=False))
            continue
        points.append(dict(
            size=size, model=label, folder=folder, finished=True, params=runs[0]["params"],
            lr=runs[0]["config"]["lr"], seeds=sorted(s["config"]["seed"] for s in runs),
            val=statistics.mean(s["best_val_ppl"] for s in runs), test=statistics.mean(s["test_ppl"] for s in runs),
            tokens_per_s=statistics.mean(s["tokens_per_s"] for s in runs),
            wall_min=statistics.mean(s["wall_time_s"] for s in runs) / 60, tokens=runs[0]["tokens_seen"]))
    return points


def sizes_report(root: Path) -> str:
    """Issue 14's table: the three models at two sizes, their ratio to the Transformer of the same size."""
    points = size_points(root)
    ref = {p["size"]: p for p in points if p["model"] == "Transformer" and p["finished"]}
    rows = []
    for p in points:
        if not p["finished"]:
            rows.append([p["size"], p["model"], "not finished", "", "", "", "", "", "", ""])
            continue
        t = ref.get(p["size"])
        rows.append([p["size"], p["model"], f"{p['params']:,}", f"{p['lr']:g}", ", ".join(map(str, p["seeds"])),
                     f"{p['val']:.1f}", f"{p['test']:.1f}", f"{p['val'] / t['val']:.3f}" if t else "–",
                     f"{p['tokens_per_s']:,.0f}", f"{p['wall_min']:.0f}"])
    table = R.Table(["size", "model", "params", "peak lr", "seeds", "best val PPL", "test PPL",
                     "val / Transformer", "tokens/s", "wall time (min)"], rows)
    return "\n".join(["### Two sizes: cpu-small and cpu-medium at one budget", "",
                      "800 steps of 16 × 128 tokens (1.64M) for both sizes, one seed each; cpu-small's full "
                      "2000-step runs below them for context (`results/wikitext2/cpu-small-800*/`, "
                      "`cpu-medium*/`):", "", table.markdown()])


def size_figure(root: Path, out: Path) -> Path:
    """Best validation perplexity against parameters, both sizes and all three models (``out``, a PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p for p in size_points(root) if p["finished"]]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, colour in (("Transformer", "tab:orange"), ("paper's layer", "tab:blue"),
                          ("grassmann-plus", "tab:green")):
        mine = sorted((p for p in points if p["model"] == label and "," not in p["size"]), key=lambda p: p["params"])
        ax.plot([p["params"] / 1e6 for p in mine], [p["val"] for p in mine], "o-", color=colour, label=label)
        full = [p for p in points if p["model"] == label and "," in p["size"]]
        ax.plot([p["params"] / 1e6 for p in full], [p["val"] for p in full], "o", mfc="none", color=colour)
        for p in mine + full:
            ax.annotate(f"{p['val']:.1f}", (p["params"] / 1e6, p["val"]), textcoords="offset points",
                        xytext=(5, 4), fontsize=7)
    ax.set(xscale="log", yscale="log", xlabel="parameters (millions)", ylabel="best validation perplexity",
           title="WikiText-2, BPE-4096, 1.64M training tokens (hollow: cpu-small, 4.1M)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def paper_estimate_report(root: Path) -> str:
    """How long `make paper` would take: an ESTIMATE from the measured cpu-medium (else cpu-small) runs."""
    from gflow_lite.data import load_wikitext2
    from gflow_lite.training.presets import resolve

    basis = R.complete_comparison("cpu-medium", root) or R.complete_comparison(R.MAIN, root)
    n_train = len(load_wikitext2("train", "wordpiece"))
    rows = []
    for preset in ("paper-6l", "paper-12l"):
        for model in ("grassmann", "transformer"):
            runs = [r.summary for r in basis.finished_runs if r.model == model]
            if not runs:
                continue
            est = R.estimate_run(resolve(preset, model), n_train, max(runs, key=lambda s: s["tokens_per_s"]))
            rows.append([preset, model, f"{est.steps:,}", f"{est.tokens / 1e6:.0f}M", f"{est.gpu_hours * 60:.0f}",
                         f"{est.cpu_hours:.0f}"])
    table = R.Table(["preset (1 seed)", "model", "steps", "training tokens", "ESTIMATE: minutes on one H100",
                     "ESTIMATE: hours on one core of this CPU"], rows)
    return "\n".join([f"Estimated from the measured `{basis.name}` runs (tokens/s × matmul FLOPs per token, "
                      "scaled to each preset) and the H100 throughput ARL reports; evaluation not counted:", "",
                      table.markdown()])


def wikitext2_check(folder: Path) -> str:
    """One line per comparison: consistent (or `ResultsError`), complete or how far it got."""
    root = folder.parent
    main = R.check(R.load_comparison(folder / R.MAIN, R.MAIN), str(folder / R.MAIN))
    rows = R.ablation_rows(root)
    state = "complete" if main.complete else (
        f"partial: {len(main.finished_runs)} run(s) finished, running "
        f"{', '.join(map(R._progress_text, main.unfinished_runs))}")
    lines = [f"{folder}: consistent; {R.MAIN} {state}; {len(rows)} ablation run(s) finished"]
    return "\n".join(lines + [f"  {name}: {status}" for name, status in R.ablation_status(root).items()])


# ------------------------------------------------------------------------------------------- benchmarks


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return R.Table(header, [[_fmt(v) for v in row] for row in rows]).markdown()


def _pivot(records: List[Mapping[str, Any]], key: str, by: str, names: Sequence[str],
           fields: Sequence[str]) -> str:
    rows = []
    for k in sorted({r[key] for r in records}):
        row: List[Any] = [k]
        for name in names:
            rec = next((r for r in records if r[key] == k and r[by] == name), {})
            row += [rec.get(f) for f in fields]
        rows.append(row)
    return _table([key] + [f"{n} {f}" for n in names for f in fields], rows)


def _bench_file(res: Mapping[str, Any]) -> str:
    name, recs = res["benchmark"], res["records"]
    head = (f"**{name}** — torch {res['torch']}, {res['device']}, {res['threads']} thread(s), "
            f"{res['hardware'].get('cpu')}, load {res.get('load_average_start')}, commit "
            f"`{str(res.get('git_commit'))[:12]}`, {res['wall_time_s']} s")
    if name == "scaling":
        body = _pivot(recs, "seq_len", "model", ["grassmann", "attention"], ["ms", "peak_mb"])
        speedup = res["summary"]["speedup_attention_over_grassmann"]
        body += "\n\nattention / Grassmann time: " + ", ".join(f"L={k}: {v}×" for k, v in speedup.items())
    elif name == "kernel":
        impls = sorted({r["impl"] for r in recs}, key=lambda i: (i != "reference", i))
        body = _pivot(recs, "seq_len", "impl", impls, ["ms", "peak_mb", "saved_mb"])
    elif name == "decode":
        body = _pivot(recs, "context", "model", ["grassmann", "transformer"], ["ms_per_token", "cache_mb"])
    else:
        fields = ("tokens_per_s", "ms_per_step", "gflop_per_step", "gflop_per_s", "fraction_of_peak")
        body = _table(["model", "tokens/s", "ms/step", "GFLOP/step", "GFLOP/s", "share of matmul peak"],
                      [[r["model"], *(r.get(f) for f in fields)] for r in recs])
    return head + "\n\n" + body


def bench_report(folder: Path) -> str:
    """The targets table, then one table per benchmark results file in ``folder``."""
    found: Dict[str, Dict[str, Any]] = {}
    for name in BENCHMARKS:
        path = folder / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text(encoding="utf-8"))
    targets = [[name, key.replace("_", " "), t.get("ratio", t.get("slope")), t.get("need"), t.get("met")]
               for name, res in found.items() for key, t in res.get("summary", {}).get("targets", {}).items()]
    parts = [_table(["benchmark", "target", "measured", "need", "met"], targets)]
    parts += [_bench_file(res) for res in found.values()]
    if (folder / "ceiling.json").exists():
        parts.append(_ceiling_file(json.loads((folder / "ceiling.json").read_text(encoding="utf-8"))))
    return "\n\n".join(parts) + "\n"


def _ceiling_file(res: Mapping[str, Any]) -> str:
    """``scripts/speed_ceiling.py``'s results: median CPU ms of each case and attention's time over each."""
    cases = list(res["records"][0]["cpu_ms"])
    head = (f"**speed ceiling** (`scripts/speed_ceiling.py`) — torch {res['torch']}, {res['device']}, "
            f"{res['config']['threads']} thread(s), {res['hardware'].get('cpu')}, load "
            f"{res.get('load_average_start')}, commit `{str(res.get('git_commit'))[:12]}`, {res['wall_time_s']} s")
    rows = [[r["seq_len"], *(r["cpu_ms"][c] for c in cases), *(r["attention_over"][c] for c in cases[1:])]
            for r in res["records"]]
    return head + "\n\n" + _table(["seq_len", *(f"{c} CPU ms" for c in cases),
                                     *(f"attention / {c}" for c in cases[1:])], rows)


# ------------------------------------------------------------------------------------------------- SNLI

_HEADS = {"grassmann": "Grassmann–Plücker", "transformer": "Transformer"}


def snli_report(folder: Path) -> str:
    """Our heads (mean ± std over seeds, per seed, best epochs, times) and the paper's single runs."""
    from gflow_lite.nli.report import load_results, results_path

    rows = []
    for head, label in _HEADS.items():
        path = results_path(folder, head)
        if not path.is_file():
            continue
        res = load_results(path)
        s, seeds = res["summary"], res["per_seed"]
        per = (lambda key, fmt: " / ".join(fmt.format(r[key]) for r in seeds))
        rows.append([label, f"{res['params']:,}",
                     *(f"{s[k]['mean']:.4f} ± {s[k]['std']:.4f}" for k in ("dev_acc", "test_acc")),
                     per("dev_acc", "{:.4f}"), per("test_acc", "{:.4f}"), per("best_epoch", "{}"),
                     f"{res['wall_time_s']:.0f}", f"{res['cpu_time_s']:.0f}"])
    for head, label in _HEADS.items():
        acc = {r.metric: r.value for r in published(source="paper", model=head)}
        name = f"paper, {label.split('–')[0]}" + (" (DistilBERT, 550k pairs, 1 run)" if head == "grassmann" else "")
        rows.append([name, "—", f"{acc['val_acc']:.4f}", f"{acc['test_acc']:.4f}", "", "", "", "", ""])
    return R.Table(["head", "params", "dev acc", "test acc", "dev per seed", "test per seed", "best epoch",
                    "wall s", "CPU s"], rows).markdown()


# -------------------------------------------------------------------------------------------------- CLI
RENDER = {"wikitext2": lambda folder: wikitext2_report(folder.parent), "bench": bench_report,
          "snli": snli_report}


def missing_lines(text: str, readmes: Sequence[Path]) -> List[str]:
    """The table rows of ``text`` that no file of ``readmes`` contains (runs of spaces count as one)."""
    def norm(line: str) -> str:
        return re.sub(r"\s+", " ", line.strip())

    shown = {norm(line) for path in readmes for line in path.read_text(encoding="utf-8").splitlines()}
    return [line for line in text.splitlines() if line.startswith("|") and norm(line) not in shown]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="results/wikitext2, results/bench, results/snli")
    parser.add_argument("--check", action="store_true", help="WikiText-2: only verify; exit 1 on a problem")
    parser.add_argument("--readme", nargs="+", type=Path, default=None,
                        help="exit 1 unless every rendered table row appears in one of these files")
    parser.add_argument("--size-figure", type=Path, default=None, metavar="PNG",
                        help="WikiText-2: also draw best validation perplexity against parameters at both sizes")
    args = parser.parse_args(argv)
    status = 0
    for folder in args.folders:
        kind = folder.resolve().name
        if kind not in RENDER:
            print(f"error: {folder}: expected a folder named one of {sorted(RENDER)}", file=sys.stderr)
            return 2
        try:
            if args.size_figure is not None and kind == "wikitext2":
                print(f"wrote {size_figure(folder.parent, args.size_figure)}")
            text = wikitext2_check(folder) if args.check and kind == "wikitext2" else RENDER[kind](folder)
        except R.ResultsError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        if args.readme is None:
            print(text)
            continue
        missing = missing_lines(text, args.readme)
        print(f"{folder}: {'every table row is in ' if not missing else f'{len(missing)} row(s) not in '}"
              f"{', '.join(map(str, args.readme))}")
        for line in missing:
            print(f"  {line}")
        status = status or int(bool(missing))
    return status


if __name__ == "__main__":
    sys.exit(main())
