"""Does (G4)'s offset-weight computation need a per-device cache? Times it against the whole layer.

`CausalGrassmannMixing.offset_weights` builds ``a [T, m]`` from the positions on every call (a compare and
a division); an earlier version kept a per-(device, dtype) table of the rows instead. This script times,
interleaved in one run, (1) `offset_weights` as it is, (2) a table lookup (the earlier cache), and (3) the
whole layer's forward+backward (``impl="native"``, L = 256, the scaling benchmark's shapes), and prints
the share of the layer that (1) and (2) take. Usage: ``python scripts/offset_weights_cost.py [--json F]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

import gflow_lite  # noqa: F401  (registers the kernels)
from gflow_lite.bench.env import environment
from gflow_lite.model import PAPER_OFFSETS, CausalGrassmannMixing
from gflow_lite.training.metrics import git_commit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    L, d, r = 256, 256, 32
    layer = CausalGrassmannMixing(d, r, PAPER_OFFSETS, impl="native")
    h = torch.randn(1, L, d, requires_grad=True)
    t = torch.arange(L)
    D = max(PAPER_OFFSETS)
    valid = torch.arange(D + 1)[:, None] >= torch.tensor(PAPER_OFFSETS)
    table = valid.float() / valid.sum(-1, keepdim=True).clamp_min(1).float()

    def weights():
        return layer.offset_weights(t)

    def lookup():
        return table[t.clamp_max(D)]

    def step():
        layer(h).sum().backward()

    cases = {"offset_weights": (weights, 200), "table lookup": (lookup, 200), "layer fwd+bwd": (step, 1)}
    for f, _ in cases.values():
        f()
    times = {k: [] for k in cases}
    started = time.time()
    for _ in range(args.rounds):
        for name, (f, n) in cases.items():
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            times[name].append((time.perf_counter() - t0) / n * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:<16} {v:8.4f} ms  ({v / med['layer fwd+bwd']:.2%} of the layer)")
    if args.json:
        record = {"config": {"L": L, "d": d, "r": r, "offsets": list(PAPER_OFFSETS), "impl": "native",
                             "rounds": args.rounds, "threads": 1},
                  "median_ms": med, "share_of_layer": {k: v / med["layer fwd+bwd"] for k, v in med.items()},
                  "seed": 0, "git_commit": git_commit(), "hardware": environment(torch.device("cpu")),
                  "wall_time_s": time.time() - started}
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=2)


if __name__ == "__main__":
    main()
