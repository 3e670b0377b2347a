"""Reference solutions for chapter 4 (loaded by the chapter only under GFLOW_SOLUTIONS=1)."""


def paper_projection_flops(B, L, d, r, m):
    """m projections Linear(P, d) on N = B L rows: forward 2 N P d, backward twice that (dX and dW)."""
    N, P = B * L, r * (r - 1) // 2
    return m * 3 * (2 * N * P * d)


def crossover_length(d, r, m, order):
    """First L >= 1 where causal attention's 24 d^2 + 6 (L + 1) d FLOPs per token exceed the Grassmann path's.

    Paper order and plain fast path: 6 (d r + X d + 2 d^2) with X = m P or P; dividing by 6 d, attention
    is larger when L + 1 > r + X - 2 d, i.e. from L = r + X - 2 d on (all integers).
    Fused kernel: 6 d r + 2 (2 K + P) d + 12 d^2 + 2 d (K = floor(r/2) r slots in the forward and dq, P
    columns in dW, a bias-gradient product); dividing by 2 d: 3 (L + 1) > 3 r + 2 K + P + 1 - 6 d, i.e.
    3 L > 3 r + 2 K + P - 2 - 6 d, from L = floor((3 r + 2 K + P - 2 - 6 d) / 3) + 1 on.
    """
    P = r * (r - 1) // 2
    if order in ("paper", "fast"):
        X = m * P if order == "paper" else P
        first = r + X - 2 * d
    elif order == "fused":
        K = (r // 2) * r  # the fused kernel's shift-layout slots
        first = (3 * r + 2 * K + P - 2 - 6 * d) // 3 + 1  # floor division, right for negative bounds too
    else:
        raise ValueError(f"order={order!r} must be 'paper', 'fast' or 'fused'")
    return max(first, 1)


def grassmann_cache_bytes(offsets, offset_mode, n_layers, r, batch, context):
    """Per layer min(context, its largest offset) reduced vectors of r fp32 numbers, per sequence."""
    if offset_mode == "per_layer":
        largest = [offsets[i] for i in range(n_layers)]
    else:
        largest = [max(offsets)] * n_layers
    return sum(min(context, k) for k in largest) * batch * r * 4
