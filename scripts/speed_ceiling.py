"""How fast can one Grassmann block be at short lengths? Its matrix products alone, against attention.

Issue 9 asked for the mixing block at L = 256 (d 256, r 32, the paper's six offsets, batch 1, one thread)
to run at >= 1.3x the speed of the attention block. This script measures, side by side in one run
(interleaved, rotating rounds; median CPU time of this process, so that other processes on a shared
machine count less than in wall-clock time):

* ``attention``: `CausalSelfAttention` (QKV, SDPA with ``is_causal=True``, output projection);
* ``native``, ``fused`` and ``fast``: `CausalGrassmannMixing` with each implementation;
* ``compiled`` (with ``--compile``): the plain ``fast`` layer under ``torch.compile`` (inductor);
* ``matmuls``: only the matrix products of the native kernel's forward and backward, at its shapes
  (``gflow_lite.kernels.native``: (G1) ``W_red h``, (G4) ``q W_pluᵀ`` over the P = r (r - 1) / 2 pairs, (G5) the
  two gate products, and in the backward the nine products of the weight, bias and input gradients: the
  same FLOPs as the layer's forward+backward, tests/test_bench.py). Any implementation that keeps these
  products as float32 matrix products needs at least this time, so ``attention / matmuls`` is a ceiling
  on the speed-up reachable at this length, and ``x - matmuls`` is what an implementation spends on
  everything else.

Each forward+backward starts from the same input and output gradient. Writes ``--json`` with the config,
the seed, the git commit, the hardware, the load average and the wall time.

    python scripts/speed_ceiling.py --json results/bench/ceiling.json [--compile]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from gflow_lite.bench.blocks import block_step
from gflow_lite.bench.env import environment, set_threads
from gflow_lite.bench.timing import interleaved
from gflow_lite.model import PAPER_OFFSETS, CausalGrassmannMixing, CausalSelfAttention


def matmuls_of_the_kernel(N: int, d: int, r: int, gen: torch.Generator):
    """A closure running the native kernel's forward and backward matrix products on random operands."""
    P = r * (r - 1) // 2  # the Plücker pairs, in W_plu's order (gflow_lite.kernels.native)
    x = {name: torch.randn(*shape, generator=gen) for name, shape in {
        "h": (N, d), "W_red": (r, d), "q": (N, P), "W_plu": (d, P), "W_h": (d, d), "W_g": (d, d),
        "g": (N, d), "dh_mix": (N, d), "dz": (N, r), "a_sum": (1, N)}.items()}

    def step() -> None:
        h, q, g, dy, dz = x["h"], x["q"], x["g"], x["dh_mix"], x["dz"]
        h @ x["W_red"].T, q @ x["W_plu"].T, h @ x["W_h"].T, g @ x["W_g"].T  # (G1), (G4), (G5) x 2
        dy.T @ q, dy @ x["W_plu"], x["a_sum"] @ dy  # dW_plu, dq, db_plu
        dy @ x["W_h"], dy @ x["W_g"], dy.T @ h, dy.T @ g  # dh, dg through the gate; dW_gate (two halves)
        dz.T @ h, dz @ x["W_red"]  # dW_red, dh through (G1)

    return step


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lengths", default="256,512", help="comma-separated sequence lengths (default 256,512)")
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compile", action="store_true", help="also time the fast layer under torch.compile")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    start = time.perf_counter()
    set_threads(args.threads)
    d, r, seed, batch = 256, 32, 0, 1
    device = torch.device("cpu")
    torch.manual_seed(seed)
    layers = {impl: CausalGrassmannMixing(d, r, PAPER_OFFSETS, impl=impl) for impl in ("native", "fused", "fast")}
    for impl in ("fused", "fast"):
        layers[impl].load_state_dict(layers["native"].state_dict())
    modules = {"attention": CausalSelfAttention(d, 4), **layers}
    if args.compile:
        modules["compiled"] = torch.compile(layers["fast"])
    header = environment(device)
    records = []
    for L in [int(x) for x in args.lengths.split(",")]:
        gen = torch.Generator().manual_seed(seed)
        h = torch.randn(batch, L, d, generator=gen).requires_grad_(True)
        grad_out = torch.randn(batch, L, d, generator=gen)
        cases = {name: block_step(m, h, grad_out) for name, m in modules.items()}
        cases["matmuls"] = matmuls_of_the_kernel(batch * L, d, r, gen)
        timings = interleaved(cases, rounds=args.rounds, warmup=3, device=device)
        cpu_ms = {name: statistics.median(t.cpu) * 1e3 for name, t in timings.items()}
        wall_ms = {name: statistics.median(t.wall) * 1e3 for name, t in timings.items()}
        row = {"seq_len": L, "cpu_ms": {k: round(v, 3) for k, v in cpu_ms.items()},
               "wall_ms": {k: round(v, 3) for k, v in wall_ms.items()},
               "attention_over": {k: round(cpu_ms["attention"] / v, 3) for k, v in cpu_ms.items()
                                  if k != "attention"}}
        records.append(row)
        print(f"L={L}: median CPU ms " + ", ".join(f"{k} {v:.2f}" for k, v in cpu_ms.items()))
        print("       attention / x (CPU time): " + ", ".join(f"{k} {v:.3f}" for k, v in row["attention_over"].items()))
    payload = {"benchmark": "speed ceiling (scripts/speed_ceiling.py)", **header,
               "config": {"d_model": d, "r": r, "offsets": list(PAPER_OFFSETS), "n_heads": 4, "batch": batch,
                          "rounds": args.rounds, "threads": args.threads, "compile": args.compile, "seed": seed},
               "records": records, "wall_time_s": round(time.perf_counter() - start, 1),
               "methods": "median CPU time of this process over interleaved, rotating rounds after 3 warm-up "
                          "rounds; forward+backward from a fixed output gradient"}
    if args.json:
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
