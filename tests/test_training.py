"""Training: the teaching loop (schedule, optimizer, loop), presets, device/precision, checkpoints, and the
run manager built on it (resume, NaN, signals)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gflow_lite import train as teaching
from gflow_lite.model import LMConfig, build_model
from gflow_lite.options import config_dict, parse_assignments
from gflow_lite.train import Hyperparams, lr_at, make_optimizer
from gflow_lite.training import checkpoint as ckpt
from gflow_lite.training import trainer as trainer_module
from gflow_lite.training.device import choose_device, choose_precision, seed_everything
from gflow_lite.training.presets import PRESETS, ConfigError, TrainConfig, resolve
from gflow_lite.training.trainer import NonFiniteLossError, train

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny(**overrides: str) -> TrainConfig:
    return resolve(
        "tiny", "grassmann", {"max_steps": "20", "eval_interval": "10", "log_interval": "1", **overrides}
    )


# ------------------------------------------------------------------------------------------- schedule
def test_warmup_then_cosine_to_min_lr():
    cfg = Hyperparams(lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=110)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(60, cfg) == pytest.approx(5.5e-4)
    assert lr_at(110, cfg) == pytest.approx(1e-4) and lr_at(500, cfg) == pytest.approx(1e-4)
    values = [lr_at(s, cfg) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))



def test_decay_steps_ends_the_cosine_early_and_holds_the_floor():
    """With ``decay_steps`` the cosine is the one of a run that long, and the rate stays at min_lr after it."""
    short = Hyperparams(lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=110)
    longer = Hyperparams(lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=400, decay_steps=110)
    assert [lr_at(s, longer) for s in range(110)] == [lr_at(s, short) for s in range(110)]
    assert {lr_at(s, longer) for s in range(110, 400)} == {1e-4}
    assert lr_at(200, Hyperparams(lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=400)) > 1e-4  # default: to the end

def test_the_teaching_loop_follows_the_schedule_evaluates_and_saves(tmp_path):
    torch.manual_seed(0)
    lm = LMConfig(vocab_size=50, block_size=8, d_model=16, n_layers=1, d_ff=32, r=4, n_heads=2, offsets=(1, 2),
                  dropout=0.0)
    model = build_model("grassmann", lm)
    gen = torch.Generator().manual_seed(0)

    def batch():
        x = torch.randint(0, 50, (4, 9), generator=gen)
        return x[:, :-1], x[:, 1:]

    val = [batch() for _ in range(2)]
    cfg = Hyperparams(max_steps=8, lr=1e-2, min_lr=1e-3, warmup_steps=3, eval_interval=3)
    seen = []

    def on_step(step, loss, lr, result):
        seen.append((step, lr, result))
        return False

    losses = teaching.train(model, iter(batch, None), val, cfg, tmp_path / "model.pt", on_step=on_step)
    assert len(losses) == 8 and all(math.isfinite(x) for x in losses)
    assert [s for s, _, _ in seen] == list(range(1, 9))
    assert [lr for _, lr, _ in seen] == [lr_at(s, cfg) for s in range(8)]
    assert [s for s, _, r in seen if r is not None] == [3, 6, 8]  # every eval_interval and the last step
    last = seen[-1][2]
    assert last == teaching.evaluate(model, val) and last.ppl == pytest.approx(math.exp(last.loss))
    assert last.tokens == 2 * 4 * 8
    fresh = build_model("grassmann", lm)
    fresh.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert teaching.evaluate(fresh, val) == last
    # A stop asked for by the hook ends the loop there.
    assert len(teaching.train(model, iter(batch, None), val, cfg, on_step=lambda s, *_: s == 2)) == 2


def test_weight_decay_only_on_matrices():
    model = build_model("transformer", tiny().model)
    decay, no_decay = make_optimizer(model, Hyperparams(weight_decay=0.1)).param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


# -------------------------------------------------------------------------------------------- presets
@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("arch", ["grassmann", "transformer"])
def test_every_preset_resolves_for_both_architectures(preset, arch):
    cfg = resolve(preset, arch, {})
    assert cfg.arch == arch and cfg.preset == preset
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_cpu_medium_has_the_papers_width_and_depth_on_cpu_smalls_data():
    small, med = resolve("cpu-small", "grassmann"), resolve("cpu-medium", "grassmann")
    paper = resolve("paper-6l", "grassmann").model
    m = med.model
    assert (m.d_model, m.d_ff, m.n_layers, m.r, m.n_heads, m.offsets, m.block_size) == (
        paper.d_model, paper.d_ff, paper.n_layers, paper.r, paper.n_heads, paper.offsets, paper.block_size
    )
    assert (med.tokenizer, med.bpe_vocab_size, m.vocab_size, med.batch_size) == (
        small.tokenizer, small.bpe_vocab_size, small.model.vocab_size, small.batch_size
    )
    # At this size the paper's layer already has the Transformer's parameter count (within 1%).
    n = {a: build_model(a, resolve("cpu-medium", a).model).num_params() for a in ("grassmann", "transformer")}
    assert abs(n["grassmann"] / n["transformer"] - 1) < 0.01, n


def test_paper_presets_match_the_paper():
    six, twelve = resolve("paper-6l", "grassmann"), resolve("paper-12l", "transformer")
    for cfg in (six, twelve):
        m = cfg.model
        assert (cfg.tokenizer, m.vocab_size, m.d_model, m.d_ff, m.r, m.n_heads) == (
            "wordpiece",
            30522,
            256,
            1024,
            32,
            4,
        )
        assert (m.norm, m.dropout, cfg.epochs) == ("post", 0.1, 30.0)
    assert (six.model.n_layers, six.model.block_size, six.batch_size) == (6, 128, 32)
    assert six.model.offsets == (1, 2, 4, 8, 12, 16) and six.model.offset_mode == "all"
    assert (twelve.model.n_layers, twelve.model.block_size, twelve.batch_size) == (12, 256, 16)
    assert (
        twelve.model.offsets == (1, 1, 2, 2, 4, 4, 8, 8, 12, 12, 16, 16)
        and twelve.model.offset_mode == "per_layer"
    )


def test_overrides_are_typed_and_nested():
    cfg = resolve(
        "paper-6l",
        "grassmann",
        parse_assignments(
            [
                "r=64",
                "offsets=1,2,4",
                "max_steps=7",
                "compile=true",
                "eval_batches=none",
                "betas=0.9,0.99",
                "tokenizer=bpe",
            ]
        ),
    )
    assert (cfg.model.r, cfg.model.offsets, cfg.max_steps, cfg.epochs, cfg.compile) == (
        64,
        (1, 2, 4),
        7,
        None,
        True,
    )
    assert (
        cfg.betas == (0.9, 0.99) and cfg.eval_batches is None and cfg.model.vocab_size == cfg.bpe_vocab_size
    )
    assert cfg.total_steps(10**6) == 7


def test_a_config_is_complete_when_built():
    # the model's vocabulary follows the tokenizer as soon as the TrainConfig exists, before any data
    cfg = TrainConfig(tokenizer="bpe", bpe_vocab_size=600, model=LMConfig(vocab_size=5))
    assert cfg.model.vocab_size == 600
    assert resolve("tiny", "grassmann", {"bpe_vocab_size": "700"}).model.vocab_size == 700
    assert TrainConfig().model.vocab_size == 30522  # wordpiece
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"unknown TrainConfig field\(s\) \['colour'\]"):
        TrainConfig.from_dict({**cfg.to_dict(), "colour": "red"})
    assert resolve("paper-6l", "grassmann").total_steps(1_000_000) == math.ceil(30 * 1_000_000 / (32 * 128))


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"rr": "3"}, r"unknown override key 'rr'; valid keys: .*d_model.*max_steps"),
        ({"r": "big"}, r"r='big' is not an integer"),
        ({"offsets": "1,x"}, r"offsets='1,x'"),
        ({"compile": "maybe"}, "not a boolean"),
        ({"vocab_size": "10"}, "follows the tokenizer"),
        ({"n_heads": "3"}, "not divisible"),
        ({"tokenizer": "sentencepiece"}, "tokenizer 'sentencepiece'; choose one of"),
    ],
)
def test_bad_overrides_are_clear(overrides, match):
    with pytest.raises(ConfigError, match=match):
        resolve("tiny", "grassmann", overrides)


def test_unknown_preset_or_architecture():
    with pytest.raises(ConfigError, match="unknown preset 'huge'.*tiny"):
        resolve("huge", "grassmann")
    with pytest.raises(ConfigError, match="unknown model 'rnn'"):
        resolve("tiny", "rnn")
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignments(["r"])


# ------------------------------------------------------------------------------------ device/precision
def test_device_and_precision_choices():
    cpu = choose_device("cpu")
    assert cpu.type == "cpu" and choose_precision(cpu).name == "fp32"
    assert choose_device("auto").type in ("cuda", "mps", "cpu")
    with pytest.raises(ValueError, match="fp16 needs a CUDA"):
        choose_precision(cpu, "fp16")
    with pytest.raises(ValueError):
        choose_device("tpu:9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            choose_device("cuda")
    assert not choose_precision(cpu).grad_scaler().is_enabled()
    seed_everything(5)
    a = torch.rand(3)
    seed_everything(5)
    assert torch.equal(a, torch.rand(3))


# ----------------------------------------------------------------------------------------- checkpoints
def _payload(step: int) -> dict:
    cfg = tiny()
    return {
        "arch": "grassmann",
        "model_config": config_dict(cfg.model),
        "train_config": cfg.to_dict(),
        "tokenizer": {"name": "bpe", "fingerprint": "fp-A", "vocab_size": 512},
        "model": {"w": torch.full((64, 64), float(step))},
        "step": step,
        "rng": ckpt.capture_rng_state(),
    }


def test_checkpoint_round_trip_and_rng_states(tmp_path):
    path = tmp_path / "last.pt"
    gen = torch.Generator().manual_seed(11)
    state = ckpt.capture_rng_state(gen)
    expected = (torch.rand(2), torch.rand(2, generator=gen))
    ckpt.save_checkpoint(path, {**_payload(3), "rng": state})
    loaded = ckpt.load_checkpoint(path, expected_arch="grassmann", expected_tokenizer="fp-A")
    assert loaded["step"] == 3 and loaded["format_version"] == ckpt.FORMAT_VERSION
    ckpt.restore_rng_state(loaded["rng"], gen)
    assert torch.equal(torch.rand(2), expected[0]) and torch.equal(torch.rand(2, generator=gen), expected[1])


def test_kill_mid_write_leaves_previous_checkpoint_loadable(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save_checkpoint(path, _payload(1))
    real_save = torch.save

    def dies_halfway(obj, handle, *args, **kwargs):
        real_save(obj, handle)
        handle.truncate(handle.tell() // 2)  # half the bytes reached the disk...
        raise KeyboardInterrupt("killed")  # ...then the process is stopped

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(path, _payload(2))
    monkeypatch.setattr(torch, "save", real_save)
    assert ckpt.load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # the temporary file was removed
    # A hard kill leaves its temporary file behind: it must not disturb last.pt either.
    (tmp_path / ".last.pt.tmp-abc123").write_bytes(path.read_bytes()[:500])
    assert ckpt.load_checkpoint(path)["step"] == 1


def test_corrupt_truncated_and_mismatched_checkpoints_fail_loudly(tmp_path):
    path = tmp_path / "last.pt"
    ckpt.save_checkpoint(path, _payload(4))
    with pytest.raises(ckpt.ArchitectureMismatchError, match="holds a 'grassmann' model but 'transformer'"):
        ckpt.load_checkpoint(path, expected_arch="transformer")
    with pytest.raises(ckpt.TokenizerMismatchError, match="fp-A.*fp-B"):
        ckpt.load_checkpoint(path, expected_tokenizer="fp-B")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ckpt.CheckpointCorruptError, match="corrupt or truncated"):
        ckpt.load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ckpt.CheckpointCorruptError):
        ckpt.load_checkpoint(garbage)
    with pytest.raises(ckpt.CheckpointCorruptError, match="does not exist"):
        ckpt.load_checkpoint(tmp_path / "nope.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ckpt.CheckpointCorruptError, match="not a gflow_lite checkpoint"):
        ckpt.load_checkpoint(tmp_path / "foreign.pt")
    assert issubclass(ckpt.CheckpointError, ValueError)


# ------------------------------------------------------------------------------------------ the loop
def _losses(run: Path) -> list:
    return [
        (r["step"], r.get("train_loss"), r.get("val_loss"))
        for r in map(json.loads, (run / "metrics.jsonl").open())
    ]


def test_interrupted_and_resumed_run_is_bitwise_identical(tmp_path):
    # dropout: the torch RNG must be restored; log_interval 4 with a stop at 13: a cut logging window
    cfg = tiny(deterministic="true", dropout="0.1", grad_accum="2", log_interval="4")
    full = train(cfg, tmp_path / "full")
    part = train(cfg, tmp_path / "part", stop_after_step=13)
    assert part.status == "stopped" and part.step == 13
    assert ckpt.load_checkpoint(tmp_path / "part" / "last.pt")["step"] == 13
    resumed = train(cfg, tmp_path / "part", resume=True)
    assert resumed.status == "finished" and resumed.step == 20
    assert _losses(tmp_path / "full") == _losses(tmp_path / "part")
    a = ckpt.load_checkpoint(tmp_path / "full" / "last.pt")
    b = ckpt.load_checkpoint(tmp_path / "part" / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert full.summary["test_ppl"] == resumed.summary["test_ppl"]
    assert a["tokens_seen"] == b["tokens_seen"] == 20 * cfg.tokens_per_step


def test_run_outputs_and_summary(tmp_path):
    result = train(tiny(), tmp_path / "run")
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {
        "config.json",
        "metrics.jsonl",
        "last.pt",
        "best.pt",
        "summary.json",
    }
    summary = json.loads((run / "summary.json").read_text())
    for key in (
        "model",
        "preset",
        "config",
        "seed",
        "git_commit",
        "hardware",
        "wall_time_s",
        "params",
        "tokens_seen",
        "best_val_ppl",
        "test_ppl",
        "tokens_per_s",
    ):
        assert key in summary, key
    assert summary == json.loads(json.dumps(result.summary))
    assert summary["tokens_seen"] == 20 * 8 * 32 and summary["params"] > 0
    best = ckpt.load_checkpoint(run / "best.pt")
    assert summary["best_step"] == best["step"] and math.isfinite(summary["test_ppl"])
    assert TrainConfig.from_dict(json.loads((run / "config.json").read_text())) == TrainConfig.from_dict(
        summary["config"]
    )
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert [r["step"] for r in records] == list(range(1, 21))
    assert {"step", "tokens", "train_loss", "lr", "tokens_per_s", "wall_time_s"} <= set(records[0])
    assert "val_ppl" in records[9] and "val_ppl" not in records[8]


def test_patience_ends_a_run_at_its_plateau(tmp_path):
    """With ``patience=k`` a run ends after k evaluations without a lower validation loss, and its summary
    is that of the best checkpoint (a learning rate too small to move float32 weights: a flat plateau)."""
    cfg = tiny().replace(max_steps=40, eval_interval=5, patience=2, lr=1e-12, min_lr=1e-13)
    result = train(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert result.status == "finished" and summary["best_step"] == 5
    assert summary["early_stop_step"] == 15 and summary["steps"] == 15
    with pytest.raises(ConfigError, match="patience=0"):
        tiny().replace(patience=0)
    full = train(tiny().replace(patience=None), tmp_path / "full")
    assert full.summary["early_stop_step"] is None and full.summary["steps"] == tiny().max_steps


def test_patience_frac_waits_for_a_share_of_the_run(tmp_path):
    """``patience_frac`` ends a run only once its best step lies before the last fraction of the steps run
    (the plateau rule of the fair comparison); with ``patience`` too, both must hold. Flat plateau at step 5."""
    flat = tiny().replace(max_steps=40, eval_interval=5, lr=1e-12, min_lr=1e-13)
    both = train(flat.replace(patience=2, patience_frac=0.7), tmp_path / "both").summary
    alone = train(flat.replace(patience_frac=0.7), tmp_path / "alone").summary
    assert both["best_step"] == alone["best_step"] == 5
    # patience=2 alone stops at 15 (test above); 15 - 5 = 10 is not more than 0.7 * 15, 20 - 5 = 15 > 14 is
    assert both["early_stop_step"] == alone["early_stop_step"] == 20
    assert both["best_step"] < (1 - 0.7) * both["steps"]
    for bad in (0.0, 1.0, float("nan")):
        with pytest.raises(ConfigError, match="patience_frac=.* must be None or a fraction"):
            tiny().replace(patience_frac=bad)


def test_a_run_made_longer_on_resume_keeps_its_schedule_and_equals_one_planned_long(tmp_path):
    """A stopped run resumed with a larger ``max_steps`` and ``decay_steps`` = its old end continues exactly
    as a run planned that long from the start (cosine to step 20, then the floor); the change is logged. A
    resume that would move the cosine's end, or shorten the run, is refused with the fix."""
    cfg = tiny(deterministic="true", dropout="0.1")
    planned = train(cfg.replace(max_steps=30, decay_steps=20), tmp_path / "planned")
    train(cfg, tmp_path / "grown", stop_after_step=13)
    with pytest.raises(ConfigError, match=r"cosine would end at step 30 instead of 20.*set decay_steps=20"):
        train(cfg.replace(max_steps=30), tmp_path / "grown", resume=True)
    with pytest.raises(ConfigError, match=r"may grow on resume, not shrink \(20 -> 15\)"):
        train(cfg.replace(max_steps=15), tmp_path / "grown", resume=True)
    grown = train(cfg.replace(max_steps=30, decay_steps=20), tmp_path / "grown", resume=True)
    assert grown.status == "finished" and grown.step == 30
    assert _losses(tmp_path / "planned") == [r for r in _losses(tmp_path / "grown") if r != (13, None, None)]
    a, b = (ckpt.load_checkpoint(tmp_path / run / "last.pt")["model"] for run in ("planned", "grown"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    events = [json.loads(line) for line in (tmp_path / "grown" / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 13, "event": "resumed with another length or patience",
            "changed": {"max_steps": [20, 30], "decay_steps": [None, 20]}} in events
    assert planned.summary["test_ppl"] == grown.summary["test_ppl"]

def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_build = trainer_module.build_model
    calls = {"n": 0}

    def build_with_fault(arch, cfg):  # the real model, with a NaN injected after 15 training forwards
        model = real_build(arch, cfg)

        def poison(module, inputs, output):
            if module.training:
                calls["n"] += 1
                if calls["n"] > 15:
                    return output * float("nan")
            return output

        model.ln_f.register_forward_hook(poison)
        return model

    monkeypatch.setattr(trainer_module, "build_model", build_with_fault)
    with pytest.raises(
        NonFiniteLossError,
        match=r"training loss is nan at step 16.*last good checkpoint .*last\.pt \(step 10\)",
    ):
        train(tiny(), tmp_path / "run")
    good = ckpt.load_checkpoint(tmp_path / "run" / "last.pt")
    assert good["step"] == 10 and all(torch.isfinite(t).all() for t in good["model"].values())
    assert not (tmp_path / "run" / "summary.json").exists()


def test_diverging_weights_are_caught_at_evaluation(tmp_path):
    cfg = tiny(lr="1e6", min_lr="1e6", warmup_steps="0", grad_clip="0", eval_interval="1")
    with pytest.raises(NonFiniteLossError, match="nothing saved; no checkpoint had been written yet"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_an_exploding_but_finite_loss_ends_the_run_and_a_lower_rate_rescues_it(tmp_path, monkeypatch):
    """A validation loss that stays finite but passes twice a uniform guess's is a divergence: non-zero
    end, no checkpoint of the diverged weights, strict JSON everywhere; resuming with a lower rate is
    allowed and recorded (it used to be refused, and the run ended "finished" with Infinity in its files)."""
    real_build = trainer_module.build_model

    def build_exploding(arch, cfg):  # from step 11 on, logits are scaled far up: finite, but 1e3x too sure
        model = real_build(arch, cfg)

        def scale(module, inputs, output):
            return output * 1e4 if scale.steps > 10 else output

        scale.steps = 0
        model.register_forward_pre_hook(lambda m, i: setattr(scale, "steps", scale.steps + m.training))
        model.lm_head.register_forward_hook(scale)
        return model

    monkeypatch.setattr(trainer_module, "build_model", build_exploding)
    cfg = tiny(max_steps="30")
    with pytest.raises(NonFiniteLossError, match=r"validation loss is .* at step 20 .*uniform guess"):
        train(cfg, tmp_path / "run")
    run = tmp_path / "run"
    assert ckpt.load_checkpoint(run / "last.pt")["step"] == 10 and not (run / "summary.json").exists()
    for line in (run / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    monkeypatch.setattr(trainer_module, "build_model", real_build)
    rescued = train(cfg.replace(lr=cfg.lr / 10, min_lr=cfg.min_lr / 10), run, resume=True)
    assert rescued.status == "finished" and math.isfinite(rescued.summary["best_val_ppl"])
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 10, "event": "resumed with other rates",
            "changed": {"lr": [cfg.lr, cfg.lr / 10], "min_lr": [cfg.min_lr, cfg.min_lr / 10]}} in events
    assert json.loads((run / "config.json").read_text())["lr"] == cfg.lr / 10


def test_existing_run_is_not_overwritten_and_resume_checks_config(tmp_path):
    from gflow_lite.training.rundir import RunDirError

    run = tmp_path / "run"
    train(tiny(max_steps="10"), run, stop_after_step=5)
    before = (run / "last.pt").read_bytes()
    with pytest.raises(RunDirError, match="already holds a run; pass --resume"):
        train(tiny(max_steps="10"), run)
    with pytest.raises(ConfigError, match=r"different configuration: d_model: 32 -> 64"):
        train(tiny(max_steps="10", d_model="64"), run, resume=True)
    with pytest.raises(ckpt.ArchitectureMismatchError, match="holds a 'grassmann' run"):
        train(
            resolve("tiny", "transformer", {"max_steps": "10", "eval_interval": "10", "log_interval": "1"}),
            run,
            resume=True,
        )
    with pytest.raises(RunDirError, match="cannot resume"):
        train(tiny(), tmp_path / "empty", resume=True)
    assert (run / "last.pt").read_bytes() == before


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "gflow_lite",
        "train",
        "--model",
        "transformer",
        "--preset",
        "tiny",
        "--out",
        str(run),
        "--set",
        "max_steps=100000",
        "eval_interval=100000",
        "log_interval=5",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (
        (run / "metrics.jsonl").exists() and (run / "metrics.jsonl").stat().st_size
    ):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM received: saved" in err and "--resume" in err
    step = ckpt.load_checkpoint(run / "last.pt")["step"]
    assert step >= 5
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "gflow_lite",
            "train",
            "--resume",
            "--out",
            str(run),
            "--stop-after",
            str(step + 3),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["step"] == step + 3
    assert ckpt.load_checkpoint(run / "last.pt")["step"] == step + 3
