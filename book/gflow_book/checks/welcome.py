"""Checks for chapter 0 (welcome): the loss of a model that knows nothing, and next-token blocks."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .core import Mismatch, expect_close, expect_equal, make_generator, run_check

__all__ = ["check_uniform_loss", "check_next_token_blocks"]


def check_uniform_loss(fn: Callable[[int], float]) -> bool:
    """``fn(vocab_size)`` must be the cross-entropy of a model that predicts every token with 1/V."""

    def case(V: int):
        def run(f):
            expected = F.cross_entropy(torch.zeros(1, V, dtype=torch.float64), torch.tensor([0]))
            expect_close(f(V), expected, f"vocab_size={V}", rtol=1e-6, atol=1e-9)
        return run

    return run_check("0.1 uniform loss", fn, [case(V) for V in (1, 2, 10, 97, 256, 30522)], hint=[
        "cross-entropy is minus the log of the probability the model gives the correct token",
        "a uniform prediction gives every token, the correct one included, probability 1/V; the loss is in "
        "nats, so the natural logarithm",
        "return math.log(vocab_size)"])


def check_next_token_blocks(fn: Callable) -> bool:
    """``fn(ids, starts, block_size) -> (x, y)`` must cut the blocks that `RandomBlockSampler` cuts."""
    from gflow_lite.data import RandomBlockSampler

    def case(n: int, batch: int, block: int, seed: int, last: bool = False):
        def run(f):
            ids = torch.randint(0, 50, (n,), generator=make_generator(seed))
            sampler = RandomBlockSampler(ids, block, batch, seed=seed)
            state = sampler.generator.get_state()
            starts = sampler.starts()
            if last:  # the last start that still has a target for every input token
                starts[-1] = n - block - 1
            sampler.generator.set_state(state)
            x_ref, y_ref = sampler.next_batch()
            if last:
                x_ref[-1], y_ref[-1] = ids[n - block - 1 : n - 1], ids[n - block : n]
            out = f(ids, starts.clone(), block)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise Mismatch(f"n={n}, block_size={block}: return a pair (x, y), got {type(out).__name__}")
            what = f"n={n}, batch={batch}, block_size={block}{', last start' if last else ''}"
            expect_equal(out[0], x_ref, f"{what}: x")
            expect_equal(out[1], y_ref, f"{what}: y")
        return run

    cases = [case(100, 4, 8, 0), case(33, 3, 1, 1), case(200, 5, 16, 2, last=True), case(17, 2, 15, 3, last=True)]
    return run_check("0.2 next-token blocks", fn, cases, hint=[
        "the target of input position t is the token at position t + 1 of the same text",
        "row b of x is ids[s : s + block_size] with s = starts[b]; y is the same window moved one token to "
        "the right",
        "window = starts[:, None] + torch.arange(block_size + 1); blocks = ids[window]; "
        "return blocks[:, :-1], blocks[:, 1:]"])
