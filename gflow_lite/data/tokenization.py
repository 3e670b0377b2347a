"""Four tokenizers behind one small interface.

Every tokenizer has ``name``, ``vocab_size``, ``fingerprint`` (a string that changes whenever the mapping
from text to ids could change), ``encode(text) -> list[int]``, ``decode(ids) -> str`` and
``encode_lines(lines) -> np.ndarray`` for a whole corpus.

How lines become tokens (WikiText-2 is a file of lines):

* ``word``: whitespace-split words, then ``<eos>`` for the end of each line (the classic word-level
  setting: 2,088,628 / 217,646 / 245,569 tokens). Vocabulary: the train split's words in order of first
  appearance (33,278 entries). Unknown words map to ``<unk>``.
* ``wordpiece``: the bert-base-uncased vocabulary (30,522; lowercasing, accents stripped); each line is
  encoded without ``[CLS]``, and its end is ``[SEP]``. WikiText's ``<unk>`` becomes ``[UNK]``.
* ``gpt2``: tiktoken's GPT-2 byte-level BPE (50,257), built offline from ``data/gpt2-bpe``; each line is
  encoded with its trailing ``"\\n"``, so the newline is ordinary BPE text. ``<unk>`` stays literal text.
* ``bpe``: a byte-level BPE of ``bpe_vocab_size`` tokens trained with ``tokenizers`` on the train split
  (lines with their ``"\\n"``, ``min_frequency=2``); lines are encoded like ``gpt2``. Training is
  deterministic (the same file and size give the same merges), and the result is cached on disk with
  its SHA-256 beside it: a cache file changed or damaged since it was written is retrained, with a note.

``encode(text)`` treats ``"\\n"`` in ``text`` the same way, so encoding a corpus's text gives the same ids
as ``encode_lines`` of its lines for ``word`` and ``wordpiece``. For the byte-level tokenizers a corpus is
always encoded line by line.
"""

from __future__ import annotations

import abc
import functools
import gzip
import hashlib
import sys
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .checksums import file_hash, verified_path
from .errors import DataError
from .token_cache import cache_path, entry_exists, load_cached_text, save_cached_text

#: Bumped whenever the line/newline convention above changes; part of every fingerprint.
LINE_SCHEME = "lines-v1"

TOKENIZER_NAMES: Tuple[str, ...] = ("word", "wordpiece", "gpt2", "bpe")

WIKITEXT_TRAIN = "wikitext-2/wiki.train.tokens.gz"
BERT_VOCAB = "bert-base-uncased/vocab.txt"
GPT2_VOCAB_BPE = "gpt2-bpe/vocab.bpe"
GPT2_ENCODER_JSON = "gpt2-bpe/encoder.json"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_gzip_lines(relative: str) -> List[str]:
    """Lines of a verified, gzipped UTF-8 data file, without their newlines (a final empty piece dropped)."""
    with gzip.open(verified_path(relative), "rt", encoding="utf-8", newline="") as handle:
        text = handle.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class Tokenizer(abc.ABC):
    """The interface shared by all tokenizers (see the module docstring for the line convention)."""

    name: str
    vocab_size: int
    fingerprint: str

    @abc.abstractmethod
    def encode(self, text: str) -> List[int]:
        """Token ids of ``text`` (newlines handled as in the module docstring)."""

    @abc.abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``; end-of-line tokens become ``"\\n"``."""

    @abc.abstractmethod
    def encode_lines(self, lines: Sequence[str]) -> np.ndarray:
        """Ids of a corpus given as lines without newlines, each line followed by its end of line."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, vocab_size={self.vocab_size}, "
            f"fingerprint={self.fingerprint!r})"
        )


def _concat(pieces: Sequence[Sequence[int]]) -> np.ndarray:
    lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
    out = np.empty(int(lengths.sum()), dtype=np.int64)
    pos = 0
    for piece, n in zip(pieces, lengths, strict=True):
        out[pos : pos + n] = piece
        pos += n
    return out


class _LineTokenizer(Tokenizer):
    """A tokenizer whose end of line is one dedicated token id (``word``, ``wordpiece``)."""

    eol_id: int

    @abc.abstractmethod
    def _encode_line_batch(self, lines: Sequence[str]) -> List[List[int]]:
        """Ids of each line (no newline inside, no end-of-line token appended)."""

    @abc.abstractmethod
    def _decode_line(self, ids: Sequence[int]) -> str:
        """Text of the ids of one line."""

    def encode_lines(self, lines: Sequence[str]) -> np.ndarray:
        pieces = [ids + [self.eol_id] for ids in self._encode_line_batch(lines)]
        return _concat(pieces)

    def encode(self, text: str) -> List[int]:
        ids: List[int] = []
        parts = text.split("\n")
        for i, line_ids in enumerate(self._encode_line_batch(parts)):
            ids.extend(line_ids)
            if i < len(parts) - 1:
                ids.append(self.eol_id)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        lines: List[List[int]] = [[]]
        for token in ids:
            if int(token) == self.eol_id:
                lines.append([])
            else:
                lines[-1].append(int(token))
        return "\n".join(self._decode_line(line) for line in lines)


