"""Nearly parallel pairs: every path of (G2)-(G4) against a float64 reference, in float32 and bf16 autocast.

The normalised Plücker vector of a pair at angle θ is ill-conditioned: any float32 computation of it
carries a relative error ~ epsilon / sin θ (the inputs' own rounding moves the plane that much). What a
path must not do is worse than that: the Lagrange identity's error grows as epsilon / sin^2 θ, and a fast
path that divides a noisy wedge by an accurate tiny norm is unbounded. The tolerances below say so:

    |g_path - g_ref64|_max <= min(C * epsilon / sin θ_min, 0.5) * scale_g

with ``scale_g = |W_plu|_op + |b|``, the largest |g| a unit pair feature can produce, sin θ_min the
smallest sine among the valid pairs (measured in float64), ``C = 16``, the cap 0.5 scale_g; bf16 autocast adds its own
epsilon for the matmul. Gradients: the same comparison with the bound's square (``/ sin^2 θ``), as the
derivative of a unit vector along a plane of angle θ scales with ``1 / sin θ`` once more.
"""

import math

import pytest
import torch

from gflow_lite.geometry import lagrange_norm_sq, plucker, plucker_norm
from gflow_lite.model import CausalGrassmannMixing, shift_back

SINES = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 0.0]
SCALES = [1e-3, 1e-1, 1.0, 1e2, 1e4, 1e6]
IMPLS = ["reference", "fast", "fused", "native"]
R, OFFSETS = 8, (1, 2)


