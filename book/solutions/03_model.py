"""Reference solutions for chapter 3 (loaded by the chapter only under GFLOW_SOLUTIONS=1)."""

import math

import torch


def receptive_field(offsets, n_layers, offset_mode):
    """Tokens a stack can look back: per layer its largest offset, summed over the layers."""
    if offset_mode == "per_layer":
        return sum(offsets[:n_layers])
    return n_layers * max(offsets)


def grassmann_param_count(vocab_size, block_size, d_model, d_ff, r, n_layers):
    """Embeddings + per layer (mixer, FFN, two LayerNorms) + final LayerNorm; the tied head adds nothing."""
    d, P = d_model, r * (r - 1) // 2
    mixer = (d * r + r) + (P * d + d) + (2 * d * d + d)  # W_red, W_plu, W_gate
    ffn = (d * d_ff + d_ff) + (d_ff * d + d)
    layer = mixer + ffn + 2 * (2 * d)
    return vocab_size * d + block_size * d + n_layers * layer + 2 * d


def causal_block(h, mix, params):
    """The paper's post-LN block: ``x = LN1(mix(h))``, ``LN2(x + W2 GELU(W1 x + b1) + b2)``."""

    def layer_norm(x, weight, bias):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)  # biased variance
        return (x - mean) / torch.sqrt(var + params["eps"]) * weight + bias

    x = layer_norm(mix(h), params["ln1_weight"], params["ln1_bias"])
    hidden = x @ params["fc1_weight"].T + params["fc1_bias"]
    hidden = 0.5 * hidden * (1 + torch.erf(hidden / math.sqrt(2)))  # exact GELU
    return layer_norm(x + hidden @ params["fc2_weight"].T + params["fc2_bias"], params["ln2_weight"],
                      params["ln2_bias"])


def scheduled_adamw_step(param, grad, m, v, step, total_steps, peak_lr, warmup, weight_decay):
    """The ``step``-th AdamW update (betas 0.9, 0.999; eps 1e-8; ``step`` from 1) at the rate of the library's
    step ``step - 1`` under the warmup-then-cosine schedule (``gflow_lite.train.lr_at``, min_lr = peak_lr / 10)."""
    s, min_lr = step - 1, peak_lr / 10  # the schedule counts steps from 0
    if s < warmup:
        lr = peak_lr * (s + 1) / warmup
    else:
        progress = (s - warmup) / max(total_steps - warmup, 1)
        lr = min_lr + 0.5 * (peak_lr - min_lr) * (1 + math.cos(math.pi * progress))
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    param = param * (1 - lr * weight_decay)  # decoupled weight decay
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat, v_hat = m / (1 - beta1 ** step), v / (1 - beta2 ** step)
    return param - lr * m_hat / (v_hat.sqrt() + eps), m, v
