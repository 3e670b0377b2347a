"""The fused layer (``impl="fused"``, gflow_lite/fused.py) against the paper-order reference: outputs and
gradients of every parameter and of the input, in float64 (tight) and float32, for both aggregates, with
and without (G3), in one or several token blocks, streaming through a cache, under bf16 autocast, and
gradcheck of both autograd nodes."""

import pytest
import torch

import gflow_lite.fused as fused
from gflow_lite.model import CausalGrassmannMixing

OFFSETS = (1, 2, 4, 7)


def pair(aggregate="mean", normalize=True, r=6, d=12, dtype=torch.float64, seed=0):
    """A reference layer and a fused one with the same (randomised, non-zero-bias) parameters."""
    torch.manual_seed(seed)
    ref = CausalGrassmannMixing(d, r, OFFSETS, impl="reference", aggregate=aggregate, normalize=normalize)
    for p in ref.parameters():
        torch.nn.init.normal_(p, std=0.3)
    fu = CausalGrassmannMixing(d, r, OFFSETS, impl="fused", aggregate=aggregate, normalize=normalize)
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
    monkeypatch.setattr(fused, "FAST_BLOCK_TOKENS", block)
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


def test_gradcheck_of_each_node():
    torch.manual_seed(1)
    dt = torch.float64
    z = torch.randn(2, 6, 5, dtype=dt, requires_grad=True)
    a = torch.rand(6, 3, dtype=dt).requires_grad_(True)
    W, b = torch.randn(7, 10, dtype=dt, requires_grad=True), torch.randn(7, dtype=dt, requires_grad=True)
    zp = torch.randn(2, 6, 3, 5, dtype=dt, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *x: fused.fused_plucker_mix(*x, True, 1e-6), (z, zp, a, W, b))
    past = torch.randn(2, 2, 5, dtype=dt)
    assert torch.autograd.gradcheck(
        lambda z_, a_, W_, b_: fused.fused_plucker_mix_shifted(z_, past, (1, 2, 4), a_, W_, b_, True, 1e-6),
        (z, a, W, b),
    )
    h = torch.randn(2, 4, 7, dtype=dt, requires_grad=True)
    g = torch.randn(2, 4, 7, dtype=dt, requires_grad=True)
    Wg, bg = torch.randn(7, 14, dtype=dt, requires_grad=True), torch.randn(7, dtype=dt, requires_grad=True)
    assert torch.autograd.gradcheck(fused.fused_gate_blend, (h, g, Wg, bg))


def test_gate_blend_equals_the_plain_formula():
    torch.manual_seed(2)
    h, g = torch.randn(3, 5, 8, dtype=torch.float64), torch.randn(3, 5, 8, dtype=torch.float64)
    lin = torch.nn.Linear(16, 8).double()
    alpha = torch.sigmoid(lin(torch.cat([h, g], -1)))
    want = alpha * h + (1 - alpha) * g
    torch.testing.assert_close(fused.fused_gate_blend(h, g, lin.weight, lin.bias), want)


@pytest.mark.parametrize("chunks", [[13], [1] * 13, [3, 1, 6, 3], [8, 5]])
def test_streaming_with_a_cache_equals_the_whole_sequence(chunks):
    from gflow_lite.generate import MixCache

    ref, fu = pair()
    h = torch.randn(2, 13, 12, dtype=torch.float64)
    with torch.no_grad():
        whole = ref(h)
        cache, out, t = MixCache(), [], 0
        for n in chunks:
            out.append(fu(h[:, t:t + n], cache))
            t += n
    torch.testing.assert_close(torch.cat(out, 1), whole, rtol=1e-10, atol=1e-10)


def test_streaming_gradient_flows_to_the_new_tokens_only():
    from gflow_lite.generate import MixCache

    ref, fu = pair()
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


def test_no_grad_forward_matches_and_scratch_is_released():
    _, fu = pair(dtype=torch.float32)
    h = torch.randn(2, 9, 12, requires_grad=True)
    with torch.no_grad():
        a = fu(h)
    torch.testing.assert_close(fu(h).detach(), a)
    fu(h).sum().backward()
    assert fused.release_fast_scratch() > 0 and fused.release_fast_scratch() == 0
