"""`TrainConfig`: everything a training run needs, as one frozen dataclass holding an `LMConfig`.

A TrainConfig is complete when it is built: the model's ``vocab_size`` is set from the tokenizer
(`gflow_lite.data.tokenization.expected_vocab_size`) in ``__post_init__``, and the run manager only
checks that the data agrees. Overrides (``--set key=value`` of ``train``, ``compare`` and ``bench``) go
through `apply_overrides`, which parses each value by the field's type with the package's one parser
(`gflow_lite.options`). Keys are TrainConfig fields or, flat, LMConfig fields (``r=64``, ``offsets=1,2,4``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from ..data.tokenization import TOKENIZER_NAMES, expected_vocab_size
from ..model import ARCHITECTURES, LMConfig
from ..options import ConfigError, check_lm_config, coerce_bools, config_dict, config_from_dict, field_types, parse_value
from ..train import Hyperparams
from .device import PRECISIONS

#: Fields that may differ between a run and its resumption (they do not change what is computed).
#: (``lr`` and ``min_lr`` may change too, to rescue a run that diverged; the trainer records the change.)
RESUMABLE_CHANGES: Tuple[str, ...] = ("device", "precision", "compile", "log_interval", "num_threads", "patience",
                                      "patience_frac", "lr", "min_lr")
#: ``max_steps`` may grow on resume (a longer run) while the schedule of the steps done stays the same: the
#: cosine's end (``decay_steps``, by default ``max_steps``) must not move (see `extension_problem`).
EXTENDABLE: Tuple[str, ...] = ("max_steps", "decay_steps")


def extension_problem(stored: Mapping[str, Any], current: Mapping[str, Any]) -> Optional[str]:
    """Why a resume may not change ``max_steps``/``decay_steps`` from ``stored`` to ``current`` (None: it
    may). A run may be made longer, never shorter, and only if the cosine ends at the same step as
    before, so that every step already done had the rate the longer run gives it."""
    old, new = stored.get("max_steps"), current.get("max_steps")
    if not isinstance(old, int) or not isinstance(new, int):
        return "only a run counted in max_steps can be made longer (this one is counted in epochs)"
    if new < old:
        return f"max_steps may grow on resume, not shrink ({old} -> {new})"
    old_end, new_end = stored.get("decay_steps") or old, current.get("decay_steps") or new
    if old_end != new_end:
        return (f"the cosine would end at step {new_end} instead of {old_end}, changing the rate of steps "
                f"already done; to make the run longer, set decay_steps={old_end} with the new max_steps")
    return None


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; ``model`` is the LMConfig (its ``vocab_size`` follows the tokenizer).

    Length of training: ``max_steps`` optimizer steps, or ``epochs`` passes' worth of tokens
    (``epochs * n_train_tokens / (batch_size * grad_accum * block_size)`` steps); exactly one is set.
    ``batch_size`` is the global batch of one micro-step (split across processes under DDP).
    ``train_tokens`` / ``eval_tokens`` keep only the first N tokens of train / of valid and test.
    ``eval_batches`` limits periodic validation to that many batches (None: the full split); the final
    evaluation of the best checkpoint always uses the full (possibly ``eval_tokens``-cut) splits.
    ``num_threads`` sets torch's intra-op CPU threads (None: torch's default, one per core); on a machine
    shared with other jobs ``num_threads=1`` avoids threads stalling each other.
    ``decay_steps`` ends the cosine there (None: at the run's last step); later steps train at ``min_lr``.
    Early stopping: ``patience`` ends the run after that many evaluations without a lower validation loss;
    ``patience_frac`` (e.g. 0.15) ends it once the best step lies before the last ``patience_frac`` of the
    steps run, a patience that grows with the run. With both set, both must hold.
    """

    arch: str = "grassmann"
    preset: str = "custom"
    model: LMConfig = field(default_factory=LMConfig)
    tokenizer: str = "wordpiece"
    bpe_vocab_size: int = 4096
    train_tokens: Optional[int] = None
    eval_tokens: Optional[int] = None
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 6e-4
    min_lr: float = 6e-5
    warmup_steps: int = 200
    decay_steps: Optional[int] = None
    max_steps: Optional[int] = None
    epochs: Optional[float] = 30.0
    weight_decay: float = 0.01
    betas: Tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_interval: int = 500
    eval_batches: Optional[int] = None
    patience: Optional[int] = None
    patience_frac: Optional[float] = None
    seed: int = 1337
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    deterministic: bool = False
    log_interval: int = 50
    num_threads: Optional[int] = None

    def __post_init__(self) -> None:
        try:
            coerce_bools(self)
        except ConfigError as err:
            raise ConfigError(f"TrainConfig: {err}") from None
        if not isinstance(self.model, LMConfig):
            raise ConfigError(f"TrainConfig.model must be an LMConfig, got {type(self.model).__name__}")
        check_lm_config(self.model)
        checks = [
            (self.arch in ARCHITECTURES, f"arch={self.arch!r} must be one of {tuple(ARCHITECTURES)}"),
            (
                self.tokenizer in TOKENIZER_NAMES,
                f"unknown tokenizer {self.tokenizer!r}; choose one of {TOKENIZER_NAMES}",
            ),
            (self.precision in PRECISIONS, f"precision={self.precision!r} must be one of {PRECISIONS}"),
            (
                self.bpe_vocab_size >= 257,
                f"bpe_vocab_size={self.bpe_vocab_size} must be >= 257 (256 bytes + 1)",
            ),
            ((self.max_steps is None) != (self.epochs is None), "set exactly one of max_steps and epochs"),
            (self.max_steps is None or self.max_steps >= 1, f"max_steps={self.max_steps} must be >= 1"),
            (self.epochs is None or (_finite(self.epochs) and self.epochs > 0), f"epochs={self.epochs} must be > 0"),
            (self.batch_size >= 1 and self.grad_accum >= 1, "batch_size and grad_accum must be >= 1"),
            (
                _finite(self.lr) and _finite(self.min_lr) and self.lr > 0 and 0 <= self.min_lr <= self.lr,
                f"need 0 <= min_lr={self.min_lr} <= lr={self.lr}, lr > 0",
            ),
            (
                _finite(self.weight_decay) and self.weight_decay >= 0,
                f"weight_decay={self.weight_decay} must be a finite number >= 0 (e.g. 0.01)",
            ),
            (
                len(self.betas) == 2 and all(_finite(b) and 0 <= b < 1 for b in self.betas),
                f"betas={self.betas} must be two numbers in [0, 1), e.g. 0.9,0.95",
            ),
            (
                self.warmup_steps >= 0 and _finite(self.grad_clip) and self.grad_clip >= 0,
                "warmup_steps and grad_clip must be >= 0",
            ),
            (
                self.eval_interval >= 1 and self.log_interval >= 1,
                "eval_interval and log_interval must be >= 1",
            ),
            (self.eval_batches is None or self.eval_batches >= 1, "eval_batches must be None or >= 1"),
            (self.patience is None or self.patience >= 1,
             f"patience={self.patience} must be None (train to the end) or >= 1 evaluations"),
            (self.patience_frac is None or (_finite(self.patience_frac) and 0 < self.patience_frac < 1),
             f"patience_frac={self.patience_frac} must be None or a fraction of the steps run in (0, 1), "
             f"e.g. 0.15"),
            (self.decay_steps is None or self.decay_steps > self.warmup_steps,
             f"decay_steps={self.decay_steps} must be None (the cosine ends at the last step) or more than "
             f"warmup_steps={self.warmup_steps}"),
            (
                self.train_tokens is None or self.train_tokens > self.model.block_size + 1,
                f"train_tokens={self.train_tokens} must exceed block_size + 1",
            ),
            (self.eval_tokens is None or self.eval_tokens >= 2, "eval_tokens must be None or >= 2"),
            (self.num_threads is None or self.num_threads >= 1, "num_threads must be None or >= 1"),
            (isinstance(self.seed, int) and 0 <= self.seed < 2**63,
             f"seed={self.seed} must be an integer in [0, 2**63) (torch's generators take 64 bits)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"TrainConfig: {message}")
        vocab_size = expected_vocab_size(self.tokenizer, self.bpe_vocab_size)  # the model follows the tokenizer
        if self.model.vocab_size != vocab_size:
            object.__setattr__(self, "model", dataclasses.replace(self.model, vocab_size=vocab_size))

    @property
    def tokens_per_step(self) -> int:
        """Tokens consumed by one optimizer step (all processes together)."""
        return self.batch_size * self.grad_accum * self.model.block_size

    def total_steps(self, n_train_tokens: int) -> int:
        """Optimizer steps of the whole run (``max_steps``, or ``epochs`` converted with the train size)."""
        if self.max_steps is not None:
            return self.max_steps
        return max(1, math.ceil(self.epochs * n_train_tokens / self.tokens_per_step))

    def hyperparams(self, n_train_tokens: int) -> Hyperparams:
        """What the teaching loop (`gflow_lite.train.train`) needs, with ``max_steps`` = `total_steps`."""
        return Hyperparams(max_steps=self.total_steps(n_train_tokens), lr=self.lr, min_lr=self.min_lr,
                           warmup_steps=self.warmup_steps, decay_steps=self.decay_steps,
                           weight_decay=self.weight_decay, betas=self.betas,
                           grad_clip=self.grad_clip, eval_interval=self.eval_interval)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready (`gflow_lite.options.config_dict`); `from_dict` reads it back."""
        return config_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        return config_from_dict(cls, data)


# ---------------------------------------------------------------------------------------- overrides
_TRAIN_FIELDS = field_types(TrainConfig)
_MODEL_FIELDS = field_types(LMConfig)
#: Keys that cannot be set: fixed by other choices.
_DERIVED = {
    "model": "set LMConfig fields directly (e.g. d_model=128)",
    "vocab_size": "it follows the tokenizer; set tokenizer= or bpe_vocab_size=",
    "arch": "choose the architecture with --model",
    "preset": "choose it with --preset",
}
assert not (set(_TRAIN_FIELDS) & set(_MODEL_FIELDS)), "TrainConfig and LMConfig field names must not overlap"


def valid_keys() -> Tuple[str, ...]:
    """Every key accepted by `apply_overrides`."""
    return tuple(sorted((set(_TRAIN_FIELDS) | set(_MODEL_FIELDS)) - set(_DERIVED)))


def apply_overrides(cfg: TrainConfig, overrides: Mapping[str, str]) -> TrainConfig:
    """``cfg`` with ``key=value`` overrides applied, validated again.

    Setting ``max_steps`` clears ``epochs`` and the reverse; the model's ``vocab_size`` follows
    ``tokenizer`` and ``bpe_vocab_size`` (`TrainConfig`). Raises `ConfigError` for an unknown key or a value
    of the wrong type or range.
    """
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "model"}
    model_changes: Dict[str, Any] = {}
    for key, text in overrides.items():
        if key in _DERIVED:
            raise ConfigError(f"cannot override {key!r}: {_DERIVED[key]}")
        if key in _TRAIN_FIELDS:
            values[key] = parse_value(key, text, _TRAIN_FIELDS[key])
            if key == "max_steps" and values[key] is not None:
                values["epochs"] = None
            if key == "epochs" and values[key] is not None:
                values["max_steps"] = None
        elif key in _MODEL_FIELDS:
            model_changes[key] = parse_value(key, text, _MODEL_FIELDS[key])
        else:
            raise ConfigError(f"unknown override key {key!r}; valid keys: {', '.join(valid_keys())}")
    try:
        return TrainConfig(model=cfg.model.replace(**model_changes), **values)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(str(err)) from None
