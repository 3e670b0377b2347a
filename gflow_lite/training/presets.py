"""The named training presets: each one a `TrainConfig` instance, usable with either architecture.

`resolve(preset, arch, overrides)` takes a preset, sets the architecture and applies ``key=value``
override strings (`gflow_lite.training.config.apply_overrides`); keys are TrainConfig fields or, flat,
LMConfig fields (``r=64``, ``offsets=1,2,4``).

Choices the paper leaves open (paper notes §2.1, marked silent there) are ours and documented here:
AdamW (betas 0.9/0.95), peak lr 6e-4 with 200 warmup steps and cosine decay to 6e-5, weight decay 0.01
on matrices, gradient clipping at 1.0.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

from ..model import PAPER_SCHEDULE_12, LMConfig
from ..options import ConfigError
from .config import ARCHITECTURES, TrainConfig, apply_overrides, valid_keys

__all__ = [
    "ARCHITECTURES",
    "ConfigError",
    "PRESETS",
    "TrainConfig",
    "apply_overrides",
    "resolve",
    "valid_keys",
]

#: The paper's 6-layer setting (paper notes §2.1): WordPiece 30,522, d 256, d_ff 1024, r 32, L = 128, batch 32,
#: 30 epochs. `LMConfig`'s defaults are this model (6 layers, 4 heads, the paper's offsets in every layer,
#: post-LN, dropout 0.1).
PAPER_6L = TrainConfig(preset="paper-6l", tokenizer="wordpiece", batch_size=32, epochs=30.0, max_steps=None,
                       eval_interval=500, model=LMConfig())

#: A meaningful WikiText-2 comparison on 2 CPU cores (about 15 minutes per model): BPE-4096 (3.06M train
#: tokens), 2000 steps of 16 x 128 tokens (1.3 epochs), d 128, 4 layers, r 16. Measured CPU time on one core
#: (torch 2.13): 0.30 s/step Grassmann, 0.37 s/step Transformer, about 15 s per full validation pass.
CPU_SMALL = TrainConfig(
    preset="cpu-small", tokenizer="bpe", bpe_vocab_size=4096, batch_size=16, lr=1e-3, min_lr=1e-4,
    warmup_steps=100, max_steps=2000, epochs=None, eval_interval=400, log_interval=25,
    model=LMConfig(vocab_size=4096, d_model=128, n_layers=4, d_ff=512, r=16),
)

#: The paper's width and depth (d 256, d_ff 1024, 6 layers, r 32, 4 heads, its six offsets) on cpu-small's data
#: and BPE-4096 vocabulary: the second model size. 800 steps of 16 x 128 tokens (1.64M tokens, 0.54
#: epochs): the committed runs (results/wikitext2/cpu-medium*/summary.json) trained at 1.1k-1.3k tokens/s on
#: one core of a shared 2-core machine, 23-28 minutes each. With this vocabulary the paper's layer at r = 32
#: has the Transformer's parameter count (+0.4%).
CPU_MEDIUM = CPU_SMALL.replace(
    preset="cpu-medium",
    max_steps=800,
    model=CPU_SMALL.model.replace(d_model=256, n_layers=6, d_ff=1024, r=32),
)

PRESETS: Dict[str, TrainConfig] = {
    # Seconds on a laptop: for tests and smoke runs. BPE-512 (trained on the whole train split), then only
    # the first 40k train tokens and the first 4k valid/test tokens are used.
    "tiny": CPU_SMALL.replace(
        preset="tiny", bpe_vocab_size=512, train_tokens=40_000, eval_tokens=4_000, batch_size=8, lr=3e-3,
        min_lr=3e-4, warmup_steps=5, max_steps=40, eval_interval=20, log_interval=10, seed=1337,
        model=LMConfig(vocab_size=512, block_size=32, d_model=32, n_layers=2, d_ff=128, r=8, n_heads=2,
                       offsets=(1, 2, 4), dropout=0.0),
    ),
    "cpu-small": CPU_SMALL,
    "cpu-medium": CPU_MEDIUM,
    "paper-6l": PAPER_6L,
    # The paper's 12-layer setting: L = 256, batch 16, the 12-tuple read as one offset per layer.
    "paper-12l": PAPER_6L.replace(
        preset="paper-12l",
        batch_size=16,
        eval_interval=1000,
        model=PAPER_6L.model.replace(
            block_size=256, n_layers=12, offsets=PAPER_SCHEDULE_12, offset_mode="per_layer"
        ),
    ),
}


def resolve(preset: str, model: str, overrides: Optional[Mapping[str, str]] = None) -> TrainConfig:
    """A validated, complete `TrainConfig` (the vocabulary size included): preset ``preset`` for
    architecture ``model`` with ``overrides`` applied.

    Raises `ConfigError` for an unknown preset, architecture or key, or a value of the wrong type.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if model not in ARCHITECTURES:
        raise ConfigError(f"unknown model {model!r}; choose one of {tuple(ARCHITECTURES)}")
    return apply_overrides(PRESETS[preset].replace(arch=model), overrides or {})
