"""Two CPU processes under torchrun (gloo) follow one process's loss curve for the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gflow_lite.data.batching import RandomBlockSampler
from gflow_lite.training.distributed import DistContext, shard

REPO = Path(__file__).resolve().parents[1]
SETTINGS = ["--set", "max_steps=12", "eval_interval=6", "log_interval=1", "grad_accum=2", "device=cpu"]


def test_shards_are_disjoint_and_cover_the_global_batch():
    x, _ = RandomBlockSampler(torch.arange(1000), block_size=5, batch_size=8, seed=0).next_batch()
    parts = [shard(x, DistContext(rank=r, world_size=4)) for r in range(4)]
    assert all(p.shape == (2, 5) for p in parts)
    assert torch.equal(torch.cat(parts), x)
    with pytest.raises(ValueError, match="not divisible"):
        shard(x, DistContext(rank=0, world_size=3))


def _train(out: Path, *launcher: str) -> list:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    cmd = [
        sys.executable,
        *launcher,
        "-m",
        "gflow_lite",
        "train",
        "--model",
        "grassmann",
        "--preset",
        "tiny",
        "--out",
        str(out),
        *SETTINGS,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in (out / "metrics.jsonl").open()]


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
    single = _train(tmp_path / "one")
    double = _train(tmp_path / "two", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    assert [r["step"] for r in single] == [r["step"] for r in double] == list(range(1, 13))
    for a, b in zip(single, double, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5, abs=1e-5)
        assert b["tokens"] == a["tokens"]
        if "val_loss" in a:
            assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5, abs=1e-5)
    one = json.loads((tmp_path / "one" / "summary.json").read_text())
    two = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert two["hardware"]["world_size"] == 2 and one["hardware"]["world_size"] == 1
    assert two["test_ppl"] == pytest.approx(one["test_ppl"], rel=1e-4)
    assert two["test_tokens"] == one["test_tokens"]
