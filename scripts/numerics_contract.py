"""The Grassmann layer's numerics contract, measured on every implementation (issue 23, item 4).

Every case builds one `CausalGrassmannMixing` with N(0, 0.3) weights, runs it on the implementations
``reference``, ``fast``, ``fused`` and ``native`` in a precision (float32, or float32 parameters under bf16
autocast on the CPU) and compares its output and the gradients of the input and of every parameter with
the paper-order reference in float64 on the same weights and input. The reduction's weights are scaled
so that the reduced states z have the case's size |z|; nearly parallel cases build every token as
``rho_t (u + sin θ · xi_t)`` (so that z_t and z_{t-Δ} meet at angle ~θ).

Errors are relative to the float64 value's largest entry: ``max|x - x64| / max|x64|`` per tensor
(``out``: the layer's output; ``grad``: the worst over the input and all parameters; ``grad_W_red``: the
reduction's weight, whose gradient flows through z only). Inputs and weights are float32 numbers, the
same for the float64 reference. ``r2_zero``: at r = 2 with (G3) the normalised
wedge is ±1 (piecewise constant), so the exact gradient through z is 0: the case reports
``max(|dW_red|, |db_red|) / (largest gradient of any parameter)`` (and ``grad`` over the others).

    python scripts/numerics_contract.py --out results/numerics/contract.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import torch

import gflow_lite.kernels  # noqa: F401  (registers "fused" and "native")
from gflow_lite.kernels import native
from gflow_lite.model import CausalGrassmannMixing
from gflow_lite.training.metrics import git_commit

IMPLS = ("reference", "fast", "fused", "native")
D_MODEL, T_TOKENS, OFFSETS = 16, 9, (1, 2)


def inputs(d: int, sin: Optional[float], seed: int = 0, B: int = 2, T: int = T_TOKENS) -> torch.Tensor:
    """float64 ``h [B, T, d]``: random (``sin`` None) or nearly parallel tokens at angle ~``sin``."""
    g = torch.Generator().manual_seed(seed)
    if sin is None:
        return torch.randn(B, T, d, generator=g, dtype=torch.float64)
    u = torch.randn(B, 1, d, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=-1, keepdim=True)
    xi = torch.randn(B, T, d, generator=g, dtype=torch.float64) / math.sqrt(2 * d)
    rho = 0.5 + 1.5 * torch.rand(B, T, 1, generator=g, dtype=torch.float64)
    return rho * (u + sin * xi)


def layers(r: int, z_size: float, h: torch.Tensor, seed: int = 0):
    """(float32 layer, float64 reference) with the same weights, W_red scaled so that mean |z| = z_size."""
    torch.manual_seed(seed)
    layer = CausalGrassmannMixing(D_MODEL, r, OFFSETS, impl="reference")
    with torch.no_grad():
        for p in layer.parameters():
            torch.nn.init.normal_(p, std=0.3)
        layer.W_red.bias.zero_()  # z = W_red h: nearly parallel h give nearly parallel z
        z = torch.nn.functional.linear(h, layer.W_red.weight.double())
        layer.W_red.weight.mul_(z_size / float(z.norm(dim=-1).mean()))
    ref = CausalGrassmannMixing(D_MODEL, r, OFFSETS, impl="reference").double()
    ref.load_state_dict(layer.state_dict())
    return layer, ref


@torch.no_grad()
def min_sine(layer: CausalGrassmannMixing, h: torch.Tensor) -> float:
    """The smallest sine between z_t and a partner z_{t-Δ} (float64)."""
    z = torch.nn.functional.linear(h, layer.W_red.weight.double(), layer.W_red.bias.double())
    sines = []
    for delta in OFFSETS:
        a, b = z[:, delta:], z[:, :-delta]
        cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
        sines.append((1 - cos.clamp(-1, 1) ** 2).clamp_min(0).sqrt().flatten())
    return float(torch.cat(sines).min())


def run(layer: CausalGrassmannMixing, h: torch.Tensor, w: torch.Tensor, autocast: bool):
    h = h.detach().clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # native's fallback warning is recorded in the metadata instead
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = layer(h)
            loss = (y.float() * w.to(y.device, torch.float32)).sum() if autocast else (y * w.to(y.dtype)).sum()
    names = ["input"] + [n for n, _ in layer.named_parameters()]
    grads = torch.autograd.grad(loss, [h, *layer.parameters()])
    return y.detach().double(), {n: g.double() for n, g in zip(names, grads)}


def rel(x: torch.Tensor, ref: torch.Tensor) -> float:
    return float((x - ref).abs().max() / ref.abs().max().clamp_min(1e-300))


def case(name: str, r: int, z_size: float, sin: Optional[float], precision: str, note: str) -> Dict:
    h = inputs(D_MODEL, sin).float().double()  # the float32 paths see exactly the reference's input
    w = torch.randn(h.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    layer, ref = layers(r, z_size, h)
    y64, g64 = run(ref, h, w, False)
    largest = max(float(g.abs().max()) for n, g in g64.items() if n != "input")
    row = {"case": name, "r": r, "z_size": z_size, "sin_min": min_sine(layer, h), "precision": precision,
           "note": note, "impls": {}}
    for impl in IMPLS:
        layer.impl = impl
        y, g = run(layer, h.float(), w, precision == "bf16-autocast")
        if r == 2 and layer.normalize:  # the exact gradient through z is 0: no relative error for W_red
            m = {"out": rel(y, y64), "grad": max(rel(g[n], g64[n]) for n in g if not n.startswith("W_red"))}
            m["r2_zero"] = max(float(g["W_red.weight"].abs().max()), float(g["W_red.bias"].abs().max())) / largest
            m["r2_zero_ref64"] = max(float(g64["W_red.weight"].abs().max()),
                                     float(g64["W_red.bias"].abs().max())) / largest
        else:
            m = {"out": rel(y, y64), "grad": max(rel(g[n], g64[n]) for n in g),
                 "grad_W_red": rel(g["W_red.weight"], g64["W_red.weight"])}
        if not all(math.isfinite(v) for v in m.values()):
            m["finite"] = False
        row["impls"][impl] = m
    return row


CASES = [
    # (name, r, |z|, sin θ (None: random tokens), precision, what it shows)
    ("generic float32", 8, 1.0, None, "float32", "random tokens"),
    ("generic bf16", 8, 1.0, None, "bf16-autocast", "bf16 autocast: the layer computed in float32 or not"),
    ("near-parallel r=3 bf16", 3, 1.0, 1e-4, "bf16-autocast", "gradients under autocast, nearly parallel pairs"),
    ("near-parallel r=2 bf16", 2, 1.0, 1e-4, "bf16-autocast", "gradient through z must be 0"),
    ("r=2 normalised float32", 2, 1.0, 6.4e-5, "float32", "gradient through z must be 0"),
    *((f"|z|={s:g} float32", 8, s, None, "float32", "backward scaled: no underflow at large |z|")
      for s in (1e-3, 1.0, 1e4, 1.3e7, 3e7, 1e8)),
    *((f"sin={s:g} float32", 8, 1.0, s, "float32", "nearly parallel pairs") for s in (1e-2, 1e-4, 1e-6, 0.0)),
]


def table(rows: List[Dict]) -> str:
    lines = ["| case | sin θ min | metric | " + " | ".join(IMPLS) + " |",
             "|---|---|---|" + "---|" * len(IMPLS)]
    for row in rows:
        metrics = ["out", "r2_zero" if "r2_zero" in row["impls"]["reference"] else "grad_W_red", "grad"]
        for k in metrics:
            cells = [f"{row['impls'][i][k]:.2g}" for i in IMPLS]
            lines.append(f"| {row['case']} | {row['sin_min']:.2g} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/numerics/contract.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [case(*c) for c in CASES]
    result = {
        "meta": {"git_commit": git_commit(), "date": datetime.date.today().isoformat(),
                 "python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
                 "native_kernels": "built" if native.available() else f"fallback ({native.build_error()})",
                 "errors": "max|x - x_ref64| / max|x_ref64| per tensor; grad = worst over input and parameters",
                 "command": "python scripts/numerics_contract.py " + " ".join(argv or sys.argv[1:])},
        "cases": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(rows))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
