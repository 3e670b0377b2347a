"""gflow_lite: the Causal Grassmann layer of "Attention Is Not What You Need" (arXiv 2512.19428),
its size-matched Transformer, and the tools to teach, test and measure them.

The paper's code is the reading path, four short files that import only each other and torch:
`geometry` (Plücker coordinates, the stable wedge), `model` (the layer and both models, one file),
`generate` (streaming caches, sampling) and `train` (a short teaching trainer). Beside it, the lab:
`kernels` and `controls` (they add themselves to the model's registries), the run manager (`training`),
`data`, the benchmarks (`bench`), SNLI (`nli`), multi-seed comparisons (`experiments`) and the command line.

Import order (a module imports only from modules before it; tests/test_layering.py checks every import):
geometry -> generate -> model -> train -> controls -> provenance -> kernels -> options -> flops -> analysis -> data -> published -> audit -> training -> experiments -> nli -> bench -> cli -> __main__
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
