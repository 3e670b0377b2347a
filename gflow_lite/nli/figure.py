"""``snli.png``: our dev/test accuracy per head (mean ± std over seeds) beside the paper's single run.

The two groups of bars are *not* a like-for-like comparison and the figure says so: the paper trained
on all 550k SNLI pairs over DistilBERT-base-uncased; we train on the 1% sample (or whatever the results
files record) over a frozen all-MiniLM-L6-v2 that saw SNLI during its own training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

from .heads import HEADS
from .report import load_results, paper_snli, results_path

__all__ = ["plot_results"]


def plot_results(out_dir: Path, path: Path | None = None) -> Path:
    """Draw ``snli.png`` in ``out_dir`` from ``snli_grassmann.json`` and ``snli_transformer.json`` there."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    results: Dict[str, Dict] = {head: load_results(results_path(out_dir, head)) for head in HEADS}
    PAPER_SNLI = paper_snli()  # the paper's Table 3, read from data/published.csv
    train_pairs = {r["data"]["train"]["pairs"] for r in results.values()}
    n_seeds = {len(r["seeds"]) for r in results.values()}
    colours = {"grassmann": "#2a7ab0", "transformer": "#d9822b"}
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.6), sharey=True)
    width = 0.35
    for ax, split in zip(axes, ("dev_acc", "test_acc")):
        for k, head in enumerate(HEADS):
            summary = results[head]["summary"][split]
            ax.bar(0 + (k - 0.5) * width, summary["mean"], width, yerr=summary["std"], capsize=4,
                   color=colours[head], label=head)
            ax.bar(1 + (k - 0.5) * width, PAPER_SNLI[head][split], width, color=colours[head], alpha=0.45,
                   hatch="//")
            ax.text(0 + (k - 0.5) * width, summary["mean"] + summary["std"] + 0.004, f"{summary['mean']:.3f}",
                    ha="center", fontsize=7)
            ax.text(1 + (k - 0.5) * width, PAPER_SNLI[head][split] + 0.004, f"{PAPER_SNLI[head][split]:.4f}",
                    ha="center", fontsize=7)
        ax.set_xticks([0, 1])
        ax.set_xticklabels([
            f"ours: frozen MiniLM-L6,\n{'/'.join(str(p) for p in sorted(train_pairs))} train pairs, "
            f"{'/'.join(str(s) for s in sorted(n_seeds))} seeds",
            "paper: DistilBERT,\n550k train pairs, 1 run",
        ], fontsize=7)
        ax.set_title(split.replace("_acc", " accuracy"))
        lows = [results[h]["summary"][split]["mean"] - results[h]["summary"][split]["std"] for h in HEADS]
        ax.set_ylim(max(0.0, min(lows + [0.85]) - 0.06), 0.9)
    axes[0].set_ylabel("SNLI accuracy")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("SNLI heads: ours vs the paper (different encoders and training-set sizes: not comparable)",
                 fontsize=9)
    fig.tight_layout()
    path = Path(path) if path is not None else out_dir / "snli.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
