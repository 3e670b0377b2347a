"""gflow_lite.experiments.fair: issue 22's decision rule, what runs next and the closing tables, on synthetic
plans and results (and scripts/fair_tables.py, the thin command line that writes RESULTS.md)."""

import json
import sys
from pathlib import Path

import pytest

from gflow_lite.experiments import fair

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import fair_tables as ft  # noqa: E402


def model(arch, norm, **extra):
    return {"arch": arch, "overrides": {"norm": norm, **extra}, "earlier": {}, "start": []}


def make_plan():
    """The real plan's shape, four swept models and two halves, no earlier runs."""
    halves = {"base": "grassmann-plus", "sweep": False}
    return {
        "fail_factor": 2.0,
        "models": {
            "transformer-post": model("transformer", "post"),
            "transformer-pre": model("transformer", "pre"),
            "grassmann-plus": model("grassmann", "pre"),
            "paper": model("grassmann", "post"),
            "plus-residual-only": {**model("grassmann", "post", mix_residual="on"), **halves},
            "plus-post": {**model("grassmann", "post", mix_residual="auto"), **halves},
        },
        "stages": {
            "sweep": {"preset": "cpu-small", "set": {"max_steps": 2000}},
            "halves": {"preset": "cpu-small", "set": {"max_steps": 2000},
                       "models": ["plus-residual-only", "plus-post"]},
            "plateau": {"preset": "cpu-small", "set": {"max_steps": 16000},
                        "transformers": ["transformer-post", "transformer-pre"],
                        "models": ["grassmann-plus", "paper"], "seeds": [0, 1]},
            "medium": {"preset": "cpu-medium", "set": {"max_steps": 800},
                       "models": {"grassmann-plus": "retune", "paper": "best"}},
        },
    }


def run(val, test="auto", best_step=2000, steps=2000, early=None):
    """A finished run's summary with the fields the tables read."""
    out = {"status": "finished", "best_val_ppl": val, "best_step": best_step, "steps": steps,
           "early_stop_step": early}
    if test is not None:
        out["test_ppl"] = val - 5 if test == "auto" else test
    return out


def empty(plan):
    return {stage: {name: {} for name in plan["models"]} for stage in fair.STAGES}


def add(results, stage, name, lr, *vals, **kw):
    """Seeds 0, 1, ... of one model at one rate, with these best validation perplexities."""
    for seed, v in enumerate(vals):
        results[stage][name].setdefault(lr, {})[seed] = v if isinstance(v, dict) else run(v, **kw)


def settled_sweep(plan):
    """Every swept model's best inside its tried rates with two seeds there (so: settled)."""
    r = empty(plan)
    for name, (low, best, high) in {"transformer-post": (70, (60, 61), 62),
                                    "transformer-pre": (75, (68, 68.4), 69),
                                    "grassmann-plus": (70, (66, 66.2), 67),
                                    "paper": (80, (60.6, 60.8), 90)}.items():
        add(r, "sweep", name, 1e-3, low)
        add(r, "sweep", name, 2e-3, *best)
        add(r, "sweep", name, 4e-3, high)
    return r


def section(text, n):
    """The text of section ``n`` ('## n. ...' up to the next '## ')."""
    return text.split(f"## {n}.", 1)[1].split("\n## ", 1)[0]


def row(text, name):
    """The cells of the table row that starts with ``name``."""
    line = next(x for x in text.splitlines() if x.startswith(f"| {name} |"))
    return [c.strip() for c in line.strip().strip("|").split("|")]


SWEEP_HEAD = ["model", "rates", "best", "v0", "v1", "t0", "t1", "mean", "range", "ratio", "note"]


def sweep_row(text, name):
    return dict(zip(SWEEP_HEAD, row(section(text, 1), name)))


def test_every_stage_without_runs_says_so():
    plan = make_plan()
    text = fair.render(plan, empty(plan))
    assert [section(text, n).strip().splitlines()[-1] for n in (1, 2, 3, 4)] == ["no runs yet"] * 4
    assert text == fair.render(plan, empty(plan))  # deterministic, no date


