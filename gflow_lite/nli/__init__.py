"""SNLI heads over a frozen sentence encoder (the paper's section on natural language inference).

Layout, one job per file, imports flowing down:

    features.py       ragged token features of sentences; padded (premise, hypothesis) batches
    encoder.py        frozen all-MiniLM-L6-v2 token features (offline), and the caveat about it
    cache.py          on-disk feature cache keyed by encoder + sentences + max_len
    dataset.py        SNLI splits as feature indices; bucketed / sorted batches
    window_mixing.py  windowed, grouped Grassmann mixing over real token pairs (pair-validity mask)
    heads.py          the Grassmann–Plücker head and the size-matched Transformer head
    train.py          one seed: AdamW, warmup + cosine, early stopping on dev accuracy
    report.py         the results JSON (mean / std over seeds, provenance)
    figure.py         snli.png: ours beside the paper's numbers
    experiment.py     the whole run: data, features, seeds, results, figure
    cli.py            ``python -m gflow_lite.nli`` and ``register(subparsers)`` for the main CLI

The encoder is loaded lazily: importing this package needs neither ``transformers`` nor the weights.
"""

from .features import PairBatch, TokenFeatures, collate_pairs
from .heads import HEADS, GrassmannPluckerHead, HeadConfig, TransformerHead, build_head, count_params
from .window_mixing import WindowGrassmannMixing, window_pair_mask

__all__ = [
    "HEADS",
    "HeadConfig",
    "GrassmannPluckerHead",
    "TransformerHead",
    "build_head",
    "count_params",
    "WindowGrassmannMixing",
    "window_pair_mask",
    "PairBatch",
    "TokenFeatures",
    "collate_pairs",
]
