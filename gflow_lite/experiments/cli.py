"""``python -m gflow_lite compare``: both architectures, same data and budget, several seeds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..options import ConfigError, check_output_target, output_path
from ..training.presets import PRESETS
from .compare import CompareRunError, CompareSpec, env_jobs, format_compare, run_compare


def add_compare(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="train GrassmannLM and TransformerLM side by side over seeds",
        description="Train both models on the same data, tokenizer, budget and schedule for each seed; "
        "write OUT/compare.json (every run's summary, mean and spread, ratio_val_ppl) and OUT/compare.png. "
        "Finished runs in OUT are reused and interrupted ones resumed.",
    )
    p.add_argument("--preset", required=True, choices=sorted(PRESETS), metavar="NAME",
                   help=f"one of {', '.join(sorted(PRESETS))}")
    p.add_argument("--seeds", type=int, default=2, help="number of seeds (seed = 0 .. N-1), default 2")
    p.add_argument("--seed-base", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--models", default="grassmann,transformer",
                   help="comma-separated architectures (default both)")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override for every run, e.g. max_steps=500")
    p.add_argument("--set-grassmann", dest="g_overrides", action="extend", nargs="+", default=[],
                   metavar="KEY=VALUE", help="override for the Grassmann runs only, e.g. offsets=1,2,4 r=64")
    p.add_argument("--set-transformer", dest="t_overrides", action="extend", nargs="+", default=[],
                   metavar="KEY=VALUE", help="override for the Transformer runs only")
    p.add_argument("--label", default="", help="a name for this comparison (stored in compare.json)")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs at a time (default: min(2, cores)); with >1 each run uses one thread")
    p.add_argument("--out", required=True, type=output_path, help="output directory")
    p.set_defaults(func=run_compare_cmd)


def run_compare_cmd(args: argparse.Namespace) -> int:
    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: need at least 1 seed")
    check_output_target(args.out, "--out", folder=True)
    spec = CompareSpec(
        preset=args.preset,
        seeds=list(range(args.seed_base, args.seed_base + args.seeds)),
        models=[m.strip() for m in args.models.split(",") if m.strip()],
        overrides=args.overrides,
        model_overrides={"grassmann": args.g_overrides, "transformer": args.t_overrides},
        label=args.label,
        jobs=args.jobs if args.jobs is not None else env_jobs(),
    )
    result = run_compare(spec, args.out, log=lambda msg: print(msg, file=sys.stderr))
    print(format_compare(result))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    add_compare(subparsers)


#: A failed run of the comparison is reported in one line (its own output holds the details).
USER_ERRORS = (CompareRunError,)
