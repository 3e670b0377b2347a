"""Render the README's result tables from the committed results files, and verify those files.

    python scripts/report_tables.py results/wikitext2          # the WikiText-2 section (markdown)
    python scripts/report_tables.py results/wikitext2 --check  # only verify every comparison
    python scripts/report_tables.py results/bench              # the benchmark tables
    python scripts/report_tables.py results/snli               # the SNLI table
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
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from gflow_lite.bench.registry import BENCHMARKS
from gflow_lite.experiments import fair
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
    parts += ["**Ablations and variants** (1 seed, the baseline's budget, every run at the preset's peak rate "
              "1e-3, tuned for none of them; ratios of best validation perplexity, below 1 is better; the last-but-one column compares with the Transformer given "
              "the same non-mixer changes, e.g. pre-LN, both at 1e-3; each at its own best rate, section "
              "'A fair fight' below):", ""]
    parts += [R.ablation_table(rows).markdown(), ""] if rows else ["(no ablation finished yet)", ""]
    pending = [f"- `{name}`: {s}" for name, s in status.items() if s != "finished"]
    if pending:
        parts += ["Not finished:", "", *pending, ""]
    if (R.wikitext2_dir(root) / "fair" / "plan.json").is_file():
        parts += [fair_report(root), ""]
    if (R.wikitext2_dir(root) / "cpu-medium").is_dir():
        parts += [paper_estimate_report(root), ""]
    return "\n".join(parts)


def fair_report(root: Path) -> str:
    """The fair comparison of issue 22 (every model at its own best rate): the fixed-budget sweep, the
    halves of the pre-LN switch and the 800-step runs re-tuned at cpu-medium and at cpu-small, rendered by
    `gflow_lite.experiments.fair` from its plan and run folders. The plateau stage is still running; its table is in the folder's
    RESULTS.md, which the queue renders again with every finished run."""
    folder = R.wikitext2_dir(root) / "fair"
    try:
        plan = fair.load_plan(folder)
        results = fair.collect(plan, folder)
    except fair.FairPlanError as err:
        raise R.ResultsError(str(err)) from None

    def body(section: List[str]) -> List[str]:  # the section without its own heading
        return section[2:]

    return "\n".join(["### A fair fight: every model at its own best rate (cpu-small, 2000 steps)", "",
                       *body(fair.sweep_section(plan, results)),
                       "**The halves of grassmann-plus's pre-LN switch** (the norm before the mixer; a residual "
                       "around the mixer):", "", *body(fair.halves_section(plan, results)),
                       "**cpu-medium, re-tuned** (the paper's width and depth, 800 steps, one seed; every model "
                       "at two or more rates):", "", *body(fair.medium_section(plan, results)),
                       "**cpu-small at 800 steps, re-tuned the same way** (the size comparison's small point, one "
                       "seed):", "", *body(fair.small_800_section(plan, results))]).rstrip("\n")


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
    args = parser.parse_args(argv)
    status = 0
    for folder in args.folders:
        kind = folder.resolve().name
        if kind not in RENDER:
            print(f"error: {folder}: expected a folder named one of {sorted(RENDER)}", file=sys.stderr)
            return 2
        try:
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
