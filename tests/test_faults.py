"""Faults and bad inputs, tried as a new user would (issue 10, section 2).

Every case asserts the exit status (or the exception), the message (what is wrong, how to fix it) and
that nothing earlier was lost. Cases that need to mount a filesystem (a read-only one, a tiny full one)
skip, with the reason, where the machine does not allow it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gflow_lite import cli
from gflow_lite.data import token_cache
from gflow_lite.data.errors import CacheWriteError, DataError
from gflow_lite.data.tokenization import ByteBPETokenizer
from gflow_lite.options import ConfigError, env_flag, override, parse_assignments, parse_bool
from gflow_lite.training import checkpoint as ckpt
from gflow_lite.training import trainer as trainer_module
from gflow_lite.training.config import TrainConfig, apply_overrides
from gflow_lite.training.memory import MemoryEstimateError, check_fits
from gflow_lite.training.presets import resolve
from gflow_lite.training.rundir import RunDir, RunDirError
from gflow_lite.training.trainer import NonFiniteLossError, train

REPO = Path(__file__).resolve().parents[1]
ENV = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


# ------------------------------------------------------------------------------------------- helpers
def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gflow_lite", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV, **(env or {})},
        timeout=timeout,
    )


def in_process(capsys, *args: str) -> tuple[int, str, str]:
    try:
        status = cli.main(list(args))
    except SystemExit as stop:
        status = stop.code
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(status: int, err: str, *needles: str, code: int = 1) -> str:
    assert status == code, err
    lines = [line for line in err.strip().splitlines() if "error:" in line]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def snapshot(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file() and p.name != ".lock"}


def tiny(**overrides: str) -> TrainConfig:
    return resolve("tiny", "grassmann", {"max_steps": "4", "eval_interval": "2", "log_interval": "1", **overrides})


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished 4-step tiny run (checkpoints at steps 2 and 4)."""
    run = tmp_path_factory.mktemp("faults") / "run"
    torch.set_num_threads(1)
    result = train(tiny(), run)
    assert result.status == "finished"
    return run


