"""The training loop.

`train(cfg, out_dir)` trains ``cfg.arch`` on WikiText-2 and leaves in ``out_dir``: ``config.json``,
``metrics.jsonl`` (step, tokens, train_loss, lr, tokens_per_s, wall_time_s; val_loss and val_ppl at
evaluations), ``last.pt``, ``best.pt`` and ``summary.json`` (test perplexity of the best-validation
checkpoint, paper notes §5.5).

The loop is the teaching loop, `gflow_lite.train.train`, and each optimizer step its `train_step`
(``grad_accum`` micro-batches, gradient clipping, AdamW at the rate `gflow_lite.train.lr_at` gives); the
run manager passes in its extras: autocast and the gradient scaler, DDP's ``no_sync`` and loss
all-reduce, and a hook after each step for logs, checkpoints and signals. The configuration arrives
complete (`TrainConfig`: the vocabulary size included). Before any data or model is loaded the run
directory is created, checked writable and locked against a second writer (`rundir`); before the
optimizer is built the memory the configuration needs is estimated (`memory.check_fits`). ``resume=True`` restores the
model, optimizer, gradient scaler, every RNG and the batch generator from ``last.pt``, so an
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
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
from tqdm.auto import tqdm

from ..data.atomic import remove_stale_temps
from ..data.batching import RandomBlockSampler
from ..data.tokenization import get_tokenizer
from ..data.wikitext import load_corpus
from ..model import build_model
from ..options import ConfigError, config_dict, env_flag
from ..train import EvalResult, NonFiniteLossError, make_optimizer, train_step
from ..train import train as teaching_loop
from . import distributed as ddp
from .checkpoint import capture_rng_state, load_checkpoint, load_weights, restore_rng_state, save_checkpoint
from .config import TrainConfig
from .device import choose_precision, maybe_compile, seed_everything
from .evaluate import evaluate
from .memory import check_fits, check_size
from .metrics import MetricsLog, git_commit, hardware_info, write_json
from .rundir import RunDir, RunDirError, check_resume_config, check_start


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
        self.cfg = cfg
        resuming = self._claim_run_dir(resume)
        if resuming:
            check_resume_config(self.run, self.cfg)
        seed_everything(self.cfg.seed + self.ctx.rank, self.cfg.deterministic)

        self.tokenizer = get_tokenizer(cfg.tokenizer, cfg.bpe_vocab_size)
        if self.tokenizer.vocab_size != cfg.model.vocab_size:
            raise ConfigError(
                f"the {self.tokenizer.name} tokenizer built from the data has {self.tokenizer.vocab_size} "
                f"tokens but the configuration says vocab_size={cfg.model.vocab_size}; rebuild the tokenizer "
                f"cache or choose tokenizer/bpe_vocab_size to match"
            )
        self.corpus = load_corpus(
            self.tokenizer, train_tokens=self.cfg.train_tokens, eval_tokens=self.cfg.eval_tokens
        )
        if self.cfg.batch_size % self.ctx.world_size:
            raise ConfigError(
                f"batch_size={self.cfg.batch_size} must be divisible by {self.ctx.world_size} processes"
            )
        if getattr(cfg.model, "impl", None) == "native" and self.device.type == "cpu":
            from ..kernels import native  # build the C++ kernel now (it says so), not in check_fits' forward;

            native.available()  # SIGTERM/SIGHUP meanwhile: interrupted, the build locks released
        check_size(self.cfg.arch, self.cfg.model, self.device, training=True)  # before any allocation
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
        self.hyper = self.cfg.hyperparams(len(self.corpus.train))  # max_steps: the whole run's steps
        self.total_steps = self.hyper.max_steps
        self.optimizer = make_optimizer(self.model, self.hyper)
        self.scaler = self.precision.grad_scaler()
        self.sampler = RandomBlockSampler(
            self.corpus.train, self.cfg.model.block_size, self.cfg.batch_size, seed=self.cfg.seed
        )
        self.progress = _Progress()
        self._clock = time.time()
        self.log = MetricsLog(self.run.metrics)
        if resuming:
            self._restore()
            self._record_rate_change()
            if self.ctx.is_main and not self.run.is_ours():
                self.run.mark()  # a run of an earlier version (no marker yet): its stored config matched
        elif self.ctx.is_main:
            self.run.clear_failed_start()
            self.run.mark()
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
            "model_config": config_dict(self.cfg.model),
            "train_config": self.cfg.to_dict(),
            "tokenizer": self._tokenizer_info(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
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
        source = self.run.last if self.run.last.is_file() else self.run.best  # see rundir.check_start
        payload = load_checkpoint(source, expected_arch=self.cfg.arch, expected_tokenizer=self.tokenizer.fingerprint)
        load_weights(self.model, payload["model"], source)
        self.optimizer.load_state_dict(payload["optimizer"])  # the rate follows the step (lr_at)
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

    def _record_rate_change(self) -> None:
        """A resume with another peak or final rate (allowed: it rescues a run that diverged), or with a
        longer run or another early-stopping rule, is recorded in metrics.jsonl, and config.json then holds
        the settings the run continues with."""
        stored = self.run.stored_config()
        rates = {k: [stored.get(k), getattr(self.cfg, k)] for k in ("lr", "min_lr")
                 if stored.get(k) != getattr(self.cfg, k)}
        length = {k: [stored.get(k), getattr(self.cfg, k)]
                  for k in ("max_steps", "decay_steps", "patience", "patience_frac")
                  if stored.get(k) != getattr(self.cfg, k)}
        step = self.progress.step
        if self.ctx.is_main:
            if rates:
                self.log.append({"step": step, "event": "resumed with other rates", "changed": rates})
            if length:
                self.log.append({"step": step, "event": "resumed with another length or patience", "changed": length})
            if rates or length:
                write_json(self.run.config, self.cfg.to_dict())

    # ------------------------------------------------------------------------------------ one step
    def _batches(self) -> Iterator[List[Tuple[torch.Tensor, torch.Tensor]]]:
        """The micro-batches of each step: ``grad_accum`` global batches, this process's shard of each."""
        while True:
            self._step_start = time.perf_counter()  # a step's time includes drawing its batches
            micro = [self.sampler.next_batch() for _ in range(self.cfg.grad_accum)]
            yield [(ddp.shard(x, self.ctx).to(self.device), ddp.shard(y, self.ctx).to(self.device)) for x, y in micro]

    def _train_step(self, model: torch.nn.Module, batch: Any, optimizer: torch.optim.Optimizer,
                    **step_args: Any) -> float:
        """`gflow_lite.train.train_step` with the run manager's extras; returns the mean loss of the global
        batch. The stop flag set by a signal travels with the loss, so every process stops at the same step."""
        ctx, device = self.ctx, self.device

        def mean_over_processes(loss_sum: torch.Tensor, n: int) -> float:
            shared = torch.stack(
                [loss_sum, torch.tensor(float(self._stop_flag[0]), dtype=torch.float64, device=device)]
            )
            ddp.all_reduce_sum(shared, ctx)
            self._stop_everywhere = float(shared[1]) > 0
            return float(shared[0]) / (n * ctx.world_size)

        try:
            loss = train_step(
                model,
                batch,
                optimizer,
                scaler=self.scaler,
                autocast=self.precision.autocast,
                no_sync=lambda skip: ddp.no_sync(model, skip),
                mean_loss=mean_over_processes,
                **step_args,
            )
        except NonFiniteLossError as err:
            raise NonFiniteLossError(f"{err}; {self._last_good()}") from None
        self._step_time = time.perf_counter() - self._step_start
        return loss

    def _last_good(self) -> str:
        if not self.run.last.is_file():
            return "no checkpoint had been written yet"
        return f"the last good checkpoint is {self.run.last} (step {self._checkpoint_step()})"

    def _check_finite_val(self, val: EvalResult) -> None:
        """A non-finite validation loss, or one above twice a uniform guess's (2 ln V: the model predicts
        worse than knowing nothing), ends the run before anything is saved: the last checkpoint stays the
        last sane one, and the run can be resumed from it with a lower rate."""
        ceiling = 2 * math.log(self.cfg.model.vocab_size)
        if not (math.isfinite(val.loss) and val.loss <= ceiling):
            raise NonFiniteLossError(
                f"validation loss is {val.loss:.4g} at step {self.progress.step} (a uniform guess scores "
                f"{ceiling / 2:.3g}): the weights diverged (lr {self.optimizer.param_groups[0]['lr']:.3g}); "
                f"nothing saved; {self._last_good()}; to rescue it, resume with a lower rate "
                f"(--resume --set lr=...)"
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
        self._stop_flag, self._stop_everywhere, stopped, early = [0], False, [False], [None]
        bar = tqdm(
            total=self.total_steps,
            initial=p.step,
            desc=f"{cfg.arch}/{cfg.preset}",
            unit="step",
            disable=not self.ctx.is_main or env_flag("TQDM_DISABLE"),
            dynamic_ncols=True,
            file=sys.stderr,
        )

        def after_step(step: int, loss: float, lr: float, val: Optional[EvalResult]) -> bool:
            """The run manager's hook: progress, logs, checkpoints; True to stop here."""
            dt = self._step_time
            p.step = step
            p.tokens_seen += cfg.tokens_per_step
            p.train_time_s += dt
            p.window_losses.append(loss)
            p.window_tokens += cfg.tokens_per_step
            p.window_time += dt
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{cfg.tokens_per_step / max(dt, 1e-9):,.0f}")
            if val is not None or step % cfg.log_interval == 0:
                self._log_step(lr, val)
            if val is not None:
                self._checkpoint_after_eval(val, bar)
                if self._plateau(step):
                    early[0] = step
                    return True
            if self._stop_everywhere or (stop_after_step is not None and step >= stop_after_step):
                self._snapshot_time()
                self._save(best=False)
                if self._stop_everywhere:
                    raise TrainingInterrupted(int(self._stop_flag[0]) or signal.SIGTERM, self.run.last, step)
                stopped[0] = True
            return stopped[0]

        with _signals_set_flag(self._stop_flag), bar:
            teaching_loop(
                self.wrapped,
                self._batches(),
                "valid",
                self.hyper,
                optimizer=self.optimizer,
                first_step=p.step,
                step_fn=self._train_step,
                evaluate_fn=lambda _model, split: self.evaluate_split(split, cfg.eval_batches),
                on_step=after_step,
            )
        if stopped[0]:
            return TrainResult("stopped", p.step, self.run.path)
        self._snapshot_time()
        return TrainResult("finished", p.step, self.run.path, self._finish(early_stop=early[0]))

    def _plateau(self, step: int) -> bool:
        """Early stopping, at an evaluation: ``patience`` evaluations without a lower validation loss, and
        (with ``patience_frac``) the best step before the last ``patience_frac`` of the steps run."""
        cfg, stale = self.cfg, step - self.progress.best_step  # steps since the best validation loss
        if cfg.patience is None and cfg.patience_frac is None:
            return False
        waited = cfg.patience is None or stale >= cfg.patience * cfg.eval_interval
        old_enough = cfg.patience_frac is None or stale > cfg.patience_frac * step
        return waited and old_enough

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

    def _finish(self, early_stop: Optional[int] = None) -> Dict[str, Any]:
        """Evaluate the best-validation checkpoint on valid and test; write and return the summary
        (``early_stop``: the step at which early stopping, `_plateau`, ended the run)."""
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
            "early_stop_step": early_stop,
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
