"""The run manager: long training runs made safe (locks, verified checkpoints, exact resume, signals, DDP).

It extends the teaching trainer `gflow_lite.train` (the same step, `train_step`, and the same loop and
schedule, `lr_at`) with what a long run needs. Modules: `config` (TrainConfig, overrides), `presets` (the
named TrainConfig instances), `trainer` (the full run: checkpoints, resume, signals, DDP), `rundir` (the
run directory and its lock), `checkpoint`, `memory` (will it fit?), `evaluate` (a whole split),
`inference`, `device`, `distributed`, `metrics`, and `cli` (the train/eval/generate commands).

Typical use::

    from gflow_lite.training import resolve, train
    result = train(resolve("tiny", "grassmann", {"max_steps": "100"}), "runs/tiny-grassmann")
    result.summary["test_ppl"]

or ``python -m gflow_lite train --model grassmann --preset tiny --out runs/tiny-grassmann``.
"""

from ..options import ConfigError, parse_assignments
from ..train import EvalResult, NonFiniteLossError
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
from .evaluate import evaluate
from .inference import LoadedModel, load_model
from .memory import MemoryEstimateError
from .presets import PRESETS, resolve
from .rundir import RunDirError
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
    "load_checkpoint",
    "load_model",
    "parse_assignments",
    "resolve",
    "save_checkpoint",
    "seed_everything",
    "train",
    "valid_keys",
]
