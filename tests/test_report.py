"""Results and published numbers: `gflow_book.results` (loading and verifying results),
`gflow_lite.published` and `gflow_book.published_runs` (``data/published.csv`` and the gaps it
implies), and ``scripts/report_tables.py`` (the README's tables).

Most tests build small, synthetic but self-consistent results folders (the layout `compare` writes) and
then break them one way at a time; one slow test verifies a real tiny `compare` run. The committed
results must render to exactly the tables the README files show.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import statistics
import tokenize
from pathlib import Path
from typing import Dict, Optional, Sequence

import pytest

from gflow_lite import audit
from gflow_lite import published as data
from gflow_lite.data import checksums
from gflow_book import published_runs as published
from gflow_book import results as R
from gflow_lite.experiments.compare import CompareSpec, aggregate, run_compare
from gflow_lite.nli import report as nli_report
from gflow_lite.training.presets import resolve

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("report_tables", ROOT / "scripts" / "report_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tables = _load_script()


# ------------------------------------------------------------------------------------ synthetic results
def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _run(folder: Path, model: str, seed: int, val: float, test: float, overrides: Sequence[str] = (),
         finished: bool = True, steps: int = 20) -> Optional[Dict]:
    """One run folder as `train` leaves it; returns its summary (None when left unfinished)."""
    from gflow_lite.options import parse_assignments

    cfg = resolve("tiny", model, parse_assignments([f"seed={seed}", f"max_steps={steps}", "eval_interval=10",
                                                 *overrides]))
    run_dir = folder / f"{model}_seed{seed}"
    _write(run_dir / "config.json", cfg.to_dict())
    evals = [(10, val * 1.3), (20, val)] if finished else [(10, val * 1.3)]
    lines = [{"step": s, "tokens": s * cfg.tokens_per_step, "train_loss": math.log(v) + 0.1, "val_ppl": v,
              "val_loss": math.log(v)} for s, v in evals]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    if not finished:
        return None
    summary = {
        "model": model, "preset": "tiny", "status": "finished", "config": cfg.to_dict(), "seed": seed,
        "git_commit": "0123456789abcdef", "hardware": {"device": "cpu", "cpu_count": 2, "torch_threads": 1},
        "tokenizer": {"name": "bpe", "vocab_size": 512, "fingerprint": "bpe-512"},
        "params": 1000 + (50 if model == "grassmann" else 0) + 10 * cfg.model.r, "steps": steps,
        "tokens_seen": steps * cfg.tokens_per_step, "wall_time_s": 10.0 + seed, "train_time_s": 9.0,
        "tokens_per_s": 500.0 + seed, "best_step": 20, "best_val_loss": math.log(val), "best_val_ppl": val,
        "test_loss": math.log(test), "test_ppl": test,
    }
    _write(run_dir / "summary.json", summary)
    return summary


def _compare(folder: Path, runs, label: str = "", write: bool = True) -> Dict:
    """``compare.json`` for ``runs`` exactly as `run_compare` assembles it."""
    runs = [r for r in runs if r is not None]
    result = {"preset": "tiny", "label": label, "overrides": [], "model_overrides": {},
              "seeds": sorted({r["seed"] for r in runs}), **aggregate(runs), "runs": runs,
              "git_commit": "0123456789abcdef", "hardware": runs[0]["hardware"], "wall_time_s": 42.0}
    if write:
        _write(folder / "compare.json", result)
    return result


@pytest.fixture
def results(tmp_path, monkeypatch) -> Path:
    """A results root with a consistent main comparison and three finished ablations."""
    wt = tmp_path / "wikitext2"
    main = wt / R.MAIN
    runs = [_run(main, "grassmann", 0, 130.0, 135.0), _run(main, "transformer", 0, 100.0, 104.0),
            _run(main, "grassmann", 1, 126.0, 131.0), _run(main, "transformer", 1, 104.0, 106.0)]
    _compare(main, runs)
    abl = wt / "ablations"
    _compare(abl / "r64", [_run(abl / "r64", "grassmann", 0, 117.0, 121.0, ["r=16"])])
    _compare(abl / "pre-ln", [_run(abl / "pre-ln", "grassmann", 0, 120.0, 125.0, ["norm=pre"])])
    _compare(abl / "pre-ln-transformer",
             [_run(abl / "pre-ln-transformer", "transformer", 0, 96.0, 99.0, ["norm=pre"])])
    _compare(abl / "grassmann-plus",
             [_run(abl / "grassmann-plus", "grassmann", 0, 101.0, 104.0, ["norm=pre", "offsets=1,2", "r=4"])])
    monkeypatch.setenv(R.RESULTS_ENV, str(tmp_path))
    return tmp_path


def _main(root: Path) -> R.Comparison:
    return R.load_comparison(R.wikitext2_dir(root) / R.MAIN)


# --------------------------------------------------------------------------------------------- paths
def test_results_dir_is_the_repository_folder_or_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(R.RESULTS_ENV, raising=False)
    assert R.results_dir().resolve() == (ROOT / "results").resolve()
    monkeypatch.setenv(R.RESULTS_ENV, str(tmp_path))
    assert R.results_dir() == tmp_path
    assert R.wikitext2_dir() == tmp_path / "wikitext2"


def test_planned_ablations_are_the_scripts():
    script = (ROOT / "scripts" / "cpu_experiments.sh").read_text()
    planned = re.findall(r"^\s*(?:SEEDS=\d+ )?one ([\w-]+) (?:grassmann|transformer) ", script, flags=re.M)
    assert list(dict.fromkeys(planned)) == list(R.ABLATIONS)  # a stage may rerun one with more seeds
    assert '--out "$OUT/ablations/$name"' in script and f'--out "$OUT/{R.MAIN}"' in script


# -------------------------------------------------------------------------------------------- verify
def test_a_consistent_comparison_verifies(results):
    c = _main(results)
    assert c.complete and len(c.finished_runs) == 4 and not c.unfinished_runs
    assert R.verify(c) == []
    assert R.check(c) is c
    assert c.values("grassmann", "best_val_ppl") == {0: 130.0, 1: 126.0}


def _tamper(root: Path, edit) -> R.Comparison:
    path = R.wikitext2_dir(root) / R.MAIN / "compare.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return _main(root)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(ratio_val_ppl=d["ratio_val_ppl"] * 1.01), "ratio_val_ppl"),
    (lambda d: d["models"]["grassmann"]["best_val_ppl"].update(mean=1.0), "mean"),
    (lambda d: d["models"]["transformer"]["test_ppl"].update(std=0.0), "std"),
    (lambda d: d["models"]["transformer"]["test_ppl"].update(values=[1.0, 2.0]), "values"),
    (lambda d: d["runs"][0].pop("git_commit"), "git_commit"),
    (lambda d: d["runs"][1].update(hardware={}), "no hardware"),
    (lambda d: d["runs"][2].update(wall_time_s=0), "wall_time_s"),
    (lambda d: d["runs"][3].update(seed=7), "seed"),
    (lambda d: d["runs"][0].update(test_ppl=d["runs"][0]["test_ppl"] + 1), "exp"),
    (lambda d: d.update(seeds=[0, 1, 2]), "seeds"),
    (lambda d: d.pop("hardware"), "hardware"),
])
def test_verify_finds_every_kind_of_inconsistency(results, edit, message):
    problems = R.verify(_tamper(results, edit))
    assert problems and any(message in p for p in problems), problems
    with pytest.raises(R.ResultsError, match="problem"):
        R.check(_tamper(results, lambda d: None))


def test_verify_compares_run_folders_with_compare_json(results):
    run_dir = R.wikitext2_dir(results) / R.MAIN / "grassmann_seed1"
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "best_step": 10}))
    assert any("differs from the run recorded" in p for p in R.verify(_main(results)))
    (run_dir / "summary.json").write_text(json.dumps(summary))
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    (run_dir / "metrics.jsonl").write_text(lines[0].replace('"val_ppl": 163.8', '"val_ppl": 90.0') + "\n"
                                           + lines[1] + "\n")
    assert any("metrics.jsonl's best validation" in p for p in R.verify(_main(results)))


def test_verify_requires_one_budget(tmp_path):
    folder = tmp_path / "c"
    runs = [_run(folder, "grassmann", 0, 130.0, 135.0),
            _run(folder, "transformer", 0, 100.0, 104.0, steps=30)]
    _compare(folder, runs)
    assert any("training budget" in p for p in R.verify(R.load_comparison(folder)))


def test_a_partial_comparison_loads_from_its_run_folders(tmp_path):
    folder = tmp_path / "wikitext2" / R.MAIN
    _run(folder, "grassmann", 0, 130.0, 135.0)
    _run(folder, "transformer", 0, 100.0, 104.0, finished=False)
    c = R.load_comparison(folder)
    assert not c.complete and [r.name for r in c.finished_runs] == ["grassmann_seed0"]
    assert c.unfinished_runs[0].progress == (10, 20)
    assert c.data["models"]["grassmann"]["best_val_ppl"]["mean"] == 130.0 and "ratio_val_ppl" not in c.data
    assert R.verify(c) == []
    text = tables.wikitext2_report(tmp_path)
    assert "**Partial:**" in text and "transformer_seed0 at step 10 of 20" in text and "**ours**" not in text
    (folder / "grassmann_seed0" / "summary.json").unlink()  # nothing finished: the published rows only
    text = tables.wikitext2_report(tmp_path)
    assert "finished: none" in text and "| paper |" in text and "**ours**" not in text
    assert R.load_comparison(tmp_path / "nothing") is None


# ------------------------------------------------------------------------------------------ analysis
def test_ratio_and_spread():
    ratio, low, high = R.ratio_and_spread([120.0, 140.0], [100.0, 100.0])
    assert ratio == pytest.approx(1.3) and (low, high) == pytest.approx((1.2, 1.4))
    assert R.ratio_and_spread([110.0], [100.0]) == pytest.approx((1.1, 1.1, 1.1))
    with pytest.raises(ValueError):
        R.ratio_and_spread([1.0, 2.0], [1.0])


def test_config_diff_ignores_incidental_fields():
    a = resolve("tiny", "grassmann").to_dict()
    b = resolve("tiny", "transformer", {"seed": "3", "num_threads": "1", "r": "16"}).to_dict()
    assert R.config_diff(b, a) == {"r": (8, 16)}


def test_ablation_rows_read_against_the_same_seed(results):
    rows = {r.name: r for r in R.ablation_rows()}
    assert set(rows) == {"r64", "pre-ln", "pre-ln-transformer", "grassmann-plus"}
    assert list(rows) == [n for n in R.ABLATIONS if n in rows]  # the script's order
    r64 = rows["r64"]
    assert r64.change == "r: 8 → 16" and r64.seed == 0
    assert r64.vs_same_model == pytest.approx(117.0 / 130.0)
    assert r64.vs_transformer == pytest.approx(117.0 / 100.0) and r64.vs_twin is None
    assert rows["pre-ln"].vs_twin == pytest.approx(120.0 / 96.0)
    assert rows["pre-ln-transformer"].vs_same_model == pytest.approx(96.0 / 100.0)
    assert rows["pre-ln-transformer"].vs_twin is None
    plus = rows["grassmann-plus"]  # three changes; the Transformer trained alike has the one it shares
    assert plus.change == "norm: post → pre (+ a residual around the mixer); offsets: (1, 2, 4) → (1, 2); r: 8 → 4"
    assert plus.vs_twin == pytest.approx(101.0 / 96.0)


def test_ablation_status_says_what_is_missing_or_running(results):
    folder = R.wikitext2_dir(results) / "ablations" / "r32"
    _run(folder, "grassmann", 0, 125.0, 130.0, ["r=32"], finished=False)
    status = R.ablation_status()
    assert status["r64"] == "finished"
    assert status["r32"].startswith("running:") and "at step 10 of 20" in status["r32"]
    missing = R.wikitext2_dir(results) / "ablations" / "no-normalize"
    assert status["no-normalize"] == f"not yet run: {missing}"


def test_an_ablation_with_another_budget_is_rejected(results):
    folder = R.wikitext2_dir(results) / "ablations" / "offsets-1-2-4"
    _compare(folder, [_run(folder, "grassmann", 0, 125.0, 130.0, ["offsets=1,2"], steps=30)])
    with pytest.raises(R.ResultsError, match="budget"):
        R.ablation_rows()


# ------------------------------------------------------------------------------------------- tables
def test_tables_render_as_markdown_and_html():
    assert R.markdown_table(["a", "b"], [[1, "x|y"]]) == "| a | b |\n|---|---|\n| 1 | x\\|y |"
    table = R.Table(["a", "b"], [["**1**", "x<y"]])
    assert str(table) == table.markdown() == "| a | b |\n|---|---|\n| **1** | x<y |"
    assert table._repr_html_() == ("<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr>"
                                   "<td><strong>1</strong></td><td>x&lt;y</td></tr></tbody></table>")
    with pytest.raises(ValueError):
        R.Table(["a"], [[1, 2]])


def test_markdown_report_has_ours_the_paper_the_reproductions_and_the_ablations(results):
    text = tables.wikitext2_report(results)
    c = _main(results)
    assert f"**{c.data['ratio_val_ppl']:.3f}**" in text  # ours, from compare.json
    for gap in published.headline_gaps():
        assert f"| {R.source_label(gap.grassmann)} | {gap.setting}" in text and f"{gap.ratio:.3f}" in text
    assert "| alphaXiv/paper-implementations (AXV) | 6L L128;" in text  # a reproduction by its repository
    assert "r: 8 → 16" in text and "norm: post → pre" in text
    compact = R.context_table(c, compact=True)
    assert len(compact.header) == 7
    assert compact.rows[1][:3] == ("paper", "6L L128 (first row pair); G 13.00M, T 12.59M", "WordPiece 30,522")
    for name in ("r32", "no-normalize", "offsets-1-2-4", "per-layer-1-2-4-8"):
        assert f"`{name}`: not yet run:" in text
    assert "| grassmann | 1,130 | 0, 1 | 128.0 ± 2.8 |" in text  # params, seeds, mean ± std


def test_command_line(results, capsys):
    folder = str(R.wikitext2_dir(results))
    assert tables.main([folder]) == 0 and "### WikiText-2" in capsys.readouterr().out
    assert tables.main([folder, "--check"]) == 0
    assert f"consistent; {R.MAIN} complete; 4 ablation run(s) finished" in capsys.readouterr().out
    assert tables.main([str(results)]) == 2
    _tamper(results, lambda d: d.update(ratio_test_ppl=2.0))
    assert tables.main([folder, "--check"]) == 1 and "ratio_test_ppl" in capsys.readouterr().err


def test_the_readme_files_show_the_tables_of_the_committed_results(capsys):
    """Regenerated from the committed results files, every table row is in README.md (WikiText-2) and in
    results/snli/README.md; to update them, paste ``python scripts/report_tables.py results/<folder>``."""
    assert tables.main([str(ROOT / "results" / "wikitext2"), "--readme", str(ROOT / "README.md")]) == 0, \
        capsys.readouterr().out
    assert tables.main([str(ROOT / "results" / "snli"), "--readme",
                        str(ROOT / "results" / "snli" / "README.md")]) == 0, capsys.readouterr().out


def test_benchmark_tables_come_from_the_results_files():
    text = tables.bench_report(ROOT / "results" / "bench")
    assert text.startswith("| benchmark | target | measured | need | met |\n|---|---|---|---|---|\n")
    assert "| seq_len | grassmann ms | grassmann peak_mb | attention ms | attention peak_mb |" in text
    assert "| context | grassmann ms_per_token |" in text and "constant cache" in text
    assert tables.missing_lines("| a  |  b |", [ROOT / "README.md"]) == ["| a  |  b |"]


# ----------------------------------------------------------------------------------------- estimates
def test_estimates_scale_with_work_and_measured_speed():
    measured = {"config": resolve("cpu-small", "grassmann").to_dict(), "tokens_per_s": 2000.0}
    target = resolve("paper-6l", "grassmann")
    est = R.estimate_run(target, 2_000_000, measured)
    assert est.steps == target.total_steps(2_000_000) and est.tokens == est.steps * target.tokens_per_step
    faster = R.estimate_run(target, 2_000_000, {**measured, "tokens_per_s": 4000.0})
    assert faster.cpu_hours == pytest.approx(est.cpu_hours / 2) and faster.gpu_hours == est.gpu_hours
    same = R.estimate_run(resolve("cpu-small", "grassmann"), 10**9, measured)  # itself: tokens / speed
    assert same.cpu_hours == pytest.approx(same.tokens / 2000.0 / 3600)
    small, big = (R.train_flops_per_token(resolve(p, "transformer")) for p in ("tiny", "paper-12l"))
    assert 0 < small < big


# -------------------------------------------------------------------------------------- published data
#: Gaps (Grassmann / Transformer - 1) as the sources or paper notes §3.3 state them, by (source, setting,
#: variant) and split: `matched_gaps` must recompute them from the published perplexities.
REPORTED_GAPS = {
    ("ARL", "6L L256", "", "test"): 0.226,
    ("ARL", "6L L256", "", "val"): 0.242,
    ("AXV", "6L L128", "", "val"): 0.397,
    ("AXV", "6L L256", "", "val"): 0.390,
    ("AXV", "12L L128", "", "val"): 0.435,
    ("AXV", "12L L256", "", "val"): 0.453,
    ("SHX", "6L L256", "", "test"): 0.237,
    ("SHX", "6L L256", "W = {1,2,4}, r = 64", "test"): 0.095,
    ("YOU", "6L L128 post-LN", "", "val"): 0.345,
    ("YOU", "12L L256 pre-LN (stabilised)", "", "val"): -0.082,
    ("KAN", "6L L128 post-LN", "", "val"): 0.434,
}


def test_the_published_file_is_checksummed_and_every_row_names_its_source():
    assert data.FILE in checksums.read_manifest()  # verified like every shipped data file
    rows = data.published()
    assert len(rows) > 90 and len(set(rows)) == len(rows)
    for r in rows:
        assert r.source_url.startswith("https://") and r.where and r.source_name and r.metric
        assert r.source == "paper" or re.fullmatch(r"[\w-]+/[\w.-]+", r.source_name.split(" (")[0])
        assert r.status in ("", "not matched", "diverged") and math.isfinite(r.value)
    assert data.published_value(source="paper", model="grassmann", layers=12, metric="params_m") == 18.16
    with pytest.raises(ValueError):
        data.published_value(source="paper", metric="val_ppl")  # several values


def test_the_library_reads_published_numbers_from_the_file():
    assert audit.PAPER_PARAMS_M == {("transformer", 6): 12.59, ("grassmann", 6): 13.00,
                                    ("transformer", 12): 17.32, ("grassmann", 12): 18.16}
    assert nli_report.paper_snli() == {"grassmann": {"dev_acc": 0.8550, "test_acc": 0.8538},
                                     "transformer": {"dev_acc": 0.8545, "test_acc": 0.8511}}
    tp = published.PUBLISHED_THROUGHPUT
    assert tp.tokens_per_s == 53_000 and dict(tp.model)["offsets"] == (1, 2, 4, 8, 12, 16)
    typed = {"275.7", "0.8538", "0.855", "18.16", "253.76", "236.05", "248.4"}
    for path in (ROOT / "gflow_lite").rglob("*.py"):  # no module's code types a published number
        with open(path, "rb") as handle:
            numbers = {t.string for t in tokenize.tokenize(handle.readline) if t.type == tokenize.NUMBER}
        assert not numbers & typed, f"{path.relative_to(ROOT)} types {numbers & typed}"


def test_published_entries_are_well_formed():
    for e in published.WIKITEXT2:
        assert e.source in published.SOURCES and e.model in ("grassmann", "transformer")
        assert all(p > 1 for p in e.val_ppl + e.test_ppl + e.ppl_split_unstated)
        assert e.val_ppl or e.test_ppl or e.ppl_split_unstated
        assert e.tokenizer and e.recipe and e.layers in (6, 8, 12)
        assert not e.ablation or e.ablation in R.ABLATIONS
    for r in published.PAPER_NLI + published.REPRODUCTIONS_NLI:
        assert 0 < r.test_acc < 1 and 0 < r.val_acc < 1 and r.source in published.SOURCES
    shx = [e for e in published.WIKITEXT2 if e.source == "SHX" and e.variant == "W = {1,2,4}"]
    assert [len(e.val_ppl) for e in shx] == [3] and shx[0].val_ppl[0] == 218.06  # seeds in order


def test_matched_gaps_reproduce_the_reported_gaps():
    gaps = {(g.source, g.setting, g.variant): g for g in published.matched_gaps()}
    for (source, setting, variant, split), gap in REPORTED_GAPS.items():
        g = gaps[source, setting, variant]
        ratio = g.ratio_val if split == "val" else g.ratio_test
        assert round(ratio - 1, 3) == pytest.approx(gap, abs=1e-9), (source, setting, split)
    paper = [g.ratio for g in published.headline_gaps() if g.source == "paper"]
    assert len(paper) == 3 and all(1.10 < r < 1.115 for r in paper)
    assert not any(g.source in ("ADP", "GLM") for g in published.matched_gaps())  # unmatched / no baseline
    assert ("YOU", "12L L256 post-LN (strict)", "") not in gaps  # a diverged baseline forms no gap
    headline = published.headline_gaps()
    assert len({(g.source, g.setting) for g in headline}) == len(headline)


def test_ablation_evidence_is_relative_to_the_same_source():
    (entry, ratio), = published.ablation_evidence("offsets-1-2-4")
    assert entry.source == "SHX" and ratio == pytest.approx(statistics.fmean(entry.val_ppl) / 238.26)
    assert published.ablation_evidence("per-layer-1-2-4-8") == []  # GLM has no paper-layer twin


# ------------------------------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_a_real_tiny_compare_verifies(tmp_path):
    folder = tmp_path / "wikitext2" / R.MAIN
    spec = CompareSpec(preset="tiny", seeds=[0], jobs=2, overrides=["max_steps=4", "eval_interval=2"])
    result = run_compare(spec, folder, log=lambda message: None)
    c = R.check(R.load_comparison(folder))
    assert c.complete and c.data["ratio_val_ppl"] == result["ratio_val_ppl"]
    assert "**ours**" in tables.wikitext2_report(tmp_path)

