"""Figures drawn from run directories and compare results (views of the JSON, never the source of numbers)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from ..training.metrics import read_metrics

COLOURS = {"grassmann": "tab:blue", "transformer": "tab:orange"}


def plot_learning_curves(compare_dir: Path | str, out_png: Path | str | None = None, title: str = ""):
    """Validation perplexity against training tokens for every run below ``compare_dir``."""
    compare_dir = Path(compare_dir)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for run_dir in sorted(p for p in compare_dir.iterdir() if (p / "metrics.jsonl").is_file()):
        model = run_dir.name.split("_seed")[0]
        pts = [(r["tokens"], r["val_ppl"]) for r in read_metrics(run_dir) if r.get("val_ppl") is not None]
        if pts:
            x, y = zip(*pts)
            ax.plot([t / 1e6 for t in x], y, marker="o", ms=3, color=COLOURS.get(model),
                    label=run_dir.name, alpha=0.85)
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("validation perplexity")
    ax.set_yscale("log")
    ax.set_title(title or compare_dir.name)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if out_png is not None:
        fig.savefig(out_png, dpi=110)
        plt.close(fig)
    return fig
