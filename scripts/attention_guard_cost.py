"""What does attention's guard against non-finite values cost? Times it against plain attention.

`model.CausalSelfAttention` zeroes tokens whose q, k or v is not finite before the fused kernel and marks
every query that sees one as NaN after it (the kernel's 0 · NaN would otherwise leak a later token's NaN
into earlier outputs). This script builds the cpu-small Transformer (d 128, 4 layers, 4 heads, T 128,
batch 16) twice with the same weights, once with the guard and once with a subclass that calls
``F.scaled_dot_product_attention`` directly (the code before the guard), and prints, interleaved in one
run: the median forward+backward time of each, their ratio, the bytes autograd saves in each, and whether
the two agree bit for bit. Usage: ``python scripts/attention_guard_cost.py [--json F] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from gflow_lite.bench.env import environment
from gflow_lite.bench.memory import saved_tensor_bytes
from gflow_lite.bench.report import write_json
from gflow_lite.model import CausalSelfAttention, LMConfig, TransformerLM


class PlainAttention(CausalSelfAttention):
    """The attention before the guard: the fused kernel alone (no cache path needed here)."""

    def forward(self, x, cache=None):
        B, T, C = x.shape
        q, k, v = (y.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2)
                   for y in self.qkv(x).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = LMConfig(vocab_size=4096, block_size=128, d_model=128, n_layers=4, d_ff=512, n_heads=4, dropout=0.0)
    guarded = TransformerLM(cfg)
    plain = TransformerLM(cfg)
    plain.load_state_dict(guarded.state_dict())
    for block in plain.blocks:
        old = block.mix
        block.mix = PlainAttention(cfg.d_model, cfg.n_heads)
        block.mix.load_state_dict(old.state_dict())
    idx = torch.randint(0, cfg.vocab_size, (16, 128))
    targets = torch.randint(0, cfg.vocab_size, (16, 128))
    models = {"guarded": guarded, "plain": plain}

    def step(model):
        model.zero_grad(set_to_none=True)
        _, loss = model(idx, targets)
        loss.backward()
        return loss

    losses = {k: step(m).item() for k, m in models.items()}
    same_grads = all(torch.equal(a.grad, b.grad) for a, b in zip(guarded.parameters(), plain.parameters()))
    saved = {k: saved_tensor_bytes(lambda m=m: m(idx, targets)[1], exclude=list(m.parameters()))[0]
             for k, m in models.items()}
    times = {k: [] for k in models}
    started = time.time()
    for _ in range(args.rounds):
        for name, model in models.items():
            t0 = time.perf_counter()
            step(model)
            times[name].append((time.perf_counter() - t0) * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["guarded"] / med["plain"]
    print(f"TransformerLM cpu-small shapes (B 16, T 128, d 128, 4 layers), 1 thread, {args.rounds} rounds interleaved")
    for k in models:
        print(f"  {k:8s} fwd+bwd {med[k]:8.1f} ms   saved for backward {saved[k] / 2**20:8.2f} MiB   loss {losses[k]!r}")
    print(f"  time ratio guarded/plain {ratio:.3f}; saved bytes equal: {saved['guarded'] == saved['plain']}; "
          f"loss and every gradient bit-equal: {losses['guarded'] == losses['plain'] and same_grads}")
    if args.json:  # the benchmarks' results format: the environment (hardware, torch, git commit), then figures
        write_json(args.json, {
            "benchmark": "attention_guard", **environment(torch.device("cpu")), "seed": 0,
            "wall_time_s": time.time() - started,
            "config": {"vocab_size": 4096, "batch": 16, "T": 128, "d_model": 128, "n_layers": 4, "n_heads": 4,
                       "threads": 1, "rounds": args.rounds},
            "records": [{"attention": k, "median_ms": med[k], "saved_bytes": saved[k], "loss": losses[k]}
                        for k in models],
            "summary": {"ratio_guarded_over_plain": ratio, "saved_bytes_equal": saved["guarded"] == saved["plain"],
                        "bit_equal": losses["guarded"] == losses["plain"] and same_grads},
        })

if __name__ == "__main__":
    main()