def test_best_rate_is_the_lowest_mean_over_seeds_and_the_ratio_is_at_each_models_best():
    plan = make_plan()
    r = settled_sweep(plan)
    r["sweep"]["grassmann-plus"][2e-3] = {0: run(64), 1: run(70)}  # seed 0 lowest, the mean (67) is not
    r["sweep"]["grassmann-plus"][4e-3] = {0: run(66.5), 1: run(66.7)}
    text = fair.render(plan, r)
    g = sweep_row(text, "grassmann-plus")
    assert g["best"] == "4e-3" and g["rates"] == "1e-3, 2e-3, **4e-3**"
    assert (g["v0"], g["v1"], g["t0"], g["t1"]) == ("66.50", "66.70", "61.50", "61.70")
    assert g["mean"] == "66.60" and g["range"] == "0.20"
    assert g["ratio"] == f"{66.6 / 60.5:.3f}"  # over transformer-post at its own best (2e-3), not pre's
    assert "**transformer-post** at 2e-3" in section(text, 1)
    t = sweep_row(text, "transformer-post")
    assert t["ratio"] == "1.000" and t["note"] == "reference"


def test_failures_are_marked_and_never_chosen():
    plan, r = make_plan(), settled_sweep(make_plan())
    add(r, "sweep", "transformer-post", 8e-3, 200)  # > 2x the model's best (60)
    r["sweep"]["transformer-post"][4e-3][1] = {"status": "failed", "reason": "stuck at the unigram level"}
    add(r, "sweep", "transformer-pre", 8e-3, float("nan"))
    add(r, "sweep", "paper", 8e-3, {"status": "failed", "returncode": -9})  # the queue's record of a crash
    text = fair.render(plan, r)
    t = sweep_row(text, "transformer-post")
    assert t["rates"] == "1e-3, **2e-3**, 4e-3 failed, 8e-3 failed" and t["best"] == "2e-3"
    assert sweep_row(text, "transformer-pre")["rates"] == "1e-3, **2e-3**, 4e-3, 8e-3 failed"
    assert "- sweep transformer-post 4e-3 seed 1: stuck at the unigram level" in text
    assert "- sweep transformer-post 8e-3 seed 0: val ppl 200.00 > 2 x the model's best 60.00" in text
    assert "- sweep transformer-pre 8e-3 seed 0: best val ppl not finite" in text
    assert "- sweep paper 8e-3 seed 0: ended without a summary (exit -9)" in text
    assert sweep_row(text, "paper")["rates"] == "1e-3, **2e-3**, 4e-3, 8e-3 failed"


def test_notes_provisional_within_seed_noise_one_seed_and_unsettled():
    plan, r = make_plan(), settled_sweep(make_plan())
    text = fair.render(plan, r)
    assert sweep_row(text, "grassmann-plus")["note"] == "provisional (2 seeds)"  # 5.6 apart, ranges 1 and 0.2
    assert sweep_row(text, "paper")["note"] == "within seed noise"  # 0.2 apart, transformer-post's range is 1
    del r["sweep"]["paper"][2e-3][1]  # best inside the tried rates but no seed 1 there: not settled
    r["sweep"]["paper"][2e-3][0] = run(66)
    paper = sweep_row(fair.render(plan, r), "paper")
    assert paper["note"] == "sweep not settled; 1 seed" and paper["v1"] == "" and paper["range"] == ""
    assert "paper 2e-3 s1" in section(fair.render(plan, r), 1)  # what the queue would run next


def test_missing_test_perplexity_is_blank():
    plan, r = make_plan(), settled_sweep(make_plan())
    r["sweep"]["grassmann-plus"][2e-3][1] = run(66.2, test=None)
    g = sweep_row(fair.render(plan, r), "grassmann-plus")
    assert g["t0"] == "61.00" and g["t1"] == ""


@pytest.mark.parametrize("best_step,steps,plateau", [(5000, 10000, "yes"), (8000, 10000, "yes"),
                                                     (8500, 10000, "no"), (9000, 10000, "no"),
                                                     (16000, 16000, "no")])
def test_plateau_means_the_best_step_lies_before_the_last_15_percent(best_step, steps, plateau):
    """The README's rule: 80% of the steps is before the last 15% (a plateau); 85% and later are not."""
    plan, r = make_plan(), settled_sweep(make_plan())
    add(r, "plateau", "grassmann-plus", 2e-3, run(50, best_step=best_step, steps=steps, early=steps))
    cells = row(section(fair.render(plan, r), 3), "grassmann-plus")
    assert cells[3:6] == [str(best_step), f"{steps} (early stop)", plateau]


