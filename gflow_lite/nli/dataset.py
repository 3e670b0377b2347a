"""SNLI splits turned into frozen-encoder features, and the batches drawn from them.

Each split keeps the features of its *distinct* sentences once (SNLI repeats every premise for about
three hypotheses, so dev and test hold ~3.3k premises for ~9.8k pairs) and, per pair, the indices of its
premise and hypothesis in that table. Training batches are bucketed by length (shuffled, then sorted
inside pools of 50 batches, then the batches shuffled) so that little compute goes to padding; evaluation
batches are sorted by length.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import torch

from ..data.snli import LABELS, SNLISplit
from .cache import cached_features
from .encoder import SentenceEncoder
from .features import PairBatch, TokenFeatures, collate_pairs, pair_lengths

__all__ = ["EncodedSplit", "encode_split", "subsample", "train_batches", "eval_batches"]


@dataclass
class EncodedSplit:
    """One SNLI split as feature-table indices: pair i is (premise_ids[i], hypothesis_ids[i], labels[i])."""

    name: str
    features: TokenFeatures
    premise_ids: List[int]
    hypothesis_ids: List[int]
    labels: List[int]
    dropped: int
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def summary(self) -> Dict:
        """Counts for the results file."""
        return {
            "pairs": len(self),
            "dropped_no_gold_label": self.dropped,
            "distinct_sentences": len(self.features),
            "label_counts": {name: self.labels.count(i) for i, name in enumerate(LABELS)},
            "source": self.source,
        }


def subsample(split: SNLISplit, n: int, seed: int = 0) -> SNLISplit:
    """The first ``n`` pairs of a fixed random permutation of ``split`` (all of it if ``n >= len``)."""
    if n >= len(split):
        return split
    order = sorted(random.Random(seed).sample(range(len(split)), n))
    return SNLISplit(
        split=split.split,
        premises=[split.premises[i] for i in order],
        hypotheses=[split.hypotheses[i] for i in order],
        labels=[split.labels[i] for i in order],
        dropped=split.dropped,
        source=f"{split.source} (random subset of {n})",
        sha256=split.sha256,
    )


def encode_split(
    split: SNLISplit, encoder: SentenceEncoder, max_len: int, cache_dir: Optional[Path] = None
) -> EncodedSplit:
    """Encode the distinct sentences of ``split`` (through the feature cache) and index its pairs."""
    table: Dict[str, int] = {}
    for sentence in list(split.premises) + list(split.hypotheses):
        table.setdefault(sentence, len(table))
    sentences = list(table)
    features = cached_features(sentences, encoder, max_len, cache_dir)
    return EncodedSplit(
        name=split.split,
        features=features,
        premise_ids=[table[s] for s in split.premises],
        hypothesis_ids=[table[s] for s in split.hypotheses],
        labels=list(split.labels),
        dropped=split.dropped,
        source=split.source,
    )


def _collate(data: EncodedSplit, idx: Sequence[int]) -> PairBatch:
    return collate_pairs(
        data.features,
        [data.premise_ids[i] for i in idx],
        [data.hypothesis_ids[i] for i in idx],
        [data.labels[i] for i in idx],
    )


def train_batches(
    data: EncodedSplit, batch_size: int, generator: torch.Generator, pool: int = 50
) -> Iterator[PairBatch]:
    """One epoch of length-bucketed, shuffled training batches (the last one may be smaller)."""
    lengths = pair_lengths(data.features, data.premise_ids, data.hypothesis_ids)
    order = torch.randperm(len(data), generator=generator).tolist()
    batches: List[List[int]] = []
    span = batch_size * pool
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    for k in torch.randperm(len(batches), generator=generator).tolist():
        yield _collate(data, batches[k])


def eval_batches(data: EncodedSplit, batch_size: int) -> Iterator[PairBatch]:
    """All pairs once, in batches sorted by length."""
    lengths = pair_lengths(data.features, data.premise_ids, data.hypothesis_ids)
    order = sorted(range(len(data)), key=lambda i: lengths[i])
    for start in range(0, len(order), batch_size):
        yield _collate(data, order[start : start + batch_size])
