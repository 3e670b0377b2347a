"""``bench train``: tokens/s of a full training step of both language models, and the share of the
machine's measured matmul peak that the step reaches.

A step is `gflow_lite.train.train_step`, the step every training runs: forward with targets,
backward, gradient clipping (1.0) and AdamW (`gflow_lite.train.make_optimizer`), on a random batch
of ``batch_size`` x ``block_size`` tokens, models in train mode (dropout on). The configuration is the
``cpu-small`` preset of `gflow_lite.training.presets`, the Grassmann model with ``impl="native"`` (the
fastest path on the CPU, ``bench kernel``; ``--set impl=fused`` or ``impl=fast`` to compare). The peak is
a square fp32 matmul timed in the same interleaved rounds as the steps, so it sees the same contention. FLOPs per step come from `torch.utils.flop_counter.FlopCounterMode` over
one forward+backward, with attention run through the MATH backend so that its score and value products
are counted (FlopCounterMode counts them in full, L x L, and does not see the CPU flash kernel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from ..model import LMConfig, build_model
from ..options import check_lm_config
from ..options import config_dict
from ..train import make_optimizer, train_step
from ..training.presets import resolve
from .report import format_table, ratio
from .timing import interleaved

NAME = "train"
COLUMNS = (
    "model",
    "tokens_per_s",
    "ms_per_step",
    "cpu_ms",
    "iqr_ms",
    "steps",
    "gflop_per_step",
    "gflop_per_s",
    "fraction_of_peak",
    "params",
)

@dataclass(frozen=True)
class TrainBenchConfig:
    preset: str = "cpu-small"
    batch_size: Optional[int] = None  # None: the preset's
    block_size: Optional[int] = None  # None: the preset's
    d_model: Optional[int] = None  # None: the preset's (only for smoke tests)
    impl: str = "native"  # the Grassmann layer's path
    steps: int = 20
    peak_size: int = 2048
    seed: int = 0


QUICK = dict(steps=6, peak_size=1024)


def default_config(quick: bool = False) -> TrainBenchConfig:
    return TrainBenchConfig(**QUICK) if quick else TrainBenchConfig()


def _preset(cfg: TrainBenchConfig, arch: str) -> Tuple[LMConfig, Dict[str, Any], str, Any]:
    """The model config and the optimizer settings of the preset; where they came from; the preset."""
    tc = resolve(cfg.preset, arch)
    model = tc.model
    train = dict(batch_size=tc.batch_size, lr=tc.lr, weight_decay=tc.weight_decay, betas=tuple(tc.betas),
                 grad_clip=tc.grad_clip)
    source = f"gflow_lite.training.presets:{cfg.preset}"
    changes = {k: getattr(cfg, k) for k in ("block_size", "d_model") if getattr(cfg, k) is not None}
    if "d_model" in changes and changes["d_model"] % model.n_heads:
        changes["n_heads"] = 1
    if arch == "grassmann":
        changes["impl"] = cfg.impl
    if changes:
        model = check_lm_config(model.replace(**changes))
    if cfg.batch_size is not None:
        train["batch_size"] = cfg.batch_size
    return model, train, source, tc


def _train_step(model, tc: Any, x, y) -> Callable[[], None]:
    opt = make_optimizer(model, tc)
    return lambda: train_step(model, (x, y), opt, grad_clip=tc.grad_clip)


def step_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Matmul FLOPs of one forward+backward (FlopCounterMode; attention through the MATH backend)."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        _, loss = model(x, y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def run(cfg: TrainBenchConfig, device: torch.device) -> Dict[str, Any]:
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    cases: Dict[str, Callable[[], None]] = {}
    info: Dict[str, Dict[str, Any]] = {}
    source = ""
    for arch in ("grassmann", "transformer"):
        lm, train, source, tc = _preset(cfg, arch)
        model = build_model(arch, lm).to(device).train()
        B, T = train["batch_size"], lm.block_size
        x = torch.randint(0, lm.vocab_size, (B, T), generator=gen).to(device)
        y = torch.randint(0, lm.vocab_size, (B, T), generator=gen).to(device)
        info[arch] = {
            "flops": step_flops(model, x, y),
            "tokens": B * T,
            "params": model.num_params(),
            "lm": config_dict(lm),
            "train": {k: (list(v) if isinstance(v, tuple) else v) for k, v in train.items()},
        }
        cases[arch] = _train_step(model, tc, x, y)
    n = cfg.peak_size
    a = torch.randn(n, n, generator=gen).to(device)
    b = torch.randn(n, n, generator=gen).to(device)
    cases["matmul"] = lambda: torch.mm(a, b)
    times = interleaved(cases, rounds=cfg.steps, warmup=2, device=device)
    peak = 2 * n**3 / (times["matmul"].median_ms / 1e3) / 1e9
    records: List[Dict[str, Any]] = []
    for arch in ("grassmann", "transformer"):
        t, i = times[arch].summary(), info[arch]
        gflop = i["flops"] / 1e9
        rate = gflop / (t["ms"] / 1e3)
        records.append(
            {
                "model": arch,
                "tokens_per_s": round(i["tokens"] / (t["ms"] / 1e3), 1),
                "ms_per_step": t["ms"],
                "cpu_ms": t["cpu_ms"],
                "iqr_ms": t["iqr_ms"],
                "steps": t["rounds"],
                "gflop_per_step": round(gflop, 4),
                "gflop_per_s": round(rate, 2),
                "fraction_of_peak": round(rate / peak, 4),
                "params": i["params"],
                "tokens_per_step": i["tokens"],
            }
        )
    records.append(
        {
            "model": "matmul",
            "ms_per_step": times["matmul"].summary()["ms"],
            "gflop_per_s": round(peak, 2),
            "steps": times["matmul"].summary()["rounds"],
            "n": n,
        }
    )
    print(format_table(records, COLUMNS), flush=True)
    return {
        "config": {
            **config_dict(cfg),
            "source": source,
            "lm": {k: v["lm"] for k, v in info.items()},
            "train": info["grassmann"]["train"],
        },
        "records": records,
        "summary": summarize(records, peak),
        "methods": {
            "step": "gflow_lite.train.train_step: forward(idx, targets) + backward + clip_grad_norm_(1.0) + "
            "AdamW.step + zero_grad, train mode",
            "tokens_per_s": "batch_size * block_size / median wall-clock step time (interleaved rounds)",
            "gflop_per_step": "FlopCounterMode over one forward+backward (matmuls only; attention via MATH "
            "backend, full L x L scores); the optimizer step is not counted",
            "peak": f"median time of a {n}x{n} fp32 torch.mm in the same interleaved rounds",
        },
    }


def summarize(records: List[Dict[str, Any]], peak: float) -> Dict[str, Any]:
    r = {x["model"]: x for x in records}
    tps = ratio(r["transformer"]["tokens_per_s"], r["grassmann"]["tokens_per_s"])
    return {
        "matmul_peak_gflop_per_s": round(peak, 2),
        "transformer_over_grassmann_tokens_per_s": tps,
        "targets": {
            "grassmann_within_1.2x_of_transformer": {
                "ratio": tps,
                "need": "<= 1.2",
                "met": tps is not None and tps <= 1.2,
            }
        },
    }