def test_plateau_ratios_same_seed_beside_the_fixed_budget_ratio():
    plan, r = make_plan(), settled_sweep(make_plan())
    add(r, "plateau", "transformer-post", 2e-3, run(40, best_step=6000, steps=16000), run(42))
    add(r, "plateau", "grassmann-plus", 2e-3, run(44, best_step=7000, steps=9000, early=9000), run(45))
    add(r, "plateau", "paper", 2e-3, run(50))
    text = section(fair.render(plan, r), 3)
    rows = [line for line in text.splitlines() if line.startswith("| grassmann-plus |")]
    g0, g1 = ([c.strip() for c in line.strip("|").split("|")] for line in rows)
    assert g0[:8] == ["grassmann-plus", "0", "2e-3", "7000", "9000 (early stop)", "yes", "44.00", "39.00"]
    assert g0[8:10] == [f"{44 / 40:.3f}", f"{66 / 60:.3f}"]  # plateau seed 0 / seed 0; 2000 steps the same
    assert g1[8:10] == [f"{45 / 42:.3f}", f"{66.2 / 61:.3f}"]
    t0 = row(text, "transformer-post")
    assert t0[4:6] == ["16000", "yes"] and t0[8] == "1.000"
    paper = row(text, "paper")
    assert paper[8] == f"{50 / 40:.3f}" and paper[5] == "no"  # best step 2000 of 2000


def test_halves_beside_both_at_the_same_rate():
    plan, r = make_plan(), settled_sweep(make_plan())
    add(r, "halves", "plus-residual-only", 2e-3, 70)
    add(r, "halves", "plus-post", 2e-3, 80, test=None)
    text = section(fair.render(plan, r), 2)
    assert row(text, "plus-residual-only") == ["plus-residual-only", "post-LN", "yes", "2e-3", "0",
                                               "70.00", "65.00", "+4.00", "+4.00", "1 seed"]
    assert row(text, "plus-post") == ["plus-post", "post-LN", "no", "2e-3", "0", "80.00", "", "+14.00", "",
                                      "1 seed"]
    assert row(text, "grassmann-plus (both)")[1:6] == ["pre-LN", "yes", "2e-3", "0", "66.00"]
    add(r, "halves", "plus-post", 4e-3, 90)
    r["halves"]["plus-residual-only"][2e-3][0] = run(66.1)  # 0.1 from 'both', whose seeds are 0.2 apart
    text = section(fair.render(plan, r), 2)
    assert row(text, "plus-residual-only")[-1] == "1 seed; within seed noise"
    assert ("| plus-post | post-LN | no | 4e-3 | 0 | 90.00 | 85.00 | +23.00 | +23.00 | "
            "not at grassmann-plus's best rate (2e-3); 1 seed |") in text


def test_medium_ratio_only_at_each_models_best_medium_rate():
    plan, r = make_plan(), settled_sweep(make_plan())
    add(r, "medium", "transformer-post", 2e-3, 50)
    add(r, "medium", "transformer-post", 1e-3, 52)
    add(r, "medium", "grassmann-plus", 2e-3, 60)
    add(r, "medium", "grassmann-plus", 1e-3, 57)
    text = section(fair.render(plan, r), 4)
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
             if line.startswith(("| transformer-post |", "| grassmann-plus |"))]
    rows = {(c[0], c[1]): c for c in cells}
    assert rows[("grassmann-plus", "1e-3")][3:7] == ["57.00", "52.00", "yes", f"{57 / 50:.3f}"]
    assert rows[("grassmann-plus", "2e-3")][5:7] == ["", ""]
    assert rows[("transformer-post", "2e-3")][5:7] == ["yes", "1.000"]
    assert "grassmann-plus 5e-4 s0" in text  # the medium best at the edge: the queue extends it
    add(r, "medium", "paper", 1e-3, 90)  # an earlier run, not at the paper's sweep best (2e-3)
    paper = row(section(fair.render(plan, r), 4), "paper")
    assert paper[6] == f"{90 / 50:.3f}"
    assert paper[7] == "vs transformer-post at 2e-3; 1 seed; its sweep best rate 2e-3 not run here yet"


