"""The training loop.

`train(cfg, out_dir)` trains ``cfg.arch`` on WikiText-2 and leaves in ``out_dir``: ``config.json``,
``metrics.jsonl`` (step, tokens, train_loss, lr, tokens_per_s, wall_time_s; val_loss and val_ppl at
evaluations), ``last.pt``, ``best.pt`` and ``summary.json`` (test perplexity of the best-validation
checkpoint, paper notes §5.5).

Each optimizer step is `gflow_lite.training.loop.train_step` (the step every training here runs): it
accumulates ``grad_accum`` micro-batches, clips the gradient norm, steps AdamW and the warmup+cosine
schedule, under autocast when the precision asks for it. Before any data or model is loaded the run
directory is created, checked writable and locked against a second writer (`rundir`); before the
optimizer is built the memory the configuration needs is estimated (`memory.check_fits`). ``resume=True`` restores the
model, optimizer, scheduler, gradient scaler, every RNG and the batch generator from ``last.pt``, so an
interrupted and resumed run computes the same losses as an uninterrupted one (bitwise on the CPU with
``deterministic=True``). SIGINT/SIGTERM save ``last.pt`` and raise `TrainingInterrupted`; a NaN/inf
loss raises `NonFiniteLossError` before the weights are touched, leaving the last good checkpoint.
``best.pt`` is written before ``last.pt``, so a death between the two never leaves ``last.pt`` claiming
a best step that ``best.pt`` does not hold.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import torch
from tqdm.auto import tqdm

from ..data.atomic import remove_stale_temps
from ..data.batching import RandomBlockSampler
from ..data.tokenization import get_tokenizer
from ..data.wikitext import load_corpus
from ..model import build_model
from ..options import ConfigError, env_flag
from . import distributed as ddp
from .checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from .device import choose_precision, maybe_compile, seed_everything
from .evaluate import EvalResult, evaluate
from .metrics import MetricsLog, git_commit, hardware_info, write_json
from .config import TrainConfig
from .loop import NonFiniteLossError, train_step
from .memory import check_fits
from .rundir import RunDir, RunDirError, check_resume_config, check_start
from .schedule import make_optimizer, make_scheduler


class TrainingInterrupted(RuntimeError):
    """SIGINT or SIGTERM arrived; ``last.pt`` was saved and the run can be resumed."""

    def __init__(self, signum: int, checkpoint: Path, step: int) -> None:
        self.signum = signum
        self.checkpoint = checkpoint
        self.step = step
        name = signal.Signals(signum).name
        super().__init__(f"{name} received: saved {checkpoint} at step {step}; continue with --resume")


@dataclass
class TrainResult:
    """How `train` ended: ``"finished"`` (with ``summary``) or ``"stopped"`` (at ``stop_after_step``)."""

    status: str
    step: int
    run_dir: Path
    summary: Optional[Dict[str, Any]] = None


@dataclass
class _Progress:
    step: int = 0
    tokens_seen: int = 0
    best_val_loss: float = math.inf
    best_step: int = 0
    elapsed_s: float = 0.0
    train_time_s: float = 0.0
    window_losses: List[float] = field(default_factory=list)
    window_tokens: int = 0
    window_time: float = 0.0


@contextlib.contextmanager
def _signals_set_flag(flag: List[int]) -> Iterator[None]:
    """While active, SIGINT/SIGTERM set ``flag[0]`` (a second SIGINT interrupts at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        if flag[0] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag[0] = signum

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Trainer:
    """One training run; see the module docstring. Use `train` unless you need the pieces."""

    def __init__(self, cfg: TrainConfig, out_dir: Path | str, resume: bool = False) -> None:
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        self.ctx, self.device = ddp.init_distributed(cfg.device)
        self.precision = choose_precision(self.device, cfg.precision)
        self.run = RunDir(Path(out_dir))
        try:
            self._setup(cfg, resume)
        except BaseException:
            self.run.unlock(remove_if_unused=True)
            raise

    def _claim_run_dir(self, resume: bool) -> bool:
        """Lock and check the run directory (rank 0; the others learn whether it worked)."""
        error: Optional[BaseException] = None
        resuming = False
        if self.ctx.is_main:
            try:
                self.run.lock()
                resuming = check_start(self.run, resume)
            except BaseException as err:  # noqa: BLE001 - re-raised below, after telling the other ranks
                error = err
        flags = torch.tensor([float(error is not None), float(resuming)], device=self.device)
        ddp.all_reduce_sum(flags, self.ctx)
        if error is not None:
            raise error
        if flags[0] > 0:
            raise RunDirError(f"rank 0 could not use --out {self.run.path}; see its message")
        return bool(flags[1] > 0)

    def _setup(self, cfg: TrainConfig, resume: bool) -> None:
        resuming = self._claim_run_dir(resume)
        tokenizer = get_tokenizer(cfg.tokenizer, cfg.bpe_vocab_size)
        self.cfg = cfg.replace(model=cfg.model.replace(vocab_size=tokenizer.vocab_size))
        if resuming:
            check_resume_config(self.run, self.cfg)
        seed_everything(self.cfg.seed + self.ctx.rank, self.cfg.deterministic)

        self.corpus = load_corpus(
            tokenizer, train_tokens=self.cfg.train_tokens, eval_tokens=self.cfg.eval_tokens
        )
        self.tokenizer = tokenizer
        if self.cfg.batch_size % self.ctx.world_size:
            raise ConfigError(
                f"batch_size={self.cfg.batch_size} must be divisible by {self.ctx.world_size} processes"
            )
        self.model = build_model(self.cfg.arch, self.cfg.model).to(self.device)
        check_fits(
            self.model,
            batch=self.cfg.batch_size // self.ctx.world_size,
            block_size=self.cfg.model.block_size,
            vocab_size=self.cfg.model.vocab_size,
            device=self.device,
            autocast=self.precision.autocast,
        )
        self.wrapped = ddp.wrap_model(maybe_compile(self.model, self.cfg.compile), self.ctx, self.device)
        self.optimizer = make_optimizer(self.model, self.cfg.lr, self.cfg.weight_decay, self.cfg.betas)
        self.total_steps = self.cfg.total_steps(len(self.corpus.train))
        self.scheduler = make_scheduler(
            self.optimizer,
            lr=self.cfg.lr,
            min_lr=self.cfg.min_lr,
            warmup_steps=self.cfg.warmup_steps,
            max_steps=self.total_steps,
        )
        self.scaler = self.precision.grad_scaler()
        self.sampler = RandomBlockSampler(
            self.corpus.train, self.cfg.model.block_size, self.cfg.batch_size, seed=self.cfg.seed
        )
        self.progress = _Progress()
        self._clock = time.time()
        self.log = MetricsLog(self.run.metrics)
        if resuming:
            self._restore()
        elif self.ctx.is_main:
            self.run.clear_failed_start()
            write_json(self.run.config, self.cfg.to_dict())
        ddp.barrier(self.ctx)

    def close(self) -> None:
        """Release the run directory's writer lock (the lock also dies with the process)."""
        self.run.unlock()

    # ----------------------------------------------------------------------------------- checkpoints
    def _tokenizer_info(self) -> Dict[str, Any]:
        return {
            "name": self.tokenizer.name,
            "fingerprint": self.tokenizer.fingerprint,
            "vocab_size": self.tokenizer.vocab_size,
        }

    def _payload(self) -> Dict[str, Any]:
        p = self.progress
        return {
            "arch": self.cfg.arch,
            "model_config": self.cfg.model.to_dict(),
            "train_config": self.cfg.to_dict(),
            "tokenizer": self._tokenizer_info(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng_state(self.sampler.generator),
            "step": p.step,
            "tokens_seen": p.tokens_seen,
            "best_val_loss": p.best_val_loss,
            "best_step": p.best_step,
            "elapsed_s": p.elapsed_s,
            "train_time_s": p.train_time_s,
            "log_window": {"losses": p.window_losses, "tokens": p.window_tokens, "time": p.window_time},
        }

    def _save(self, *, best: bool) -> None:
        if self.ctx.is_main:
            payload = self._payload()
            for path in (self.run.best, self.run.last) if best else (self.run.last,):  # best first
                remove_stale_temps(path)
                save_checkpoint(path, payload)
        ddp.barrier(self.ctx)

    def _restore(self) -> None:
        payload = load_checkpoint(
            self.run.last, expected_arch=self.cfg.arch, expected_tokenizer=self.tokenizer.fingerprint
        )
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.scaler.load_state_dict(payload["scaler"])
        restore_rng_state(payload["rng"], self.sampler.generator)
        if self.ctx.rank:  # only rank 0's RNG was saved: give the others their own stream again
            torch.manual_seed(self.cfg.seed + self.ctx.rank + 7919 * payload["step"])
        p = self.progress
        p.step, p.tokens_seen = payload["step"], payload["tokens_seen"]
        p.best_val_loss, p.best_step = payload["best_val_loss"], payload["best_step"]
        p.elapsed_s, p.train_time_s = payload["elapsed_s"], payload["train_time_s"]
        window = payload["log_window"]  # a log interval cut by the interruption continues where it was
        p.window_losses, p.window_tokens, p.window_time = (
            list(window["losses"]),
            window["tokens"],
            window["time"],
        )
        if self.ctx.is_main:
            self.log.truncate_after(p.step)

    # ------------------------------------------------------------------------------------ one step
    def _train_step(self, stop_flag: List[int]) -> tuple[float, float, bool]:
        """One optimizer step; returns (mean loss over the global batch, its lr, whether to stop)."""
        accum, ctx, device = self.cfg.grad_accum, self.ctx, self.device
        stop_everywhere = [False]

        def micro_batches() -> List[Any]:
            out = []
            for _ in range(accum):
                x, y = self.sampler.next_batch()
                out.append((ddp.shard(x, ctx).to(device), ddp.shard(y, ctx).to(device)))
            return out

        def mean_over_processes(loss_sum: torch.Tensor, n: int) -> float:
            # the stop flag travels with the loss, so every process stops at the same step
            shared = torch.stack(
                [loss_sum, torch.tensor(float(stop_flag[0]), dtype=torch.float64, device=device)]
            )
            ddp.all_reduce_sum(shared, ctx)
            stop_everywhere[0] = float(shared[1]) > 0
            return float(shared[0]) / (n * ctx.world_size)

        lr = self.optimizer.param_groups[0]["lr"]
        try:
            loss = train_step(
                self.wrapped,
                self.optimizer,
                micro_batches(),
                scheduler=self.scheduler,
                grad_clip=self.cfg.grad_clip,
                scaler=self.scaler,
                autocast=self.precision.autocast,
                no_sync=lambda skip: ddp.no_sync(self.wrapped, skip),
                mean_loss=mean_over_processes,
                step=self.progress.step + 1,
            )
        except NonFiniteLossError as err:
            raise NonFiniteLossError(f"{err}; {self._last_good()}") from None
        return loss, lr, stop_everywhere[0]

    def _last_good(self) -> str:
        if not self.run.last.is_file():
            return "no checkpoint had been written yet"
        return f"the last good checkpoint is {self.run.last} (step {self._checkpoint_step()})"

    def _check_finite_val(self, val: EvalResult) -> None:
        if not math.isfinite(val.loss):
            raise NonFiniteLossError(
                f"validation loss is {val.loss} at step {self.progress.step}: the weights diverged "
                f"(lr {self.scheduler.get_last_lr()[0]:.3g}); nothing saved; {self._last_good()}"
            )

    def _checkpoint_step(self) -> int:
        try:
            return int(load_checkpoint(self.run.last)["step"])
        except ValueError:
            return -1

    # ---------------------------------------------------------------------------------- evaluation
    def evaluate_split(self, split: str, max_batches: Optional[int] = None) -> EvalResult:
        """Loss/perplexity of the current weights on ``split`` (sharded over processes under DDP)."""
        return evaluate(
            self.model,
            self.corpus.split(split),
            block_size=self.cfg.model.block_size,
            batch_size=self.cfg.batch_size,
            device=self.device,
            precision=self.precision,
            max_batches=max_batches,
            ctx=self.ctx,
        )

    def _log(self, record: Dict[str, Any]) -> None:
        if self.ctx.is_main:
            self.log.append(record)

    def _log_step(self, lr: float, val: Optional[EvalResult]) -> None:
        p = self.progress
        record: Dict[str, Any] = {"step": p.step, "tokens": p.tokens_seen}
        if p.window_losses:
            record["train_loss"] = sum(p.window_losses) / len(p.window_losses)
            record["tokens_per_s"] = p.window_tokens / max(p.window_time, 1e-9)
        record["lr"] = lr
        if val is not None:
            record.update(val_loss=val.loss, val_ppl=val.ppl)
        record["wall_time_s"] = p.elapsed_s + (time.time() - self._clock)
        self._log(record)
        p.window_losses, p.window_tokens, p.window_time = [], 0, 0.0

    # ----------------------------------------------------------------------------------------- loop
    def fit(self, stop_after_step: Optional[int] = None) -> TrainResult:
        """Train to ``total_steps`` (or stop and checkpoint at ``stop_after_step``), then summarise."""
        cfg, p = self.cfg, self.progress
        self._clock = time.time()
        stop_flag = [0]
        bar = tqdm(
            total=self.total_steps,
            initial=p.step,
            desc=f"{cfg.arch}/{cfg.preset}",
            unit="step",
            disable=not self.ctx.is_main or env_flag("TQDM_DISABLE"),
            dynamic_ncols=True,
            file=sys.stderr,
        )
        with _signals_set_flag(stop_flag), bar:
            while p.step < self.total_steps:
                t0 = time.perf_counter()
                loss, lr, stop = self._train_step(stop_flag)
                dt = time.perf_counter() - t0
                p.step += 1
                p.tokens_seen += cfg.tokens_per_step
                p.train_time_s += dt
                p.window_losses.append(loss)
                p.window_tokens += cfg.tokens_per_step
                p.window_time += dt
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{cfg.tokens_per_step / max(dt, 1e-9):,.0f}")
                is_eval = p.step % cfg.eval_interval == 0 or p.step == self.total_steps
                val = self.evaluate_split("valid", cfg.eval_batches) if is_eval else None
                if is_eval or p.step % cfg.log_interval == 0:
                    self._log_step(lr, val)
                if val is not None:
                    self._checkpoint_after_eval(val, bar)
                if stop or (stop_after_step is not None and p.step >= stop_after_step):
                    self._snapshot_time()
                    self._save(best=False)
                    if stop:
                        raise TrainingInterrupted(int(stop_flag[0]) or signal.SIGTERM, self.run.last, p.step)
                    return TrainResult("stopped", p.step, self.run.path)
        self._snapshot_time()
        return TrainResult("finished", p.step, self.run.path, self._finish())

    def _checkpoint_after_eval(self, val: EvalResult, bar: tqdm) -> None:
        """Save ``last.pt`` (and ``best.pt`` if ``val`` is the best so far); refuse diverged weights."""
        p = self.progress
        self._check_finite_val(val)
        improved = val.loss < p.best_val_loss
        if improved:
            p.best_val_loss, p.best_step = val.loss, p.step
        if self.ctx.is_main:
            note = " (best)" if improved else ""
            bar.write(f"step {p.step}: val loss {val.loss:.4f} ppl {val.ppl:.2f}{note}", file=sys.stderr)
        self._snapshot_time()
        self._save(best=improved)

    def _snapshot_time(self) -> None:
        """Fold the wall time since the last snapshot into ``elapsed_s`` (saved with checkpoints)."""
        now = time.time()
        self.progress.elapsed_s += now - self._clock
        self._clock = now

    def _finish(self) -> Dict[str, Any]:
        """Evaluate the best-validation checkpoint on valid and test; write and return the summary."""
        best = load_checkpoint(
            self.run.best, expected_arch=self.cfg.arch, expected_tokenizer=self.tokenizer.fingerprint
        )
        self.model.load_state_dict(best["model"])
        val, test = self.evaluate_split("valid"), self.evaluate_split("test")
        p = self.progress
        summary = {
            "model": self.cfg.arch,
            "preset": self.cfg.preset,
            "status": "finished",
            "config": self.cfg.to_dict(),
            "seed": self.cfg.seed,
            "git_commit": git_commit(),
            "hardware": hardware_info(self.device, self.ctx.world_size),
            "precision": self.precision.name,
            "tokenizer": self._tokenizer_info(),
            "params": self.model.num_params(),
            "steps": p.step,
            "tokens_seen": p.tokens_seen,
            "wall_time_s": p.elapsed_s,
            "train_time_s": p.train_time_s,
            "tokens_per_s": p.tokens_seen / max(p.train_time_s, 1e-9),
            "best_step": best["step"],
            "best_val_loss": val.loss,
            "best_val_ppl": val.ppl,
            "val_tokens": val.tokens,
            "test_loss": test.loss,
            "test_ppl": test.ppl,
            "test_tokens": test.tokens,
        }
        if self.ctx.is_main:
            write_json(self.run.summary, summary)
        return summary


def train(
    cfg: TrainConfig, out_dir: Path | str, *, resume: bool = False, stop_after_step: Optional[int] = None
) -> TrainResult:
    """Train (or resume) a run in ``out_dir``; see the module docstring for what it writes."""
    deterministic = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    try:
        trainer = Trainer(cfg, out_dir, resume=resume)
        try:
            return trainer.fit(stop_after_step=stop_after_step)
        finally:
            trainer.close()
    finally:
        ddp.shutdown()
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