class WordTokenizer(_LineTokenizer):
    """Whitespace words with the train split's vocabulary (first-appearance order) and ``<eos>``."""

    name = "word"
    EOS = "<eos>"
    UNK = "<unk>"

    def __init__(self, vocabulary: Sequence[str], source_hash: str) -> None:
        self.itos: List[str] = list(vocabulary)
        self.stoi: Dict[str, int] = {word: i for i, word in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos) or self.EOS not in self.stoi or self.UNK not in self.stoi:
            raise DataError("word vocabulary must hold distinct words including '<eos>' and '<unk>'")
        self.vocab_size = len(self.itos)
        self.eol_id = self.stoi[self.EOS]
        self.unk_id = self.stoi[self.UNK]
        self.fingerprint = f"word-{self.vocab_size}-{_short_hash(chr(10).join(self.itos))}-{LINE_SCHEME}"
        self.source_hash = source_hash

    @classmethod
    def from_train_split(cls) -> "WordTokenizer":
        """Vocabulary of WikiText-2 train: words by first appearance (``<eos>`` ends line one: id 0)."""
        vocabulary: Dict[str, None] = {}
        for line in read_gzip_lines(WIKITEXT_TRAIN):
            for word in line.split():
                vocabulary.setdefault(word, None)
            vocabulary.setdefault(cls.EOS, None)
        return cls(list(vocabulary), file_hash(WIKITEXT_TRAIN))

    def _encode_line_batch(self, lines: Sequence[str]) -> List[List[int]]:
        stoi, unk = self.stoi, self.unk_id
        return [[stoi.get(word, unk) for word in line.split()] for line in lines]

    def _decode_line(self, ids: Sequence[int]) -> str:
        return " ".join(self.itos[i] for i in ids)


class WordPieceTokenizer(_LineTokenizer):
    """bert-base-uncased WordPiece (via ``tokenizers``); ``[SEP]`` ends a line, ``<unk>`` -> ``[UNK]``."""

    name = "wordpiece"

    def __init__(self) -> None:
        from tokenizers import BertWordPieceTokenizer

        vocab = verified_path(BERT_VOCAB)
        self._tok = BertWordPieceTokenizer(str(vocab), lowercase=True)
        self.vocab_size = self._tok.get_vocab_size()
        self.eol_id = self._tok.token_to_id("[SEP]")
        self.unk_id = self._tok.token_to_id("[UNK]")
        self.fingerprint = f"wordpiece-{self.vocab_size}-{file_hash(BERT_VOCAB)[:16]}-lower-{LINE_SCHEME}"

    def _encode_line_batch(self, lines: Sequence[str]) -> List[List[int]]:
        texts = [line.replace("<unk>", "[UNK]") for line in lines]
        return [enc.ids for enc in self._tok.encode_batch(texts, add_special_tokens=False)]

    def _decode_line(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=False)


