"""The fused layer (``impl="fused"``, gflow_lite/kernels/fused.py) against the paper-order reference:
outputs and gradients of every parameter and of the input, in float64 (tight) and float32, for both
aggregates, with and without (G3), in one or several token blocks, streaming through a cache (also
``impl="native"``), under bf16 autocast; its autograd node against gradcheck and against the equations
written in plain PyTorch."""

import pytest
import torch

import gflow_lite.kernels.fused as fused
from gflow_lite.kernels import release_scratch
from gflow_lite.model import CausalGrassmannMixing

OFFSETS = (1, 2, 4, 7)


def pair(aggregate="mean", normalize=True, r=6, d=12, dtype=torch.float64, seed=0, impl="fused"):
    """A reference layer and a fused one (or ``impl``) with the same (randomised, non-zero-bias) parameters."""
    torch.manual_seed(seed)
    ref = CausalGrassmannMixing(d, r, OFFSETS, impl="reference", aggregate=aggregate, normalize=normalize)
    for p in ref.parameters():
        torch.nn.init.normal_(p, std=0.3)
    fu = CausalGrassmannMixing(d, r, OFFSETS, impl=impl, aggregate=aggregate, normalize=normalize)
    fu.load_state_dict(ref.state_dict())
    return ref.to(dtype), fu.to(dtype)


def outputs_and_grads(layer, h, w):
    h = h.detach().requires_grad_(True)
    y = layer(h)
    grads = torch.autograd.grad((y * w).sum(), [h, *layer.parameters()])
    return y.detach(), grads


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
@pytest.mark.parametrize("aggregate", ["mean", "learned"])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("block", [256, 5, 1])
def test_fused_equals_reference(monkeypatch, dtype, tol, aggregate, normalize, block):
    monkeypatch.setattr(fused, "BLOCK_TOKENS", block)
    ref, fu = pair(aggregate, normalize, dtype=dtype)
    h = torch.randn(2, 13, 12, dtype=dtype)
    w = torch.randn(2, 13, 12, dtype=dtype)
    y_ref, g_ref = outputs_and_grads(ref, h, w)
    y_fu, g_fu = outputs_and_grads(fu, h, w)
    torch.testing.assert_close(y_fu, y_ref, rtol=tol, atol=tol)
    names = ["input"] + [n for n, _ in ref.named_parameters()]
    assert len(g_fu) == len(names)
    for name, a, b in zip(names, g_fu, g_ref):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("r", [2, 3, 8, 9])
