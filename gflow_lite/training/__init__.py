"""Training: presets, the loop, checkpoints, evaluation, distributed and device helpers.

Typical use::

    from gflow_lite.training import resolve, train
    result = train(resolve("tiny", "grassmann", {"max_steps": "100"}), "runs/tiny-grassmann")
    result.summary["test_ppl"]

or ``python -m gflow_lite train --model grassmann --preset tiny --out runs/tiny-grassmann``.
"""

from .checkpoint import (
    ArchitectureMismatchError,
    CheckpointCorruptError,
    CheckpointError,
    TokenizerMismatchError,
    load_checkpoint,
    save_checkpoint,
)
from .device import Precision, choose_device, choose_precision, seed_everything
from .evaluate import EvalResult, evaluate
from .inference import LoadedModel, load_model
from .presets import PRESETS, ConfigError, TrainConfig, apply_overrides, parse_set_args, resolve, valid_keys
from .rundir import RunDirError
from .schedule import lr_at, make_optimizer, make_scheduler, param_groups
from .trainer import NonFiniteLossError, Trainer, TrainingInterrupted, TrainResult, train

__all__ = [
    "ArchitectureMismatchError",
    "CheckpointCorruptError",
    "CheckpointError",
    "ConfigError",
    "EvalResult",
    "LoadedModel",
    "NonFiniteLossError",
    "PRESETS",
    "Precision",
    "RunDirError",
    "TokenizerMismatchError",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingInterrupted",
    "apply_overrides",
    "choose_device",
    "choose_precision",
    "evaluate",
    "load_checkpoint",
    "load_model",
    "lr_at",
    "make_optimizer",
    "make_scheduler",
    "param_groups",
    "parse_set_args",
    "resolve",
    "save_checkpoint",
    "seed_everything",
    "train",
    "valid_keys",
]