@contextlib.contextmanager
def mounted_tmpfs(path: Path, *options: str):
    """A tmpfs at ``path`` (root only); skips the test with the reason where it cannot be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'}); needs root or CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


# =========================================================================== configuration (API level)
@pytest.mark.parametrize("word,value", [("false", False), ("FALSE", False), ("0", False), ("no", False),
                                        ("off", False), ("true", True), ("Yes", True), ("on", True), ("1", True)])
def test_bool_fields_given_as_words_are_parsed(word, value):
    cfg = TrainConfig(compile=word, deterministic=word)
    assert cfg.compile is value and cfg.deterministic is value
    assert apply_overrides(tiny(), {"tie_weights": word, "normalize": word}).model.tie_weights is value


@pytest.mark.parametrize("bad", ["maybe", "", 2, None, 1.0])
def test_bool_fields_refuse_non_bools(bad):
    with pytest.raises(ConfigError, match=r"compile=.* is not a boolean"):
        TrainConfig(compile=bad)


@pytest.mark.parametrize("field", ["normalize", "tie_weights", "out_proj"])
def test_lmconfig_bool_given_as_string_is_never_taken_as_true(field):
    from gflow_lite.model import GrassmannLM, LMConfig
    from gflow_lite.options import check_lm_config

    cfg = LMConfig(vocab_size=20, block_size=8, d_model=8, n_layers=1, d_ff=8, r=4, n_heads=2, **{field: "false"})
    with pytest.raises(AssertionError, match="check_lm_config"):  # the model never reads "false" as true...
        GrassmannLM(cfg)
    assert getattr(check_lm_config(cfg), field) is False  # ...and the check where input arrives parses it
    with pytest.raises(ValueError, match=field):
        check_lm_config(LMConfig(**{field: "maybe"}))


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("weight_decay", "-0.1", "weight_decay=-0.1 must be a finite number >= 0"),
        ("weight_decay", "nan", "weight_decay=nan"),
        ("lr", "nan", "lr=nan"),
        ("lr", "inf", "lr=inf"),
        ("grad_clip", "inf", "grad_clip"),
        ("epochs", "nan", "epochs=nan"),
        ("betas", "1.5,0.9", "betas=.* must be two numbers in \\[0, 1\\)"),
        ("init_std", "-0.02", "init_std=-0.02"),
        ("init_std", "nan", "init_std=nan"),
        ("batch_size", "0", "batch_size and grad_accum must be >= 1"),
        ("max_steps", "0", "max_steps=0 must be >= 1"),
        ("compile", "maybe", "compile='maybe' is not a boolean"),
        ("r", "big", "r='big' is not an integer"),
        ("colour", "red", "unknown override key 'colour'; valid keys:"),
        ("vocab_size", "10", "follows the tokenizer"),
    ],
)
def test_bad_config_values_are_refused_with_the_field_named(key, value, match):
    with pytest.raises(ConfigError, match=match):
        resolve("tiny", "grassmann", {key: value})


def test_one_parser_for_train_compare_and_bench():
    from gflow_lite.bench.registry import load

    with pytest.raises(ConfigError, match="not a boolean"):
        override(load("kernel").default_config(), {"memory": "maybe"})
    assert override(load("kernel").default_config(), {"memory": "false"}).memory is False
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignments(["r"])


def test_environment_booleans_use_the_same_words(monkeypatch):
    monkeypatch.setenv("GFLOW_TEST_FLAG", "false")
    assert env_flag("GFLOW_TEST_FLAG", default=True) is False
    monkeypatch.setenv("GFLOW_TEST_FLAG", "")
    assert env_flag("GFLOW_TEST_FLAG", default=True) is True
    monkeypatch.setenv("GFLOW_TEST_FLAG", "perhaps")
    with pytest.raises(ConfigError, match="GFLOW_TEST_FLAG='perhaps' is not a boolean; set it to 1/0"):
        env_flag("GFLOW_TEST_FLAG")
    assert parse_bool(True) is True


# ============================================================================= command-line arguments
@pytest.mark.parametrize(
    "args,needle",
    [
        (["eval", "--checkpoint", "x.pt", "--batch-size", "-4"], "--batch-size: -4 must be a finite number > 0"),
        (["eval", "--checkpoint", "x.pt", "--batch-size", "0"], "--batch-size: 0 must be a finite number > 0"),
        (["train", "--model", "grassmann", "--preset", "tiny", "--out", "o", "--stop-after", "0"], "--stop-after"),
        (["train", "--model", "grassmann", "--preset", "tiny", "--out", "o", "--stop-after", "-3"], "--stop-after"),
        (["generate", "--checkpoint", "x.pt", "--prompt", "a", "--temperature", "nan"], "--temperature: nan"),
        (["generate", "--checkpoint", "x.pt", "--prompt", "a", "--temperature", "0"], "--temperature: 0"),
        (["generate", "--checkpoint", "x.pt", "--prompt", "a", "--top-k", "-3"], "--top-k: -3 must be"),
        (["generate", "--checkpoint", "x.pt", "--prompt", "a", "--top-k", "0"], "--top-k: 0 must be"),
        (["generate", "--checkpoint", "x.pt", "--prompt", "a", "--max-new-tokens", "-1"], "--max-new-tokens"),
    ],
)
def test_bad_numeric_flags_are_refused_by_argparse(capsys, tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    status, _, err = in_process(capsys, *args)
    one_line_error(status, err, needle, code=2)
    assert not any(tmp_path.iterdir()), "nothing may be written"


@pytest.mark.parametrize(
    "setting,needle",
    [("weight_decay=-1", "weight_decay=-1.0 must be"), ("init_std=nan", "init_std=nan"),
     ("compile=maybe", "compile='maybe' is not a boolean"), ("batch_size=0", "batch_size")],
)
def test_bad_settings_on_the_command_line_are_one_line_errors(capsys, tmp_path, setting, needle):
    out = tmp_path / "run"
    status, _, err = in_process(capsys, "train", "--model", "grassmann", "--preset", "tiny", "--out", str(out),
                                "--set", setting)
    one_line_error(status, err, needle)
    assert not out.exists()


def test_an_internal_bug_keeps_its_traceback(capsys, tmp_path, monkeypatch):
    from gflow_lite.training import cli as training_cli

    def broken(*args, **kwargs):
        raise RuntimeError("an internal bug")

    monkeypatch.setattr(training_cli, "train", broken)
    with pytest.raises(RuntimeError, match="an internal bug"):
        cli.main(["train", "--model", "grassmann", "--preset", "tiny", "--out", str(tmp_path / "r")])

    def broken_value(*args, **kwargs):
        raise ValueError("an internal ValueError")

    monkeypatch.setattr(training_cli, "train", broken_value)
    with pytest.raises(ValueError, match="an internal ValueError"):
        cli.main(["train", "--model", "grassmann", "--preset", "tiny", "--out", str(tmp_path / "r")])


def test_compare_run_failures_are_user_errors_only_for_compare():
    _, errors = cli.build_parser()
    from gflow_lite.experiments.compare import CompareRunError

    assert issubclass(CompareRunError, errors["compare"]) and not issubclass(CompareRunError, errors["train"])
    assert not issubclass(RuntimeError, errors["train"]) and not issubclass(ValueError, errors["train"])


# ===================================================================================== run directory
def test_out_below_a_file_fails_before_loading_anything(capsys, tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("keep me")
    monkeypatch.setattr(trainer_module, "get_tokenizer", lambda *a, **k: pytest.fail("data was loaded"))
    status, _, err = in_process(capsys, "train", "--model", "grassmann", "--preset", "tiny",
                                "--out", str(tmp_path / "afile" / "run"))
    one_line_error(status, err, "is below", "afile", "which is a file", "choose another --out")
    status, _, err = in_process(capsys, "train", "--model", "grassmann", "--preset", "tiny",
                                "--out", str(tmp_path / "afile"))
    one_line_error(status, err, "is not a directory")
    assert (tmp_path / "afile").read_text() == "keep me"


def test_out_on_a_read_only_filesystem_fails_before_loading_anything(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "get_tokenizer", lambda *a, **k: pytest.fail("data was loaded"))
    with mounted_tmpfs(tmp_path / "ro", "ro", "size=1m") as ro:
        status, _, err = in_process(capsys, "train", "--model", "grassmann", "--preset", "tiny",
                                    "--out", str(ro / "run"))
        one_line_error(status, err, "cannot write to --out", "Read-only file system", "writable directory")


def test_a_second_writer_is_refused_and_the_first_run_is_untouched(tmp_path, monkeypatch):
    run = tmp_path / "run"
    holder = RunDir(run)
    holder.lock()  # another training holds the directory
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    monkeypatch.setattr(trainer_module, "get_tokenizer", lambda *a, **k: pytest.fail("data was loaded"))
    with pytest.raises(RunDirError, match=r"in use by another training \(pid \d+\); wait for it"):
        train(tiny(), run)
    assert (run / "metrics.jsonl").read_text() == '{"step": 1}\n'
    holder.unlock()


@pytest.mark.slow
def test_two_concurrent_trainings_into_one_out(tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "gflow_lite", "train", "--model", "transformer", "--preset", "tiny", "--out",
         str(run), "--set", "max_steps=100000", "eval_interval=100000", "log_interval=5"],
        env={**os.environ, **ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not ((run / "metrics.jsonl").exists()
                                              and (run / "metrics.jsonl").stat().st_size):
            time.sleep(0.1)
        second = run_cli("train", "--model", "transformer", "--preset", "tiny", "--out", str(run))
        one_line_error(second.returncode, second.stderr, "in use by another training", "choose another --out")
        config_before = (run / "config.json").read_bytes()
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 128 + signal.SIGTERM, err
    assert (run / "config.json").read_bytes() == config_before
    assert ckpt.load_checkpoint(run / "last.pt")["step"] >= 5
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").open()]
    assert steps == sorted(steps), "metrics.jsonl interleaves two runs"


def test_a_run_that_diverged_before_its_first_checkpoint_can_be_restarted(tmp_path, capsys):
    run = tmp_path / "run"
    bad = tiny(lr="1e6", min_lr="1e6", warmup_steps="0", grad_clip="0", eval_interval="1")
    with pytest.raises(NonFiniteLossError, match="no checkpoint had been written yet"):
        train(bad, run)
    assert (run / "config.json").exists() and not (run / "last.pt").exists()
    capsys.readouterr()
    result = train(tiny(), run)  # a fresh start is accepted...
    assert result.status == "finished"
    assert "stopped before its first checkpoint; starting it afresh" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["lr"] == tiny().lr  # the new run's, not the old


def test_resume_of_a_run_without_checkpoint_starts_from_step_zero(tmp_path, capsys):
    run = tmp_path / "run"
    bad = tiny(lr="1e6", min_lr="1e6", warmup_steps="0", grad_clip="0", eval_interval="1")
    with pytest.raises(NonFiniteLossError):
        train(bad, run)
    capsys.readouterr()
    result = train(tiny(), run, resume=True, stop_after_step=1)  # ...and so is --resume
    assert result.status == "stopped" and result.step == 1
    assert "has no checkpoint yet" in capsys.readouterr().err
    assert ckpt.load_checkpoint(run / "last.pt")["step"] == 1


@pytest.mark.slow
def test_kill_9_before_the_first_checkpoint_leaves_a_restartable_directory(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gflow_lite", "train", "--model", "grassmann", "--preset", "tiny", "--out",
         str(run), "--set", "max_steps=100000", "eval_interval=100000", "log_interval=1"],
        env={**os.environ, **ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not ((run / "metrics.jsonl").exists()
                                          and (run / "metrics.jsonl").stat().st_size):
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    assert not (run / "last.pt").exists()
    again = run_cli("train", "--resume", "--out", str(run), "--stop-after", "2")
    assert again.returncode == 0, again.stderr
    assert "has no checkpoint yet" in again.stderr and json.loads(again.stdout)["step"] == 2


def test_existing_run_is_refused_and_untouched(finished_run, capsys):
    before = snapshot(finished_run)
    status, _, err = in_process(capsys, "train", "--model", "grassmann", "--preset", "tiny",
                                "--out", str(finished_run))
    one_line_error(status, err, "already holds a run", "--resume")
    assert snapshot(finished_run) == before


def test_resume_of_nothing_is_refused_and_creates_nothing(capsys, tmp_path):
    status, _, err = in_process(capsys, "train", "--model", "grassmann", "--preset", "tiny",
                                "--out", str(tmp_path / "a" / "b"), "--resume")
    one_line_error(status, err, "cannot resume", "holds no run")
    assert not (tmp_path / "a").exists()


def test_resume_with_best_but_no_last_continues_from_best(finished_run, tmp_path, capsys):
    """best.pt holds the whole training state of its step (a full disk can stop a run between best.pt and
    last.pt): --resume continues from it, exactly; without --resume the run is refused, not overwritten."""
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "last.pt").unlink()
    (run / "summary.json").unlink()
    with pytest.raises(RunDirError, match="already holds a run"):
        train(tiny(), run)
    result = train(tiny(), run, resume=True)
    assert result.status == "finished" and "resuming from best.pt" in capsys.readouterr().err
    again, first = (json.loads((r / "summary.json").read_text()) for r in (run, finished_run))
    assert again["best_step"] == first["best_step"] and again["test_ppl"] == first["test_ppl"]
    (run / "last.pt").unlink(missing_ok=True)  # a finished run without last.pt: nothing to resume
    with pytest.raises(RunDirError, match="last.pt not found although the run has other results"):
        train(tiny(), run, resume=True)


# ======================================================================================= checkpoints
def flip_bit(src: Path, dst: Path, fraction: float = 0.6) -> None:
    """Copy ``src`` to ``dst`` with one bit flipped inside the largest stored tensor."""
    import zipfile

    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        header = info.header_offset
        name_len = int.from_bytes(data[header + 26:header + 28], "little")
        extra_len = int.from_bytes(data[header + 28:header + 30], "little")
        start = header + 30 + name_len + extra_len
    data[start + int(info.file_size * fraction)] ^= 0x10
    dst.write_bytes(bytes(data))


def test_a_flipped_bit_in_the_weights_is_detected(finished_run, tmp_path):
    flip_bit(finished_run / "best.pt", tmp_path / "flipped.pt")
    with pytest.raises(ckpt.CheckpointCorruptError, match="do not match the integrity hash.*use another checkpoint"):
        ckpt.load_checkpoint(tmp_path / "flipped.pt")
    assert ckpt.load_checkpoint(finished_run / "best.pt")["step"] >= 2


@pytest.mark.parametrize("command", ["eval", "generate"])
def test_a_flipped_bit_fails_eval_and_generate(finished_run, tmp_path, capsys, command):
    flip_bit(finished_run / "best.pt", tmp_path / "flipped.pt")
    extra = ["--prompt", "The"] if command == "generate" else []
    status, out, err = in_process(capsys, command, "--checkpoint", str(tmp_path / "flipped.pt"), *extra)
    one_line_error(status, err, "is corrupt", "integrity hash")
    assert out == ""


def test_a_tampered_integrity_entry_is_detected(finished_run, tmp_path):
    payload = torch.load(finished_run / "last.pt", weights_only=True)
    payload["step"] = 999  # edited without recomputing the hash
    torch.save(payload, tmp_path / "edited.pt")
    with pytest.raises(ckpt.CheckpointCorruptError, match="integrity hash"):
        ckpt.load_checkpoint(tmp_path / "edited.pt")


def test_a_truncated_checkpoint_is_reported(finished_run, tmp_path, capsys):
    (tmp_path / "cut.pt").write_bytes((finished_run / "last.pt").read_bytes()[:5000])
    status, _, err = in_process(capsys, "eval", "--checkpoint", str(tmp_path / "cut.pt"))
    one_line_error(status, err, "corrupt or truncated", "use another checkpoint")


def _small_payload(step: int) -> dict:
    return {"arch": "grassmann", "step": step, "model": {"w": torch.full((256, 256), float(step))}}


def test_disk_full_before_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save_checkpoint(path, _small_payload(1))
    before = path.read_bytes()
    monkeypatch.setattr(ckpt.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    with pytest.raises(ckpt.CheckpointWriteError, match=r"disk full writing .*last\.pt.*the previous last\.pt is intact"):
        ckpt.save_checkpoint(path, _small_payload(2))
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_enospc_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save_checkpoint(path, _small_payload(1))
    real_open = ckpt.atomic_open

    @contextlib.contextmanager
    def failing_open(target, mode="wb"):
        with real_open(target, mode) as handle:
            handle.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
            yield handle  # pragma: no cover

    monkeypatch.setattr(ckpt, "atomic_open", failing_open)
    with pytest.raises(ckpt.CheckpointWriteError, match="disk full writing .*the previous last.pt is intact"):
        ckpt.save_checkpoint(path, _small_payload(2))
    assert ckpt.load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"], "the partial temporary file was removed"


def test_a_real_full_filesystem(tmp_path):
    with mounted_tmpfs(tmp_path / "small", "size=400k") as small:
        path = small / "last.pt"
        ckpt.save_checkpoint(path, _small_payload(1))  # 256 KiB of weights: fits once, not twice
        with pytest.raises(ckpt.CheckpointWriteError, match="disk full writing .*previous last.pt is intact"):
            ckpt.save_checkpoint(path, _small_payload(2))
        assert ckpt.load_checkpoint(path)["step"] == 1
        assert [p.name for p in small.iterdir()] == ["last.pt"]


def test_disk_full_during_training_is_one_line_and_keeps_last_good(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    train(tiny(), run, stop_after_step=2)
    before = snapshot(run)
    real_usage = shutil.disk_usage
    monkeypatch.setattr(ckpt.shutil, "disk_usage",
                        lambda p: real_usage(p)._replace(free=0) if str(run) in str(p) else real_usage(p))
    status, _, err = in_process(capsys, "train", "--resume", "--out", str(run))
    one_line_error(status, err, "disk full writing", "is intact", "free some space")
    after = snapshot(run)
    assert after["last.pt"] == before["last.pt"] and after["best.pt"] == before["best.pt"]


def test_best_is_written_before_last(tmp_path, monkeypatch):
    order = []
    real_save = trainer_module.save_checkpoint
    monkeypatch.setattr(trainer_module, "save_checkpoint",
                        lambda path, payload: (order.append(Path(path).name), real_save(path, payload)))
    train(tiny(max_steps="2"), tmp_path / "run")
    assert order == ["best.pt", "last.pt"]


def test_a_death_between_best_and_last_leaves_them_consistent(tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(tiny(), run, stop_after_step=2)
    real_save = trainer_module.save_checkpoint

    def dies_after_best(path, payload):
        real_save(path, payload)
        if Path(path).name == "best.pt":
            raise KeyboardInterrupt("killed between best.pt and last.pt")

    monkeypatch.setattr(trainer_module, "save_checkpoint", dies_after_best)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(), run, resume=True)
    monkeypatch.setattr(trainer_module, "save_checkpoint", real_save)
    last, best = ckpt.load_checkpoint(run / "last.pt"), ckpt.load_checkpoint(run / "best.pt")
    assert best["step"] == 4 and last["step"] == 2 and last["best_step"] <= best["step"]
    result = train(tiny(), run, resume=True)  # the resumed run recomputes step 4 and agrees with best.pt
    assert result.summary["best_step"] == ckpt.load_checkpoint(run / "best.pt")["step"]


KILL_DURING_WRITE = textwrap.dedent(
    """
    import contextlib, sys, time, torch
    from pathlib import Path
    from gflow_lite.training import checkpoint as ckpt
    path, marker = Path(sys.argv[1]), Path(sys.argv[2])
    ckpt.save_checkpoint(path, {"step": 1, "model": {"w": torch.ones(512, 512)}})
    real_open = ckpt.atomic_open

    @contextlib.contextmanager
    def slow_open(target, mode="wb"):
        with real_open(target, mode) as handle:
            class Slow:
                def write(self, data):
                    handle.write(bytes(data)[: len(data) // 2]); handle.flush()
                    marker.write_text("half written"); time.sleep(600)
            yield Slow()

    ckpt.atomic_open = slow_open
    ckpt.save_checkpoint(path, {"step": 2, "model": {"w": torch.zeros(512, 512)}})
    """
)


@pytest.mark.slow
def test_kill_9_during_a_checkpoint_write(tmp_path):
    path, marker = tmp_path / "last.pt", tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", KILL_DURING_WRITE, str(path), str(marker)],
                            env={**os.environ, **ENV})
    deadline = time.time() + 120
    while time.time() < deadline and not marker.exists():
        time.sleep(0.05)
    assert marker.exists(), "the writer never reached the middle of its write"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    stray = [p.name for p in tmp_path.iterdir() if p.name.startswith(".last.pt.tmp-")]
    assert len(stray) == 1, "the half-written temporary file is left, beside an intact last.pt"
    assert ckpt.load_checkpoint(path)["step"] == 1


# ============================================================================================= signals
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_a_resumable_checkpoint(tmp_path, sig):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gflow_lite", "train", "--model", "grassmann", "--preset", "tiny", "--out",
         str(run), "--set", "max_steps=100000", "eval_interval=100000", "log_interval=2"],
        env={**os.environ, **ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not ((run / "metrics.jsonl").exists()
                                          and (run / "metrics.jsonl").stat().st_size):
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert f"{signal.Signals(sig).name} received: saved" in err and "--resume" in err
    step = ckpt.load_checkpoint(run / "last.pt")["step"]
    resumed = run_cli("train", "--resume", "--out", str(run), "--stop-after", str(step + 1))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["step"] == step + 1


# ================================================================================================ data
def test_unwritable_token_cache_below_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    proc = run_cli("train", "--model", "grassmann", "--preset", "tiny", "--out", str(tmp_path / "run"),
                   env={"GFLOW_CACHE_DIR": str(tmp_path / "afile" / "cache")})
    line = one_line_error(proc.returncode, proc.stderr, "cache", "GFLOW_CACHE_DIR")
    assert "Traceback" not in proc.stderr, line
    assert (tmp_path / "afile").read_text() == "x" and not (tmp_path / "run").exists()


def test_read_only_token_cache(tmp_path, monkeypatch):
    with mounted_tmpfs(tmp_path / "ro", "ro", "size=1m") as ro:
        monkeypatch.setenv("GFLOW_CACHE_DIR", str(ro))
        with pytest.raises(CacheWriteError, match=r"cannot write the cache file .*Read-only file system.*GFLOW_CACHE_DIR"):
            token_cache.save_cached(token_cache.cache_path("wikitext-2", "x.npy"), np.arange(5, dtype=np.uint16))
        with pytest.raises(CacheWriteError, match="Read-only file system"):
            token_cache.save_cached_text(token_cache.cache_path("tokenizers", "t.json"), "{}")
    assert issubclass(CacheWriteError, DataError)


def test_full_token_cache_says_disk_full(tmp_path, monkeypatch):
    monkeypatch.setenv("GFLOW_CACHE_DIR", str(tmp_path))
    real_open = token_cache.atomic_open

    @contextlib.contextmanager
    def full(target, mode="wb"):
        with real_open(target, mode):
            raise OSError(errno.ENOSPC, "No space left on device")
        yield  # pragma: no cover

    monkeypatch.setattr(token_cache, "atomic_open", full)
    with pytest.raises(CacheWriteError, match="disk full writing the cache file"):
        token_cache.save_cached(tmp_path / "a.npy", np.arange(3))


def test_an_edited_token_id_cache_is_a_miss(tmp_path):
    path = tmp_path / "ids.npy"
    token_cache.save_cached(path, np.arange(100, dtype=np.uint16))
    array = np.load(path)
    array[5] = 7
    np.save(path, array)
    assert token_cache.load_cached(path) is None
    rebuilt = token_cache.cached_array(path, lambda: np.arange(100, dtype=np.uint16))
    assert rebuilt[5] == 5 and token_cache.load_cached(path) is not None


@pytest.fixture(scope="module")
def bpe_cache(tmp_path_factory):
    """A private cache directory holding the trained BPE-512 tokenizer (its JSON and the sidecar)."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GFLOW_CACHE_DIR", str(root))
        tok = ByteBPETokenizer.from_train_split(512)
    (path,) = [p for p in (root / "tokenizers").glob("bpe-512-*.json") if not p.name.endswith(".sha256.json")]
    assert token_cache.sidecar(path).is_file()
    return root, path, tok.fingerprint


@pytest.mark.parametrize("damage", ["edit", "invalid_json", "no_sidecar"])
def test_a_changed_tokenizer_cache_is_retrained_with_a_note(bpe_cache, tmp_path, monkeypatch, capsys, damage):
    root, original, fingerprint = bpe_cache
    cache = tmp_path / "cache"
    shutil.copytree(root, cache)
    path = cache / "tokenizers" / original.name
    if damage == "edit":  # still valid JSON: one merge changed
        data = json.loads(path.read_text())
        data["model"]["merges"][10], data["model"]["merges"][11] = data["model"]["merges"][11], data["model"]["merges"][10]
        path.write_text(json.dumps(data))
    elif damage == "invalid_json":
        path.write_text(path.read_text()[:1000])
    else:
        token_cache.sidecar(path).unlink()
    monkeypatch.setenv("GFLOW_CACHE_DIR", str(cache))
    tok = ByteBPETokenizer.from_train_split(512)
    assert tok.fingerprint == fingerprint, "the rebuilt tokenizer is the one the checkpoints were trained with"
    assert "does not match the hash written beside it" in capsys.readouterr().err
    assert token_cache.load_cached_text(path) is not None


# ============================================================================================== memory
def test_a_batch_that_cannot_fit_is_refused_before_training(capsys, tmp_path):
    out = tmp_path / "run"
    start = time.time()
    status, _, err = in_process(capsys, "train", "--model", "grassmann", "--preset", "tiny", "--out", str(out),
                                "--set", "batch_size=10000000")
    one_line_error(status, err, "batch_size 10000000 x block_size 32 needs about", "GiB are available",
                   "lower batch_size")
    assert time.time() - start < 120 and not out.exists()


def test_memory_check_against_a_given_budget(monkeypatch):
    from gflow_lite.model import build_model

    cfg = tiny().model
    model = build_model("grassmann", cfg)
    estimate = check_fits(model, batch=8, block_size=32, vocab_size=cfg.vocab_size, device=torch.device("cpu"),
                          available=2**30)
    assert estimate is not None and 0 < estimate.total_bytes < 2**30
    with pytest.raises(MemoryEstimateError, match=r"at most about \d+ per process fits"):
        check_fits(model, batch=10**6, block_size=32, vocab_size=cfg.vocab_size, device=torch.device("cpu"),
                   available=2**30)
    monkeypatch.setenv("GFLOW_NO_MEMORY_CHECK", "1")
    assert check_fits(model, batch=10**6, block_size=32, vocab_size=cfg.vocab_size, device=torch.device("cpu"),
                      available=2**30) is None


# ================================================================================================ eval
def test_eval_batch_size_one_scores_every_token(finished_run, capsys):
    status, out, err = in_process(capsys, "eval", "--checkpoint", str(finished_run / "best.pt"), "--split",
                                  "test", "--batch-size", "1")
    assert status == 0, err
    result = json.loads(out)
    assert result["tokens"] == 3999 and math.isfinite(result["ppl"])


def test_git_commit_is_found_without_guessing_the_layout(tmp_path, monkeypatch):
    from gflow_lite.training.metrics import git_commit

    commit = git_commit()
    assert commit == "unknown" or len(commit.split("-")[0]) == 40
    assert "parents[" not in (REPO / "gflow_lite" / "training" / "metrics.py").read_text()
    monkeypatch.chdir(tmp_path)  # outside the repository: still found through the package
    assert git_commit() == commit


def test_resume_reads_a_config_written_before_a_field_existed(finished_run, tmp_path):
    """A run recorded before `LMConfig.mix_residual` existed resumes: a missing field reads as its default,
    while a field that differs is still refused."""
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "summary.json").unlink()
    stored = json.loads((run / "config.json").read_text())
    del stored["model"]["mix_residual"]
    (run / "config.json").write_text(json.dumps(stored))
    assert train(tiny(), run, resume=True).status == "finished"
    stored["model"]["mix_residual"] = "on"
    (run / "config.json").write_text(json.dumps(stored))
    (run / "summary.json").unlink()
    with pytest.raises(ConfigError, match="mix_residual"):
        train(tiny(), run, resume=True)