def nearly_parallel(sin: float, scale: float, seed: int = 0, B: int = 2, T: int = 7) -> torch.Tensor:
    """float32 ``z [B, T, r]``: every token ``scale * rho_t * (u + sin * xi_t)``, rho_t in [0.5, 2]."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(B, 1, R, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=-1, keepdim=True)
    xi = torch.randn(B, T, R, generator=g, dtype=torch.float64) / math.sqrt(2 * R)
    rho = 0.5 + 1.5 * torch.rand(B, T, 1, generator=g, dtype=torch.float64)
    return (scale * rho * (u + sin * xi)).float()


def layer_for(seed: int = 0) -> CausalGrassmannMixing:
    """A layer whose output is (G2)-(G4)'s g of its input: ``W_red = I`` (d = r), ``b_red = 0`` (z = h
    exactly) and a closed gate (``W_gate = 0``, ``b_gate = -1e4``: α = 0 exactly, h̃ = g and dh = dz)."""
    torch.manual_seed(seed)
    layer = CausalGrassmannMixing(R, R, OFFSETS)
    with torch.no_grad():
        for p in layer.parameters():
            torch.nn.init.normal_(p, std=0.3)
        layer.W_red.weight.copy_(torch.eye(R))
        layer.W_red.bias.zero_()
        layer.W_gate.weight.zero_()
        layer.W_gate.bias.fill_(-1e4)
    return layer


def g_path(layer: CausalGrassmannMixing, impl: str, z: torch.Tensor) -> torch.Tensor:
    """(G2)-(G4) of ``impl`` on reduced states ``z``, through the whole layer (its public forward)."""
    layer.impl = impl
    return layer(z)


def min_sine(z: torch.Tensor) -> float:
    z = z.double()
    sines = [(plucker_norm(z, shift_back(z, d)) / (z.norm(dim=-1) * shift_back(z, d).norm(dim=-1)))[:, d:]
             for d in OFFSETS]
    return float(torch.cat([s.flatten() for s in sines]).min())


def scale_of(layer: CausalGrassmannMixing) -> float:
    with torch.no_grad():
        return float(torch.linalg.matrix_norm(layer.W_plu.weight.double(), ord=2) + layer.W_plu.bias.norm())


def bound(eps_dtype: float, sin: float, scale: float, power: int = 1, cap: float = 0.5) -> float:
    return min(16 * eps_dtype / max(sin, 1e-300) ** power, cap) * scale + 1e-6 * scale


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("scale", SCALES)
def test_outputs_near_parallel_float32(impl, scale):
    layer = layer_for()
    ref64 = layer_for().double()
    s = scale_of(layer)
    for sin in SINES:
        z = nearly_parallel(sin, scale)
        with torch.no_grad():
            want = g_path(ref64, "reference", z.double())
            got = g_path(layer, impl, z).double()
        err = float((got - want).abs().max())
        tol = bound(torch.finfo(torch.float32).eps, min_sine(z), s)
        assert err <= tol, f"{impl}: sin θ={sin:g}, |z|~{scale:g}: error {err:.3g} > {tol:.3g}"
        assert float(got.abs().max()) <= 1.01 * s, f"{impl}: |g| exceeds what a unit pair feature gives"


@pytest.mark.parametrize("impl", IMPLS)
def test_outputs_near_parallel_bf16_autocast(impl):
    layer = layer_for()
    ref64 = layer_for().double()
    s = scale_of(layer)
    for scale in (1e-2, 1.0, 1e4):
        for sin in SINES:
            z = nearly_parallel(sin, scale)
            with torch.no_grad():
                want = g_path(ref64, "reference", z.double())
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    got = g_path(layer, impl, z).double()
            err = float((got - want).abs().max())
            # bf16 rounds the projection's inputs (epsilon 2^-8), the geometry stays in float32
            tol = bound(torch.finfo(torch.float32).eps, min_sine(z), s) + 4 * 2.0 ** -8 * s
            assert err <= tol, f"{impl}: sin θ={sin:g}, |z|~{scale:g}: error {err:.3g} > {tol:.3g}"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("scale", [1e-1, 1.0, 1e3])
def test_gradients_near_parallel_float32(impl, scale):
    layer = layer_for()
    ref64 = layer_for().double()
    for sin in SINES:
        z = nearly_parallel(sin, scale)
        weight = torch.randn(z.shape[0], z.shape[1], R, generator=torch.Generator().manual_seed(1))
        z32 = z.clone().requires_grad_(True)
        z64 = z.double().requires_grad_(True)
        (g_path(layer, impl, z32) * weight).sum().backward()
        (g_path(ref64, "reference", z64) * weight.double()).sum().backward()
        got, want = z32.grad.double(), z64.grad
        sin_min = min_sine(z)
        # the gradient of a unit bivector's direction scales like 1 / (|z| sin θ)
        scale_grad = scale_of(layer) * float(weight.abs().max()) * 2 / (scale * max(sin_min, 1e-300))
        err = float((got - want).abs().max())
        tol = bound(torch.finfo(torch.float32).eps, sin_min, scale_grad, power=1, cap=4.0)
        assert torch.isfinite(got).all(), f"{impl}: non-finite gradient at sin θ={sin:g}"
        assert err <= tol, f"{impl}: sin θ={sin:g}, |z|~{scale:g}: gradient error {err:.3g} > {tol:.3g}"
        ratio = float(got.norm() / want.norm().clamp_min(1e-300))
        if sin_min > 1e-5:
            assert 0.5 < ratio < 2.0, f"{impl}: gradient norm off by {ratio:.3g}x at sin θ={sin:g}"


def test_the_issue_example_one_wide_layer():
    """The reported case: d 256, r 32, offset 1, N(0, 0.02) weights, h_1 = h_0 + δ noise (was 8.3 at δ=1e-4)."""
    torch.manual_seed(0)
    layer = CausalGrassmannMixing(256, 32, (1,))
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.02)
    ref64 = CausalGrassmannMixing(256, 32, (1,), impl="reference").double()
    ref64.load_state_dict(layer.state_dict())
    h0 = torch.randn(1, 1, 256)
    for delta in (1e-2, 1e-3, 1e-4, 1e-5, 0.0):
        h = torch.cat([h0, h0 + delta * torch.randn(1, 1, 256)], dim=1)
        want = ref64(h.double())
        for impl in IMPLS:
            layer.impl = impl
            err = float((layer(h).double() - want).detach().abs().max())
            assert err < 1e-3, f"{impl}: δ={delta:g}: error {err:.3g} on outputs of size ~{float(want.detach().abs().max()):.2g}"


def test_plucker_norm_is_stable_where_the_lagrange_identity_cancels():
    u = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    for sin in (1e-2, 1e-4, 1e-6):
        v = u + sin * torch.tensor([[0.0, 1.0, -1.0, 0.5]], dtype=torch.float64)
        exact = plucker(u, v).norm(dim=-1)
        stable = plucker_norm(u.float(), v.float()).double()
        lagrange = lagrange_norm_sq(u.float(), v.float()).sqrt().double()
        assert float((stable - exact).abs() / exact) < 64 * 2.0 ** -23 / sin
        if sin <= 1e-4:  # the identity is off by far more than that (often exactly 0 or 100% off)
            assert float((lagrange - exact).abs() / exact) > 0.01
    big, step = torch.full((1, 4), 1e10), torch.tensor([[0.0, 1e9, 0.0, 0.0]])
    exact = plucker(big.double(), (big + step).double()).norm(dim=-1)
    assert float((plucker_norm(big, big + step).double() - exact).abs() / exact) < 1e-5  # finite, accurate
    assert not torch.isfinite(lagrange_norm_sq(big, big + step)).all()  # the identity overflows float32


@pytest.mark.parametrize("scale", [1e-2, 1.0, 1e4])
def test_snli_window_mixing_near_parallel(scale):
    """The SNLI head's windowed mixing (its own fast identity over a validity mask), same bound."""
    from gflow_lite.nli.window_mixing import WindowGrassmannMixing

    torch.manual_seed(0)
    mix = WindowGrassmannMixing(16, 2 * R, groups=2)
    for p in mix.parameters():
        torch.nn.init.normal_(p, std=0.3)
    ref64 = WindowGrassmannMixing(16, 2 * R, groups=2, impl="reference").double()
    ref64.load_state_dict(mix.state_dict())
    L = 7
    valid = ~torch.eye(L, dtype=torch.bool).expand(2, L, L)
    with torch.no_grad():
        s = float(torch.linalg.matrix_norm(mix.W_plu.weight.double(), ord=2) + mix.W_plu.bias.norm()) * 2
    for sin in SINES:
        z = torch.stack([nearly_parallel(sin, scale, seed=k) for k in range(2)], dim=1)  # [B, G, L, r]
        want = ref64.g_reference(z.double(), valid)
        got = mix.g_fast(z, valid).double()
        err = float((got - want).detach().abs().max())
        tol = bound(torch.finfo(torch.float32).eps, min(min_sine(z[:, k]) for k in range(2)), s)
        assert err <= tol, f"sin θ={sin:g}, |z|~{scale:g}: error {err:.3g} > {tol:.3g}"


