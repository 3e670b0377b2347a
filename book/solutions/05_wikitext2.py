"""Reference solutions for chapter 5 (loaded by the chapter only under GFLOW_SOLUTIONS=1)."""

import math


def ratio_and_spread(grassmann_ppl, transformer_ppl):
    """Ratio of the mean perplexities, and the smallest and largest seed-matched ratio."""
    n = len(grassmann_ppl)
    ratio = (sum(grassmann_ppl) / n) / (sum(transformer_ppl) / n)
    per_seed = [g / t for g, t in zip(grassmann_ppl, transformer_ppl)]
    return ratio, min(per_seed), max(per_seed)


def split_perplexity(loss_sums, token_counts):
    """exp(total loss / total tokens): every token of the split weighs the same."""
    return math.exp(sum(loss_sums) / sum(token_counts))


def training_budget(batch_size, grad_accum, block_size, max_steps, epochs, n_train_tokens):
    """Optimizer steps and training tokens of a run (``max_steps`` or ``epochs`` passes over the data)."""
    per_step = batch_size * grad_accum * block_size
    steps = max_steps if max_steps is not None else max(1, math.ceil(epochs * n_train_tokens / per_step))
    return steps, steps * per_step
