"""Reference solutions for chapter 3 (loaded by the chapter only under GFLOW_SOLUTIONS=1)."""


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