# ------------------------------------------------------------------ the numerics contract (issue 23)
def scaled_layers(r: int, z_size: float, sin=None, seed: int = 0, d: int = 16):
    """(float32 layer, float64 reference, h float32, output weights) with mean |z| = ``z_size``; tokens
    random, or nearly parallel at angle ~``sin``. As scripts/numerics_contract.py."""
    g = torch.Generator().manual_seed(seed)
    if sin is None:
        h = torch.randn(2, 9, d, generator=g, dtype=torch.float64)
    else:
        u = torch.randn(2, 1, d, generator=g, dtype=torch.float64)
        xi = torch.randn(2, 9, d, generator=g, dtype=torch.float64) / math.sqrt(2 * d)
        h = (0.5 + 1.5 * torch.rand(2, 9, 1, generator=g, dtype=torch.float64)) * (u / u.norm() + sin * xi)
    h = h.float()
    torch.manual_seed(seed)
    layer = CausalGrassmannMixing(d, r, OFFSETS)
    with torch.no_grad():
        for p in layer.parameters():
            torch.nn.init.normal_(p, std=0.3)
        layer.W_red.bias.zero_()
        layer.W_red.weight.mul_(z_size / float(layer.W_red(h).norm(dim=-1).mean()))
    ref = CausalGrassmannMixing(d, r, OFFSETS, impl="reference").double()
    ref.load_state_dict(layer.state_dict())
    return layer, ref, h, torch.randn(h.shape, generator=torch.Generator().manual_seed(1))


def grads_of(layer, h, w, autocast=False):
    h = h.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = layer(h)
    names = ["input"] + [n for n, _ in layer.named_parameters()]
    return y.detach().double(), dict(zip(names, (g.double() for g in torch.autograd.grad(
        (y.float() * w.to(y.device)).sum() if autocast else (y * w.to(y.dtype)).sum(), [h, *layer.parameters()]))))


def rel_err(x, ref):
    return float((x - ref).abs().max() / ref.abs().max())


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("z_size", [1e-3, 1.0, 1e4, 1.3e7, 3e7, 1e8])
def test_float32_gradients_hold_at_every_scale_of_z(impl, z_size):
    """No underflow in any backward (the kernels' once formed a / n^3): every gradient within 1e-5 of the
    float64 reference, relative to its largest entry, for |z| from 1e-3 to 1e8 (the plain paths: ~3e-7)."""
    layer, ref, h, w = scaled_layers(8, z_size)
    y64, g64 = grads_of(ref, h.double(), w.double())
    layer.impl = impl
    y, g = grads_of(layer, h, w)
    assert rel_err(y, y64) < 1e-5
    for name in g:
        assert rel_err(g[name], g64[name]) < 1e-5, f"{impl}, |z| ~ {z_size:g}: {name} {rel_err(g[name], g64[name]):.3g}"


