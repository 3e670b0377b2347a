"""Training: configuration and presets, the step and the loop, checkpoints, evaluation, DDP and devices.

Modules: `config` (TrainConfig, overrides), `presets` (the named TrainConfig instances), `loop` (the one
training step every training runs), `trainer` (the full run: checkpoints, resume, signals, DDP),
`rundir` (the run directory and its lock), `checkpoint`, `memory` (will it fit?), `evaluate`,
`inference`, `schedule`, `device`, `distributed`, `metrics`, and `cli` (the train/eval/generate commands).

Typical use::

    from gflow_lite.training import resolve, train
    result = train(resolve("tiny", "grassmann", {"max_steps": "100"}), "runs/tiny-grassmann")
    result.summary["test_ppl"]

or ``python -m gflow_lite train --model grassmann --preset tiny --out runs/tiny-grassmann``.
"""

from ..options import ConfigError, parse_assignments
from .checkpoint import (
    ArchitectureMismatchError,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointWriteError,
    TokenizerMismatchError,
    load_checkpoint,
    save_checkpoint,
)
from .config import TrainConfig, apply_overrides, valid_keys
from .device import Precision, choose_device, choose_precision, seed_everything
from .evaluate import EvalResult, evaluate
from .inference import LoadedModel, load_model
from .loop import NonFiniteLossError, lm_loss, train_step, train_steps
from .memory import MemoryEstimateError
from .presets import PRESETS, parse_set_args, resolve
from .rundir import RunDirError
from .schedule import lr_at, make_optimizer, make_scheduler, param_groups
from .trainer import Trainer, TrainingInterrupted, TrainResult, train

__all__ = [
    "ArchitectureMismatchError",
    "CheckpointCorruptError",
    "CheckpointError",
    "CheckpointWriteError",
    "ConfigError",
    "EvalResult",
    "LoadedModel",
    "MemoryEstimateError",
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
    "lm_loss",
    "load_checkpoint",
    "load_model",
    "lr_at",
    "make_optimizer",
    "make_scheduler",
    "param_groups",
    "parse_assignments",
    "parse_set_args",
    "resolve",
    "save_checkpoint",
    "seed_everything",
    "train",
    "train_step",
    "train_steps",
    "valid_keys",
]