def test_main_writes_the_file(tmp_path, monkeypatch, capsys):
    plan, r = make_plan(), settled_sweep(make_plan())
    monkeypatch.setattr(ft, "FAIR", tmp_path)
    monkeypatch.setattr(fair, "load_plan", lambda root: plan)
    monkeypatch.setattr(fair, "collect", lambda p, root: r)
    ft.main([])
    written = (tmp_path / "RESULTS.md").read_text()
    assert written == capsys.readouterr().out == fair.render(plan, r)
    assert written.startswith("# The fair comparison (issue 22): results\n\nGenerated by")


# ------------------------------------------------------------------------------------------ the rule
def test_verdicts_fail_a_rate_at_any_failed_seed_and_choose_the_lowest_mean():
    runs = {1e-3: {0: run(70), 1: run(72)}, 2e-3: {0: run(64), 1: run(75)}, 4e-3: {0: run(68), 1: run(69)},
            8e-3: {0: run(150)}, 1.6e-2: {0: run(float("nan"))}}
    status, best = fair.verdicts(runs, 2.0)
    assert best == 4e-3  # mean 68.5 beats 2e-3's 69.5, though 2e-3 has the lowest single seed
    assert status == {1e-3: "ok", 2e-3: "ok", 4e-3: "ok", 8e-3: "failed", 1.6e-2: "failed"}  # 150 > 2 x 64
    assert fair.verdicts({1e-3: {0: run(float("nan"))}, 2e-3: {0: {"status": "failed"}}}, 2.0)[1] is None


def test_sweep_next_starts_then_extends_at_an_edge_then_asks_seed_1_inside():
    plan = make_plan()
    plan["models"]["paper"]["start"] = ["1e-3", "2e-3"]
    assert fair.sweep_next(plan, "paper", {}, busy=False) == [(1e-3, 0), (2e-3, 0)]
    assert fair.sweep_next(plan, "paper", {1e-3: {0: run(70)}}, busy=True) == [(2e-3, 0)]
    assert fair.sweep_next(plan, "paper", {1e-3: {0: run(70)}, 2e-3: {0: run(60)}}, busy=True) == []
    runs = {1e-3: {0: run(70)}, 2e-3: {0: run(60)}}
    assert fair.sweep_next(plan, "paper", runs, busy=False) == [(4e-3, 0)]  # best the highest: twice it
    assert fair.sweep_next(plan, "paper", {1e-3: {0: run(55)}, 2e-3: {0: run(60)}}, False) == [(5e-4, 0)]
    runs[4e-3] = {0: run(62)}
    assert fair.sweep_next(plan, "paper", runs, busy=False) == [(2e-3, 1)]  # an interior best: seed 1 there
    runs[2e-3][1] = run(61)
    assert fair.sweep_next(plan, "paper", runs, busy=False) == []
    runs[2e-3][1] = run(200)  # seed 1 fails: the rate fails, 4e-3 is the best and the highest
    assert fair.sweep_next(plan, "paper", runs, busy=False) == [(8e-3, 0)]
    assert fair.sweep_next(plan, "plus-post", {}, busy=False) == []  # a variant: never swept


def test_next_runs_halves_once_the_base_is_settled():
    plan, r = make_plan(), settled_sweep(make_plan())
    del r["sweep"]["grassmann-plus"][2e-3][1]
    todo = fair.next_runs(plan, r, [])
    assert ("sweep", "grassmann-plus", 2e-3, 1) in todo and not [k for k in todo if k[0] == "halves"]
    assert ("plateau", "grassmann-plus", 2e-3, 0) not in todo
    todo = fair.next_runs(plan, settled_sweep(plan), [])
    assert [k for k in todo if k[0] == "halves"] == [("halves", "plus-residual-only", 2e-3, 0),
                                                     ("halves", "plus-post", 2e-3, 0)]
    assert fair.next_runs(plan, settled_sweep(plan), [("halves", "plus-post", 2e-3, 0)]).count(
        ("halves", "plus-post", 2e-3, 0)) == 0  # a running run is not asked again


def test_next_runs_plateau_seed_1_only_after_seed_0_of_all_three():
    plan, r = make_plan(), settled_sweep(make_plan())

    def plateau():
        return [k for k in fair.next_runs(plan, r, []) if k[0] == "plateau"]

    trio = ["transformer-post", "grassmann-plus", "paper"]  # post-LN is the better Transformer (60.5 < 68.2)
    assert plateau() == [("plateau", n, 2e-3, 0) for n in trio]
    add(r, "plateau", "transformer-post", 2e-3, 40)
    add(r, "plateau", "grassmann-plus", 2e-3, 44)
    assert plateau() == [("plateau", "paper", 2e-3, 0)]
    add(r, "plateau", "paper", 2e-3, 50)
    assert plateau() == [("plateau", n, 2e-3, 1) for n in trio]


