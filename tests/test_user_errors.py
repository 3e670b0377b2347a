"""A user's mistakes end in one clear line, never a traceback, a hang or a lost file (the fault cases that
a hostile user found where no other test walked). Each test runs the real command line in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

COMMANDS = ["train", "eval", "generate", "compare", "bench", "snli"]


def run_cli(*args: str, env: dict | None = None, cwd=None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gflow_lite", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)


@pytest.mark.parametrize("data", ["missing", "empty"])
def test_help_works_without_the_data_folder(tmp_path, data):
    """`--help` of every command reads no data file (a module used to checksum published.csv at import)."""
    folder = tmp_path / "data"
    if data == "empty":
        folder.mkdir()
    env = {"GFLOW_DATA_DIR": str(folder)}
    top = run_cli("--help", env=env)
    assert top.returncode == 0 and "Traceback" not in top.stderr, top.stderr
    for command in COMMANDS if data == "empty" else COMMANDS[:1]:
        done = run_cli(command, "--help", env=env)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (command, done.stderr)
        assert "usage:" in done.stdout


def test_a_missing_data_folder_is_one_clear_line(tmp_path):
    done = run_cli("train", "--model", "grassmann", "--preset", "tiny", "--out", str(tmp_path / "run"),
                   env={"GFLOW_DATA_DIR": str(tmp_path / "nowhere")})
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "SHA256SUMS" in done.stderr and "GFLOW_DATA_DIR" in done.stderr


def test_a_users_own_files_in_out_are_never_deleted(tmp_path):
    """`--out` on a folder with the user's own config.json and metrics.jsonl (no run marker): refused, and
    both files are left as they were (they used to be taken for a failed start and deleted)."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"my": "settings"}')
    (folder / "metrics.jsonl").write_text('{"my": 1}\n')
    for extra in ([], ["--resume"]):
        done = run_cli("train", "--model", "grassmann", "--preset", "tiny", "--out", str(folder), *extra)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert "not a run the trainer started" in done.stderr or "holds no run" in done.stderr, done.stderr
        assert (folder / "config.json").read_text() == '{"my": "settings"}'
        assert (folder / "metrics.jsonl").read_text() == '{"my": 1}\n'
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metrics.jsonl"]


@pytest.mark.parametrize("value,match", [("", "is empty"), ("x" * 300, "at most 255")])
def test_out_that_cannot_name_a_folder_is_refused_before_anything_is_written(tmp_path, value, match):
    done = run_cli("train", "--model", "grassmann", "--preset", "tiny", "--out", value, cwd=tmp_path)
    assert done.returncode == 2 and match in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # `--out ""` used to write the run into the current folder


def test_outputs_below_a_file_fail_before_the_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bench = run_cli("bench", "decode", "--quick", "--json", str(blocker / "decode.json"))
    assert bench.returncode != 0 and "is below" in bench.stderr and "Traceback" not in bench.stderr
    assert "latency" not in bench.stdout  # refused before the benchmark ran, not after
    compare = run_cli("compare", "--preset", "tiny", "--seeds", "1", "--out", str(blocker / "cmp"))
    assert compare.returncode != 0 and "is below" in compare.stderr and "Traceback" not in compare.stderr
