"""The benchmarks: each --quick variant through the CLI on tiny shapes (schema and records, no timing
asserted) and the helpers they rest on. The fused kernel itself: tests/test_fused.py."""

import argparse
import json

import pytest
import torch

from gflow_lite.bench import cli
from gflow_lite.bench.memory import measure_memory, saved_tensor_bytes
from gflow_lite.options import override, parse_assignments
from gflow_lite.bench.registry import BENCHMARKS, load
from gflow_lite.bench.report import REQUIRED_KEYS, format_table, loglog_slope
from gflow_lite.bench.timing import interleaved

TINY = {
    "scaling": ["d_model=16", "r=6", "n_heads=2", "lengths=24,48", "rounds=2", "budget_s=1"],
    "kernel": ["d_model=16", "r=6", "lengths=24,48", "rounds=2", "budget_s=1"],
    "decode": [
        "vocab_size=50",
        "d_model=16",
        "n_layers=2",
        "d_ff=32",
        "r=6",
        "n_heads=2",
        "contexts=20,40",
        "rounds=2",
        "burst=2",
    ],
    "train": ["d_model=16", "batch_size=2", "block_size=16", "steps=2", "peak_size=32"],
}
RECORD_KEYS = {
    "scaling": {"model", "seq_len", "ms", "peak_mb", "saved_mb"},
    "kernel": {"impl", "seq_len", "ms", "peak_mb", "saved_mb"},
    "decode": {"model", "context", "ms_per_token", "cache_mb"},
    "train": {"model", "tokens_per_s", "gflop_per_step", "fraction_of_peak"},
}


def run_cli(name, tmp_path, extra=()):
    path = tmp_path / f"{name}.json"
    argv = [name, "--quick", "--threads", "1", "--json", str(path)]
    for item in TINY[name]:
        argv += ["--set", item]
    assert cli.main(argv + list(extra)) == 0
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", BENCHMARKS)
def test_quick_benchmark_writes_a_complete_results_file(name, tmp_path, capsys):
    result = run_cli(name, tmp_path)
    assert all(key in result for key in REQUIRED_KEYS)
    assert result["benchmark"] == name and result["quick"] is True and result["threads"] == 1
    assert result["torch"] == torch.__version__ and result["device"] == "cpu"
    records = result["records"]
    assert records and all(RECORD_KEYS[name] <= set(r) for r in records if r.get("model") != "matmul")
    assert all(isinstance(t["met"], bool) for t in result["summary"]["targets"].values())
    out = capsys.readouterr().out
    assert f"{name}: " in out and "wrote" in out


def test_records_cover_both_models_and_every_length(tmp_path):
    result = run_cli("scaling", tmp_path, ["--malloc-retain"])
    assert {(r["model"], r["seq_len"]) for r in result["records"]} == {
        (m, L) for m in ("grassmann", "attention") for L in (24, 48)
    }
    assert all(r["peak_mb"] is not None and r["peak_mb"] > 0 and r["saved_mb"] > 0 for r in result["records"])
    assert result["malloc"].startswith(("glibc", "system"))


def test_decode_grassmann_cache_does_not_grow(tmp_path):
    result = run_cli("decode", tmp_path)
    g = [r["cache_bytes"] for r in result["records"] if r["model"] == "grassmann"]
    t = [r["cache_bytes"] for r in result["records"] if r["model"] == "transformer"]
    assert len(set(g)) == 1 and t[1] > t[0]
    assert result["summary"]["targets"]["constant_cache"]["met"]


def test_kernel_benchmark_implementations_agree(tmp_path):
    result = run_cli("kernel", tmp_path)
    diffs = result["summary"]["max_abs_diff"]
    assert set(diffs) == {"fast", "fused", "native"} and max(max(d.values()) for d in diffs.values()) < 1e-4
    assert {r["impl"] for r in result["records"]} == {"reference", "fast", "fused", "native"}
    assert result["summary"]["selected"] in ("fast", "fused", "native") and result["config"]


def test_register_adds_the_bench_subcommand():
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "decode", "--quick", "--set", "steps=2"])
    assert args.name == "decode" and args.quick and args.set == ["steps=2"] and callable(args.func)


def test_bad_settings_are_user_errors():
    with pytest.raises(ValueError, match="unknown setting 'nope'"):
        override(load("scaling").default_config(True), {"nope": "1"})
    with pytest.raises(ValueError, match="expected int"):
        override(load("scaling").default_config(True), {"rounds": "many"})
    with pytest.raises(ValueError, match="key=value"):
        parse_assignments(["rounds"])
    with pytest.raises(SystemExit):
        cli.main(["scaling", "--quick", "--set", "nope=1"])


