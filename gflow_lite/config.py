"""`LMConfig`: one plain dataclass for both language models.

Every field is data; presets (see `gflow_lite.training.presets`) are instances of it. Validation happens
in `__post_init__` so that a wrong configuration fails at construction with a message naming the field,
the value received and the values allowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Tuple

#: The paper's six offsets for the 6-layer models (digest section 1.3).
PAPER_OFFSETS: Tuple[int, ...] = (1, 2, 4, 8, 12, 16)
#: The paper's 12-layer schedule, read as one offset per layer (``offset_mode="per_layer"``).
PAPER_SCHEDULE_12: Tuple[int, ...] = (1, 1, 2, 2, 4, 4, 8, 8, 12, 12, 16, 16)

OFFSET_MODES = ("all", "per_layer")
NORM_PLACEMENTS = ("post", "pre")
AGGREGATES = ("mean", "learned")
POS_EMBS = ("learned", "none")
IMPLS = ("fast", "reference")


def _choice(name: str, value: Any, allowed: Tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"LMConfig.{name}={value!r} is not allowed; choose one of {allowed}")


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"LMConfig.{name}={value!r} must be an integer >= {minimum}")


def validate_offsets(offsets: Any) -> Tuple[int, ...]:
    """Return ``offsets`` as a tuple of positive ints, or raise a ValueError saying what is wrong."""
    try:
        offsets = tuple(offsets)
    except TypeError:
        raise ValueError(f"offsets={offsets!r} must be a non-empty sequence of positive integers") from None
    if len(offsets) == 0:
        raise ValueError("offsets=() is empty; give at least one positive integer offset, e.g. (1, 2, 4)")
    for delta in offsets:
        if isinstance(delta, bool) or not isinstance(delta, int) or delta < 1:
            raise ValueError(
                f"offsets contains {delta!r}; every offset must be a positive integer (a distance back "
                f"in tokens), e.g. (1, 2, 4, 8, 12, 16)"
            )
    return offsets


@dataclass(frozen=True)
class LMConfig:
    """Configuration shared by `GrassmannLM` and `TransformerLM`.

    Paper values (digest section 2.1): ``vocab_size=30522, d_model=256, d_ff=1024, r=32, n_heads=4``,
    6 layers with block 128 or 12 layers with block 256.

    Fields the paper leaves open are switchable:
    ``offset_mode`` ("all": every offset in every layer; "per_layer": ``offsets[i]`` is layer i's only
    offset), ``norm`` ("post": the paper's block; "pre": GPT-style pre-LN with a residual around the
    mixer), ``normalize``/``eps`` (the optional ``p / max(||p||, eps)``), ``aggregate`` ("mean": the
    paper's average over valid offsets; "learned": softmax weights over offsets, a named variant),
    ``out_proj`` (an extra d x d linear after the blend: the hypothesis that explains the paper's
    parameter counts, off by default), ``pos_emb`` ("none" allows streaming past ``block_size``).
    """

    vocab_size: int = 30522
    block_size: int = 128
    d_model: int = 256
    n_layers: int = 6
    d_ff: int = 1024
    dropout: float = 0.1
    # Grassmann mixing
    r: int = 32
    offsets: Tuple[int, ...] = PAPER_OFFSETS
    offset_mode: str = "all"
    normalize: bool = True
    eps: float = 1e-6
    aggregate: str = "mean"
    out_proj: bool = False
    impl: str = "fast"
    # Transformer
    n_heads: int = 4
    # shared
    norm: str = "post"
    pos_emb: str = "learned"
    tie_weights: bool = True
    init_std: float = 0.02

    def __post_init__(self) -> None:
        object.__setattr__(self, "offsets", validate_offsets(self.offsets))
        _positive_int("vocab_size", self.vocab_size)
        _positive_int("block_size", self.block_size)
        _positive_int("d_model", self.d_model)
        _positive_int("n_layers", self.n_layers)
        _positive_int("d_ff", self.d_ff)
        _positive_int("n_heads", self.n_heads)
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 2:
            raise ValueError(
                f"LMConfig.r={self.r!r} must be an integer >= 2: a 2-plane needs at least 2 dimensions "
                f"(the paper uses r=32)"
            )
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"LMConfig.dropout={self.dropout!r} must be a number in [0, 1)")
        if not isinstance(self.eps, (int, float)) or not float(self.eps) > 0.0:
            raise ValueError(f"LMConfig.eps={self.eps!r} must be a positive number, e.g. 1e-6")
        _choice("offset_mode", self.offset_mode, OFFSET_MODES)
        _choice("norm", self.norm, NORM_PLACEMENTS)
        _choice("aggregate", self.aggregate, AGGREGATES)
        _choice("pos_emb", self.pos_emb, POS_EMBS)
        _choice("impl", self.impl, IMPLS)
        if self.offset_mode == "per_layer" and len(self.offsets) != self.n_layers:
            raise ValueError(
                f"LMConfig.offsets has {len(self.offsets)} entries but offset_mode='per_layer' needs exactly "
                f"one offset per layer (n_layers={self.n_layers}); e.g. {PAPER_SCHEDULE_12} for 12 layers, "
                f"or use offset_mode='all'"
            )
        if self.d_model % self.n_heads != 0:
            raise ValueError(
                f"LMConfig.d_model={self.d_model} is not divisible by n_heads={self.n_heads}; choose n_heads "
                f"among the divisors of d_model (the paper uses d_model=256, n_heads=4)"
            )

    def layer_offsets(self, layer: int) -> Tuple[int, ...]:
        """Offsets used by layer ``layer`` under ``offset_mode``.

        "all" uses the distinct offsets (a repeated offset would not change the mean); "per_layer" uses
        ``(offsets[layer],)``.
        """
        if self.offset_mode == "per_layer":
            return (self.offsets[layer],)
        return tuple(sorted(set(self.offsets)))

    def receptive_field(self) -> int:
        """Maximum look-back in tokens of the Grassmann stack (digest section 1.3)."""
        return sum(max(self.layer_offsets(i)) for i in range(self.n_layers))

    def replace(self, **changes: Any) -> "LMConfig":
        """A copy with some fields changed (and validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["offsets"] = list(self.offsets)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "LMConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown LMConfig field(s) {unknown}; known fields: {sorted(known)}")
        data = dict(data)
        if "offsets" in data:
            data["offsets"] = tuple(data["offsets"])
        return cls(**data)
