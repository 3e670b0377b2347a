"""gflow_lite: the Causal Grassmann layer of "Attention Is Not What You Need" (arXiv 2512.19428),
its size-matched Transformer, and the tools to teach, test and measure them.

Layout (imports flow downward): geometry -> layers -> models -> audit / training / bench -> cli.
"""

from .config import PAPER_OFFSETS, PAPER_SCHEDULE_12, LMConfig
from .geometry import plucker
from .layers import CausalGrassmannMixing, CausalSelfAttention
from .models import GrassmannLM, TransformerLM, build_model

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