def test_next_runs_medium_rates():
    plan, r = make_plan(), settled_sweep(make_plan())
    medium = [k for k in fair.next_runs(plan, r, []) if k[0] == "medium"]
    assert medium == [("medium", "transformer-post", 2e-3, 0), ("medium", "transformer-post", 1e-3, 0),
                      ("medium", "grassmann-plus", 2e-3, 0), ("medium", "grassmann-plus", 1e-3, 0),
                      ("medium", "paper", 2e-3, 0)]
    add(r, "medium", "grassmann-plus", 2e-3, 60)
    add(r, "medium", "grassmann-plus", 1e-3, 62)  # the best at the top edge: twice it
    assert ("medium", "grassmann-plus", 4e-3, 0) in fair.next_runs(plan, r, [])



def test_small_800_is_re_tuned_by_the_medium_rule_after_medium_and_before_the_plateau():
    """The size comparison's small point: the same rule as cpu-medium, at cpu-small, in its own table."""
    plan = make_plan()
    plan["stages"]["small-800"] = {"preset": "cpu-small", "set": {"max_steps": 800},
                                   "models": {"grassmann-plus": "retune", "paper": "retune"}}
    r = settled_sweep(plan)
    for name in plan["stages"]["halves"]["models"]:
        add(r, "halves", name, 2e-3, 70)
    keys = fair.next_runs(plan, r, [])
    assert [k[0] for k in keys] == ["medium"] * 5 + ["small-800"] * 6 + ["plateau"] * 3
    assert [k[1:] for k in keys if k[0] == "small-800"] == [(n, lr, 0) for n in ("transformer-post",
                                                            "grassmann-plus", "paper") for lr in (2e-3, 1e-3)]
    add(r, "small-800", "paper", 2e-3, 80)
    add(r, "small-800", "paper", 1e-3, 90)  # the best at the top edge: twice it
    assert ("small-800", "paper", 4e-3, 0) in fair.next_runs(plan, r, [])
    add(r, "small-800", "transformer-post", 2e-3, 70)
    section = fair.small_800_section(plan, r)
    assert section[0].startswith("## 5. Small at 800 steps") and "best 800-step rate" in section[4]
    assert any(row.startswith("| paper | 2e-3 | 0 | 80.00 |") and "1.143" in row for row in section)
    assert "## 5. Small at 800 steps" in fair.render(plan, r)
    assert "## 5." not in fair.render(make_plan(), r)  # a plan without the stage renders without its table

def test_next_runs_short_medium_runs_come_before_the_long_plateau_runs():
    plan, r = make_plan(), settled_sweep(make_plan())
    for name in plan["stages"]["halves"]["models"]:
        add(r, "halves", name, 2e-3, 70)
    stages = [k[0] for k in fair.next_runs(plan, r, [("plateau", "transformer-post", 2e-3, 0)])]
    assert stages == ["medium"] * 5 + ["plateau"] * 2  # the running plateau run is not asked again


# ------------------------------------------------------------------------------------------ reading
def write_run(folder, arch, seed, lr, stage, overrides, val=60.0, **config):
    run_folder = folder / f"{arch}_seed{seed}"
    run_folder.mkdir(parents=True)
    cfg = {"lr": lr, "min_lr": lr / 10, "preset": stage["preset"], **stage.get("set", {}),
           "model": dict(overrides), **config}
    (run_folder / "summary.json").write_text(json.dumps({"model": arch, "config": cfg, **run(val)}))