def test_even_and_odd_r(r):
    ref, fu = pair(r=r, d=10)
    h, w = torch.randn(1, 9, 10, dtype=torch.float64), torch.randn(1, 9, 10, dtype=torch.float64)
    (y_ref, g_ref), (y_fu, g_fu) = outputs_and_grads(ref, h, w), outputs_and_grads(fu, h, w)
    torch.testing.assert_close(y_fu, y_ref, rtol=1e-10, atol=1e-10)
    for a, b in zip(g_fu, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("aggregate", ["mean", "learned"])
def test_gradcheck_float64(aggregate):
    _, fu = pair(aggregate)
    h = torch.randn(2, 9, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fu, (h,), eps=1e-6, atol=1e-6)


def test_gradcheck_of_the_layer_node():
    torch.manual_seed(1)
    dt = torch.float64
    h = torch.randn(2, 4, 7, dtype=dt, requires_grad=True)
    past = torch.randn(2, 2, 5, dtype=dt)
    shapes = [(5, 7), (5,), (7, 10), (7,), (7, 14), (7,)]  # W_red, b_red, W_plu, b_plu, W_gate, b_gate
    weights = [torch.randn(shape, dtype=dt, requires_grad=True) for shape in shapes]
    a4 = torch.rand(4, 3, dtype=dt).requires_grad_(True)
    for past_ in (None, past):
        for normalize in (True, False):
            assert torch.autograd.gradcheck(
                lambda *x: fused.fused_grassmann_layer(x[0], past_, (1, 2, 4), *x[1:], normalize, 1e-6)[0],
                (h, a4, *weights),
            )


def plain_layer(h, past, offsets, a, w_red, b_red, w_plu, b_plu, w_gate, b_gate, normalize, eps):
    """(G1)-(G6) in plain PyTorch, written here from the equations (paper order: a Plücker vector per
    offset, normalised, projected, averaged with the weights a; the gate; the blend)."""
    B, T, d = h.shape
    z = torch.nn.functional.linear(h, w_red, b_red)
    ctx = z if past is None else torch.cat([past, z], 1)
    i, j = torch.triu_indices(z.shape[-1], z.shape[-1], offset=1)
    g = 0.0
    for k, delta in enumerate(offsets):
        zp = torch.nn.functional.pad(ctx, (0, 0, delta, 0))[:, ctx.shape[1] - T:ctx.shape[1] - T + T]
        p = z[..., i] * zp[..., j] - z[..., j] * zp[..., i]
        if normalize:
            p = p / p.norm(dim=-1, keepdim=True).clamp_min(eps)
        g = g + a[:, k, None] * torch.nn.functional.linear(p, w_plu, b_plu)
    alpha = torch.sigmoid(torch.nn.functional.linear(torch.cat([h, g], -1), w_gate, b_gate))
    return alpha * h + (1 - alpha) * g, z


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])  # x max|x|
@pytest.mark.parametrize("with_past", [False, True])
@pytest.mark.parametrize("normalize", [True, False])
def test_layer_node_equals_the_plain_equations(dtype, tol, with_past, normalize):
    """The whole-layer node (G1)-(G6) against the equations in plain PyTorch: outputs, the returned z,
    and every gradient (input, a, all six weights); also its forward without autograd."""
    torch.manual_seed(3)
    B, T, d, r, offsets = 2, 9, 10, 5, (1, 2, 4)
    h = torch.randn(B, T, d, dtype=dtype)
    past = torch.randn(B, 3, r, dtype=dtype) if with_past else None
    a = torch.rand(T, len(offsets), dtype=dtype)
    a[0] = 0.0  # a row with no valid offset: g = 0 there
    shapes = [(r, d), (r,), (d, r * (r - 1) // 2), (d,), (d, 2 * d), (d,)]  # W_red, b_red, W_plu, ..., b_gate
    params = [torch.randn(shape, dtype=dtype) for shape in shapes]
    w = torch.randn(B, T, d, dtype=dtype)
    results = []
    for layer in (fused.fused_grassmann_layer, plain_layer):
        h_, a_ = h.clone().requires_grad_(True), a.clone().requires_grad_(True)
        ps = [x.clone().requires_grad_(True) for x in params]
        y, z = layer(h_, past, offsets, a_, *ps, normalize, 1e-6)
        if layer is fused.fused_grassmann_layer:
            assert not z.requires_grad
        results.append((y.detach(), z.detach(), torch.autograd.grad((y * w).sum(), [h_, a_, *ps])))
    (y1, z1, g1), (y2, z2, g2) = results

    def close(name, x1, x2):  # relative to the tensor's largest entry (unnormalised wedges reach ~100)
        err = float((x1 - x2).abs().max() / x2.abs().max())
        assert err <= tol, f"{name}: error {err:.3g} x max > {tol:g}"

    close("output", y1, y2)
    close("z", z1, z2)
    for name, x1, x2 in zip(["h", "a", "W_red", "b_red", "W_plu", "b_plu", "W_gate", "b_gate"], g1, g2):
        close(name, x1, x2)
    with torch.no_grad():
        y3, z3 = fused.fused_grassmann_layer(h, past, offsets, a, *params, normalize, 1e-6)
    torch.testing.assert_close(y3, y1, rtol=tol, atol=tol)
    torch.testing.assert_close(z3, z1, rtol=tol, atol=tol)


@pytest.mark.parametrize("impl", ["fused", "native"])
@pytest.mark.parametrize("chunks", [[13], [1] * 13, [3, 1, 6, 3], [8, 5], [70], [1] * 20 + [50], [64, 6]])
def test_streaming_with_a_cache_equals_the_whole_sequence(impl, chunks):
    """(64 tokens: one block of the native kernel's loops.)"""
    from gflow_lite.generate import MixCache

    ref, fu = pair(impl=impl)
    h = torch.randn(2, sum(chunks), 12, dtype=torch.float64)
    with torch.no_grad():
        whole = ref(h)
        cache, out, t = MixCache(), [], 0
        for n in chunks:
            out.append(fu(h[:, t:t + n], cache))
            t += n
    torch.testing.assert_close(torch.cat(out, 1), whole, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("impl", ["fused", "native"])
def test_streaming_gradient_flows_to_the_new_tokens_only(impl):
    from gflow_lite.generate import MixCache

    ref, fu = pair(impl=impl)
    h = torch.randn(1, 10, 12, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 4, 12, dtype=torch.float64)
    grads = []
    for layer in (ref, fu):
        cache = MixCache()
        with torch.no_grad():
            layer(h[:, :6], cache)
        y = layer(h[:, 6:], cache)
        grads.append(torch.autograd.grad((y * w).sum(), [h, *layer.parameters()]))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert grads[1][0][:, :6].abs().max() == 0


def test_bf16_autocast_is_finite_and_close():
    ref, fu = pair(dtype=torch.float32)
    h = torch.randn(2, 11, 12)
    w = torch.randn(2, 11, 12)
    with torch.no_grad():
        want = ref(h)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, grads = outputs_and_grads(fu, h, w)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    assert all(torch.isfinite(g).all() for g in grads)
    torch.testing.assert_close(y, want, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("impl", ["fused", "native"])
def test_no_grad_forward_matches_and_scratch_is_released(impl):
    _, fu = pair(dtype=torch.float32, impl=impl)
    h = torch.randn(2, 9, 12, requires_grad=True)
    with torch.no_grad():
        a = fu(h)
    torch.testing.assert_close(fu(h).detach(), a)
    fu(h).sum().backward()
    assert release_scratch() > 0 and release_scratch() == 0
