"""How often does a trained Grassmann model meet nearly parallel pairs? Per layer and offset, on validation.

For a trained run (its ``best.pt``), feed the WikiText-2 validation split in non-overlapping blocks and
count, for every layer and offset, the valid pairs ``(z_t, z_{t-Δ})`` whose sine ``||z_t ∧ z_{t-Δ}|| /
(|z_t| |z_{t-Δ}|)`` is below 1e-3 (and 1e-2), where the old float32 formula lost most of its digits.

    python scripts/near_parallel_pairs.py RUN_DIR --out results/numerics/near_parallel_pairs.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from gflow_lite.analysis import layer_diagnostics, layer_inputs
from gflow_lite.data.batching import eval_blocks
from gflow_lite.data.wikitext import load_wikitext2
from gflow_lite.training.inference import load_model
from gflow_lite.options import config_dict
from gflow_lite.training.metrics import git_commit

THRESHOLDS = (1e-3, 1e-2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory holding best.pt")
    parser.add_argument("--out", type=Path, default=Path("results/numerics/near_parallel_pairs.json"))
    parser.add_argument("--max-batches", type=int, default=None, help="validation batches (default: all)")
    args = parser.parse_args()
    start = time.time()
    loaded = load_model(args.run / "best.pt", device="cpu")
    model, cfg = loaded.model, loaded.config
    ids = load_wikitext2("valid", loaded.tokenizer, cfg.bpe_vocab_size)
    mixers = [block.mix for block in model.blocks]
    counts = {(i, d): {"pairs": 0, **{f"sin<{t:g}": 0 for t in THRESHOLDS}, "min_sin": 1.0}
              for i, mix in enumerate(mixers) for d in mix.offsets}
    with torch.no_grad():
        for batch in eval_blocks(ids, cfg.model.block_size, 16, args.max_batches):
            for i, (mix, h) in enumerate(zip(mixers, layer_inputs(model, batch.x))):
                diag = layer_diagnostics(mix, h)
                for k, d in enumerate(mix.offsets):
                    sin = diag["pair_sin"][..., k][:, diag["valid"][:, k]].flatten()
                    row = counts[(i, d)]
                    row["pairs"] += sin.numel()
                    row["min_sin"] = min(row["min_sin"], float(sin.min())) if sin.numel() else row["min_sin"]
                    for t in THRESHOLDS:
                        row[f"sin<{t:g}"] += int((sin < t).sum())
    rows = [{"layer": i, "offset": d, **row,
             **{f"fraction sin<{t:g}": row[f"sin<{t:g}"] / max(row["pairs"], 1) for t in THRESHOLDS}}
            for (i, d), row in counts.items()]
    summary = json.loads((args.run / "summary.json").read_text()) if (args.run / "summary.json").exists() else {}
    record = {
        "what": "nearly parallel pairs (sin θ below a threshold) of a trained model on WikiText-2 validation",
        "run": str(args.run), "checkpoint_step": loaded.step,
        "run_git_commit": summary.get("git_commit"), "model_config": config_dict(cfg.model),
        "seed": cfg.seed, "tokens": int(len(ids)), "rows": rows,
        "git_commit": git_commit(),
        "hardware": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__},
        "wall_s": round(time.time() - start, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print("| layer | offset | pairs | sin θ < 1e-3 | sin θ < 1e-2 | smallest sin θ |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['layer']} | {r['offset']} | {r['pairs']:,} | {r['sin<0.001']} | {r['sin<0.01']} | "
              f"{r['min_sin']:.2g} |")


if __name__ == "__main__":
    main()
