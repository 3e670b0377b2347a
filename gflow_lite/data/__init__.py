"""Datasets, tokenizers and batching (knows nothing of models).

Shipped data lives in ``<repo>/data`` (override: ``GFLOW_DATA_DIR``) and is verified against
``data/SHA256SUMS``; token ids are cached in ``GFLOW_CACHE_DIR`` (default ``~/.cache/gflow_lite``).
"""

from .batching import EvalBatch, RandomBlockSampler, eval_block_starts, eval_blocks
from .checksums import read_manifest, sha256_file, verified_path
from .errors import ChecksumMismatchError, DataError, DataFileMissingError
from .paths import cache_dir, data_dir
from .snli import LABELS, SNLISplit, load_snli
from .tokenization import TOKENIZER_NAMES, Tokenizer, expected_vocab_size, get_tokenizer
from .wikitext import SPLITS, Corpus, load_corpus, load_wikitext2, read_wikitext2_lines

__all__ = [
    "ChecksumMismatchError",
    "Corpus",
    "DataError",
    "DataFileMissingError",
    "EvalBatch",
    "LABELS",
    "RandomBlockSampler",
    "SNLISplit",
    "SPLITS",
    "TOKENIZER_NAMES",
    "Tokenizer",
    "cache_dir",
    "data_dir",
    "eval_block_starts",
    "eval_blocks",
    "expected_vocab_size",
    "get_tokenizer",
    "load_corpus",
    "load_snli",
    "load_wikitext2",
    "read_manifest",
    "read_wikitext2_lines",
    "sha256_file",
    "verified_path",
]
