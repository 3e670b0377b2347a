"""The native layer (``impl="native"``, gflow_lite/native.py and csrc/grassmann_cpu.cpp) against the
paper-order reference and the fused ATen kernel: outputs and gradients in float64 (tight) and float32,
across token blocks and batch rows, with one or two threads, and its fallback when the C++ kernels
cannot be built. Streaming through a cache and scratch release: tests/test_fused.py; causality, gradcheck, degenerate pairs
and autocast: the impl parametrisations of tests/test_layers.py; FLOPs and saved bytes: tests/test_flops.py."""

import warnings

import pytest
import torch

import gflow_lite.kernels.native as native
from gflow_lite.kernels.fused import fused_grassmann_layer
from gflow_lite.model import PAPER_OFFSETS, CausalGrassmannMixing, GrassmannLM, LMConfig

pytestmark = pytest.mark.skipif(not native.available(), reason=f"C++ kernels not built: {native.build_error()}")


def layers(impls, d=12, r=6, offsets=(1, 2, 4, 7), dtype=torch.float64, seed=0, **kw):
    """Layers of the given impls with the same (randomised, non-zero-bias) parameters."""
    torch.manual_seed(seed)
    first = CausalGrassmannMixing(d, r, offsets, impl=impls[0], **kw)
    for p in first.parameters():
        torch.nn.init.normal_(p, std=0.3)
    out = [first]
    for impl in impls[1:]:
        other = CausalGrassmannMixing(d, r, offsets, impl=impl, **kw)
        other.load_state_dict(first.state_dict())
        out.append(other)
    return [m.to(dtype) for m in out]


def outputs_and_grads(layer, h, w):
    h = h.detach().requires_grad_(True)
    y = layer(h)
    return [y.detach(), *torch.autograd.grad((y * w).sum(), [h, *layer.parameters()])]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
@pytest.mark.parametrize("aggregate", ["mean", "learned"])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("B,T", [(1, 5), (2, 150)])  # 150 tokens: three blocks of the C++ loops per row
def test_native_equals_reference_and_fused(dtype, tol, aggregate, normalize, B, T):
    ref, fu, na = layers(["reference", "fused", "native"], dtype=dtype, aggregate=aggregate, normalize=normalize)
    h, w = torch.randn(B, T, 12, dtype=dtype), torch.randn(B, T, 12, dtype=dtype)
    want, fused_, got = (outputs_and_grads(m, h, w) for m in (ref, fu, na))
    names = ["output", "input"] + [n for n, _ in ref.named_parameters()]
    for name, a, b, c in zip(names, got, want, fused_):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=lambda m: f"{name} vs reference: {m}")
        torch.testing.assert_close(a, c, rtol=tol, atol=tol, msg=lambda m: f"{name} vs fused: {m}")


@pytest.mark.parametrize("r", [2, 3, 32])
def test_widths_and_the_paper_offsets(r):
    ref, na = layers(["reference", "native"], d=20, r=r, offsets=PAPER_OFFSETS)
    h, w = torch.randn(1, 40, 20, dtype=torch.float64), torch.randn(1, 40, 20, dtype=torch.float64)
    for a, b in zip(outputs_and_grads(na, h, w), outputs_and_grads(ref, h, w)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_two_threads_agree_with_one():
    (na,) = layers(["native"], dtype=torch.float32)
    h, w = torch.randn(3, 200, 12), torch.randn(3, 200, 12)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = outputs_and_grads(na, h, w)
        torch.set_num_threads(2)
        two = outputs_and_grads(na, h, w)
    finally:
        torch.set_num_threads(before)
    for name, a, b in zip(["output", "input", "W_red", "b_red", "W_plu", "b_plu", "W_gate", "b_gate"], one, two):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=lambda m: f"{name}: {m}")  # no races


def test_a_model_trains_the_same_with_native_and_fast():
    cfg = LMConfig(vocab_size=50, block_size=32, d_model=16, n_layers=2, d_ff=32, r=6, offsets=(1, 2, 4),
                   dropout=0.0)
    torch.manual_seed(0)
    fast = GrassmannLM(cfg).double()
    na = GrassmannLM(cfg).double()
    na.load_state_dict(fast.state_dict())
    na.set_impl("native")
    idx = torch.randint(0, 50, (2, 32))
    results = []
    for model in (fast, na):
        _, loss = model(idx, targets=idx)
        results.append([loss.detach(), *torch.autograd.grad(loss, list(model.parameters()))])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_an_unbuildable_extension_falls_back_to_fused_with_one_warning(monkeypatch):
    (na,) = layers(["native"])
    h = torch.randn(1, 11, 12, dtype=torch.float64)
    with torch.no_grad():
        want = na(h)

    def no_compiler():
        raise RuntimeError("Error building extension\nc++: error: command not found")

    monkeypatch.setattr(native, "_build", no_compiler)
    monkeypatch.setattr(native, "_MODULE", None)
    monkeypatch.setattr(native, "_ERROR", None)
    monkeypatch.setattr(native, "_TRIED", False)
    with pytest.warns(RuntimeWarning, match="c\\+\\+: error: command not found.*ATen kernels"):
        assert not native.available()
    assert "command not found" in native.build_error()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        with torch.no_grad():
            got = na(h)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    args = (torch.randn(1, 5, 12, dtype=torch.float64), None, (1, 2), torch.full((5, 2), 0.5, dtype=torch.float64))
    weights = [p.detach() for p in na.parameters()]
    y1, z1 = native.native_grassmann_layer(*args, *weights, True, 1e-6)
    y2, z2 = fused_grassmann_layer(*args, *weights, True, 1e-6)
    assert torch.equal(y1, y2) and torch.equal(z1, z2)


def test_the_build_is_keyed_by_source_torch_and_cpu():
    assert native.SOURCE.is_file() and native.SOURCE.suffix == ".cpp"
    from gflow_lite.provenance import cpu_info

    assert cpu_info()["flags"]  # part of the extension's name: a -march=native build is never reused elsewhere
