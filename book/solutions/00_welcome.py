"""Reference solutions for chapter 0 (loaded by the chapter only under GFLOW_SOLUTIONS=1)."""

import math

import torch


def uniform_loss(vocab_size):
    """Cross-entropy (nats) of a model that gives every one of ``vocab_size`` tokens probability 1/V."""
    return math.log(vocab_size)


def next_token_blocks(ids, starts, block_size):
    """Inputs ``x[b] = ids[s : s + T]`` and targets ``y[b] = ids[s + 1 : s + T + 1]`` for ``s = starts[b]``."""
    window = starts[:, None] + torch.arange(block_size + 1)
    blocks = ids[window]
    return blocks[:, :-1], blocks[:, 1:]
