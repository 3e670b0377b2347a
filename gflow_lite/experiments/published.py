"""Published numbers: the paper's Table 1 and SNLI table, and every public reproduction's WikiText-2 runs.

Plain data, transcribed from the sources named in `SOURCES` (via the project's paper digest, sections 2,
3 and 5, which cites the exact files). Chapter 4 and the README render their comparison tables from this
module and from our own ``results/`` files only; no other place in the project types these numbers.

Conventions:

* A perplexity is a tuple with one value per seed (most sources report one seed); ``()`` means "not
  reported". ``val_ppl`` is the best validation perplexity over training; ``test_ppl`` is the test
  perplexity the source reports (at its best-validation checkpoint where it says so).
* ``setting`` names a matched configuration *within one source*: a Grassmann and a Transformer entry with
  the same ``source`` and ``setting`` were trained with the same data, tokenizer, size and recipe, so
  their ratio is the source's gap. `matched_gaps` forms these ratios (they are computed, never stored).
* ``variant`` is ``""`` for the source's main run of the paper's layer; otherwise it says what was
  changed (an ablation). ``ablation`` names the ablation of ours (``scripts/cpu_experiments.sh``) that
  changes the same thing, so that the chapter can set the two side by side.
* Perplexities are only comparable within one tokenizer and one data preparation; across sources, only
  the Grassmann / Transformer ratio is.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

__all__ = [
    "Source",
    "LMResult",
    "NLIResult",
    "MatchedGap",
    "Throughput",
    "SOURCES",
    "PAPER_LM",
    "PAPER_NLI",
    "REPRODUCTIONS_LM",
    "REPRODUCTIONS_NLI",
    "WIKITEXT2",
    "REPORTED_GAPS",
    "PAPER_SILENT",
    "PUBLISHED_THROUGHPUT",
    "matched_gaps",
    "headline_gaps",
    "ablation_evidence",
]


@dataclass(frozen=True)
class Source:
    """Where numbers come from: a short key, a name, a public address and the files or sections used."""

    key: str
    name: str
    url: str
    where: str


@dataclass(frozen=True)
class LMResult:
    """One published WikiText-2 language-model run (or several seeds of one configuration)."""

    source: str  # a key of SOURCES
    setting: str  # matched configuration within the source (see the module docstring)
    model: str  # "grassmann" or "transformer"
    layers: int
    block: int  # training block (context) length L
    params_m: Optional[float]  # millions of parameters, as reported; None if not reported
    val_ppl: Tuple[float, ...]  # best validation perplexity, one per seed; () if not reported
    test_ppl: Tuple[float, ...]  # test perplexity, one per seed; () if not reported
    tokenizer: str
    recipe: str  # block structure, optimiser, schedule, epochs: what the source used
    variant: str = ""  # "" for the paper's layer as the source built it; else the change
    ablation: str = ""  # our ablation (scripts/cpu_experiments.sh) that changes the same thing
    matched: bool = True  # False: the source's two models were not trained alike (no gap is formed)
    diverged: bool = False  # the run failed to train (no gap is formed)
    ppl_split_unstated: Tuple[float, ...] = ()  # a perplexity whose split the source does not state
    notes: str = ""

    @property
    def val(self) -> Optional[float]:
        """Mean best validation perplexity over the reported seeds (None if not reported)."""
        return statistics.fmean(self.val_ppl) if self.val_ppl else None

    @property
    def test(self) -> Optional[float]:
        """Mean test perplexity over the reported seeds (None if not reported)."""
        return statistics.fmean(self.test_ppl) if self.test_ppl else None


@dataclass(frozen=True)
class NLIResult:
    """One published SNLI result (accuracy in [0, 1])."""

    source: str
    head: str  # "grassmann" or "transformer"
    val_acc: float
    test_acc: float
    backbone: str
    notes: str = ""


@dataclass(frozen=True)
class MatchedGap:
    """A Grassmann run and the Transformer trained alike by the same source: the ratio of perplexities."""

    grassmann: LMResult
    transformer: LMResult

    @property
    def source(self) -> str:
        return self.grassmann.source

    @property
    def setting(self) -> str:
        return self.grassmann.setting

    @property
    def variant(self) -> str:
        return self.grassmann.variant

    @property
    def ratio_val(self) -> Optional[float]:
        """Grassmann / Transformer best validation perplexity (means over seeds); None if not reported."""
        g, t = self.grassmann.val, self.transformer.val
        return g / t if g is not None and t is not None else None

    @property
    def ratio_test(self) -> Optional[float]:
        """Grassmann / Transformer test perplexity (means over seeds); None if not reported."""
        g, t = self.grassmann.test, self.transformer.test
        return g / t if g is not None and t is not None else None

    @property
    def ratio(self) -> float:
        """The validation ratio where reported (the paper's metric), else the test ratio."""
        value = self.ratio_val if self.ratio_val is not None else self.ratio_test
        assert value is not None, "a matched gap needs a perplexity of both models"
        return value


# ------------------------------------------------------------------------------------------------ sources
_DIGEST = "paper digest (shared/reference/paper-digest.md) §3.3"
SOURCES: Dict[str, Source] = {
    s.key: s
    for s in (
        Source("paper", "Zhang Chong, arXiv 2512.19428v1", "https://arxiv.org/abs/2512.19428",
               "Table 1 (WikiText-2) and the SNLI table; paper digest §3.1-3.2"),
        Source("ARL", "Elliot Arledge (Dec 2025)", "https://elliotarledge.com/blog/grassmann-flows",
               "alphaXiv/paper-implementations attention_is_not_all_you_need/technical.md and blog.md; "
               + _DIGEST),
        Source("AXV", "alphaXiv paper-implementations (commit 046a344)",
               "https://github.com/alphaXiv/paper-implementations",
               "attention_is_not_all_you_need/ README and speedrun.sh; " + _DIGEST),
        Source("SHX", "sherlok-xin/grassmann--flow (fork of ARL)",
               "https://github.com/sherlok-xin/grassmann--flow",
               "docs/generated/experiment_registry.csv; " + _DIGEST),
        Source("YOU", "youdie006/grassmann", "https://github.com/youdie006/grassmann",
               "training_results_hydra/<run>/results.json (runs 2026-02-23 03-09-29, 2026-02-23 14-13-53, "
               "2026-02-27 20-23-53); " + _DIGEST),
        Source("KAN", "Kane Norman", "https://github.com/kanenorman/grassmann",
               "README and https://www.kanenorman.com/ai/2026-01-30-attention-is-not-what-you-need; "
               + _DIGEST),
        Source("GLM", "adriansimonn/GrassLM", "https://github.com/adriansimonn/GrassLM",
               "models/GrassLM-10M/config.json; " + _DIGEST),
        Source("ADP", "Adipks/sparse_grassmann_llm", "https://github.com/Adipks/sparse_grassmann_llm",
               "README.md; " + _DIGEST),
    )
}

# ------------------------------------------------------------------------------------------- the paper
_PAPER_TOK = "WordPiece 30,522 (bert-base-uncased); WikiText-2 raw"
_PAPER_RECIPE = ("post-LN (as written); 30 epochs; optimiser, lr, schedule, init, dropout rate, seeds: "
                 "not stated")
PAPER_LM: Tuple[LMResult, ...] = (
    LMResult("paper", "6L L128 (first row pair)", "transformer", 6, 128, 12.59, (248.4,), (), _PAPER_TOK,
             _PAPER_RECIPE),
    LMResult("paper", "6L L128 (first row pair)", "grassmann", 6, 128, 13.00, (275.7,), (), _PAPER_TOK,
             _PAPER_RECIPE, notes="offsets {1,2,4,8,12,16}"),
    LMResult("paper", "6L L128 (second row pair)", "transformer", 6, 128, 12.59, (253.6,), (), _PAPER_TOK,
             _PAPER_RECIPE, notes="labelled like the first pair; the caption says another window schedule"),
    LMResult("paper", "6L L128 (second row pair)", "grassmann", 6, 128, 13.00, (282.3,), (), _PAPER_TOK,
             _PAPER_RECIPE, notes="the text pairs 282.3 with the {1,2,4,8,8,8} schedule and with 248.4"),
    LMResult("paper", "12L L256", "transformer", 12, 256, 17.32, (235.2,), (), _PAPER_TOK, _PAPER_RECIPE),
    LMResult("paper", "12L L256", "grassmann", 12, 256, 18.16, (261.1,), (), _PAPER_TOK, _PAPER_RECIPE,
             notes="schedule (1,1,2,2,4,4,8,8,12,12,16,16)"),
)

PAPER_NLI: Tuple[NLIResult, ...] = (
    NLIResult("paper", "transformer", 0.8545, 0.8511, "DistilBERT-base-uncased", "one run"),
    NLIResult("paper", "grassmann", 0.8550, 0.8538, "DistilBERT-base-uncased",
              "one run; the validation difference is about 5 of ~9.8k examples"),
)

#: What the paper does not state about its WikiText-2 training (digest §2.1 and §5.2), in its words' order.
PAPER_SILENT: Tuple[str, ...] = (
    "optimiser", "learning rate", "schedule and warmup", "weight decay", "gradient clipping",
    "initialisation", "dropout rate", "precision", "seeds", "hardware", "chunking (overlap)",
    "test perplexity",
)

# ------------------------------------------------------------------------------------------ reproductions
_BERT = "WordPiece 30,522 (bert-base-uncased); WikiText-2 raw"
_GPT2 = "GPT-2 BPE 50,257; WikiText-2 raw"
_ARL_RECIPE = "pre-LN + inner LN; AdamW 3e-4, wd 0.01, cosine, clip 1.0; 20 epochs; bs 32"
_AXV_RECIPE = "pre-LN + inner LN; AdamW 6e-4, 100 warmup, cosine to 6e-5, bf16; 20 epochs"
_SHX_RECIPE = "pre-LN + inner LN (ARL's code); AdamW 3e-4, bs 32; 20 epochs"

REPRODUCTIONS_LM: Tuple[LMResult, ...] = (
    # ARL: GPT-2 tokenizer, L = 256, 6 layers; the Transformer has 8 heads.
    LMResult("ARL", "6L L256", "transformer", 6, 256, 17.67, (190.03,), (198.17,), _GPT2, _ARL_RECIPE,
             notes="8 heads; best val at epoch 13"),
    LMResult("ARL", "6L L256", "grassmann", 6, 256, 17.70, (236.05,), (242.94,), _GPT2, _ARL_RECIPE,
             notes="all 6 offsets in every layer; best val at epoch 15; H100"),
    # AXV: four matched configurations, best validation perplexity (its "test" script evaluates validation).
    *(
        LMResult("AXV", f"{n}L L{L}", model, n, L, p, (v,), (), _BERT, _AXV_RECIPE,
                 notes=("the 12-tuple of offsets in every layer" if n == 12 and model == "grassmann" else ""))
        for n, L, model, p, v in (
            (6, 128, "transformer", 12.59, 181.66), (6, 128, "grassmann", 12.61, 253.76),
            (6, 256, "transformer", 12.62, 180.85), (6, 256, "grassmann", 12.64, 251.32),
            (12, 128, "transformer", 17.32, 170.43), (12, 128, "grassmann", 17.37, 244.61),
            (12, 256, "transformer", 17.36, 168.68), (12, 256, "grassmann", 17.41, 245.10),
        )
    ),
    # SHX: one Transformer, the paper's layer, and Grassmann ablations trained alike (GPT-2 tokenizer, L 256).
    LMResult("SHX", "6L L256", "transformer", 6, 256, 17.67, (188.39,), (197.65,), _GPT2, _SHX_RECIPE),
    LMResult("SHX", "6L L256", "grassmann", 6, 256, 17.70, (238.26,), (244.41,), _GPT2, _SHX_RECIPE,
             notes="W = {1,2,4,8,12,16}, r = 32"),
    LMResult("SHX", "6L L256", "grassmann", 6, 256, 17.09, (244.24,), (250.56,), _GPT2, _SHX_RECIPE,
             variant="r = 16"),
    LMResult("SHX", "6L L256", "grassmann", 6, 256, None, (231.16,), (237.68,), _GPT2, _SHX_RECIPE,
             variant="W = {1,2,4,8,12}"),
    LMResult("SHX", "6L L256", "grassmann", 6, 256, None, (223.22, 221.98, 221.77), (230.10, 227.58, 229.19),
             _GPT2, _SHX_RECIPE, variant="W = {1,2,4,8}", notes="3 seeds"),
    LMResult("SHX", "6L L256", "grassmann", 6, 256, None, (218.06, 217.44, 216.68), (226.09, 223.66, 225.81),
             _GPT2, _SHX_RECIPE, variant="W = {1,2,4}", ablation="offsets-1-2-4", notes="3 seeds"),
    LMResult("SHX", "6L L256", "grassmann", 6, 256, 20.08, (214.40,), (220.29,), _GPT2, _SHX_RECIPE,
             variant="W = {1,2,4,8}, r = 64"),
    LMResult("SHX", "6L L256", "grassmann", 6, 256, None, (230.79,), (237.47,), _GPT2, _SHX_RECIPE,
             variant="W = {1,2,4,8}, r = 16"),
    LMResult("SHX", "6L L256", "grassmann", 6, 256, 20.08, (210.18,), (216.45,), _GPT2, _SHX_RECIPE,
             variant="W = {1,2,4}, r = 64"),
    LMResult("SHX", "6L L256", "grassmann", 6, 256, 18.59, (210.34,), (218.24,), _GPT2, _SHX_RECIPE,
             variant="W = {1,2,4}, r = 64, d = 240"),
    # YOU: three runs, each a matched pair.
    LMResult("YOU", "6L L128 post-LN", "transformer", 6, 128, 12.59, (238.71,), (), _BERT,
             "post-LN, PyTorch default init; AdamW 1e-3, cosine, no warmup; 30 epochs; bs 32"),
    LMResult("YOU", "6L L128 post-LN", "grassmann", 6, 128, 12.61, (321.05,), (), _BERT,
             "post-LN, PyTorch default init; AdamW 1e-3, cosine, no warmup; 30 epochs; bs 32",
             notes="all offsets in every layer; RTX 3060 Ti"),
    LMResult("YOU", "12L L256 pre-LN (stabilised)", "transformer", 12, 256, 17.36, (218.28,), (), _BERT,
             "pre-LN, N(0, 0.02) init; AdamW 1e-3; 30 epochs; bs 16", notes="best at epoch 10"),
    LMResult("YOU", "12L L256 pre-LN (stabilised)", "grassmann", 12, 256, 17.40, (200.29,), (), _BERT,
             "pre-LN, N(0, 0.02) init; AdamW 1e-3; 30 epochs; bs 16",
             notes="one offset per layer; best at epoch 4, then overfits (val loss 6.36 at train loss 2.46)"),
    LMResult("YOU", "12L L256 post-LN (strict)", "transformer", 12, 256, None, (1381.35,), (), _BERT,
             "post-LN, PyTorch default init (N(0,1) tied embeddings); AdamW 1e-3; 30 epochs", diverged=True),
    LMResult("YOU", "12L L256 post-LN (strict)", "grassmann", 12, 256, None, (290.60,), (), _BERT,
             "post-LN, PyTorch default init; AdamW 1e-3; 30 epochs",
             notes="one offset per layer; best at epoch 25"),
    # KAN: a Transformer calibrated to the paper's, and its Grassmann variant (residual-add block).
    LMResult("KAN", "6L L128 post-LN", "transformer", 6, 128, 12.59, (248.7,), (), _BERT,
             "post-LN, default init; AdamW 1e-3, cosine per epoch, no clip, fp32; 30 epochs; bs 32",
             notes="the paper reports 248.4"),
    LMResult("KAN", "6L L128 post-LN", "grassmann", 6, 128, 12.61, (356.6,), (), _BERT,
             "post-LN, default init; AdamW 1e-3, cosine per epoch, no clip, fp32; 30 epochs; bs 32",
             notes="block x + sigmoid(W[x; g]) g (residual-add variant of the gate)"),
    # GLM: the paper-literal layer with one offset per layer; no Transformer baseline.
    LMResult("GLM", "6L L128 post-LN", "grassmann", 6, 128, 12.61, (218.57,), (), _BERT,
             "post-LN (paper-literal); AdamW 3e-4, betas (0.9, 0.98), 2000 warmup, cosine; 30 epochs; bs 32",
             variant="one offset per layer (1,2,4,8,12,16)", ablation="per-layer-1-2-4-8",
             notes="no Transformer trained; best at epoch 19; committed after GLM's causality fix"),
    # ADP: the two models were not trained alike; the split of the perplexities is not stated.
    LMResult("ADP", "not matched", "transformer", 8, 2048, 22.30, (), (), "own BPE 8k",
             "bs 32 on an A100; d 432", matched=False, ppl_split_unstated=(517.32,),
             notes="undertrained baseline, not evidence"),
    LMResult("ADP", "not matched", "grassmann", 6, 2048, 22.54, (), (), "own BPE 8k",
             "bs 4 on a local RTX; d 512; 12 epochs", matched=False, ppl_split_unstated=(132.57,),
             notes="2:4-sparse FFN variant: 139.44"),
)

REPRODUCTIONS_NLI: Tuple[NLIResult, ...] = (
    NLIResult("AXV", "transformer", 0.6754, 0.6794, "frozen DistilBERT",
              "degenerate: the head sees one pooled vector (digest §5.6)"),
    NLIResult("AXV", "grassmann", 0.6775, 0.6787, "frozen DistilBERT",
              "degenerate: Plücker(z, z) = 0, so the head is a gated MLP (digest §5.6)"),
)

#: Every published WikiText-2 entry: the paper's, then the reproductions'.
WIKITEXT2: Tuple[LMResult, ...] = PAPER_LM + REPRODUCTIONS_LM

#: Gaps (Grassmann / Transformer - 1) as the digest states them, keyed by (source, setting, variant) and the
#: split; used by the tests to check that `matched_gaps` recomputes them from the entries above.
REPORTED_GAPS: Dict[Tuple[str, str, str, str], float] = {
    ("ARL", "6L L256", "", "test"): 0.226,
    ("ARL", "6L L256", "", "val"): 0.242,
    ("AXV", "6L L128", "", "val"): 0.397,
    ("AXV", "6L L256", "", "val"): 0.390,
    ("AXV", "12L L128", "", "val"): 0.435,
    ("AXV", "12L L256", "", "val"): 0.453,
    ("SHX", "6L L256", "", "test"): 0.237,
    ("SHX", "6L L256", "W = {1,2,4}, r = 64", "test"): 0.095,
    ("YOU", "6L L128 post-LN", "", "val"): 0.345,
    ("YOU", "12L L256 pre-LN (stabilised)", "", "val"): -0.082,
    ("KAN", "6L L128 post-LN", "", "val"): 0.434,
}

@dataclass(frozen=True)
class Throughput:
    """A training throughput a source measured, with the model it was measured on (`LMConfig` fields)."""

    source: str
    tokens_per_s: float
    device: str
    model: Tuple[Tuple[str, object], ...]  # (LMConfig field, value): the measured model, as far as known
    where: str


#: Training throughput ARL reports for a Grassmann LM close to the paper's 6-layer model. ARL's layer
#: projects every offset separately (the paper's order, our ``impl="reference"``).
PUBLISHED_THROUGHPUT = Throughput(
    source="ARL",
    tokens_per_s=53_000.0,
    device="one H100 (SXM5 80GB)",
    model=(("vocab_size", 50_257), ("block_size", 256), ("d_model", 256), ("n_layers", 6), ("d_ff", 1024),
           ("r", 32), ("offsets", (1, 2, 4, 8, 12, 16)), ("impl", "reference")),
    where='attention_is_not_all_you_need/technical.md ("~53k tok/s", 17.7M parameters, GPT-2 vocabulary); '
          "paper digest §4.3",
)


def matched_gaps(entries: Tuple[LMResult, ...] = WIKITEXT2) -> List[MatchedGap]:
    """Every Grassmann entry paired with the Transformer of the same source and setting.

    Entries marked ``matched=False`` or ``diverged=True`` form no pair; a Grassmann entry without a
    Transformer trained alike (GLM) forms none either. Order: as in ``entries``.
    """
    transformers = {(e.source, e.setting): e for e in entries
                    if e.model == "transformer" and e.matched and not e.diverged}
    gaps = []
    for e in entries:
        if e.model != "grassmann" or not e.matched or e.diverged:
            continue
        t = transformers.get((e.source, e.setting))
        if t is not None and (e.val_ppl and t.val_ppl or e.test_ppl and t.test_ppl):
            gaps.append(MatchedGap(e, t))
    return gaps


def headline_gaps(entries: Tuple[LMResult, ...] = WIKITEXT2) -> List[MatchedGap]:
    """The matched gaps of the paper's layer itself (``variant == ""``): one per source and setting."""
    return [g for g in matched_gaps(entries) if g.variant == ""]


def ablation_evidence(ablation: str,
                      entries: Tuple[LMResult, ...] = WIKITEXT2) -> List[Tuple[LMResult, float]]:
    """Published runs that change what our ablation ``ablation`` changes, each with its perplexity relative
    to the same source's run of the paper's layer (validation; 1.0 = no change, below 1 = better).

    Only sources with both runs contribute (SHX for the offsets); GLM's per-layer run has no paper-layer
    twin and contributes nothing.
    """
    base = {(e.source, e.setting): e for e in entries
            if e.model == "grassmann" and e.variant == "" and e.val_ppl}
    out = []
    for e in entries:
        ref = base.get((e.source, e.setting))
        if e.ablation == ablation and e.val_ppl and ref is not None and ref is not e:
            out.append((e, e.val / ref.val))
    return out
