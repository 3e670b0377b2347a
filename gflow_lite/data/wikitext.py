"""WikiText-2 (tokenized v1, the ``<unk>`` version), as published: train / valid / test.

`load_wikitext2` returns a split's token ids under a tokenizer, cached on disk (see `token_cache`) under a
key made of the split, the tokenizer's fingerprint and the split file's SHA-256. With the ``word``
tokenizer the counts are the published 2,088,628 / 217,646 / 245,569 tokens (one ``<eos>`` per line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from .checksums import file_hash
from .token_cache import cache_path, cached_array, safe_key, storage_dtype
from .tokenization import Tokenizer, get_tokenizer, read_gzip_lines

SPLITS: Tuple[str, ...] = ("train", "valid", "test")
SPLIT_FILES: Dict[str, str] = {split: f"wikitext-2/wiki.{split}.tokens.gz" for split in SPLITS}


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown WikiText-2 split {split!r}; choose one of {SPLITS}")
    return SPLIT_FILES[split]


def read_wikitext2_lines(split: str) -> List[str]:
    """The split's lines (checksum-verified), without newlines."""
    return read_gzip_lines(_check_split(split))


def load_wikitext2(split: str, tokenizer: Tokenizer | str, bpe_vocab_size: int = 4096) -> np.ndarray:
    """Token ids of a WikiText-2 split (1-D, ``uint16`` or ``int32``), from the cache when possible.

    ``tokenizer`` is a `Tokenizer` or a name for `get_tokenizer`.
    """
    relative = _check_split(split)
    tok = get_tokenizer(tokenizer, bpe_vocab_size) if isinstance(tokenizer, str) else tokenizer
    data_sha = file_hash(relative)
    key = safe_key(f"{split}.{tok.fingerprint}.{data_sha[:16]}")
    path = cache_path("wikitext-2", f"{key}.npy")

    def build() -> np.ndarray:
        ids = tok.encode_lines(read_gzip_lines(relative))
        return ids.astype(storage_dtype(tok.vocab_size))

    return cached_array(path, build, split=split, tokenizer=tok.fingerprint, data_sha256=data_sha)


@dataclass(frozen=True)
class Corpus:
    """The three WikiText-2 splits under one tokenizer, each optionally cut to its first tokens."""

    tokenizer: Tokenizer
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    def split(self, name: str) -> np.ndarray:
        _check_split(name)
        return getattr(self, name)


def load_corpus(
    tokenizer: Tokenizer | str,
    bpe_vocab_size: int = 4096,
    train_tokens: Optional[int] = None,
    eval_tokens: Optional[int] = None,
) -> Corpus:
    """All three splits; ``train_tokens`` / ``eval_tokens`` keep only the first N tokens (None: all)."""
    tok = get_tokenizer(tokenizer, bpe_vocab_size) if isinstance(tokenizer, str) else tokenizer
    arrays = {}
    for split in SPLITS:
        ids = load_wikitext2(split, tok)
        limit = train_tokens if split == "train" else eval_tokens
        arrays[split] = ids[:limit] if limit is not None else ids
    return Corpus(tokenizer=tok, **arrays)
