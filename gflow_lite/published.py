"""Published numbers: the paper's and the public reproductions', read from ``data/published.csv``.

One row per number, each with its source (``source`` is a short code, ``source_name`` the repository or
paper, ``source_url`` its address, ``where`` the table, section or file), the setting it belongs to and
its ``metric`` (``val_ppl``, ``test_ppl``, ``params_m``, ``val_acc``, ...). The book's page "Reading the
paper" (paper notes §3) sets the same numbers out in prose. The file is checked against
``data/SHA256SUMS`` like every shipped data file.
"""

from __future__ import annotations

import csv
import functools
from typing import List, NamedTuple, Optional, Tuple

from .data.checksums import verified_path

__all__ = ["FILE", "PAPER_SILENT", "Published", "published", "published_value"]

FILE = "published.csv"

#: What the paper does not state about its WikiText-2 training (paper notes §2.1, §5.2).
PAPER_SILENT: Tuple[str, ...] = (
    "optimiser", "learning rate", "schedule and warmup", "weight decay", "gradient clipping",
    "initialisation", "dropout rate", "precision", "seeds", "hardware", "chunking (overlap)",
    "test perplexity",
)


class Published(NamedTuple):
    """One published number (a row of ``data/published.csv``); empty text fields are ``""``."""

    source: str
    source_name: str
    source_url: str
    where: str
    setting: str
    model: str
    layers: Optional[int]
    block: Optional[int]
    metric: str
    seed: Optional[int]
    value: float
    tokenizer: str
    recipe: str
    variant: str
    ablation: str
    status: str  # "" | "not matched" (the source's two models were not trained alike) | "diverged"
    notes: str


def _int(text: str) -> Optional[int]:
    return int(text) if text else None


@functools.lru_cache(maxsize=None)
def _rows() -> Tuple[Published, ...]:
    with open(verified_path(FILE), newline="", encoding="utf-8") as handle:
        return tuple(Published(**{**row, "layers": _int(row["layers"]), "block": _int(row["block"]),
                                  "seed": _int(row["seed"]), "value": float(row["value"])})
                     for row in csv.DictReader(handle))


def published(**match: object) -> List[Published]:
    """The rows whose fields equal ``match`` (all rows without one), in the file's order."""
    return [r for r in _rows() if all(getattr(r, k) == v for k, v in match.items())]


def published_value(**match: object) -> float:
    """The one value the rows matching ``match`` report; ValueError if none or several differ."""
    values = {r.value for r in published(**match)}
    if len(values) != 1:
        raise ValueError(f"{len(values)} different published values match {match}")
    return values.pop()
