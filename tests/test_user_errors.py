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
