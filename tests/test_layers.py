"""The Causal Grassmann layer: reference vs fast, causality, degenerate pairs, streaming."""

import pytest
import torch

from gflow_lite.geometry import normalize_plucker, plucker
from gflow_lite.model import LMConfig, CausalGrassmannMixing
from gflow_lite.generate import MixCache
from gflow_lite.analysis import layer_diagnostics


def make(offsets=(1, 2, 4), impl="fast", d=12, r=5, **kw):
    torch.manual_seed(1)
    layer = CausalGrassmannMixing(d, r, offsets, impl=impl, **kw)
    for p in layer.parameters():  # non-trivial biases and weights
        torch.nn.init.normal_(p, std=0.3)
    return layer


def naive_loop(layer: CausalGrassmannMixing, h: torch.Tensor) -> torch.Tensor:
    """A third implementation: an explicit loop over positions straight from the paper's equations."""
    B, T, _ = h.shape
    z = layer.W_red(h)
    out = torch.empty_like(h)
    for t in range(T):
        gs = []
        for delta in layer.offsets:
            if t - delta >= 0:
                p = plucker(z[:, t], z[:, t - delta])
                p = normalize_plucker(p, layer.eps) if layer.normalize else p
                gs.append(layer.W_plu(p))
        g = torch.stack(gs).mean(0) if gs else torch.zeros_like(h[:, t])
        alpha = torch.sigmoid(layer.W_gate(torch.cat([h[:, t], g], -1)))
        out[:, t] = alpha * h[:, t] + (1 - alpha) * g
    return out


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("impl", ["fast", "reference", "fused", "native"])
def test_matches_position_loop(impl, normalize):
    layer = make(impl=impl, normalize=normalize).double()
    h = torch.randn(2, 11, 12, dtype=torch.float64)
    torch.testing.assert_close(layer(h), naive_loop(layer, h), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("impl", ["fast", "fused", "native"])
@pytest.mark.parametrize("aggregate", ["mean", "learned"])
@pytest.mark.parametrize("normalize", [True, False])
def test_reference_and_fast_agree_outputs_and_gradients(impl, aggregate, normalize):
    ref = make(impl="reference", aggregate=aggregate, normalize=normalize)
    fast = make(impl=impl, aggregate=aggregate, normalize=normalize)
    fast.load_state_dict(ref.state_dict())
    h = torch.randn(3, 20, 12, requires_grad=True)
    y_ref, y_fast = ref(h), fast(h)
    torch.testing.assert_close(y_fast, y_ref, rtol=1e-5, atol=1e-5)
    w = torch.randn_like(y_ref)
    g_ref = torch.autograd.grad((y_ref * w).sum(), [h, *ref.parameters()])
    g_fast = torch.autograd.grad((y_fast * w).sum(), [h, *fast.parameters()])
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("impl", ["fast", "reference", "fused", "native"])
def test_gradcheck_float64(impl):
    layer = make(impl=impl, d=6, r=4, offsets=(1, 3), aggregate="learned").double()
    h = torch.randn(1, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: layer(x), (h,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("impl", ["fast", "reference", "fused", "native"])
def test_causal_by_perturbation_and_jacobian(impl):
    layer = make(impl=impl, offsets=(1, 2, 5))
    h = torch.randn(2, 14, 12)
    y = layer(h)
    for s in (0, 3, 9, 13):
        h2 = h.clone()
        h2[:, s:] = torch.randn_like(h2[:, s:])
        assert torch.equal(layer(h2)[:, :s], y[:, :s])
    jac = torch.autograd.functional.jacobian(lambda x: layer(x), h[:1])  # [1,T,d,1,T,d]
    j = jac[0, :, :, 0].abs().sum(dim=(1, 3))  # [t_out, t_in]
    assert torch.count_nonzero(torch.triu(j, diagonal=1)) == 0
    assert torch.count_nonzero(torch.diagonal(j)) == 14  # each position depends on itself


def test_first_positions_have_no_partner_and_g_is_zero():
    layer = make(offsets=(3, 5))
    d = layer_diagnostics(layer, torch.randn(1, 8, 12))
    assert torch.count_nonzero(d["g"][:, :3]) == 0
    assert d["valid"][:3].any() == False  # noqa: E712
    assert d["valid"][5:].all()


@pytest.mark.parametrize("impl", ["fast", "reference", "fused", "native"])
@pytest.mark.parametrize("autocast", [False, True])
def test_degenerate_pairs_are_finite(impl, autocast):
    layer = make(impl=impl, offsets=(1, 2))
    with torch.no_grad():
        layer.W_red.bias.zero_()
    h = torch.randn(2, 9, 12)
    h[:, 2] = 0.0  # zero vector -> z = 0
    h[:, 5] = h[:, 4] * 3  # parallel z
    h[:, 6] = h[:, 4]  # identical
    h.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = layer(h)
        loss = y.float().square().sum()
    loss.backward()
    assert torch.isfinite(y).all() and torch.isfinite(h.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_gate_is_convex_blend():
    layer = make()
    d = layer_diagnostics(layer, torch.randn(2, 7, 12))
    assert ((d["alpha"] > 0) & (d["alpha"] < 1)).all()


@pytest.mark.parametrize("impl", ["fast", "reference", "fused", "native"])
def test_streaming_equals_full_forward(impl):
    layer = make(impl=impl, offsets=(1, 2, 4)).eval()
    h = torch.randn(2, 15, 12)
    full = layer(h)
    cache = MixCache()
    chunks = [layer(h[:, :5], cache)] + [layer(h[:, t : t + 1], cache) for t in range(5, 15)]
    torch.testing.assert_close(torch.cat(chunks, 1), full, rtol=1e-5, atol=1e-6)
    assert cache.z.shape[1] == 4 and cache.pos == 15


def test_bad_arguments():
    """The layer only asserts; a user's settings are checked by `check_lm_config` with a clear message."""
    from gflow_lite.options import check_lm_config

    for kwargs, msg in [
        (dict(r=1), "r=1"),
        (dict(offsets=()), "empty"),
        (dict(offsets=(1, 0)), "positive integer"),
        (dict(offsets=(1.5,)), "positive integer"),
        (dict(aggregate="max"), "aggregate"),
        (dict(impl="cuda"), "impl"),
    ]:
        with pytest.raises(ValueError, match=msg):
            check_lm_config(LMConfig(**kwargs))
    with pytest.raises(AssertionError):
        CausalGrassmannMixing(8, 1, (1,))
    with pytest.raises(AssertionError, match="unknown impl"):
        CausalGrassmannMixing(8, 4, (1,), impl="cuda")