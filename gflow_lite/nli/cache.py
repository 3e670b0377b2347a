"""On-disk cache of frozen-encoder token features.

One file per (encoder, sentences, max_len): the key is the SHA-256 of the encoder's fingerprint (its
weights and tokenizer), a hash of the exact sentence list (so a different split, subset or order is a
different entry), ``max_len`` and a format version. A changed ``max_len`` or encoder therefore never
reads stale features. Files are ``torch.save``d dicts written atomically under
``<GFLOW_CACHE_DIR or ~/.cache/gflow_lite>/nli_features/``; a file that fails to load or whose stored
key does not match is recomputed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional, Sequence

import torch

from ..data.atomic import atomic_open
from ..data.paths import cache_dir
from .encoder import SentenceEncoder
from .features import TokenFeatures

__all__ = ["CACHE_VERSION", "sentences_hash", "feature_key", "cached_features"]

CACHE_VERSION = 1


def sentences_hash(sentences: Sequence[str]) -> str:
    """SHA-256 of the sentence list (order and count included)."""
    digest = hashlib.sha256()
    digest.update(str(len(sentences)).encode())
    for sentence in sentences:
        data = sentence.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def feature_key(encoder_fingerprint: str, data_hash: str, max_len: int) -> str:
    """Cache key of one (encoder, sentences, max_len) triple."""
    text = f"v{CACHE_VERSION}|{encoder_fingerprint}|{data_hash}|max_len={int(max_len)}"
    return hashlib.sha256(text.encode()).hexdigest()


def _load(path: Path, key: str) -> Optional[TokenFeatures]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("key") != key:
            return None
        return TokenFeatures(payload["data"], payload["offsets"])
    except Exception:  # unreadable / truncated / foreign file: recompute
        return None


def cached_features(
    sentences: Sequence[str],
    encoder: SentenceEncoder,
    max_len: int,
    directory: Optional[Path] = None,
) -> TokenFeatures:
    """Features of ``sentences`` from the cache, or computed by ``encoder`` and stored.

    Args:
        sentences: the sentences, in the order the returned features follow.
        encoder: anything with ``fingerprint`` and ``encode(sentences, max_len)``.
        max_len: token budget per sentence (part of the key).
        directory: cache folder (default ``cache_dir() / "nli_features"``).
    """
    folder = Path(directory) if directory is not None else cache_dir() / "nli_features"
    key = feature_key(encoder.fingerprint, sentences_hash(sentences), max_len)
    path = folder / f"{key[:32]}.pt"
    if path.is_file():
        hit = _load(path, key)
        if hit is not None and len(hit) == len(sentences):
            return hit
    features = encoder.encode(sentences, max_len)
    if len(features) != len(sentences):
        raise RuntimeError(f"encoder returned {len(features)} sentences for {len(sentences)} inputs")
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        payload = {"key": key, "max_len": int(max_len), "data": features.data, "offsets": features.offsets}
        torch.save(payload, handle)
    return features
