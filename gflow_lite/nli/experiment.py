"""One SNLI experiment: load the splits, encode them (cached), train a head over several seeds, write
``<out>/snli_<head>.json`` and, once both heads' files are there, ``<out>/snli.png``.

Data: dev and test are always the complete shipped SNLI 1.0 files (identical to the official ones, see
``data/snli_1.0/SOURCE.md``); train is the shipped 1% sample (5,498 labelled pairs) unless
``train_path`` names the official ``snli_1.0.zip``, its folder, or a ``snli_1.0_train.jsonl``. Rows
with gold label ``-`` are dropped and counted. ``quick`` keeps fixed random subsets (train 64, dev and
test 32 pairs) and at most 2 epochs: a seconds-long smoke run whose numbers mean nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import zipfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch

from ..data.errors import DataError
from ..data.snli import SNLISplit, load_snli
from ..training.metrics import git_commit, hardware_info, write_json
from .dataset import EncodedSplit, encode_split, subsample
from .encoder import ENCODER_CAVEAT, ENCODER_NAME, MiniLMEncoder, SentenceEncoder
from .figure import plot_results
from .heads import HEADS, HeadConfig
from .report import build_results, results_path
from .train import TrainSettings, head_params, train_one_seed

__all__ = ["NLIInputError", "QUICK_SIZES", "load_splits", "run_snli"]

#: Pairs kept per split in quick mode.
QUICK_SIZES: Dict[str, int] = {"train": 64, "dev": 32, "test": 32}
QUICK_MAX_EPOCHS = 2

NOTES = [
    "Heads and every choice the paper leaves open: gflow_lite/nli/heads.py and window_mixing.py docstrings.",
    "Grassmann head: bidirectional pairing inside non-overlapping 8-token windows of each sentence; real "
    "token pairs only (never a token with itself, never padding); d_proj 64 split into 4 groups of 16.",
    "Transformer head: bidirectional 4-head self-attention over premise+hypothesis tokens, padded keys "
    "masked.",
    "Both: per-sentence masked mean pooling, one linear layer on [u; v; |u-v|; u*v].",
    "Early stopping on dev accuracy; test accuracy is that of the best-dev weights.",
]


class NLIInputError(ValueError):
    """Bad user input to the SNLI command (unknown head, seeds < 1, unreadable train file)."""


def _check_train_path(train_path: Optional[Path]) -> None:
    if train_path is None:
        return
    if not train_path.exists():
        raise NLIInputError(f"--train-path {train_path} does not exist; give snli_1.0.zip, its folder or a "
                            f"snli_1.0_train.jsonl file")


def load_splits(train_path: Optional[Path], quick: bool) -> Dict[str, SNLISplit]:
    """The three raw splits (train from ``train_path`` when given), subsampled in quick mode."""
    _check_train_path(train_path)
    try:
        splits = {
            "train": load_snli("train", train_path),
            "dev": load_snli("dev"),
            "test": load_snli("test"),
        }
    except (DataError, zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError) as err:
        source = train_path if train_path is not None else "the shipped data/snli_1.0 files"
        raise NLIInputError(f"cannot read SNLI from {source}: {type(err).__name__}: {err}") from err
    for name, split in splits.items():
        if len(split) == 0:
            raise NLIInputError(f"SNLI {name} split from {split.source} holds no labelled pairs")
    if quick:
        splits = {name: subsample(split, QUICK_SIZES[name]) for name, split in splits.items()}
    return splits


def code_hash() -> str:
    """SHA-256 over the source files of this package (provenance while the code is uncommitted)."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run_snli(
    head: str,
    seeds: Sequence[int],
    out_dir: Path,
    *,
    train_path: Optional[Path] = None,
    quick: bool = False,
    head_config: Optional[HeadConfig] = None,
    settings: Optional[TrainSettings] = None,
    encoder: Optional[SentenceEncoder] = None,
    cache_dir: Optional[Path] = None,
    plot: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Run the experiment (module docstring) and return the path of the results file."""
    if head not in HEADS:
        raise NLIInputError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    seeds = list(seeds)
    if not seeds:
        raise NLIInputError("need at least one seed (--seeds >= 1)")
    start, cpu_start, source_hash = time.perf_counter(), time.process_time(), code_hash()
    cfg = head_config or HeadConfig()
    settings = settings or TrainSettings()
    if quick:
        settings = dataclasses.replace(settings, max_epochs=min(settings.max_epochs, QUICK_MAX_EPOCHS))
    raw = load_splits(Path(train_path) if train_path is not None else None, quick)
    encoder = encoder or MiniLMEncoder()
    t0 = time.perf_counter()
    data: Dict[str, EncodedSplit] = {name: encode_split(split, encoder, cfg.max_len, cache_dir)
                                     for name, split in raw.items()}
    encode_s = time.perf_counter() - t0
    log(f"SNLI {head}: train {len(data['train'])}, dev {len(data['dev'])}, test {len(data['test'])} pairs "
        f"(features ready in {encode_s:.1f}s)")
    per_seed: List[Dict] = []
    for seed in seeds:
        result = train_one_seed(head, cfg, settings, data["train"], data["dev"], data["test"], seed, log)
        log(f"SNLI {head} seed {seed}: dev {result.dev_acc:.4f}, test {result.test_acc:.4f} "
            f"(best epoch {result.best_epoch}/{result.epochs_run}, {result.wall_s:.0f}s)")
        per_seed.append(result.to_dict())
    results = build_results(
        head=head,
        config=cfg.to_dict(),
        train_settings=settings.to_dict(),
        per_seed=per_seed,
        params=head_params(head, cfg),
        git_commit=git_commit(),
        code_sha256=source_hash,
        hardware=hardware_info(torch.device("cpu")),
        wall_time_s=time.perf_counter() - start,
        cpu_time_s=time.process_time() - cpu_start,
        encoder=getattr(encoder, "name", ENCODER_NAME),
        caveat=ENCODER_CAVEAT,
        data={**{name: split.summary() for name, split in data.items()}, "feature_seconds": encode_s},
        quick=quick,
        notes=NOTES,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = results_path(out_dir, head)
    write_json(path, results)
    log(f"wrote {path}")
    if plot and all(results_path(out_dir, h).is_file() for h in HEADS):
        log(f"wrote {plot_results(out_dir)}")
    return path
