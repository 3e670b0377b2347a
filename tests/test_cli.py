"""``python -m gflow_lite`` end to end on the tiny preset (train, resume, eval, generate) and its errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gflow_lite import cli
from gflow_lite.data import paths
from gflow_lite.training.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "TQDM_DISABLE": "1",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "gflow_lite", *args], capture_output=True, text=True, env=full_env, timeout=300
    )


def main_in_process(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``cli.main`` here (faster than a subprocess); returns (status, stdout, stderr)."""
    try:
        status = cli.main(list(args))
    except SystemExit as stop:
        status = stop.code
    out, err = capsys.readouterr()
    return status, out, err


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny Grassmann run, interrupted at step 20 and resumed to its end (step 40), via subprocesses."""
    run = tmp_path_factory.mktemp("cli") / "run"
    first = run_cli(
        "train", "--model", "grassmann", "--preset", "tiny", "--out", str(run), "--stop-after", "20"
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"run_dir": str(run), "status": "stopped", "step": 20}
    second = run_cli("train", "--resume", "--out", str(run))
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout)
    assert result["status"] == "finished" and result["step"] == 40 and result["model"] == "grassmann"
    return run


def test_train_resume_writes_a_complete_run(tiny_run):
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["preset"] == "tiny"
    steps = [json.loads(line)["step"] for line in (tiny_run / "metrics.jsonl").open()]
    assert steps == [10, 20, 30, 40]


def test_eval_prints_json_matching_the_summary(tiny_run):
    done = run_cli("eval", "--checkpoint", str(tiny_run / "best.pt"), "--split", "test")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert result["split"] == "test" and result["tokens"] == summary["test_tokens"] == 3999
    assert result["ppl"] == pytest.approx(summary["test_ppl"], rel=1e-6)


def test_generate_continues_the_prompt_reproducibly(tiny_run, capsys):
    done = run_cli(
        "generate",
        "--checkpoint",
        str(tiny_run / "last.pt"),
        "--prompt",
        "The game was",
        "--max-new-tokens",
        "12",
        "--seed",
        "3",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["text"].startswith("The game was") and result["new_tokens"] == 12
    status, out, _ = main_in_process(
        capsys,
        "generate",
        "--checkpoint",
        str(tiny_run / "last.pt"),
        "--prompt",
        "The game was",
        "--max-new-tokens",
        "12",
        "--seed",
        "3",
        "--device",
        "cpu",
    )
    assert status == 0 and out.rstrip("\n") == result["text"]


@pytest.mark.parametrize("command", [[], ["train"], ["eval"], ["generate"]])
def test_every_subcommand_has_help(capsys, command):
    status, out, _ = main_in_process(capsys, *command, "--help")
    assert status == 0 and "usage: gflow_lite" in out


def _one_line_error(status: int, err: str, *needles: str) -> None:
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_existing_run_without_resume_is_refused_and_untouched(tiny_run, capsys):
    before = {p.name: p.read_bytes() for p in tiny_run.iterdir()}
    status, _, err = main_in_process(
        capsys, "train", "--model", "grassmann", "--preset", "tiny", "--out", str(tiny_run)
    )
    _one_line_error(status, err, "already holds a run", "--resume")
    assert {p.name: p.read_bytes() for p in tiny_run.iterdir()} == before


def test_unknown_preset_key_and_wrong_type(tmp_path, capsys):
    status, _, err = main_in_process(
        capsys, "train", "--model", "grassmann", "--preset", "giant", "--out", str(tmp_path / "a")
    )
    assert status == 2 and "invalid choice: 'giant'" in err
    status, _, err = main_in_process(
        capsys,
        "train",
        "--model",
        "grassmann",
        "--preset",
        "tiny",
        "--set",
        "depth=3",
        "--out",
        str(tmp_path / "b"),
    )
    _one_line_error(status, err, "unknown override key 'depth'", "valid keys:", "n_layers")
    status, _, err = main_in_process(
        capsys,
        "train",
        "--model",
        "grassmann",
        "--preset",
        "tiny",
        "--set",
        "lr=fast",
        "--out",
        str(tmp_path / "c"),
    )
    _one_line_error(status, err, "lr='fast' is not a number")
    status, _, err = main_in_process(capsys, "train", "--preset", "tiny", "--out", str(tmp_path / "d"))
    _one_line_error(status, err, "needs --model and --preset")
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_missing_data_and_checksum_mismatch(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(empty))
    status, _, err = main_in_process(
        capsys, "train", "--model", "grassmann", "--preset", "tiny", "--out", str(tmp_path / "r")
    )
    _one_line_error(status, err, "SHA256SUMS not found")

    broken = tmp_path / "broken"
    shutil.copytree(REPO / "data", broken)
    target = broken / "wikitext-2" / "wiki.train.tokens.gz"
    target.chmod(0o644)
    target.write_bytes(target.read_bytes()[:-10])
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(broken))
    monkeypatch.setenv(paths.CACHE_DIR_ENV, str(tmp_path / "cache"))
    status, _, err = main_in_process(
        capsys, "train", "--model", "transformer", "--preset", "tiny", "--out", str(tmp_path / "r")
    )
    _one_line_error(
        status, err, "checksum mismatch", str(target), "git checkout -- data/wikitext-2/wiki.train.tokens.gz"
    )
    assert not (tmp_path / "r").exists()


def test_checkpoint_mismatches(tiny_run, tmp_path, capsys):
    status, _, err = main_in_process(
        capsys, "eval", "--checkpoint", str(tiny_run / "best.pt"), "--model", "transformer"
    )
    _one_line_error(status, err, "holds a 'grassmann' model but 'transformer' was requested")
    status, _, err = main_in_process(
        capsys, "train", "--model", "transformer", "--preset", "tiny", "--out", str(tiny_run), "--resume"
    )
    _one_line_error(status, err, "holds a 'grassmann' run")

    payload = torch.load(tiny_run / "best.pt", weights_only=True)
    payload["tokenizer"]["fingerprint"] = "bpe-512-0000000000000000-lines-v1"  # trained on other data
    save_checkpoint(tmp_path / "other.pt", payload)  # a valid file (its integrity hash recomputed)
    status, _, err = main_in_process(capsys, "eval", "--checkpoint", str(tmp_path / "other.pt"))
    _one_line_error(status, err, "tokenizer mismatch", "bpe-512-0000000000000000")

    (tmp_path / "cut.pt").write_bytes((tiny_run / "best.pt").read_bytes()[:3000])
    status, _, err = main_in_process(
        capsys, "generate", "--checkpoint", str(tmp_path / "cut.pt"), "--prompt", "x"
    )
    _one_line_error(status, err, "corrupt or truncated")
