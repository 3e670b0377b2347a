"""``bench decode``: latency of one generated token at growing context, with each model's cache.

`GrassmannLM` streams with `MixCache` (the last max(Δ) reduced vectors per layer: constant size);
`TransformerLM` with `KVCache` (keys and values of every past token: grows with the context). Both use
``pos_emb="none"`` so the Grassmann model can run past ``block_size`` (learned absolute positions would
stop streaming there) and the two configurations differ only in the mixer.

Protocol: for every (model, context c) a stream is prefilled with c tokens through its cache; then
rounds of bursts of ``burst`` single-token steps ``model(next_token, cache=cache)`` (batch 1, no grad,
eval mode) are timed, one burst per stream per round, streams in rotating order. All streams share the
rounds, so contention hits every context and both models alike; a burst amortises the cold caches left
by the previous stream (the Transformer's KV caches are tens of MB). ``ms_per_token`` is the median
burst time divided by ``burst``; sampling is left out (identical for both). ``cache_mb`` is the cache
right after the prefill; the Grassmann cache holds min(context, max Δ) vectors per layer, so it is
constant from context max Δ on.

The Grassmann model decodes with ``impl="fast"``: at one token per call the fused kernel's fixed cost per
call outweighs what it saves (measured: 5.4 ms against 4.9 ms per token at context 512, 6 layers, one
thread); ``--set impl=fused`` to compare. The results file records the impl.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import torch

from ..model import PAPER_OFFSETS, LMConfig
from ..options import check_lm_config
from ..model import GrassmannLM, TransformerLM
from ..options import config_dict
from .report import format_table, ratio
from .timing import interleaved

NAME = "decode"
COLUMNS = ("model", "context", "ms_per_token", "cpu_ms", "iqr_ms", "steps", "cache_mb")


@dataclass(frozen=True)
class DecodeConfig:
    vocab_size: int = 4096
    d_model: int = 256
    n_layers: int = 6
    d_ff: int = 1024
    r: int = 32
    offsets: Tuple[int, ...] = PAPER_OFFSETS
    n_heads: int = 4
    impl: str = "fast"  # the Grassmann layer's path for single-token steps
    contexts: Tuple[int, ...] = (64, 128, 256, 512, 1024, 2048, 4096)
    rounds: int = 9
    burst: int = 8
    seed: int = 0


QUICK = dict(contexts=(64, 512, 4096), rounds=4, burst=4)


def default_config(quick: bool = False) -> DecodeConfig:
    return DecodeConfig(**QUICK) if quick else DecodeConfig()


def lm_config(cfg: DecodeConfig) -> LMConfig:
    return check_lm_config(LMConfig(
        vocab_size=cfg.vocab_size,
        block_size=max(cfg.contexts) + (cfg.rounds + 2) * cfg.burst + 2,
        d_model=cfg.d_model,
        n_layers=cfg.n_layers,
        d_ff=cfg.d_ff,
        r=cfg.r,
        offsets=cfg.offsets,
        n_heads=cfg.n_heads,
        impl=cfg.impl,
        dropout=0.0,
        pos_emb="none",
    ))


class _Stepper:
    """One model's cached stream: ``step()`` feeds the next token of ``tokens`` through the cache."""

    def __init__(self, model: torch.nn.Module, tokens: torch.Tensor, context: int) -> None:
        self.model, self.tokens, self.t = model, tokens, context
        self.cache = model.new_cache()
        with torch.no_grad():
            model(tokens[:, :context], cache=self.cache)
        self.cache_bytes = self.cache.nbytes()

    def steps(self, n: int) -> None:
        with torch.no_grad():
            for _ in range(n):
                self.model(self.tokens[:, self.t : self.t + 1], cache=self.cache)
                self.t += 1


def run(cfg: DecodeConfig, device: torch.device) -> Dict[str, Any]:
    torch.manual_seed(cfg.seed)
    lm = lm_config(cfg)
    models = {
        "grassmann": GrassmannLM(lm).to(device).eval(),
        "transformer": TransformerLM(lm).to(device).eval(),
    }
    gen = torch.Generator().manual_seed(cfg.seed)
    length = max(cfg.contexts) + (cfg.rounds + 2) * cfg.burst + 1
    tokens = torch.randint(0, cfg.vocab_size, (1, length), generator=gen).to(device)
    streams = {(name, c): _Stepper(m, tokens, c) for c in cfg.contexts for name, m in models.items()}
    cases = {key: (lambda s=s: s.steps(cfg.burst)) for key, s in streams.items()}
    times = interleaved(cases, rounds=cfg.rounds, warmup=1, device=device)
    records: List[Dict[str, Any]] = []
    for (name, c), s in streams.items():
        t = times[(name, c)].summary()
        records.append(
            {
                "model": name,
                "context": c,
                "ms_per_token": round(t["ms"] / cfg.burst, 4),
                "cpu_ms": round(t["cpu_ms"] / cfg.burst, 4),
                "iqr_ms": round(t["iqr_ms"] / cfg.burst, 4),
                "steps": t["rounds"] * cfg.burst,
                "cache_mb": round(s.cache_bytes / 2**20, 4),
                "cache_bytes": s.cache_bytes,
            }
        )
    print(format_table(records, COLUMNS), flush=True)
    return {
        "config": {**config_dict(cfg), "lm": config_dict(lm)},
        "records": records,
        "summary": summarize(records),
        "methods": {
            "ms_per_token": "median over rounds of the wall-clock time of a burst of single-token cached "
            "forwards (no sampling) divided by the burst length; all (model, context) streams interleaved",
            "cache_mb": "StreamCache.nbytes() after the prefill: MixCache z vectors / KVCache keys+values",
            "positions": "pos_emb='none' for both models (the Grassmann stream must pass block_size)",
        },
    }


def summarize(records: List[Dict[str, Any]]) -> Dict[str, Any]:
    g = sorted((r for r in records if r["model"] == "grassmann"), key=lambda r: r["context"])
    t = {r["context"]: r for r in records if r["model"] == "transformer"}
    if not g:
        return {}
    lo, hi = g[0], g[-1]
    growth = ratio(hi["ms_per_token"], lo["ms_per_token"])
    cache_growth = ratio(hi["cache_bytes"], lo["cache_bytes"])
    vs_t = ratio(t[hi["context"]]["ms_per_token"], hi["ms_per_token"]) if hi["context"] in t else None
    targets = {
        f"latency_{hi['context']}_within_1.3x_of_{lo['context']}": {
            "ratio": growth,
            "need": "<= 1.3",
            "met": growth is not None and growth <= 1.3,
        },
        "constant_cache": {"ratio": cache_growth, "need": "== 1.0", "met": cache_growth == 1.0},
    }
    if vs_t is not None:
        targets[f"faster_than_kv_cache_at_{hi['context']}"] = {
            "ratio": vs_t,
            "need": "> 1.0",
            "met": vs_t > 1.0,
        }
    return {
        "grassmann_latency_growth": growth,
        "grassmann_cache_growth": cache_growth,
        "transformer_latency_growth": ratio(
            t[hi["context"]]["ms_per_token"], t[lo["context"]]["ms_per_token"]
        )
        if hi["context"] in t and lo["context"] in t
        else None,
        "transformer_over_grassmann": {
            str(c): ratio(t[c]["ms_per_token"], r["ms_per_token"])
            for c, r in ((r["context"], r) for r in g)
            if c in t
        },
        "targets": targets,
    }
