"""Nearly parallel token states: the float32 error of every path of the Grassmann layer, before and after
the stable pair norm (issue "Numerically sound and fault-proof", section 1).

Setting (the issue's report): one layer ``CausalGrassmannMixing(256, 32, (1,))``, weights N(0, 0.02), two
token states ``h_1 = h_0 + δ · noise``; the error is the largest |path − reference in float64| over the
outputs. "before" recomputes the old fast path here (the Lagrange identity ``n^2 = |z|^2 |z'|^2 − <z, z'>^2``
and the raw partner, as the library computed it until this change); "reference", "fast" and "fused" are
the library's paths now. A second sweep scales |z| (the reduction's output) at fixed small angles.

    python scripts/numerics_sweep.py --out results/numerics/near_parallel_sweep.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gflow_lite.geometry import lagrange_norm_sq, plucker
from gflow_lite.model import CausalGrassmannMixing, shift_back
from gflow_lite.training.metrics import git_commit

DELTAS = [1e-2, 1e-3, 1e-4, 1e-5, 0.0]
SCALES = [1e-3, 1.0, 1e3, 1e6, 1e9]


def before_fix(layer: CausalGrassmannMixing, h: torch.Tensor) -> torch.Tensor:
    """The pre-fix fast path: c = a / sqrt(max(Lagrange n^2, eps^2)), w = Σ c z', g = W (z ∧ w) + Σa b."""
    z = layer.W_red(h)
    T = z.shape[1]
    a, _ = layer.offset_weights(torch.arange(T), z.dtype)
    zp = torch.stack([shift_back(z, d) for d in layer.offsets], -2)
    n = lagrange_norm_sq(z.unsqueeze(-2), zp).clamp_min(layer.eps ** 2).sqrt()
    w = ((a / n).unsqueeze(-1) * zp).sum(-2)
    g = F.linear(plucker(z, w), layer.W_plu.weight) + a.sum(-1, keepdim=True) * layer.W_plu.bias
    alpha = torch.sigmoid(layer.W_gate(torch.cat([h, g], -1)))
    return alpha * h + (1 - alpha) * g


def errors(layer, ref64, h):
    want = ref64(h.double())
    out = {"before (Lagrange identity)": float((before_fix(layer, h).double() - want).abs().max())}
    for impl in ("reference", "fast", "fused"):
        layer.impl = impl
        out[impl] = float((layer(h).double() - want).abs().max())
    out["output scale"] = float(want.abs().max())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/numerics/near_parallel_sweep.json"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.time()
    torch.manual_seed(args.seed)
    layer = CausalGrassmannMixing(256, 32, (1,))
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.02)
    ref64 = CausalGrassmannMixing(256, 32, (1,), impl="reference").double()
    ref64.load_state_dict(layer.state_dict())
    h0, noise = torch.randn(1, 1, 256), torch.randn(1, 1, 256)
    with torch.no_grad():
        by_delta = {f"{d:g}": errors(layer, ref64, torch.cat([h0, h0 + d * noise], 1)) for d in DELTAS}
        by_scale = {}
        for s in SCALES:  # |h| scaled: |z| grows with it (the reduction is linear, its bias is small)
            h = s * torch.cat([h0, h0 + 1e-3 * noise], 1)
            by_scale[f"{s:g}"] = errors(layer, ref64, h)
    record = {
        "what": "largest |path - float64 reference| on the layer's outputs, float32, CPU",
        "config": {"d_model": 256, "r": 32, "offsets": [1], "init_std": 0.02, "normalize": True, "eps": 1e-6,
                   "inputs": "h_1 = h_0 + delta * noise, h ~ N(0, 1); by_scale: h scaled, delta 1e-3"},
        "seed": args.seed,
        "by_delta": by_delta,
        "by_scale": by_scale,
        "git_commit": git_commit(),
        "hardware": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                     "threads": torch.get_num_threads()},
        "wall_s": round(time.time() - start, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    cols = ["before (Lagrange identity)", "reference", "fast", "fused", "output scale"]
    rule = "|---" * (len(cols) + 1) + "|"
    print("| δ | " + " | ".join(cols) + " |\n" + rule)
    for d, row in by_delta.items():
        print(f"| {d} | " + " | ".join(f"{row[c]:.2g}" for c in cols) + " |")
    print("\n| scale of h | " + " | ".join(cols) + " |\n" + rule)
    for s, row in by_scale.items():
        print(f"| {s} | " + " | ".join(f"{row[c]:.2g}" for c in cols) + " |")


if __name__ == "__main__":
    main()
