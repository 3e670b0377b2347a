"""Reference solutions for chapter 4 (loaded by the chapter only under GFLOW_SOLUTIONS=1)."""


def paper_projection_flops(B, L, d, r, m):
    """m projections Linear(P, d) on N = B L rows: forward 2 N P d, backward twice that (dX and dW)."""
    N, P = B * L, r * (r - 1) // 2
    return m * 3 * (2 * N * P * d)


def crossover_length(d, r, m, order):
    """First L >= 1 with 24 d^2 + 6 (L + 1) d > 6 (d r + K d + 2 d^2) (+ 2 d on the fast path), per token.

    Dividing by 6 d: L + 1 > r + K - 2 d (+ 1/3 on the fast path), so L > r + K - 2 d - 1 (+ 1/3).
    """
    P = r * (r - 1) // 2
    if order == "paper":
        bound = r + m * P - 2 * d - 1  # L must exceed this integer
        first = bound + 1
    elif order == "fast":
        K = (r // 2) * r  # the fast path's shift-layout slots
        first = r + K - 2 * d  # L > r + K - 2 d - 2/3: the first integer above it
    else:
        raise ValueError(f"order={order!r} must be 'paper' or 'fast'")
    return max(first, 1)


def grassmann_cache_bytes(offsets, offset_mode, n_layers, r, batch, context):
    """Per layer min(context, its largest offset) reduced vectors of r fp32 numbers, per sequence."""
    if offset_mode == "per_layer":
        largest = [offsets[i] for i in range(n_layers)]
    else:
        largest = [max(offsets)] * n_layers
    return sum(min(context, k) for k in largest) * batch * r * 4
