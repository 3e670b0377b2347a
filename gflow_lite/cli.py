"""``python -m gflow_lite <command>`` (also the ``gflow-lite`` script).

Subcommands live in modules listed in `COMMAND_MODULES`; each module has ``register(subparsers)``, which
adds its parsers with ``set_defaults(func=handler)``; a handler takes the parsed arguments and returns an
exit status. A module may also define ``USER_ERRORS``, a tuple of exception types to report as one-line
errors. To add a command, write such a module and append its name here.

Errors a user can fix (unknown preset or key, wrong type, missing or corrupt data, mismatched checkpoint,
an existing run directory...) are printed as one line on stderr with exit status 1; set ``GFLOW_DEBUG=1``
to see the traceback. An interrupted training run exits with 128 + the signal number.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional, Sequence, Tuple, Type

#: Modules providing subcommands, in help order.
COMMAND_MODULES: Tuple[str, ...] = (
    "gflow_lite.training.commands",
    "gflow_lite.experiments.commands",
    "gflow_lite.bench.cli",
    "gflow_lite.nli.cli",
)


def _base_user_errors() -> Tuple[Type[BaseException], ...]:
    from .data.errors import DataError
    from .training.checkpoint import CheckpointError
    from .training.presets import ConfigError
    from .training.rundir import RunDirError

    return (DataError, CheckpointError, ConfigError, RunDirError, ValueError, FileNotFoundError)


def build_parser() -> Tuple[argparse.ArgumentParser, Tuple[Type[BaseException], ...]]:
    """The parser with every registered subcommand, and the exception types reported as user errors."""
    parser = argparse.ArgumentParser(
        prog="gflow_lite",
        description="Grassmann flows (arXiv 2512.19428): train, evaluate and sample language models.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    errors: List[Type[BaseException]] = list(_base_user_errors())
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(subparsers)
        errors.extend(getattr(module, "USER_ERRORS", ()))
    return parser, tuple(errors)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the exit status."""
    parser, user_errors = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except user_errors as err:
        if os.environ.get("GFLOW_DEBUG"):
            raise
        print(f"gflow_lite {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"gflow_lite {args.command}: interrupted", file=sys.stderr)
        return 130
