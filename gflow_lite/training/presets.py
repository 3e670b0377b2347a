"""`TrainConfig` (an `LMConfig` plus the training fields) and the named presets.

Presets are data: each is a dict of field values applied to the defaults, usable with either
architecture. `resolve` builds a validated `TrainConfig` from a preset, an architecture and ``key=value``
override strings; keys are TrainConfig fields or, flat, LMConfig fields (``r=64``, ``offsets=1,2,4``).

Choices the paper leaves open (digest section 2.1, marked SILENT there) are ours and documented here:
AdamW (betas 0.9/0.95), peak lr 6e-4 with 200 warmup steps and cosine decay to 6e-5, weight decay 0.01
on matrices, gradient clipping at 1.0.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from ..model import PAPER_OFFSETS, PAPER_SCHEDULE_12, LMConfig
from ..data.tokenization import TOKENIZER_NAMES, expected_vocab_size
from .device import PRECISIONS

ARCHITECTURES: Tuple[str, ...] = ("grassmann", "transformer")

#: Fields that may differ between a run and its resumption (they do not change what is computed).
RESUMABLE_CHANGES: Tuple[str, ...] = ("device", "precision", "compile", "log_interval", "num_threads")


class ConfigError(ValueError):
    """A preset name, override key or value that cannot be used."""


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
    max_steps: Optional[int] = None
    epochs: Optional[float] = 30.0
    weight_decay: float = 0.01
    betas: Tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_interval: int = 500
    eval_batches: Optional[int] = None
    seed: int = 1337
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    deterministic: bool = False
    log_interval: int = 50
    num_threads: Optional[int] = None

    def __post_init__(self) -> None:
        checks = [
            (self.arch in ARCHITECTURES, f"arch={self.arch!r} must be one of {ARCHITECTURES}"),
            (
                self.tokenizer in TOKENIZER_NAMES,
                f"tokenizer={self.tokenizer!r} must be one of {TOKENIZER_NAMES}",
            ),
            (self.precision in PRECISIONS, f"precision={self.precision!r} must be one of {PRECISIONS}"),
            (
                self.bpe_vocab_size >= 257,
                f"bpe_vocab_size={self.bpe_vocab_size} must be >= 257 (256 bytes + 1)",
            ),
            ((self.max_steps is None) != (self.epochs is None), "set exactly one of max_steps and epochs"),
            (self.max_steps is None or self.max_steps >= 1, f"max_steps={self.max_steps} must be >= 1"),
            (self.epochs is None or self.epochs > 0, f"epochs={self.epochs} must be > 0"),
            (self.batch_size >= 1 and self.grad_accum >= 1, "batch_size and grad_accum must be >= 1"),
            (
                self.lr > 0 and 0 <= self.min_lr <= self.lr,
                f"need 0 <= min_lr={self.min_lr} <= lr={self.lr}, lr > 0",
            ),
            (self.warmup_steps >= 0 and self.grad_clip >= 0, "warmup_steps and grad_clip must be >= 0"),
            (
                self.eval_interval >= 1 and self.log_interval >= 1,
                "eval_interval and log_interval must be >= 1",
            ),
            (self.eval_batches is None or self.eval_batches >= 1, "eval_batches must be None or >= 1"),
            (
                self.train_tokens is None or self.train_tokens > self.model.block_size + 1,
                f"train_tokens={self.train_tokens} must exceed block_size + 1",
            ),
            (self.eval_tokens is None or self.eval_tokens >= 2, "eval_tokens must be None or >= 2"),
            (self.num_threads is None or self.num_threads >= 1, "num_threads must be None or >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"TrainConfig: {message}")

    @property
    def tokens_per_step(self) -> int:
        """Tokens consumed by one optimizer step (all processes together)."""
        return self.batch_size * self.grad_accum * self.model.block_size

    def total_steps(self, n_train_tokens: int) -> int:
        """Optimizer steps of the whole run (``max_steps``, or ``epochs`` converted with the train size)."""
        if self.max_steps is not None:
            return self.max_steps
        return max(1, math.ceil(self.epochs * n_train_tokens / self.tokens_per_step))

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        out = dataclasses.asdict(self)
        out["model"] = self.model.to_dict()
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown TrainConfig field(s) {unknown}; known fields: {sorted(known)}")
        values = dict(data)
        if "model" in values:
            values["model"] = LMConfig.from_dict(values["model"])
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(**values)


# ----------------------------------------------------------------------------------------------- presets
PRESETS: Dict[str, Dict[str, Any]] = {
    # Seconds on a laptop: for tests and smoke runs. BPE-512 (trained on the whole train split), then only
    # the first 40k train tokens and the first 4k valid/test tokens are used.
    "tiny": dict(
        tokenizer="bpe",
        bpe_vocab_size=512,
        train_tokens=40_000,
        eval_tokens=4_000,
        batch_size=8,
        lr=3e-3,
        min_lr=3e-4,
        warmup_steps=5,
        max_steps=40,
        epochs=None,
        eval_interval=20,
        log_interval=10,
        seed=1337,
        model=dict(
            block_size=32,
            d_model=32,
            n_layers=2,
            d_ff=128,
            r=8,
            n_heads=2,
            offsets=(1, 2, 4),
            offset_mode="all",
            dropout=0.0,
        ),
    ),
    # A meaningful WikiText-2 comparison on 2 CPU cores (about 15 minutes per model): BPE-4096 (3.06M train
    # tokens), 2000 steps of 16 x 128 tokens (1.3 epochs). Measured CPU time on one core (torch 2.13):
    # 0.30 s/step Grassmann, 0.37 s/step Transformer, about 15 s per full validation pass.
    "cpu-small": dict(
        tokenizer="bpe",
        bpe_vocab_size=4096,
        train_tokens=None,
        eval_tokens=None,
        batch_size=16,
        lr=1e-3,
        min_lr=1e-4,
        warmup_steps=100,
        max_steps=2000,
        epochs=None,
        eval_interval=400,
        eval_batches=None,
        log_interval=25,
        model=dict(
            block_size=128,
            d_model=128,
            n_layers=4,
            d_ff=512,
            r=16,
            n_heads=4,
            offsets=PAPER_OFFSETS,
            offset_mode="all",
            norm="post",
            dropout=0.1,
        ),
    ),
    # The paper's 6-layer setting (digest 2.1): WordPiece 30,522, d 256, d_ff 1024, r 32, L = 128, batch 32.
    "paper-6l": dict(
        tokenizer="wordpiece",
        batch_size=32,
        epochs=30.0,
        max_steps=None,
        eval_interval=500,
        model=dict(
            block_size=128,
            d_model=256,
            n_layers=6,
            d_ff=1024,
            r=32,
            n_heads=4,
            offsets=PAPER_OFFSETS,
            offset_mode="all",
            norm="post",
            dropout=0.1,
        ),
    ),
    # The paper's 12-layer setting: L = 256, batch 16, the 12-tuple read as one offset per layer.
    "paper-12l": dict(
        tokenizer="wordpiece",
        batch_size=16,
        epochs=30.0,
        max_steps=None,
        eval_interval=1000,
        model=dict(
            block_size=256,
            d_model=256,
            n_layers=12,
            d_ff=1024,
            r=32,
            n_heads=4,
            offsets=PAPER_SCHEDULE_12,
            offset_mode="per_layer",
            norm="post",
            dropout=0.1,
        ),
    ),
}


def _field_types(cls: type) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


_TRAIN_FIELDS = _field_types(TrainConfig)
_MODEL_FIELDS = _field_types(LMConfig)
#: Keys that cannot be set: fixed by other choices.
_DERIVED = {
    "model": "set LMConfig fields directly (e.g. d_model=128)",
    "vocab_size": "it follows the tokenizer; set tokenizer= or bpe_vocab_size=",
    "arch": "choose the architecture with --model",
    "preset": "choose it with --preset",
}
assert not (set(_TRAIN_FIELDS) & set(_MODEL_FIELDS)), "TrainConfig and LMConfig field names must not overlap"


def valid_keys() -> Tuple[str, ...]:
    """Every key accepted by `resolve` overrides."""
    return tuple(sorted((set(_TRAIN_FIELDS) | set(_MODEL_FIELDS)) - set(_DERIVED)))


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_value(key: str, text: str, annotation: Any) -> Any:
    """Parse ``text`` as a value of type ``annotation`` (int, float, bool, str, Optional[...], Tuple[...])."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:  # Optional[X] or X | None
        if text.strip().lower() in {"none", "null"}:
            return None
        inner = [a for a in args if a is not type(None)]
        return parse_value(key, text, inner[0])
    if origin in (tuple, Tuple):
        items = [part.strip() for part in text.split(",") if part.strip()]
        element = args[0] if args else str
        if len(args) > 1 and args[1] is not Ellipsis and len(items) != len(args):
            raise ConfigError(f"{key}={text!r}: expected {len(args)} comma-separated values")
        try:
            return tuple(parse_value(key, item, element) for item in items)
        except ConfigError as err:
            raise ConfigError(f"{key}={text!r}: {err}") from None
    try:
        if annotation is bool:
            lowered = text.strip().lower()
            if lowered in _TRUE | _FALSE:
                return lowered in _TRUE
            raise ValueError
        if annotation is int:
            return int(text.replace("_", ""))
        if annotation is float:
            return float(text)
        if annotation is str:
            return text
    except ValueError:
        names = {bool: "a boolean (true/false)", int: "an integer", float: "a number"}
        raise ConfigError(f"{key}={text!r} is not {names.get(annotation, annotation)}") from None
    raise ConfigError(f"{key}: cannot parse values of type {annotation}")


