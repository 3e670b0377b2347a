"""The published WikiText-2 and SNLI runs as records, and the Grassmann / Transformer gaps they imply.

The numbers live in ``data/published.csv`` (read by `gflow_lite.published`, one row per number with its
source); this module groups the rows of one run into an `LMResult` (its seeds' perplexities, parameters,
tokenizer, recipe) and pairs runs that one source trained alike (`matched_gaps`). Gaps are computed,
never stored. Perplexities compare only within one tokenizer and data preparation; across sources only
the ratio does (paper notes §5.1).

``WIKITEXT2``, ``PAPER_LM``, ``REPRODUCTIONS_LM``, ``PAPER_NLI``, ``REPRODUCTIONS_NLI``, ``SOURCES`` and
``PUBLISHED_THROUGHPUT`` are read from the file on first use.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from gflow_lite.published import PAPER_SILENT, Published, published

__all__ = ["LMResult", "NLIResult", "MatchedGap", "Throughput", "PAPER_SILENT", "lm_results",
           "matched_gaps", "headline_gaps", "ablation_evidence"]

_LM_METRICS = ("params_m", "val_ppl", "test_ppl", "ppl_split_unstated")


@dataclass(frozen=True)
class LMResult:
    """One published WikiText-2 run (or several seeds of one configuration); ``()``: not reported."""

    source: str  # short code; ``source_name`` and ``source_url`` say who
    source_name: str
    source_url: str
    setting: str  # matched configuration within the source: same setting, trained alike
    model: str  # "grassmann" or "transformer"
    layers: int
    block: int
    params_m: Optional[float]
    val_ppl: Tuple[float, ...]  # best validation perplexity, one per seed
    test_ppl: Tuple[float, ...]  # test perplexity (at the best-validation checkpoint where stated)
    tokenizer: str
    recipe: str
    variant: str = ""  # "" for the paper's layer as the source built it; else what was changed
    ablation: str = ""  # our ablation (scripts/cpu_experiments.sh) that changes the same thing
    matched: bool = True  # False: the source's two models were not trained alike
    diverged: bool = False
    ppl_split_unstated: Tuple[float, ...] = ()
    notes: str = ""

    @property
    def val(self) -> Optional[float]:
        return statistics.fmean(self.val_ppl) if self.val_ppl else None

    @property
    def test(self) -> Optional[float]:
        return statistics.fmean(self.test_ppl) if self.test_ppl else None


@dataclass(frozen=True)
class NLIResult:
    """One published SNLI result (accuracies in [0, 1])."""

    source: str
    head: str
    val_acc: float
    test_acc: float
    backbone: str
    notes: str = ""


@dataclass(frozen=True)
class Throughput:
    """A training throughput a source measured, and the model (`LMConfig` fields) it measured."""

    source: str
    tokens_per_s: float
    device: str
    model: Tuple[Tuple[str, Any], ...]
    where: str


@dataclass(frozen=True)
class MatchedGap:
    """A Grassmann run and the Transformer the same source trained alike."""

    grassmann: LMResult
    transformer: LMResult

    source = property(lambda self: self.grassmann.source)
    setting = property(lambda self: self.grassmann.setting)
    variant = property(lambda self: self.grassmann.variant)

    @property
    def ratio_val(self) -> Optional[float]:
        g, t = self.grassmann.val, self.transformer.val
        return g / t if g is not None and t is not None else None

    @property
    def ratio_test(self) -> Optional[float]:
        g, t = self.grassmann.test, self.transformer.test
        return g / t if g is not None and t is not None else None

    @property
    def ratio(self) -> float:
        """The validation ratio where reported (the paper's metric), else the test ratio."""
        value = self.ratio_val if self.ratio_val is not None else self.ratio_test
        assert value is not None, "a matched gap needs a perplexity of both models"
        return value


def _run(rows: List[Published]) -> LMResult:
    first = rows[0]

    def values(metric: str) -> Tuple[float, ...]:
        return tuple(r.value for r in sorted(rows, key=lambda r: r.seed or 0) if r.metric == metric)

    params = values("params_m")
    return LMResult(first.source, first.source_name, first.source_url, first.setting, first.model,
                    first.layers, first.block, params[0] if params else None, values("val_ppl"),
                    values("test_ppl"), first.tokenizer, first.recipe, first.variant, first.ablation,
                    first.status != "not matched", first.status == "diverged", values("ppl_split_unstated"),
                    first.notes)


def lm_results(source: Optional[str] = None) -> Tuple[LMResult, ...]:
    """Every published WikiText-2 run (of ``source``), in the file's order: the paper's first."""
    runs: Dict[Tuple[str, str, str, str], List[Published]] = {}
    for r in published(**({"source": source} if source else {})):
        if r.metric in _LM_METRICS:
            runs.setdefault((r.source, r.setting, r.model, r.variant), []).append(r)
    return tuple(_run(rows) for rows in runs.values())


def _nli(source_is_paper: bool) -> Tuple[NLIResult, ...]:
    rows = [r for r in published() if r.metric in ("val_acc", "test_acc")
            and (r.source == "paper") == source_is_paper]
    heads = {(r.source, r.model): r for r in rows}
    acc = {(r.source, r.model, r.metric): r.value for r in rows}
    return tuple(NLIResult(s, m, acc[s, m, "val_acc"], acc[s, m, "test_acc"], r.setting.split(", ", 1)[-1],
                           r.notes) for (s, m), r in heads.items())


def _throughput() -> Throughput:
    (r,) = published(metric="train_tokens_per_s")
    fields = dict(item.split("=", 1) for item in r.setting.split())
    model = tuple((k, tuple(int(x) for x in v.split(",")) if k == "offsets" else v if k == "impl" else int(v))
                  for k, v in fields.items())
    return Throughput(r.source, r.value, r.notes.split(" on ", 1)[-1].split(";")[0], model, r.where)


def __getattr__(name: str) -> Any:  # the file is read on first use, not at import
    if name == "WIKITEXT2":
        return lm_results()
    if name in ("PAPER_LM", "REPRODUCTIONS_LM"):
        return tuple(e for e in lm_results() if (e.source == "paper") == (name == "PAPER_LM"))
    if name in ("PAPER_NLI", "REPRODUCTIONS_NLI"):
        return _nli(name == "PAPER_NLI")
    if name == "SOURCES":
        return {r.source: r for r in published()}
    if name == "PUBLISHED_THROUGHPUT":
        return _throughput()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def matched_gaps(entries: Optional[Tuple[LMResult, ...]] = None) -> List[MatchedGap]:
    """Every Grassmann run paired with the Transformer of the same source and setting.

    Runs not trained alike (``matched=False``) or that diverged form no pair, nor does a Grassmann run
    without a Transformer trained alike (GLM).
    """
    entries = lm_results() if entries is None else entries
    transformers = {(e.source, e.setting): e for e in entries
                    if e.model == "transformer" and e.matched and not e.diverged}
    gaps = []
    for e in entries:
        t = transformers.get((e.source, e.setting))
        if e.model == "grassmann" and e.matched and not e.diverged and t is not None and (
                e.val_ppl and t.val_ppl or e.test_ppl and t.test_ppl):
            gaps.append(MatchedGap(e, t))
    return gaps


def headline_gaps(entries: Optional[Tuple[LMResult, ...]] = None) -> List[MatchedGap]:
    """The matched gaps of the paper's layer itself (``variant == ""``): one per source and setting."""
    return [g for g in matched_gaps(entries) if g.variant == ""]


def ablation_evidence(ablation: str, entries: Optional[Tuple[LMResult, ...]] = None
                      ) -> List[Tuple[LMResult, float]]:
    """Published runs that change what our ablation ``ablation`` changes, each with its validation
    perplexity relative to the same source's run of the paper's layer (below 1: better)."""
    entries = lm_results() if entries is None else entries
    base = {(e.source, e.setting): e for e in entries if e.model == "grassmann" and e.variant == "" and e.val_ppl}
    out = []
    for e in entries:
        ref = base.get((e.source, e.setting))
        if e.ablation == ablation and e.val_ppl and ref is not None and ref is not e:
            out.append((e, e.val / ref.val))
    return out
