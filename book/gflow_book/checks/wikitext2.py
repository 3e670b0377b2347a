"""Checks for chapter 5 (WikiText-2 experiments): the reported ratio, split perplexity, a run's budget."""

from __future__ import annotations

from typing import Callable, List, Sequence, Tuple

import torch
import torch.nn.functional as F

from gflow_lite.model import LMConfig
from gflow_lite.data.batching import eval_blocks
from ..results import ratio_and_spread
from gflow_lite.model import GrassmannLM
from gflow_lite.training.evaluate import evaluate
from gflow_lite.training.presets import ARCHITECTURES, PRESETS, TrainConfig, resolve
from .core import Mismatch, expect_close, expect_equal, make_generator, run_check

__all__ = ["check_ratio_and_spread", "check_split_perplexity", "check_training_budget"]


def check_ratio_and_spread(fn: Callable[[Sequence[float], Sequence[float]], Tuple[float, ...]]) -> bool:
    """``fn(grassmann_ppl, transformer_ppl)`` must equal `gflow_book.results.ratio_and_spread`."""

    def case(n_seeds: int, seed: int):
        def run(f):
            g = make_generator(seed)
            transformer = (150 + 100 * torch.rand(n_seeds, generator=g, dtype=torch.float64)).tolist()
            grassmann = [t * (1.0 + 0.4 * float(u)) for t, u in
                         zip(transformer, torch.rand(n_seeds, generator=g, dtype=torch.float64))]
            out = f(list(grassmann), list(transformer))
            if not isinstance(out, (tuple, list)) or len(out) != 3:
                raise Mismatch(f"{n_seeds} seeds: return (ratio, low, high), got {out!r}")
            expect_close(torch.tensor([float(x) for x in out], dtype=torch.float64),
                         torch.tensor(ratio_and_spread(grassmann, transformer), dtype=torch.float64),
                         f"{n_seeds} seed(s) (ratio, low, high)", rtol=1e-9, atol=0)
        return run

    cases = [case(1, 0), case(2, 1), case(3, 2), case(5, 3), case(10, 4)]
    return run_check("5.1 ratio and spread", fn, cases,
                     hint=[
        "the ratio the chapter reports compares the average perplexities of the two models over seeds",
        "the ratio is mean(grassmann) / mean(transformer), not the mean of per-seed ratios; low and high "
        "are the smallest and largest grassmann[k] / transformer[k]"])


def _block_sums(model: torch.nn.Module, ids: torch.Tensor, block: int,
                batch: int) -> Tuple[List[float], List[int]]:
    """Summed cross-entropy and token count of every evaluation batch (what `evaluate` adds up)."""
    sums, counts = [], []
    with torch.no_grad():
        for b in eval_blocks(ids, block, batch):
            logits = model(b.x)
            loss = F.cross_entropy(logits.double().reshape(-1, logits.size(-1)), b.y.reshape(-1),
                                   reduction="sum")
            sums.append(float(loss))
            counts.append(int(b.y.numel()))
    return sums, counts


def check_split_perplexity(fn: Callable[[Sequence[float], Sequence[int]], float]) -> bool:
    """``fn(loss_sums, token_counts)`` must give the perplexity `gflow_lite.training.evaluate` reports."""

    def case(n_tokens: int, block: int, batch: int, seed: int):
        def run(f):
            cfg = LMConfig(vocab_size=64, block_size=block, d_model=16, n_layers=1, d_ff=32, r=4, n_heads=2,
                           offsets=(1, 2), dropout=0.0)
            torch.manual_seed(seed)  # inside run_check's fork_rng: the notebook's stream is untouched
            model = GrassmannLM(cfg).eval()
            ids = torch.randint(0, 64, (n_tokens,), generator=make_generator(seed))
            sums, counts = _block_sums(model, ids, block, batch)
            expected = evaluate(model, ids, block_size=block, batch_size=batch).ppl
            what = f"{n_tokens} tokens in blocks of {block}, batches of {batch} ({len(counts)} batches, " \
                   f"the last of {counts[-1]} tokens)"
            out = f(list(sums), list(counts))
            expect_close(None if out is None else torch.tensor(float(out), dtype=torch.float64),
                         torch.tensor(expected, dtype=torch.float64), what, rtol=1e-6, atol=0)
        return run

    cases = [case(257, 16, 4, 0), case(100, 16, 2, 1), case(50, 8, 1, 2), case(1000, 32, 3, 3)]
    return run_check("5.2 split perplexity", fn, cases,
                     hint=[
        "perplexity is exp of the mean loss per token over the whole split, and the batches hold different "
        "numbers of tokens",
        "add up every batch's summed loss and every batch's token count first (the last batch is shorter), "
        "then divide and exponentiate: math.exp(sum(loss_sums) / sum(token_counts))"])


def check_training_budget(fn: Callable[..., Tuple[int, int]]) -> bool:
    """``fn(batch_size, grad_accum, block_size, max_steps, epochs, n_train_tokens) -> (steps, tokens)`` must
    agree with `TrainConfig.total_steps` and `TrainConfig.tokens_per_step` for every preset."""

    def case(cfg: TrainConfig, n_train: int, what: str):
        def run(f):
            out = f(cfg.batch_size, cfg.grad_accum, cfg.model.block_size, cfg.max_steps, cfg.epochs, n_train)
            steps = cfg.total_steps(n_train)
            expect_equal(None if out is None else tuple(int(x) for x in out),
                         (steps, steps * cfg.tokens_per_step),
                         f"{what}, {n_train:,} training tokens: (steps, tokens)")
        return run

    cases = []
    for i, preset in enumerate(PRESETS):
        cfg = resolve(preset, list(ARCHITECTURES)[i % 2])
        cases.append(case(cfg, 2_088_628 + 7919 * i, f"preset {preset}"))
    odd = resolve("paper-6l", "grassmann").replace(epochs=2.5, grad_accum=3, batch_size=5)
    cases += [case(odd, 1_000_003, "epochs=2.5, grad_accum=3, batch_size=5"),
              case(resolve("tiny", "transformer").replace(max_steps=7), 10**9, "max_steps=7")]
    return run_check("5.3 training budget", fn, cases,
                     hint=[
        "a step consumes batch_size x grad_accum sequences of block_size tokens; max_steps, when set, wins",
        "with epochs, steps = ceil(epochs x n_train_tokens / tokens per step) (round up: a partial step "
        "still runs); return (steps, steps x tokens per step)"])
