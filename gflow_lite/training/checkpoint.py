"""Checkpoints: atomic writes, a versioned payload, and loud failures.

A checkpoint is a ``torch.save`` dict (loadable with ``weights_only=True``)::

    format, format_version, arch, model_config, train_config, tokenizer {name, fingerprint, vocab_size},
    model, optimizer, scaler, rng {python, numpy, torch, cuda, batches},
    step, tokens_seen, best_val_loss, best_step, elapsed_s, train_time_s

plus ``integrity``: the SHA-256 of every tensor and value of the payload (`payload_digest`), checked on
every load, so one flipped bit in the weights is a `CheckpointCorruptError`, not a silently wrong model.
No scheduler state is kept: the learning rate follows the step (`gflow_lite.train.lr_at`); the
``scheduler`` entry of files written before is ignored.

Runs keep ``last.pt`` (every evaluation and on interruption) and ``best.pt`` (lowest validation loss).
The payload is serialised in memory first, then written through a temporary file in the same
directory, fsync and ``os.replace``, so a kill mid-write leaves the previous file intact, and a full disk
is a `CheckpointWriteError` that says so (the previous file is still intact). Loading a truncated or
corrupt file, a file of another format version, another architecture or another tokenizer raises a
`CheckpointError` (a ValueError), never a fresh start.
"""

from __future__ import annotations

import errno
import hashlib
import io
import random
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import torch

from ..data.atomic import atomic_open

FORMAT = "gflow_lite.checkpoint"
FORMAT_VERSION = 2
#: Versions this code reads (version 1 had no integrity hash).
READABLE_VERSIONS = (1, 2)
LAST = "last.pt"
BEST = "best.pt"

PathLike = Union[str, Path]


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked."""


class CheckpointCorruptError(CheckpointError):
    """The file is missing, truncated, not a checkpoint, or of an unknown format version."""


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (disk full, read-only...); the previous file is intact."""


class ArchitectureMismatchError(CheckpointError):
    """The checkpoint holds another architecture than the one requested."""


class TokenizerMismatchError(CheckpointError):
    """The checkpoint's tokenizer fingerprint differs from the tokenizer built from the data."""


