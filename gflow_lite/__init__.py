"""gflow_lite: the Causal Grassmann layer of "Attention Is Not What You Need" (arXiv 2512.19428),
its size-matched Transformer, and the tools to teach, test and measure them.

Start reading at `gflow_lite.model` (the layer and both models, one file). Imports flow one way:
geometry -> model -> fused / generate / flops -> data / training / nli / bench -> cli.
"""

from .geometry import plucker
from .model import (PAPER_OFFSETS, PAPER_SCHEDULE_12, CausalGrassmannMixing, CausalSelfAttention, GrassmannLM,
                    LMConfig, TransformerLM, build_model)
from . import controls, kernels  # noqa: F401  (register the controls and impl="fused" / "native")

__version__ = "0.1.0"

__all__ = [
    "plucker",
    "CausalGrassmannMixing",
    "CausalSelfAttention",
    "LMConfig",
    "GrassmannLM",
    "TransformerLM",
    "build_model",
    "PAPER_OFFSETS",
    "PAPER_SCHEDULE_12",
]