def test_collect_reads_the_plans_folders_below_root_and_checks_each_runs_settings(tmp_path):
    plan, root = make_plan(), tmp_path / "results" / "wikitext2" / "fair"
    root.mkdir(parents=True)
    plan["models"]["paper"]["earlier"] = {"1e-3": ["results/wikitext2/old"]}
    (root / "plan.json").write_text(json.dumps(plan))
    assert fair.load_plan(root) == plan
    sweep, o = plan["stages"]["sweep"], plan["models"]["paper"]["overrides"]
    write_run(tmp_path / "results" / "wikitext2" / "old", "grassmann", 0, 1e-3, sweep, o, val=70)
    write_run(root / "sweep" / "paper-lr2e-3-s0", "grassmann", 0, 2e-3, sweep, o, val=61)
    got = fair.collect(plan, root)["sweep"]["paper"]
    assert {lr: {s: x["best_val_ppl"] for s, x in seeds.items()} for lr, seeds in got.items()} \
        == {1e-3: {0: 70}, 2e-3: {0: 61}}
    write_run(root / "sweep" / "paper-lr4e-3-s0", "grassmann", 0, 4e-3, sweep, {**o, "norm": "pre"})
    with pytest.raises(fair.FairPlanError, match="lr4e-3-s0: model.norm=.pre., the plan expects .post."):
        fair.collect(plan, root)


def test_the_script_stops_with_the_libraries_message(tmp_path, monkeypatch):
    plan = make_plan()
    plan["models"]["paper"]["earlier"] = {"1e-3": ["results/wikitext2/missing"]}
    root = tmp_path / "results" / "wikitext2" / "fair"
    root.mkdir(parents=True)
    (root / "plan.json").write_text(json.dumps(plan))
    monkeypatch.setattr(ft, "FAIR", root)
    with pytest.raises(SystemExit, match="missing: no grassmann_seed0 result, as the plan says"):
        ft.main(["--print"])


def test_run_folder_finds_earlier_and_own_runs_and_val_curve_reads_every_evaluation(tmp_path):
    plan, root = make_plan(), tmp_path / "results" / "wikitext2" / "fair"
    root.mkdir(parents=True)
    plan["models"]["paper"]["earlier"] = {"1e-3": ["results/wikitext2/old"]}
    sweep, o = plan["stages"]["sweep"], plan["models"]["paper"]["overrides"]
    write_run(tmp_path / "results" / "wikitext2" / "old", "grassmann", 0, 1e-3, sweep, o, val=70)
    write_run(root / "sweep" / "paper-lr2e-3-s0", "grassmann", 0, 2e-3, sweep, o, val=61)
    earlier = fair.run_folder(plan, "sweep", "paper", 1e-3, 0, root)
    assert earlier == tmp_path / "results" / "wikitext2" / "old" / "grassmann_seed0"
    own = fair.run_folder(plan, "sweep", "paper", 2e-3, 0, root)
    assert own == root / "sweep" / "paper-lr2e-3-s0" / "grassmann_seed0"
    assert fair.run_folder(plan, "sweep", "paper", 2e-3, 1, root) is None  # not run yet
    assert fair.run_folder(plan, "plateau", "paper", 2e-3, 0, root) is None
    lines = [{"step": 25, "train_loss": 5.0}, {"step": 250, "val_ppl": 90.0}, {"step": 500, "val_ppl": 80.5}]
    (own / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert fair.val_curve(own) == [(250, 90.0), (500, 80.5)]


def test_the_readme_section_renders_the_sweep_and_halves_and_names_a_bad_run(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
    import report_tables as tables
    from gflow_book import results as R

    plan, root = make_plan(), tmp_path / "wikitext2" / "fair"
    root.mkdir(parents=True)
    (root / "plan.json").write_text(json.dumps(plan))
    sweep = plan["stages"]["sweep"]
    for name, vals in (("transformer-post", (70, 60, 62)), ("grassmann-plus", (72, 66, 67))):
        for lr, val in zip((1e-3, 2e-3, 4e-3), vals):
            write_run(root / "sweep" / f"{name}-lr{fair.rate_name(lr)}-s0", plan["models"][name]["arch"], 0, lr,
                      sweep, plan["models"][name]["overrides"], val=val)
    text = tables.fair_report(tmp_path)
    assert text.startswith("### A fair fight") and "**transformer-post** at 2e-3" in text
    assert "| grassmann-plus | 1e-3, **2e-3**, 4e-3 | 2e-3 | 66.00 |" in text and "halves" in text
    write_run(root / "sweep" / "paper-lr2e-3-s0", "grassmann", 0, 2e-3, sweep, {"norm": "pre"})
    with pytest.raises(R.ResultsError, match="paper-lr2e-3-s0: model.norm=.pre., the plan expects .post."):
        tables.fair_report(tmp_path)