@pytest.mark.parametrize("impl", ["fused", "native"])
@pytest.mark.parametrize("sin", [1e-1, 1e-2, 1e-3, 6.4e-5])  # every n = |z| |z'| sin θ above eps = 1e-6
def test_r2_normalised_gradient_through_z_is_exactly_zero(impl, sin):
    """r = 2 with (G3): each normalised wedge is ±1 above the floor, so the gradient through z (that of
    W_red and b_red) is exactly 0; the other gradients match the float64 reference. (Pairs under the floor,
    sin θ -> 0, are linear in z: next test.)"""
    layer, ref, h, w = scaled_layers(2, 1.0, sin)
    layer.impl = impl
    _, g = grads_of(layer, h, w)
    assert float(g["W_red.weight"].abs().max()) == 0.0 and float(g["W_red.bias"].abs().max()) == 0.0
    assert float(g["W_plu.weight"].abs().max()) > 0  # the layer does use the pairs
    y64, g64 = grads_of(ref, h.double(), w.double())
    for name in ("W_plu.weight", "W_plu.bias", "W_gate.weight", "W_gate.bias"):
        assert rel_err(g[name], g64[name]) < 1e-4, f"{impl}: {name}"


def test_r2_floored_pairs_still_carry_their_gradient():
    """Under the floor (n < eps) the normalised wedge is linear, z ∧ p / eps: its gradient through z is not
    0, and the kernels give it (float64, against the reference)."""
    layer, ref, h, w = scaled_layers(2, 1e-4, 0.3)  # n ~ |z|^2 sin θ ~ 3e-9 < eps = 1e-6: every pair floored
    for impl in ("fused", "native"):
        fu = CausalGrassmannMixing(16, 2, OFFSETS, impl=impl).double()
        fu.load_state_dict(ref.state_dict())
        _, g = grads_of(fu, h.double(), w.double())
        _, g64 = grads_of(ref, h.double(), w.double())
        assert float(g64["W_red.weight"].abs().max()) > 0
        for name in g:
            torch.testing.assert_close(g[name], g64[name], rtol=1e-9, atol=1e-12, msg=lambda m: f"{impl} {name}: {m}")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("r,sin", [(8, None), (3, 1e-4), (2, 1e-4)])
def test_every_impl_computes_in_float32_under_bf16_autocast(impl, r, sin):
    """One numerics rule: under bf16 autocast every implementation computes the layer with autocast off, in
    float32: outputs and gradients equal the float32 run's (to float32 rounding)."""
    layer, _, h, w = scaled_layers(r, 1.0, sin)
    layer.impl = impl
    y32, g32 = grads_of(layer, h, w)
    y, g = grads_of(layer, h, w, autocast=True)
    assert rel_err(y, y32) < 1e-6
    for name in g:
        if float(g32[name].abs().max()) > 0:
            assert rel_err(g[name], g32[name]) < 1e-6, f"{impl}: {name}"


@pytest.mark.parametrize("impl", ["reference", "fast"])
@pytest.mark.parametrize("sin", [1e-1, 1e-2, 1e-3, 6.4e-5])
def test_plain_paths_r2_gradient_through_z_is_zero_to_rounding(impl, sin):
    """The kernels give exactly 0 (a special case); the plain paths' chain rule gives 0 up to the rounding
    of p̂, at most 16 epsilon / sin θ of the largest gradient (for `fast` thanks to the second Gram-Schmidt
    pass of `geometry.wedge_height`: with one pass it was of the order of the largest gradient)."""
    layer, _, h, w = scaled_layers(2, 1.0, sin)
    layer.impl = impl
    _, g = grads_of(layer, h, w)
    largest = max(float(x.abs().max()) for n, x in g.items() if n != "input")
    through_z = max(float(g["W_red.weight"].abs().max()), float(g["W_red.bias"].abs().max()))
    assert through_z <= 16 * 2.0 ** -23 / (sin / 4) * largest, f"{impl}: {through_z:.3g} of {largest:.3g}"