# ------------------------------------------------------------------------------------------- RNG states
def capture_rng_state(batch_generator: Optional[torch.Generator] = None) -> Dict[str, Any]:
    """Python, NumPy, torch (CPU and every CUDA device) and batch-generator RNG states."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "batches": None if batch_generator is None else batch_generator.get_state(),
    }


def restore_rng_state(state: Dict[str, Any], batch_generator: Optional[torch.Generator] = None) -> None:
    """Inverse of `capture_rng_state` (CUDA states are restored only if the device count matches)."""
    random.setstate(_as_python_state(state["python"]))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and len(state.get("cuda", [])) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    if batch_generator is not None and state.get("batches") is not None:
        batch_generator.set_state(state["batches"])


def _as_python_state(state: Any) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


# --------------------------------------------------------------------------------------------- save/load
def payload_digest(payload: Any) -> str:
    """SHA-256 over every tensor (dtype, shape, bytes) and plain value of ``payload``, in order.

    The ``integrity`` entry itself is left out; lists and tuples hash alike (they come back as either).
    """
    digest = hashlib.sha256()

    def visit(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(value, dict):
            digest.update(b"{")
            for key, item in value.items():
                if key == "integrity":
                    continue
                digest.update(repr(key).encode() + b":")
                visit(item)
            digest.update(b"}")
        elif isinstance(value, (list, tuple)):
            digest.update(b"[")
            for item in value:
                visit(item)
            digest.update(b"]")
        else:
            digest.update(repr(value).encode() + b";")

    visit(payload)
    return digest.hexdigest()


def save_checkpoint(path: PathLike, payload: Dict[str, Any]) -> None:
    """Write ``payload`` (with format fields and its integrity hash added) to ``path`` atomically.

    Raises `CheckpointWriteError` when the disk is full or the directory cannot be written; the file
    previously at ``path`` (if any) is then unchanged.
    """
    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    payload["integrity"] = payload_digest(payload)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getbuffer()
    previous = f"the previous {path.name} is intact" if path.is_file() else f"no earlier {path.name} existed"
    try:
        free = shutil.disk_usage(path.parent if path.parent.is_dir() else Path.cwd()).free
    except OSError:
        free = None
    if free is not None and free < data.nbytes:
        raise CheckpointWriteError(
            f"disk full writing {path}: it needs {data.nbytes / 2**20:.1f} MiB, {free / 2**20:.1f} MiB are "
            f"free; {previous}; free some space and resume with --resume",
        )
    try:
        with atomic_open(path, "wb") as handle:
            handle.write(data)
    except OSError as err:
        if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            reason = "disk full writing"
        else:
            reason = f"cannot write ({err.strerror or err})"
        raise CheckpointWriteError(
            f"{reason} {path}; {previous}; free some space or fix the directory, then --resume"
        ) from None


def load_checkpoint(
    path: PathLike,
    *,
    expected_arch: Optional[str] = None,
    expected_tokenizer: Optional[str] = None,
    map_location: Union[str, torch.device] = "cpu",
) -> Dict[str, Any]:
    """Load and check a checkpoint.

    ``expected_arch`` ("grassmann"/"transformer") and ``expected_tokenizer`` (a tokenizer fingerprint),
    when given, must match the file's, else `ArchitectureMismatchError` / `TokenizerMismatchError`.
    """
    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise CheckpointCorruptError(f"checkpoint {path} {what}; give the path of a last.pt or best.pt")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, bad pickle, wrong file type...
        if "weights only" in str(err).lower() or "weights_only" in str(err):
            # a well-formed file that holds Python objects: not ours (we write tensors and plain data only);
            # torch's advice to load it unsafely would run whatever code the file carries, so it is not repeated
            raise CheckpointCorruptError(
                f"{path} is not a gflow_lite checkpoint: it holds Python objects that a safe load refuses "
                f"(loading them would run code from the file); use a checkpoint written by gflow_lite "
                f"(last.pt or best.pt of a run)"
            ) from None
        lines = [ln for ln in str(err).strip().splitlines() if ln.strip()]
        reason = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
        raise CheckpointCorruptError(
            f"checkpoint {path} is corrupt or truncated ({reason[:200]}); use another checkpoint (e.g. best.pt) "
            f"or start a new run in a new --out directory"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointCorruptError(f"{path} is not a gflow_lite checkpoint")
    if payload.get("format_version") not in READABLE_VERSIONS:
        raise CheckpointCorruptError(
            f"{path} has checkpoint format version {payload.get('format_version')}, this gflow_lite reads "
            f"versions {READABLE_VERSIONS}"
        )
    if payload["format_version"] >= 2 and payload.get("integrity") != payload_digest(payload):
        raise CheckpointCorruptError(
            f"checkpoint {path} is corrupt: its contents do not match the integrity hash stored in it (a "
            f"changed or damaged file); use another checkpoint (e.g. best.pt) or retrain"
        )
    if expected_arch is not None and payload["arch"] != expected_arch:
        raise ArchitectureMismatchError(
            f"checkpoint {path} holds a {payload['arch']!r} model but {expected_arch!r} was requested"
        )
    if expected_tokenizer is not None:
        check_tokenizer(payload, expected_tokenizer, path)
    return payload


def check_tokenizer(payload: Dict[str, Any], fingerprint: str, path: PathLike = "checkpoint") -> None:
    """Raise `TokenizerMismatchError` unless the checkpoint was trained with tokenizer ``fingerprint``."""
    stored = payload["tokenizer"]["fingerprint"]
    if stored != fingerprint:
        raise TokenizerMismatchError(
            f"tokenizer mismatch: {path} was trained with tokenizer {stored} but the data now gives "
            f"{fingerprint}; use the data directory and tokenizer settings the run was trained with"
        )


def load_weights(model: "torch.nn.Module", state: Dict[str, Any], path: Path) -> None:
    """``model.load_state_dict(state)``, or `CheckpointCorruptError` naming what does not fit (another
    size, a missing or an extra tensor) instead of torch's list of every mismatch."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as err:
        detail = " ".join(str(err).split())
        raise CheckpointCorruptError(
            f"the weights in {path} do not fit the model its configuration describes ({detail[:300]}); "
            f"use a checkpoint written by this run's configuration"
        ) from None
