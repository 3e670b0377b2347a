"""``python -m gflow_lite bench NAME [--json PATH] [--quick] [--threads N] [--set key=value ...]``.

`register(subparsers)` adds the ``bench`` subcommand to the package CLI (`gflow_lite.cli`);
`main(argv)` runs the same parser standalone (``python -m gflow_lite.bench``). `run_benchmark` is the
function both call, usable from notebooks and tests.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from .env import environment, load_average, resolve_device, retain_freed_memory, set_threads
from ..options import check_output_target, override, parse_assignments, output_path
from .registry import BENCHMARKS, load
from .report import write_json

__all__ = ["register", "main", "run_benchmark", "format_targets", "USER_ERRORS"]

#: Errors that are the user's to fix (bad name, bad --set); reported in one line by gflow_lite.cli.
USER_ERRORS = (ValueError,)


def run_benchmark(
    name: str,
    *,
    quick: bool = False,
    settings: Optional[Dict[str, str]] = None,
    device: str = "auto",
    threads: Optional[int] = None,
    json_path: Optional[Path] = None,
    malloc_retain: bool = False,
) -> Dict[str, Any]:
    """Run one benchmark and return its result object (also written to ``json_path`` if given).

    ``malloc_retain`` configures glibc to keep freed memory (`env.retain_freed_memory`) for the rest
    of the process; the results file says which allocator behaviour was in effect.
    """
    module = load(name)
    cfg = override(module.default_config(quick), settings or {})
    defaults = vars(module.default_config(quick))
    for field, value in vars(cfg).items():  # counts and sizes: a benchmark of nothing is a usage error
        default = defaults[field] if isinstance(defaults[field], tuple) else (defaults[field],)
        if field.startswith("seed") or any(isinstance(v, int) and v < 1 for v in default):
            continue  # fields whose defaults may be 0 (a seed, a warm-up count) are not counts
        values = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, int) and not isinstance(v, bool) and v < 1 for v in values):
            raise ValueError(f"{field}={value} must be >= 1 (a count or a size; {name}'s default is "
                             f"{defaults[field]})")
    dev = resolve_device(device)
    set_threads(threads)
    header = environment(dev)
    header["malloc"] = retain_freed_memory() if malloc_retain else "system default"
    start = time.perf_counter()
    result = module.run(cfg, dev)
    payload: Dict[str, Any] = {
        "benchmark": name,
        **header,
        "wall_time_s": round(time.perf_counter() - start, 2),
        "quick": quick,
    }
    payload.update(result)
    payload["load_average_end"] = load_average()
    print(format_targets(payload))
    if json_path is not None:
        print(f"wrote {write_json(json_path, payload)}")
    return payload


def format_targets(payload: Dict[str, Any]) -> str:
    """One line per target of the summary: name, measured value, requirement, met or not."""
    targets = payload.get("summary", {}).get("targets", {})
    lines = [
        f"{payload['benchmark']}: {payload['wall_time_s']} s, {payload['threads']} thread(s), "
        f"malloc {payload.get('malloc')}, load {payload.get('load_average_start')} -> "
        f"{payload.get('load_average_end')}"
    ]
    for key, t in targets.items():
        value = t.get("ratio", t.get("slope"))
        lines.append(f"  {'MET ' if t.get('met') else 'MISS'} {key}: {value} (need {t.get('need')})")
    return "\n".join(lines)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=BENCHMARKS, help="which benchmark")
    parser.add_argument("--json", type=output_path, default=None, metavar="PATH", help="write the results file here")
    parser.add_argument(
        "--quick", action="store_true", help="the short variant (under a minute on 2 CPU cores)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    parser.add_argument(
        "--malloc-retain",
        action="store_true",
        help="make glibc keep freed memory (no per-step page faults; process-wide)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field of the benchmark's config, e.g. lengths=256,1024 or rounds=3",
    )


def _handle(args: argparse.Namespace) -> int:
    if args.json is not None:  # before the benchmark runs, not after (its results would be lost)
        check_output_target(args.json, "--json", folder=False)
    run_benchmark(
        args.name,
        quick=args.quick,
        settings=parse_assignments(args.set),
        device=args.device,
        threads=args.threads,
        json_path=args.json,
        malloc_retain=args.malloc_retain,
    )
    return 0


def register(subparsers: Any) -> None:
    """Add ``bench`` to the package CLI's subparsers (handler in ``func``, returns the exit status)."""
    parser = subparsers.add_parser(
        "bench",
        help="performance benchmarks: scaling, kernel, decode, train",
        description="Time and measure the Grassmann mixer against attention; see gflow_lite/bench.",
    )
    _add_arguments(parser)
    parser.set_defaults(func=_handle)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Standalone entry point: ``python -m gflow_lite.bench NAME ...``."""
    parser = argparse.ArgumentParser(prog="python -m gflow_lite.bench", description=__doc__.split("\n")[0])
    _add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return _handle(args)
    except USER_ERRORS as err:
        parser.exit(1, f"error: {' '.join(str(err).split())}\n")
    return 1  # pragma: no cover
