"""Plain data across the sandbox wall: the hidden tests' inputs and the students' answers.

Both sides import this file: the grader (``book/grading``) and the sandboxed runner, which gets a copy of
it in its own folder. It holds no answer and no expected value: only how inputs are written as JSON and
read back as tensors, the two kinds of callables a test may hand over (mixers), and how an answer is
turned into plain data. An answer becomes JSON of lists, floats, ints, bools and strings; only an exact
``torch.Tensor`` (no subclass), an exact numpy array or numpy scalar, and the plain Python types are
accepted, so an object that claims to equal anything never leaves the sandbox.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List

import torch

DTYPES = {"float64": torch.float64, "float32": torch.float32, "int64": torch.int64, "bool": torch.bool}


# ------------------------------------------------------------------------------------------- inputs
def tensor(t: torch.Tensor) -> Dict[str, Any]:
    return {"__tensor__": t.tolist(), "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}


def randn(shape, seed: int, dtype: str = "float64") -> Dict[str, Any]:
    """A large random input sent as a recipe (shape, seed) instead of its numbers."""
    return {"__randn__": list(shape), "seed": int(seed), "dtype": dtype}


def mixer(kind: str, **spec: Any) -> Dict[str, Any]:
    return {"__mixer__": kind, "spec": {k: encode(v) for k, v in spec.items()}}


def encode(x: Any) -> Any:
    """Inputs as JSON-able data (grader side; the objects are the grader's own)."""
    if isinstance(x, torch.Tensor):
        return tensor(x)
    if isinstance(x, tuple):
        return {"__tuple__": [encode(v) for v in x]}
    if isinstance(x, list):
        return [encode(v) for v in x]
    if isinstance(x, dict):
        if "__randn__" in x or "__mixer__" in x or "__tensor__" in x:
            return x
        return {"__dict__": {str(k): encode(v) for k, v in x.items()}}
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise TypeError(f"cannot encode {type(x).__name__}")


def decode(x: Any) -> Any:
    """JSON data back to tensors, tuples, dicts and mixers (both sides)."""
    if isinstance(x, list):
        return [decode(v) for v in x]
    if isinstance(x, dict):
        if "__tensor__" in x:
            dtype = DTYPES[x["dtype"]]
            return torch.tensor(x["__tensor__"], dtype=dtype).reshape(x["shape"])
        if "__randn__" in x:
            g = torch.Generator().manual_seed(x["seed"])
            return torch.randn(*x["__randn__"], generator=g, dtype=DTYPES[x["dtype"]])
        if "__tuple__" in x:
            return tuple(decode(v) for v in x["__tuple__"])
        if "__dict__" in x:
            return {k: decode(v) for k, v in x["__dict__"].items()}
        if "__mixer__" in x:
            return MIXERS[x["__mixer__"]](**{k: decode(v) for k, v in x["spec"].items()})
        raise ValueError(f"unknown encoded object with keys {sorted(x)}")
    return x


# ------------------------------------------------------------------------------------------- mixers
def offset_mixer(weights: torch.Tensor, offsets: tuple) -> Callable[[torch.Tensor], torch.Tensor]:
    """``out_t = tanh(h_t W_0 + sum_k h_{t + o_k} W_k)`` over the offsets ``o_k`` in range; a negative offset
    reads the past, a positive one the future (a leak). ``weights``: ``[1 + len(offsets), d, d]``."""

    def mix(h: torch.Tensor) -> torch.Tensor:
        h = h.to(torch.float64)
        T = h.shape[1]
        out = h @ weights[0]
        for k, o in enumerate(offsets, start=1):
            moved = torch.zeros_like(h)
            if o < 0 and -o < T:
                moved[:, -o:] = h[:, : T + o]
            elif o > 0 and o < T:
                moved[:, : T - o] = h[:, o:]
            out = out + moved @ weights[k]
        return torch.tanh(out)

    return mix


def running_mean_mixer(scale: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def mix(h: torch.Tensor) -> torch.Tensor:
        h = h.to(torch.float64)
        return scale * h.cumsum(1) / torch.arange(1, h.shape[1] + 1, dtype=h.dtype)[:, None]

    return mix


MIXERS: Dict[str, Callable[..., Callable]] = {"offset": offset_mixer, "running_mean": running_mean_mixer}


# ------------------------------------------------------------------------------------------ answers
class NotPlain(TypeError):
    """An answer that is not plain data (an object of the student's own type, say)."""


def _numpy_plain(x: Any) -> Any:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency of torch's tolist path only
        return None
    if type(x) is np.ndarray:
        return {"__tensor__": x.tolist(), "dtype": "float64" if x.dtype.kind == "f" else (
            "bool" if x.dtype.kind == "b" else "int64"), "shape": list(x.shape)}
    if type(x) in (np.float64, np.float32, np.float16):
        return float(x)
    if type(x) in (np.int64, np.int32, np.int16, np.int8, np.uint8):
        return int(x)
    if type(x) is np.bool_:
        return bool(x)
    return None


def answer(x: Any, depth: int = 0) -> Any:
    """A function's answer as plain data, or `NotPlain`. Exact types only: no subclass passes."""
    if depth > 4:
        raise NotPlain("the answer is nested too deeply")
    if type(x) is torch.Tensor:
        t = x.detach().cpu()
        dtype = "bool" if t.dtype == torch.bool else ("int64" if not t.is_floating_point() else "float64")
        values = t.to(torch.float64 if dtype == "float64" else DTYPES[dtype]).tolist()
        return {"__tensor__": _plain_list(values), "dtype": dtype, "shape": [int(s) for s in t.shape]}
    if x is None or type(x) in (bool, int, str):
        return x
    if type(x) is float:
        return x if math.isfinite(x) else repr(x)
    if type(x) in (tuple, list):
        return {"__tuple__": [answer(v, depth + 1) for v in x]}
    converted = _numpy_plain(x)
    if converted is not None:
        return converted
    raise NotPlain(f"your function returned an object of type {type(x).__module__}.{type(x).__qualname__}; "
                   f"return a torch.Tensor, a number, or a tuple of them")


def _plain_list(values: Any) -> Any:
    """``tolist()`` output checked to hold only plain numbers (a patched ``tolist`` cannot smuggle objects)."""
    if type(values) is list:
        return [_plain_list(v) for v in values]
    if type(values) in (bool, int):
        return values
    if type(values) is float:
        return values if math.isfinite(values) else repr(values)
    raise NotPlain(f"a tensor converted to an object of type {type(values).__name__}")


def reduce_answer(out: Any, how: Dict[str, Any], args: List[Any]) -> Any:
    """A large answer reduced to a few numbers (both sides reduce the same way).

    ``{"dot": seed}``: ``(out * R).sum(-1)`` with ``R`` drawn from ``seed``; ``{"perp_dot": seed, "arg": i}``:
    the same after removing from each ``out_t`` its component along ``args[i]_t`` (answers defined only up
    to such a component).
    """
    if type(out) is not torch.Tensor:
        raise NotPlain("expected a torch.Tensor")
    out = out.detach().to(torch.float64)
    if "perp_dot" in how:
        z = args[how["arg"]].to(torch.float64)
        if tuple(z.shape) == tuple(out.shape):
            zz = (z * z).sum(-1, keepdim=True)
            out = out - torch.where(zz > 0, (out * z).sum(-1, keepdim=True) / torch.where(zz > 0, zz, 1), 0) * z
        seed = how["perp_dot"]
    else:
        seed = how["dot"]
    R = torch.randn(*out.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (out * R).sum(-1)