def parse_set_args(items: Sequence[str]) -> Dict[str, str]:
    """``["k=v", ...]`` (as given to ``--set``) -> ``{"k": "v"}``; a missing ``=`` is an error."""
    out: Dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _apply(values: Dict[str, Any], model_values: Dict[str, Any], overrides: Mapping[str, str]) -> bool:
    """Parse ``overrides`` into ``values`` / ``model_values``; return whether the vocabulary may change."""
    vocab_changed = False
    for key, text in overrides.items():
        if key in _DERIVED:
            raise ConfigError(f"cannot override {key!r}: {_DERIVED[key]}")
        if key in _TRAIN_FIELDS:
            values[key] = parse_value(key, text, _TRAIN_FIELDS[key])
            vocab_changed |= key in ("tokenizer", "bpe_vocab_size")
            if key == "max_steps" and values[key] is not None:
                values["epochs"] = None
            if key == "epochs" and values[key] is not None:
                values["max_steps"] = None
        elif key in _MODEL_FIELDS:
            model_values[key] = parse_value(key, text, _MODEL_FIELDS[key])
        else:
            raise ConfigError(f"unknown override key {key!r}; valid keys: {', '.join(valid_keys())}")
    return vocab_changed


def _build(values: Dict[str, Any], model_values: Dict[str, Any], set_vocab: bool) -> TrainConfig:
    try:
        if set_vocab:
            model_values["vocab_size"] = expected_vocab_size(
                values.get("tokenizer", TrainConfig.tokenizer),
                values.get("bpe_vocab_size", TrainConfig.bpe_vocab_size),
            )
        return TrainConfig(model=LMConfig(**model_values), **values)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(str(err)) from None


def resolve(preset: str, model: str, overrides: Optional[Mapping[str, str]] = None) -> TrainConfig:
    """A validated `TrainConfig` for ``preset`` and architecture ``model`` with ``overrides`` applied.

    Raises `ConfigError` for an unknown preset, architecture or key, or a value of the wrong type.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if model not in ARCHITECTURES:
        raise ConfigError(f"unknown model {model!r}; choose one of {ARCHITECTURES}")
    values = {k: v for k, v in PRESETS[preset].items() if k != "model"}
    values.update(arch=model, preset=preset)
    model_values = dict(PRESETS[preset].get("model", {}))
    _apply(values, model_values, overrides or {})
    return _build(values, model_values, set_vocab=True)


def apply_overrides(cfg: TrainConfig, overrides: Mapping[str, str]) -> TrainConfig:
    """``cfg`` with ``key=value`` overrides applied (as in `resolve`), validated again."""
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "model"}
    model_values = cfg.model.to_dict()
    model_values["offsets"] = tuple(model_values["offsets"])
    vocab_changed = _apply(values, model_values, overrides)
    return _build(values, model_values, set_vocab=vocab_changed)
