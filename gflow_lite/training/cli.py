"""The ``train``, ``eval`` and ``generate`` commands (registered by `gflow_lite.cli`).

Each ``add_*`` function adds one subcommand with ``func`` set to a handler returning the exit status.
Results go to stdout as JSON (``generate`` prints text unless ``--json``); progress goes to stderr.
Numeric flags are checked by argparse (exit status 2 with a one-line message): ``--batch-size``,
``--stop-after`` and ``--top-k`` must be positive, ``--max-new-tokens`` non-negative, ``--temperature``
a positive finite number.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Dict

import torch

from ..data.wikitext import load_wikitext2
from ..options import ConfigError, parse_assignments, output_path
from ..train import NonFiniteLossError
from .config import ARCHITECTURES, TrainConfig, apply_overrides, valid_keys
from .evaluate import evaluate
from .inference import load_model
from .presets import PRESETS, resolve
from .rundir import RunDir
from .trainer import TrainingInterrupted, train

#: Exceptions whose message the CLI prints as a one-line error (exit status 1).
USER_ERRORS = (NonFiniteLossError,)


def _number(text: str, kind: type, minimum: float, strict: bool) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not math.isfinite(value) or (value <= minimum if strict else value < minimum):
        relation = ">" if strict else ">="
        raise argparse.ArgumentTypeError(f"{text} must be a finite number {relation} {minimum:g}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return int(_number(text, int, 0, strict=True))


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return int(_number(text, int, 0, strict=False))


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (``nan`` and ``inf`` refused)."""
    return float(_number(text, float, 0, strict=True))


def _print_json(data: Dict[str, Any]) -> None:
    print(json.dumps(data, indent=2))


# -------------------------------------------------------------------------------------------- train
def add_train(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a language model on WikiText-2",
        description="Train GrassmannLM or TransformerLM on WikiText-2 from a preset. Writes config.json, "
        "metrics.jsonl, last.pt, best.pt and summary.json to --out. torchrun works too: "
        "torchrun --nproc_per_node N -m gflow_lite train ...",
        epilog=f"override keys for --set: {', '.join(valid_keys())}",
    )
    p.add_argument("--model", choices=tuple(ARCHITECTURES), help="architecture (with --resume: taken from the run)")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        metavar="NAME",
        help=f"one of {', '.join(sorted(PRESETS))} (with --resume: taken from the run)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override a preset field, e.g. --set r=64 offsets=1,2,4 max_steps=500",
    )
    p.add_argument(
        "--out", required=True, type=output_path, help="run directory (must not hold a run unless --resume)"
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument(
        "--stop-after",
        type=positive_int,
        default=None,
        metavar="STEP",
        help="save last.pt and stop after this optimizer step (continue later with --resume)",
    )
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    overrides = parse_assignments(args.overrides)
    if args.resume and (args.model is None or args.preset is None):
        stored = RunDir(args.out).stored_config()
        cfg = TrainConfig.from_dict(stored)
        if args.model is not None:
            cfg = cfg.replace(arch=args.model)
        if args.preset is not None:
            cfg = resolve(args.preset, cfg.arch, {})
        cfg = apply_overrides(cfg, overrides)
    else:
        if args.model is None or args.preset is None:
            raise ConfigError("train needs --model and --preset (they may be omitted only with --resume)")
        cfg = resolve(args.preset, args.model, overrides)
    try:
        result = train(cfg, args.out, resume=args.resume, stop_after_step=args.stop_after)
    except TrainingInterrupted as stop:
        print(f"gflow_lite: {stop}", file=sys.stderr)
        return 128 + stop.signum
    if int(os.environ.get("RANK", "0")) == 0:
        out: Dict[str, Any] = {"run_dir": str(result.run_dir), "status": result.status, "step": result.step}
        if result.summary is not None:
            keys = (
                "model",
                "preset",
                "params",
                "tokens_seen",
                "best_step",
                "best_val_ppl",
                "test_ppl",
                "tokens_per_s",
                "wall_time_s",
            )
            out.update({k: result.summary[k] for k in keys})
        _print_json(out)
    return 0


# --------------------------------------------------------------------------------------------- eval
def add_eval(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="perplexity of a checkpoint on a WikiText-2 split",
        description="Evaluate a checkpoint on valid or test: every token predicted once, non-overlapping "
        "blocks. The split is cut to the run's eval_tokens, as during training. Prints JSON.",
    )
    p.add_argument("--checkpoint", required=True, type=Path, help="a last.pt or best.pt")
    p.add_argument("--split", choices=("valid", "test"), default="valid")
    p.add_argument(
        "--model", choices=tuple(ARCHITECTURES), default=None, help="fail unless the checkpoint holds this"
    )
    p.add_argument("--batch-size", type=positive_int, default=None, help="blocks per batch (default: the run's)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    loaded = load_model(args.checkpoint, args.device, expected_arch=args.model)
    cfg = loaded.config
    ids = load_wikitext2(args.split, loaded.tokenizer)[: cfg.eval_tokens]
    result = evaluate(
        loaded.model,
        ids,
        block_size=cfg.model.block_size,
        batch_size=cfg.batch_size if args.batch_size is None else args.batch_size,
        device=loaded.device,
    )
    _print_json(
        {
            "checkpoint": str(args.checkpoint),
            "model": loaded.arch,
            "step": loaded.step,
            "split": args.split,
            **result.to_dict(),
        }
    )
    return 0


# ----------------------------------------------------------------------------------------- generate
def add_generate(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="sample text from a checkpoint",
        description="Continue --prompt by sampling from a trained model; prints prompt + continuation.",
    )
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--prompt", required=True, help="text to continue")
    p.add_argument("--max-new-tokens", type=non_negative_int, default=50)
    p.add_argument("--temperature", type=positive_float, default=1.0)
    p.add_argument("--top-k", type=positive_int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--model", choices=tuple(ARCHITECTURES), default=None, help="fail unless the checkpoint holds this"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print JSON with prompt, text and token counts")
    p.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    try:  # bytes that are not UTF-8 reach Python as lone surrogates: refuse them before any work
        args.prompt.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ConfigError(f"--prompt is not valid UTF-8 text (an undecodable byte at position {err.start}); "
                          f"give the prompt as UTF-8") from None
    loaded = load_model(args.checkpoint, args.device, expected_arch=args.model)
    prompt_ids = loaded.tokenizer.encode(args.prompt)
    if not prompt_ids:
        raise ConfigError(f"the prompt {args.prompt!r} encodes to no tokens; give some text")
    torch.manual_seed(args.seed)
    generator = torch.Generator(device=loaded.device).manual_seed(args.seed)
    idx = torch.tensor([prompt_ids], dtype=torch.long, device=loaded.device)
    out = loaded.model.generate(
        idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k, generator=generator
    )
    new_ids = out[0, len(prompt_ids) :].tolist()
    text = loaded.tokenizer.decode(prompt_ids + new_ids)
    if args.json:
        _print_json(
            {
                "checkpoint": str(args.checkpoint),
                "model": loaded.arch,
                "prompt": args.prompt,
                "prompt_tokens": len(prompt_ids),
                "new_tokens": len(new_ids),
                "text": text,
            }
        )
    else:
        print(text)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``, ``eval`` and ``generate`` to the ``gflow_lite`` command line."""
    add_train(subparsers)
    add_eval(subparsers)
    add_generate(subparsers)