class GPT2Tokenizer(Tokenizer):
    """tiktoken's GPT-2 encoding built from the shipped ``vocab.bpe`` and ``encoder.json`` (no network)."""

    name = "gpt2"

    def __init__(self) -> None:
        import tiktoken
        from tiktoken.load import data_gym_to_mergeable_bpe_ranks
        from tiktoken_ext.openai_public import r50k_pat_str

        ranks = data_gym_to_mergeable_bpe_ranks(
            vocab_bpe_file=str(verified_path(GPT2_VOCAB_BPE)),
            encoder_json_file=str(verified_path(GPT2_ENCODER_JSON)),
            vocab_bpe_hash=file_hash(GPT2_VOCAB_BPE),
            encoder_json_hash=file_hash(GPT2_ENCODER_JSON),
        )
        self._enc = tiktoken.Encoding(
            name="gpt2",
            pat_str=r50k_pat_str,
            mergeable_ranks=ranks,
            special_tokens={"<|endoftext|>": 50256},
            explicit_n_vocab=50257,
        )
        self.vocab_size = self._enc.n_vocab
        digest = _short_hash(file_hash(GPT2_VOCAB_BPE) + file_hash(GPT2_ENCODER_JSON))
        self.fingerprint = f"gpt2-{self.vocab_size}-{digest}-{LINE_SCHEME}"

    def encode(self, text: str) -> List[int]:
        return self._enc.encode_ordinary(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self._enc.decode([int(i) for i in ids])

    def encode_lines(self, lines: Sequence[str]) -> np.ndarray:
        return _concat(self._enc.encode_ordinary_batch([line + "\n" for line in lines]))


class ByteBPETokenizer(Tokenizer):
    """A byte-level BPE trained with ``tokenizers`` on WikiText-2 train (cached under the cache dir)."""

    name = "bpe"
    SPECIAL = "<|endoftext|>"

    def __init__(self, tokenizer_json: str, requested_size: int) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        self._tok = HFTokenizer.from_str(tokenizer_json)
        self.vocab_size = self._tok.get_vocab_size()
        self.requested_size = requested_size
        self.fingerprint = f"bpe-{self.vocab_size}-{_short_hash(tokenizer_json)}-{LINE_SCHEME}"

    @staticmethod
    def train(lines: Sequence[str], vocab_size: int) -> str:
        """Train a byte-level BPE on ``lines`` (each with its newline); return its JSON."""
        from tokenizers import ByteLevelBPETokenizer

        tok = ByteLevelBPETokenizer(add_prefix_space=False)
        tok.train_from_iterator(
            [line + "\n" for line in lines],
            vocab_size=vocab_size,
            min_frequency=2,
            special_tokens=[ByteBPETokenizer.SPECIAL],
            show_progress=False,
        )
        return tok._tokenizer.to_str()

    @classmethod
    def from_train_split(cls, vocab_size: int) -> "ByteBPETokenizer":
        """The cached BPE of this size for the current train file; trained if absent, unreadable or changed."""
        import tokenizers

        if vocab_size < 257:
            raise ValueError(
                f"bpe_vocab_size={vocab_size} is too small: a byte-level BPE needs at least 257 tokens"
            )
        key = f"bpe-{vocab_size}-{file_hash(WIKITEXT_TRAIN)[:16]}-tk{tokenizers.__version__}.json"
        path = cache_path("tokenizers", key)
        cached = load_cached_text(path)
        if cached is not None:
            try:
                return cls(cached, vocab_size)
            except Exception:  # noqa: BLE001 - vouched for but unusable (another tokenizers version): retrain
                pass
        if entry_exists(path):
            print(f"gflow_lite: the tokenizer cache {path} does not match the hash written beside it (changed, "
                  f"damaged or from an older gflow_lite); retraining it", file=sys.stderr)
        tokenizer_json = cls.train(read_gzip_lines(WIKITEXT_TRAIN), vocab_size)
        save_cached_text(path, tokenizer_json, vocab_size=vocab_size, train_sha256=file_hash(WIKITEXT_TRAIN))
        return cls(tokenizer_json, vocab_size)

    def encode(self, text: str) -> List[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def encode_lines(self, lines: Sequence[str]) -> np.ndarray:
        encodings = self._tok.encode_batch([line + "\n" for line in lines], add_special_tokens=False)
        return _concat([enc.ids for enc in encodings])


@functools.lru_cache(maxsize=16)
def _build(name: str, bpe_vocab_size: int, data_root: str) -> Tokenizer:
    del data_root  # part of the cache key only
    if name == "word":
        return WordTokenizer.from_train_split()
    if name == "wordpiece":
        return WordPieceTokenizer()
    if name == "gpt2":
        return GPT2Tokenizer()
    return ByteBPETokenizer.from_train_split(bpe_vocab_size)


def get_tokenizer(name: str, bpe_vocab_size: int = 4096) -> Tokenizer:
    """The tokenizer called ``name`` (one of `TOKENIZER_NAMES`), built once per process and data dir."""
    from .paths import data_dir

    if name not in TOKENIZER_NAMES:
        raise ValueError(f"unknown tokenizer {name!r}; choose one of {TOKENIZER_NAMES}")
    return _build(name, int(bpe_vocab_size) if name == "bpe" else 0, str(data_dir()))


def expected_vocab_size(name: str, bpe_vocab_size: int = 4096) -> int:
    """Vocabulary size of a tokenizer without building it (the ``bpe`` size is the requested one)."""
    sizes = {"word": 33278, "wordpiece": 30522, "gpt2": 50257, "bpe": int(bpe_vocab_size)}
    if name not in sizes:
        raise ValueError(f"unknown tokenizer {name!r}; choose one of {TOKENIZER_NAMES}")
    return sizes[name]
