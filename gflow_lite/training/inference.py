"""Load a trained model from a checkpoint, with its tokenizer and data checked against it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from torch import nn

from ..data.tokenization import Tokenizer, get_tokenizer
from ..model import build_model
from .memory import check_size
from .checkpoint import CheckpointCorruptError, check_tokenizer, load_checkpoint, load_weights
from .device import choose_device
from .config import TrainConfig


@dataclass
class LoadedModel:
    """A model in eval mode on ``device``, its run configuration, tokenizer and checkpoint metadata."""

    model: nn.Module
    config: TrainConfig
    tokenizer: Tokenizer
    device: torch.device
    step: int
    path: Path

    @property
    def arch(self) -> str:
        return self.config.arch


def load_model(
    checkpoint: Path | str, device: str = "auto", expected_arch: Optional[str] = None
) -> LoadedModel:
    """Rebuild the model saved in ``checkpoint``.

    The tokenizer is rebuilt from the data directory and must have the checkpoint's fingerprint
    (`TokenizerMismatchError` otherwise); ``expected_arch`` must match (`ArchitectureMismatchError`).
    """
    path = Path(checkpoint)
    payload: Dict[str, Any] = load_checkpoint(path, expected_arch=expected_arch)
    try:
        cfg = TrainConfig.from_dict(payload["train_config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointCorruptError(
            f"checkpoint {path} holds a configuration this gflow_lite cannot use ({err}); retrain, or use "
            f"the gflow_lite version that wrote it"
        ) from None
    tokenizer = get_tokenizer(cfg.tokenizer, cfg.bpe_vocab_size)
    check_tokenizer(payload, tokenizer.fingerprint, path)
    target = choose_device(device)
    check_size(payload["arch"], cfg.model, target, training=False)  # a file may claim any size
    model = build_model(payload["arch"], cfg.model)
    load_weights(model, payload["model"], path)
    model.to(target).eval()
    return LoadedModel(model, cfg, tokenizer, target, int(payload["step"]), path)
