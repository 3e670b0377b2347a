"""``python -m gflow_lite <command>`` (also the ``gflow-lite`` script).

Subcommands live in modules listed in `COMMAND_MODULES`; each module has ``register(subparsers)``, which
adds its parsers with ``set_defaults(func=handler)``; a handler takes the parsed arguments and returns an
exit status. A module may also define ``USER_ERRORS``, a tuple of exception types to report as one-line
errors for the commands it registers. To add a command, write such a module and append its name here.

Errors a user can fix are the package's own error types (`ConfigError`: unknown preset or key, wrong
type or range, too little memory; `DataError`: missing or corrupt data, unwritable cache;
`CheckpointError`: corrupt, mismatched or unwritable checkpoint; `RunDirError`: a run directory that
holds a run, is in use or cannot be written) and those a module lists. They are printed as one line on
stderr with exit status 1; set ``GFLOW_DEBUG=1`` to see the traceback. Anything else is a bug and keeps
its traceback. Bad flag values exit with status 2 (argparse). An interrupted training run exits with
128 + the signal number.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
from typing import Dict, List, Optional, Sequence, Tuple, Type

from .options import ConfigError, env_flag

#: Modules providing subcommands, in help order.
COMMAND_MODULES: Tuple[str, ...] = (
    "gflow_lite.training.cli",
    "gflow_lite.experiments.cli",
    "gflow_lite.bench.cli",
    "gflow_lite.nli.cli",
)

Errors = Tuple[Type[BaseException], ...]

#: Errors of the machine, not of the code: a full disk, a quota, a read-only file system, a file-size limit.
_NO_ROOM = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS, errno.EFBIG}


def _base_user_errors() -> Errors:
    from .data.errors import DataError
    from .options import ConfigError
    from .training.checkpoint import CheckpointError
    from .training.rundir import RunDirError

    return (DataError, CheckpointError, ConfigError, RunDirError)


def build_parser() -> Tuple[argparse.ArgumentParser, Dict[str, Errors]]:
    """The parser with every registered subcommand, and for each command the exceptions it reports
    as user errors (the package's own types plus its module's ``USER_ERRORS``)."""
    parser = argparse.ArgumentParser(
        prog="gflow_lite",
        description="Grassmann flows (arXiv 2512.19428): train, evaluate and sample language models.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    base = _base_user_errors()
    errors: Dict[str, Errors] = {}
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        before = set(subparsers.choices)
        module.register(subparsers)
        extra: List[Type[BaseException]] = list(getattr(module, "USER_ERRORS", ()))
        for command in set(subparsers.choices) - before:
            errors[command] = base + tuple(extra)
    return parser, errors


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the exit status."""
    parser, errors = build_parser()
    args = parser.parse_args(argv)
    try:
        debug = env_flag("GFLOW_DEBUG")  # read before anything runs: a bad value is a user error too
    except ConfigError as err:
        parser.exit(2, f"gflow_lite: error: {_one_line(err)}\n")
    user_errors = errors.get(args.command, _base_user_errors())
    try:
        return int(args.func(args) or 0)
    except user_errors as err:
        if debug:
            raise
        print(f"gflow_lite {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except OSError as err:
        if debug or err.errno not in _NO_ROOM:
            raise
        out = getattr(args, "out", None)
        where = f" writing {err.filename}" if err.filename else f" writing to {out}" if out else ""
        print(f"gflow_lite {args.command}: error: {err.strerror or 'cannot write'}{where}; free some space or "
              f"choose another output folder, then run the command again (a training resumes from its last "
              f"checkpoint with --resume; the checkpoints written before are intact)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"gflow_lite {args.command}: interrupted", file=sys.stderr)
        return 130