def test_options_parse_by_field_type():
    cfg = override(load("kernel").default_config(), {"lengths": "8,16", "memory": "false", "budget_s": "2.5"})
    assert cfg.lengths == (8, 16) and cfg.memory is False and cfg.budget_s == 2.5


def test_report_helpers():
    assert loglog_slope([1, 2, 4, 8], [3, 6, 12, 24]) == pytest.approx(1.0)
    assert loglog_slope([1, 2, 4], [1, 4, 16]) == pytest.approx(2.0)
    table = format_table([{"a": 1, "b": 2.5}, {"a": 10}], ["a", "b"])
    assert table.splitlines()[-1].split() == ["10", "-"]


def test_interleaved_timing_runs_every_case_every_round():
    calls = []
    out = interleaved({"x": lambda: calls.append("x"), "y": lambda: calls.append("y")}, rounds=3, warmup=1)
    assert calls.count("x") == calls.count("y") == 4
    assert calls[2:4] == ["x", "y"] and calls[4:6] == ["y", "x"]  # rotating order after warmup
    assert all(len(t.wall) == 3 and t.median_ms >= 0 for t in out.values())


def test_memory_measures_saved_and_peak_bytes():
    lin = torch.nn.Linear(64, 64)
    x = torch.randn(128, 64, requires_grad=True)
    saved, y = saved_tensor_bytes(lambda: torch.relu(lin(x)), exclude=list(lin.parameters()))
    assert saved == 2 * 128 * 64 * 4  # the input of the linear layer and the relu output
    use = measure_memory(
        lambda: torch.relu(lin(x)), lambda y: y.sum().backward(), lin.parameters(), torch.device("cpu")
    )
    assert use.saved_bytes == saved
    assert use.peak_bytes is None or use.peak_bytes >= 128 * 64 * 4


def test_markdown_tables_come_from_the_results_files(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "report_tables.py"
    spec = importlib.util.spec_from_file_location("report_tables", path)
    report_tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report_tables)
    run_cli("decode", tmp_path)
    text = report_tables.bench_report(tmp_path)
    assert text.startswith("| benchmark | target |") and "constant cache" in text
    assert "| context | grassmann ms_per_token |" in text


def test_results_record_the_grassmann_impl(tmp_path):
    """The benchmarks run the faster path and say which: native for blocks and training, fast for decoding."""
    assert run_cli("scaling", tmp_path)["config"]["impl"] == "native"
    assert run_cli("decode", tmp_path)["config"]["lm"]["impl"] == "fast"
    train = run_cli("train", tmp_path)
    assert train["config"]["impl"] == "native"


def test_speed_ceiling_times_exactly_the_native_layers_matrix_products(tmp_path):
    """scripts/speed_ceiling.py's "matmuls" case does the FLOPs of the layer's forward+backward (counted by
    torch's flop counter on the native layer itself), and the script writes its results file."""
    import subprocess
    import sys
    from pathlib import Path

    from torch.utils.flop_counter import FlopCounterMode

    from gflow_lite.model import CausalGrassmannMixing

    scripts = Path(__file__).resolve().parents[1] / "scripts"
    sys.path.insert(0, str(scripts))
    try:
        from speed_ceiling import matmuls_of_the_kernel
    finally:
        sys.path.remove(str(scripts))
    L, d, r, offsets = 40, 24, 8, (1, 2, 4)
    with FlopCounterMode(display=False) as floor:
        matmuls_of_the_kernel(L, d, r, torch.Generator().manual_seed(0))()
    layer = CausalGrassmannMixing(d, r, offsets, impl="native")
    with FlopCounterMode(display=False) as real:
        layer(torch.randn(1, L, d, requires_grad=True)).backward(torch.randn(1, L, d))
    assert floor.get_total_flops() == real.get_total_flops() > 0
    out = tmp_path / "ceiling.json"
    subprocess.run([sys.executable, str(scripts / "speed_ceiling.py"), "--lengths", "16", "--rounds", "2",
                    "--json", str(out)], check=True, capture_output=True)
    data = json.loads(out.read_text())
    assert {"git_commit", "hardware", "config", "wall_time_s"} <= set(data)
    assert set(data["records"][0]["cpu_ms"]) == {"attention", "native", "fused", "fast", "matmuls"}
