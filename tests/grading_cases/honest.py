"""Honest solutions of chapters 1-3, written independently of book/solutions (the grader must give them
full marks). One section per chapter: `# chapter NN_name` starts it."""

# chapter 01_geometry
import torch


def _pairs_index(r):
    rows = torch.arange(r).repeat_interleave(r)
    cols = torch.arange(r).repeat(r)
    keep = rows < cols
    return rows[keep], cols[keep]


@exercise
def plucker_coordinates(u, v):
    a, b = _pairs_index(u.shape[-1])
    M = u.unsqueeze(-1) * v.unsqueeze(-2)
    return M[..., a, b] - M[..., b, a]


@exercise
def lagrange_norm(u, v):
    nu, nv = torch.linalg.vector_norm(u, dim=-1), torch.linalg.vector_norm(v, dim=-1)
    cos = torch.where(nu * nv > 0, (u * v).sum(-1) / (nu * nv).clamp_min(1e-300), torch.zeros_like(nu))
    return nu * nv * torch.sqrt(torch.clamp(1 - cos ** 2, min=0))


@exercise
def on_grassmannian(p, r, tol):
    if r < 4:
        return torch.ones(p.shape[:-1], dtype=torch.bool)
    a, b = _pairs_index(r)
    A = torch.zeros(*p.shape[:-1], r, r, dtype=p.dtype)
    A[..., a, b] = p
    A[..., b, a] = -p
    good = torch.ones(p.shape[:-1], dtype=torch.bool)
    for i in range(r):
        for j in range(i + 1, r):
            for k in range(j + 1, r):
                for l in range(k + 1, r):
                    pf = A[..., i, j] * A[..., k, l] - A[..., i, k] * A[..., j, l] + A[..., i, l] * A[..., j, k]
                    good = good & (pf.abs() <= tol)
    return good


@exercise
def causal_attention(q, k, v):
    L = q.shape[-2]
    s = torch.einsum("...td,...sd->...ts", q, k) / q.shape[-1] ** 0.5
    allowed = torch.tril(torch.ones(L, L, dtype=torch.bool))
    s = torch.where(allowed, s, torch.full_like(s, -1e300))
    s = s - s.max(dim=-1, keepdim=True).values
    e = torch.exp(s) * allowed
    return torch.einsum("...ts,...sd->...td", e / e.sum(-1, keepdim=True), v)


@exercise
def plucker_features(z, delta, eps):
    back = torch.cat([torch.zeros_like(z[:, :delta]), z[:, : max(z.shape[1] - delta, 0)]], dim=1)[:, : z.shape[1]]
    p = plucker_coordinates(z, back)
    n = torch.linalg.vector_norm(p, dim=-1, keepdim=True)
    return p / torch.maximum(n, torch.full_like(n, eps))

# chapter 02_layer
import torch


@exercise
def fast_partner(z, offsets, eps):
    T = z.shape[1]
    pos = torch.arange(T)
    count = torch.zeros(T, dtype=z.dtype)
    for d in offsets:
        count = count + (pos >= d).to(z.dtype)
    w = torch.zeros_like(z)
    for d in offsets:
        prev = torch.roll(z, shifts=d, dims=1) * (pos >= d).to(z.dtype)[None, :, None]
        area2 = (z * z).sum(-1) * (prev * prev).sum(-1) - ((z * prev).sum(-1)) ** 2
        area = torch.sqrt(torch.relu(area2))
        weight = torch.where(count > 0, (pos >= d).to(z.dtype) / torch.where(count > 0, count, torch.ones_like(count)),
                             torch.zeros_like(count))
        w = w + (weight / torch.maximum(area, torch.full_like(area, eps)))[..., None] * prev
    return w


@exercise
def dependency_matrix(mixer, T, d):
    x = torch.randn(1, T, d, dtype=torch.float64)
    y = mixer(x)
    cols = []
    for s in range(T):
        bumped = x.clone()
        bumped[0, s] = bumped[0, s] + 0.5
        cols.append(((mixer(bumped) - y)[0] != 0).any(-1))
    return torch.stack(cols, dim=1)


@exercise
def grassmann_layer(h, weights, offsets, eps):
    z = torch.nn.functional.linear(h, weights["W_red"], weights["b_red"])
    w = fast_partner(z, offsets, eps)
    r = z.shape[-1]
    rows, cols = torch.triu_indices(r, r, 1)
    wedge = z[..., rows] * w[..., cols] - z[..., cols] * w[..., rows]
    g = torch.nn.functional.linear(wedge, weights["W_plu"], weights["b_plu"])
    g = g * (torch.arange(h.shape[1]) >= min(offsets)).to(h.dtype)[:, None]
    a = torch.sigmoid(torch.nn.functional.linear(torch.cat([h, g], -1), weights["W_gate"], weights["b_gate"]))
    return h * a + g * (1 - a)

# chapter 03_model
import math
import torch


@exercise
def receptive_field(offsets, n_layers, offset_mode):
    total = 0
    for layer in range(n_layers):
        total += offsets[layer] if offset_mode == "per_layer" else max(offsets)
    return total


@exercise
def grassmann_param_count(vocab_size, block_size, d_model, d_ff, r, n_layers):
    def lin(a, b):
        return a * b + b
    P = r * (r - 1) // 2
    per_layer = lin(d_model, r) + lin(P, d_model) + lin(2 * d_model, d_model) + lin(d_model, d_ff) \
        + lin(d_ff, d_model) + 4 * d_model
    return (vocab_size + block_size) * d_model + n_layers * per_layer + 2 * d_model


def _norm(x, w, b, eps):
    mu = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    return (x - mu) * torch.rsqrt(var + eps) * w + b


@exercise
def causal_block(h, mix, params):
    x = _norm(mix(h), params["ln1_weight"], params["ln1_bias"], params["eps"])
    f = x @ params["fc1_weight"].T + params["fc1_bias"]
    f = f * 0.5 * (1.0 + torch.erf(f / math.sqrt(2.0)))
    y = x + f @ params["fc2_weight"].T + params["fc2_bias"]
    return _norm(y, params["ln2_weight"], params["ln2_bias"], params["eps"])


@exercise
def scheduled_adamw_step(param, grad, m, v, step, total_steps, peak_lr, warmup, weight_decay):
    if step <= warmup:
        rate = peak_lr * step / warmup
    else:
        frac = (step - 1 - warmup) / max(1, total_steps - warmup)  # the schedule counts from 0
        rate = peak_lr / 10 + (peak_lr - peak_lr / 10) * (1 + math.cos(math.pi * frac)) / 2
    m2 = 0.9 * m + 0.1 * grad
    v2 = 0.999 * v + 0.001 * grad ** 2
    mh = m2 / (1 - 0.9 ** step)
    vh = v2 / (1 - 0.999 ** step)
    return param - rate * weight_decay * param - rate * mh / (torch.sqrt(vh) + 1e-8), m2, v2
