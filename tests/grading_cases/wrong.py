"""Subtly wrong answers (the grader gives partial or no credit, with a message). Sections: `# chapter NN`."""

# chapter 01_geometry
import itertools
import torch


@exercise
def plucker_coordinates(u, v):  # sign flipped
    i, j = torch.triu_indices(u.shape[-1], u.shape[-1], offset=1)
    return u[..., j] * v[..., i] - u[..., i] * v[..., j]


@exercise
def lagrange_norm(u, v):  # no clamp: NaN for parallel vectors
    return ((u * u).sum(-1) * (v * v).sum(-1) - (u * v).sum(-1) ** 2).sqrt()


@exercise
def on_grassmannian(p, r, tol):  # the first relation only
    if r < 4:
        return torch.ones(p.shape[:-1], dtype=torch.bool)
    idx = {pair: k for k, pair in enumerate(itertools.combinations(range(r), 2))}
    res = p[..., idx[0, 1]] * p[..., idx[2, 3]] - p[..., idx[0, 2]] * p[..., idx[1, 3]] + p[..., idx[0, 3]] * p[..., idx[1, 2]]
    return res.abs() <= tol


@exercise
def causal_attention(q, k, v):  # forgets the 1/sqrt(d) scale
    L = q.shape[-2]
    s = (q @ k.transpose(-1, -2)).masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, -1) @ v


@exercise
def plucker_features(z, delta, eps):  # no eps floor
    T, r = z.shape[1], z.shape[-1]
    partner = torch.zeros_like(z)
    partner[:, delta:] = z[:, : max(T - delta, 0)]
    i, j = torch.triu_indices(r, r, offset=1)
    p = z[..., i] * partner[..., j] - z[..., j] * partner[..., i]
    n = p.norm(dim=-1, keepdim=True)
    return torch.where(n > 0, p / n, p)

# chapter 02_layer
import torch


@exercise
def fast_partner(z, offsets, eps):  # divides by the number of offsets, not the number valid at t
    T = z.shape[1]
    t = torch.arange(T)
    w = torch.zeros_like(z)
    for d in offsets:
        past = torch.zeros_like(z)
        if d < T:
            past[:, d:] = z[:, : T - d]
        n = ((z * z).sum(-1) * (past * past).sum(-1) - (z * past).sum(-1) ** 2).clamp_min(0).sqrt()
        w = w + ((t >= d).to(z.dtype) / len(offsets) / n.clamp_min(eps))[..., None] * past
    return w


@exercise
def dependency_matrix(mixer, T, d):  # rows and columns swapped: D[s, t]
    h = torch.randn(1, T, d, dtype=torch.float64)
    base = mixer(h)
    D = torch.zeros(T, T, dtype=torch.bool)
    for s in range(T):
        h2 = h.clone()
        h2[0, s] += 1.0
        D[s, :] = (mixer(h2) - base)[0].abs().amax(-1) > 0
    return D


@exercise
def grassmann_layer(h, weights, offsets, eps):  # projects the mean but keeps the bias where nothing is valid
    z = h @ weights["W_red"].T + weights["b_red"]
    T, r = z.shape[1], z.shape[-1]
    t = torch.arange(T)
    n_valid = sum((t >= d).to(z.dtype) for d in offsets).clamp_min(1)
    w = torch.zeros_like(z)
    for d in offsets:
        past = torch.zeros_like(z)
        if d < T:
            past[:, d:] = z[:, : T - d]
        n = ((z * z).sum(-1) * (past * past).sum(-1) - (z * past).sum(-1) ** 2).clamp_min(0).sqrt()
        w = w + ((t >= d).to(z.dtype) / n_valid / n.clamp_min(eps))[..., None] * past
    i, j = torch.triu_indices(r, r, offset=1)
    g = (z[..., i] * w[..., j] - z[..., j] * w[..., i]) @ weights["W_plu"].T + weights["b_plu"]
    a = torch.sigmoid(torch.cat([h, g], -1) @ weights["W_gate"].T + weights["b_gate"])
    return a * h + (1 - a) * g

# chapter 03_model
import math
import torch


@exercise
def receptive_field(offsets, n_layers, offset_mode):  # ignores the offset reading
    return sum(offsets[:n_layers])


@exercise
def grassmann_param_count(vocab_size, block_size, d_model, d_ff, r, n_layers):  # counts the tied head
    d, P = d_model, r * (r - 1) // 2
    layer = (d * r + r) + (P * d + d) + (2 * d * d + d) + (d * d_ff + d_ff) + (d_ff * d + d) + 4 * d
    return 2 * vocab_size * d + block_size * d + n_layers * layer + 2 * d


@exercise
def causal_block(h, mix, params):  # pre-LN instead of the paper's post-LN
    def ln(x, w, b):
        m = x.mean(-1, keepdim=True)
        return (x - m) / torch.sqrt(((x - m) ** 2).mean(-1, keepdim=True) + params["eps"]) * w + b
    x = h + mix(ln(h, params["ln1_weight"], params["ln1_bias"]))
    y = ln(x, params["ln2_weight"], params["ln2_bias"])
    f = y @ params["fc1_weight"].T + params["fc1_bias"]
    f = 0.5 * f * (1 + torch.erf(f / math.sqrt(2)))
    return x + f @ params["fc2_weight"].T + params["fc2_bias"]


@exercise
def scheduled_adamw_step(param, grad, m, v, step, total_steps, peak_lr, warmup, weight_decay):  # no bias correction
    lr = peak_lr * step / warmup if step <= warmup else peak_lr * (
        0.1 + 0.45 * (1 + math.cos(math.pi * (step - 1 - warmup) / max(total_steps - warmup, 1))))
    m = 0.9 * m + 0.1 * grad
    v = 0.999 * v + 0.001 * grad * grad
    return param * (1 - lr * weight_decay) - lr * m / (v.sqrt() + 1e-8), m, v
