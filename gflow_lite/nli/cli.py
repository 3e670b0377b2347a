"""Command line of the SNLI experiment: ``python -m gflow_lite.nli`` or ``gflow_lite snli`` once registered.

    python -m gflow_lite.nli --head grassmann --seeds 3 --out results/snli
    python -m gflow_lite.nli --head transformer --seeds 3 --out results/snli   # also draws snli.png
    python -m gflow_lite.nli --head grassmann --seeds 1 --out /tmp/s --quick   # seconds, smoke test
    python -m gflow_lite.nli --head grassmann --seeds 3 --out runs/full --train-path ~/snli_1.0.zip

The main CLI adds the same subcommand with ``register(subparsers)``. Bad input (unknown head,
``--seeds`` < 1, a missing or unreadable ``--train-path``) prints one ``error:`` line and exits with 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

import torch

from ..options import ConfigError, make_output_folder, output_path
from .encoder import EncoderUnavailableError
from .experiment import NLIInputError, run_snli
from .heads import HEADS, HeadConfig
from .train import TrainSettings

__all__ = ["USER_ERRORS", "add_arguments", "register", "run_from_args", "main"]

#: Exceptions the main CLI (`gflow_lite.cli`) reports as one-line user errors.
USER_ERRORS = (NLIInputError, EncoderUnavailableError)

DESCRIPTION = ("Train the Grassmann-Plücker or the Transformer SNLI head on frozen all-MiniLM-L6-v2 token "
               "features, early-stopped on dev, over several seeds; write <out>/snli_<head>.json.")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the SNLI command."""
    defaults = TrainSettings()
    parser.add_argument("--head", required=True, choices=HEADS, help="which head to train")
    parser.add_argument("--seeds", type=_at_least_one, default=3, help="number of seeds, 0..N-1 (default 3)")
    parser.add_argument("--out", type=output_path, required=True, help="folder for snli_<head>.json (and snli.png)")
    parser.add_argument("--train-path", type=Path, default=None,
                        help="official snli_1.0.zip, its folder or snli_1.0_train.jsonl "
                             "(default: the shipped 1%% sample)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny subsets and 2 epochs: a seconds-long smoke run")
    parser.add_argument("--max-epochs", type=_at_least_one, default=defaults.max_epochs)
    parser.add_argument("--patience", type=_at_least_one, default=defaults.patience,
                        help="epochs without dev improvement before stopping")
    parser.add_argument("--lr", type=_positive_float, default=defaults.lr)
    parser.add_argument("--batch-size", type=_at_least_one, default=defaults.batch_size)
    parser.add_argument("--max-len", type=_at_least_one, default=HeadConfig().max_len,
                        help="WordPiece tokens per sentence, [CLS]/[SEP] included (paper: 48)")
    parser.add_argument("--threads", type=_at_least_one, default=None, help="torch CPU threads")
    parser.add_argument("--cache-dir", type=output_path, default=None, help="feature cache folder")
    parser.add_argument("--no-plot", action="store_true", help="do not draw snli.png")


def run_from_args(args: argparse.Namespace) -> int:
    """Run the experiment for parsed arguments; 0 on success, 2 on bad input (message on stderr)."""
    previous_threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.max_len < 2:
            raise NLIInputError(f"--max-len {args.max_len} must leave room for [CLS] and [SEP]")
        for option, folder in (("--cache-dir", args.cache_dir), ("--out", args.out)):
            if folder is not None:  # before the encoder and the data are loaded
                try:
                    make_output_folder(folder, option)
                except ConfigError as err:
                    raise NLIInputError(str(err)) from None
        settings = TrainSettings(lr=args.lr, batch_size=args.batch_size, max_epochs=args.max_epochs,
                                 patience=args.patience)
        run_snli(
            args.head,
            list(range(args.seeds)),
            args.out,
            train_path=args.train_path,
            quick=args.quick,
            head_config=HeadConfig(max_len=args.max_len),
            settings=settings,
            cache_dir=args.cache_dir,
            plot=not args.no_plot,
        )
    except (NLIInputError, EncoderUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        torch.set_num_threads(previous_threads)
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``snli`` subcommand to a main CLI; its ``func`` default runs it and returns the exit code."""
    parser = subparsers.add_parser("snli", help="SNLI heads over a frozen encoder", description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(func=run_from_args)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``python -m gflow_lite.nli``."""
    parser = argparse.ArgumentParser(prog="python -m gflow_lite.nli", description=DESCRIPTION)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
