"""`compare`: both models, same budget; aggregate, ratio, reuse of finished runs, bad input."""

import json
import subprocess
import sys

import pytest

from gflow_lite.experiments.compare import CompareSpec, aggregate, run_compare
from gflow_lite.training.presets import ConfigError


def _summary(model, seed, val, test):
    return {"model": model, "seed": seed, "best_val_ppl": val, "test_ppl": test, "params": 10,
            "tokens_seen": 100, "wall_time_s": 1.0, "tokens_per_s": 100.0}


def test_aggregate_means_spread_and_ratio():
    runs = [_summary("grassmann", 0, 120, 130), _summary("grassmann", 1, 140, 150),
            _summary("transformer", 0, 100, 110), _summary("transformer", 1, 100, 90)]
    agg = aggregate(runs)
    assert agg["models"]["grassmann"]["best_val_ppl"]["mean"] == pytest.approx(130)
    assert agg["models"]["grassmann"]["best_val_ppl"]["std"] == pytest.approx(14.1421356)
    assert agg["ratio_val_ppl"] == pytest.approx(1.3)
    assert agg["ratio_test_ppl"] == pytest.approx(140 / 100)


def test_bad_specs_fail_before_training(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset"):
        run_compare(CompareSpec(preset="huge", seeds=[0]), tmp_path)
    with pytest.raises(ConfigError, match="unknown override key"):
        run_compare(CompareSpec(preset="tiny", seeds=[0], overrides=["colour=red"]), tmp_path)
    with pytest.raises(ConfigError, match="at least one seed"):
        run_compare(CompareSpec(preset="tiny", seeds=[]), tmp_path)
    assert not any(tmp_path.iterdir()), "nothing may be written for a rejected comparison"


@pytest.mark.slow
def test_compare_end_to_end_on_tiny(tmp_path):
    out = tmp_path / "cmp"
    cmd = [sys.executable, "-m", "gflow_lite", "compare", "--preset", "tiny", "--seeds", "1", "--jobs", "2",
           "--set", "max_steps=6", "eval_interval=3", "--set-grassmann", "offsets=1,2", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "compare.json").read_text())
    assert {r["model"] for r in result["runs"]} == {"grassmann", "transformer"}
    g = next(r for r in result["runs"] if r["model"] == "grassmann")
    assert g["config"]["model"]["offsets"] == [1, 2] and g["tokens_seen"] == 6 * 8 * 32
    t = next(r for r in result["runs"] if r["model"] == "transformer")
    assert result["ratio_val_ppl"] == pytest.approx(g["best_val_ppl"] / t["best_val_ppl"])
    assert (out / "compare.png").stat().st_size > 1000
    assert "ratio grassmann / transformer" in proc.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stderr.count("reusing summary.json") == 2
    # a second call with other settings must not report them over runs trained with the first ones
    other = [c if c != "max_steps=6" else "max_steps=7" for c in cmd]
    before = (out / "compare.json").read_text()
    refused = subprocess.run(other, capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "other settings" in refused.stderr and "max_steps: 6 -> 7" in refused.stderr
    assert (out / "compare.json").read_text() == before  # nothing was overwritten
