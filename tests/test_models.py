"""Both language models: causality, bad input, overfitting, streaming, parameter audit."""

import pytest
import torch

from gflow_lite import GrassmannLM, LMConfig, TransformerLM
from gflow_lite.audit import format_audit, paper_audit
from gflow_lite.generate import check_tokens
from gflow_lite.options import check_lm_config

V = 50


def tiny(**kw) -> LMConfig:
    base = dict(vocab_size=V, block_size=24, d_model=16, n_layers=2, d_ff=32, r=4, n_heads=2,
                offsets=(1, 3), dropout=0.0)
    base.update(kw)
    return LMConfig(**base)


VARIANTS = [
    (arch, mode, norm)
    for arch in ("grassmann", "transformer")
    for mode in ("all", "per_layer")
    for norm in ("post", "pre")
    if not (arch == "transformer" and mode == "per_layer")
]


def build(arch, **kw):
    return (GrassmannLM if arch == "grassmann" else TransformerLM)(tiny(**kw)).eval()


@pytest.mark.parametrize("arch,mode,norm", VARIANTS)
def test_causal_by_perturbation(arch, mode, norm):
    model = build(arch, offset_mode=mode, norm=norm)
    idx = torch.randint(0, V, (2, 24))
    logits = model(idx)
    for s in (1, 7, 23):
        idx2 = idx.clone()
        idx2[:, s:] = (idx2[:, s:] + 1 + torch.randint(0, V - 1, idx2[:, s:].shape)) % V
        assert torch.equal(model(idx2)[:, :s], logits[:, :s]), f"logits before {s} changed"


@pytest.mark.parametrize("arch,mode,norm", VARIANTS)
def test_jacobian_is_lower_triangular(arch, mode, norm):
    model = build(arch, offset_mode=mode, norm=norm)
    idx = torch.randint(0, V, (1, 12))
    leaf = {}

    def hook(_module, _inp, out):
        leaf["h"] = out.detach().requires_grad_(True)
        return leaf["h"]

    handle = model.tok_emb.register_forward_hook(hook)
    try:
        for t in (0, 5, 10):
            logits = model(idx)
            (g,) = torch.autograd.grad(logits[0, t].sum(), leaf["h"])
            assert torch.count_nonzero(g[0, t + 1 :]) == 0, f"output {t} depends on a later input"
            assert torch.count_nonzero(g[0, t]) > 0
    finally:
        handle.remove()


@pytest.mark.parametrize("arch", ["grassmann", "transformer"])
def test_tiny_model_overfits_a_fixed_batch(arch):
    torch.manual_seed(0)
    model = (GrassmannLM if arch == "grassmann" else TransformerLM)(tiny(d_model=32, d_ff=64, r=8,
                                                                         offsets=(1, 2)))
    tokens = torch.randint(0, V, (65,))  # a fixed batch of 64 input tokens: 4 rows of 16
    x, y = tokens[:-1].view(4, 16), tokens[1:].view(4, 16)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(250):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3, f"{arch} did not overfit 64 tokens: loss {loss.item():.3f}"


NONFINITE_VARIANTS = [("grassmann", {}), ("grassmann", dict(norm="pre")), ("transformer", {}),
                      ("transformer", dict(norm="pre")), ("transformer", dict(attn_window=3))]


def _poisoned(model, s, value):
    """The model with the token embedding at position ``s`` (batch row 0) replaced by ``value``."""
    def hook(_module, _inp, out):
        out = out.clone()
        out[0, s] = value
        return out
    return model.tok_emb.register_forward_hook(hook)


@pytest.mark.parametrize("arch,kw", NONFINITE_VARIANTS)
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_causal_for_non_finite_values(arch, kw, value):
    """A NaN or inf at position s reaches no output before s (bit for bit as without it); the output at s is
    not finite, and with full attention every later one too. Plain ``scaled_dot_product_attention`` fails this: 0 * NaN in its weights-times-
    values product put NaN at every position of the Transformer."""
    model = build(arch, **kw)
    idx = torch.randint(0, V, (2, 24))
    clean = model(idx)
    for s in (0, 5, 23):
        handle = _poisoned(model, s, value)
        try:
            out = model(idx)
        finally:
            handle.remove()
        assert torch.equal(out[0, :s], clean[0, :s]), f"a non-finite value at {s} changed an earlier output"
        assert not torch.isfinite(out[0, s]).all(), f"the output at {s} ignored its own non-finite input"
        if arch == "transformer" and not kw:  # full attention: every later output sees position s
            assert not torch.isfinite(out[0, s:]).all(-1).any(), f"an output after {s} ignored the value at {s}"
        assert torch.equal(out[1], clean[1]), "the other sequence of the batch changed"


@pytest.mark.parametrize("arch,kw", [("transformer", {}), ("transformer", dict(attn_window=3)), ("grassmann", {})])
def test_causal_for_non_finite_values_when_streaming(arch, kw):
    """The same with a cache: a NaN fed at step s leaves the earlier steps alone and poisons every later one
    (the cached keys keep it)."""
    model = build(arch, **kw)
    idx = torch.randint(0, V, (1, 12))
    cache = model.new_cache()
    outs = []
    for t in range(12):
        handle = _poisoned(model, 0, float("nan")) if t == 6 else None
        outs.append(model(idx[:, t : t + 1], cache=cache))
        if handle is not None:
            handle.remove()
    clean = model(idx)
    out = torch.cat(outs, 1)
    torch.testing.assert_close(out[:, :6], clean[:, :6], rtol=1e-5, atol=1e-5)
    assert not torch.isfinite(out[:, 6]).all()
    if arch == "transformer" and not kw:  # full attention: every later query sees the cached NaN key
        assert not torch.isfinite(out[:, 7:]).all(-1).any()


@pytest.mark.parametrize("part", ["q", "k", "v"])
def test_a_non_finite_query_poisons_only_its_own_row(part):
    """At one attention layer: a NaN in token s's query makes output s NaN and changes nothing else; a NaN in
    its key or value makes every output from s on NaN and changes nothing before s."""
    from gflow_lite.model import CausalSelfAttention

    torch.manual_seed(0)
    layer = CausalSelfAttention(16, 2)
    x = torch.randn(2, 9, 16)
    clean = layer(x)
    s, offset = 4, {"q": 0, "k": 16, "v": 32}[part]

    def hook(_module, _inp, out):
        out = out.clone()
        out[0, s, offset + 3] = float("nan")
        return out

    handle = layer.qkv.register_forward_hook(hook)
    try:
        out = layer(x)
    finally:
        handle.remove()
    poisoned = [s] if part == "q" else list(range(s, 9))
    for t in range(9):
        if t in poisoned:
            assert torch.isnan(out[0, t]).all(), (part, t)
        else:
            assert torch.equal(out[0, t], clean[0, t]), (part, t)
    assert torch.equal(out[1], clean[1])


@pytest.mark.parametrize("window", [0, 3])
def test_guarded_attention_equals_plain_attention_on_finite_inputs(window):
    """The guard changes no bit of the output and no bit of the gradients where every value is finite."""
    import torch.nn.functional as F
    from gflow_lite.controls import LocalSelfAttention
    from gflow_lite.model import CausalSelfAttention

    torch.manual_seed(0)
    layer = (LocalSelfAttention(16, 2, window=window) if window else CausalSelfAttention(16, 2)).double()
    x = torch.randn(2, 9, 16, dtype=torch.float64, requires_grad=True)

    def plain(x):
        q, k, v = (y.view(2, 9, 2, 8).transpose(1, 2) for y in layer.qkv(x).split(16, dim=2))
        mask = None if not window else torch.ones(9, 9, dtype=torch.bool).tril().triu(-window)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None)
        return layer.proj(y.transpose(1, 2).contiguous().view(2, 9, 16))

    ours, theirs = layer(x), plain(x)
    assert torch.equal(ours, theirs)
    g = torch.randn_like(ours)
    params = [x, *layer.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(torch.autograd.grad(ours, params, g),
                                                  torch.autograd.grad(theirs, params, g)))


@pytest.mark.parametrize("norm", ["post", "pre"])
@pytest.mark.parametrize("mix_residual", ["auto", "on", "off"])
def test_mix_residual_takes_the_pre_ln_switch_apart(norm, mix_residual):
    """For the Grassmann model ``norm="pre"`` is two changes (the norm moves, a residual appears around the
    mixer); ``mix_residual`` gives each alone. "auto" is the block's own: off after post-LN, on before."""
    block = build("grassmann", norm=norm, mix_residual=mix_residual).blocks[0]
    h = torch.randn(2, 8, 16)
    on = mix_residual == "on" or (mix_residual == "auto" and norm == "pre")
    if norm == "post":
        h_hat = block.ln1(h + block.mix(h)) if on else block.ln1(block.mix(h))
        expected = block.ln2(h_hat + block.ffn(h_hat))
    else:
        m = block.mix(block.ln1(h))
        x = h + m if on else m
        expected = x + block.ffn(block.ln2(x))
    assert torch.equal(block(h), expected)


@pytest.mark.parametrize("arch,mode", [("grassmann", "all"), ("grassmann", "per_layer"), ("transformer", "all")])
def test_cached_steps_equal_full_forward(arch, mode):
    model = build(arch, offset_mode=mode, offsets=(1, 3) if mode == "all" else (2, 3))
    idx = torch.randint(0, V, (2, 20))
    full = model(idx)
    cache = model.new_cache()
    steps = [model(idx[:, :6], cache=cache)] + [model(idx[:, t : t + 1], cache=cache) for t in range(6, 20)]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)


def test_grassmann_cache_is_constant_size_and_streams_past_block_size():
    model = build("grassmann", pos_emb="none", block_size=8)
    cache = model.new_cache()
    model(torch.randint(0, V, (1, 5)), cache=cache)
    size = cache.nbytes()
    for _ in range(30):
        model(torch.randint(0, V, (1, 1)), cache=cache)
    assert cache.nbytes() == size and cache.pos == 35
    out = model.generate(torch.randint(0, V, (1, 4)), max_new_tokens=20)
    assert out.shape == (1, 24)


def test_generate_with_learned_positions_falls_back_past_block_size():
    for arch in ("grassmann", "transformer"):
        model = build(arch, block_size=8)
        g = torch.Generator().manual_seed(0)
        a = model.generate(torch.zeros(1, 3, dtype=torch.long), 12, generator=g)
        g = torch.Generator().manual_seed(0)
        b = model.generate(torch.zeros(1, 3, dtype=torch.long), 12, use_cache=False, generator=g)
        assert torch.equal(a, b) and a.shape == (1, 15)


def test_reference_and_fast_models_agree():
    model = build("grassmann", offsets=(1, 2, 3))
    idx = torch.randint(0, V, (2, 24))
    fast = model(idx)
    ref = model.set_impl("reference")(idx)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(r=1), "r=1"),
        (dict(offsets=()), "empty"),
        (dict(offsets=(1, -2)), "positive integer"),
        (dict(offsets=(1, 2.0)), "positive integer"),
        (dict(offsets=(1, True)), "positive integer"),
        (dict(offset_mode="per_layer", offsets=(1, 2, 3)), "one offset per layer"),
        (dict(d_model=18, n_heads=4), "not divisible"),
        (dict(norm="sandwich"), "norm"),
        (dict(offset_mode="some"), "offset_mode"),
        (dict(dropout=1.5), "dropout"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_lm_config(tiny(**kwargs))  # where a user's settings arrive (CLI, TrainConfig, checkpoints)
    check_lm_config(tiny())  # and a good one passes


@pytest.mark.parametrize("arch", ["grassmann", "transformer"])
def test_bad_input(arch):
    model = build(arch)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 25, dtype=torch.long))
    # token ids are checked once, where they enter (a prompt, a dataset), not on every forward
    with pytest.raises(ValueError, match=r"token id 50 outside \[0, vocab_size=50\)"):
        check_tokens(torch.full((1, 4), 50), V)
    with pytest.raises(ValueError, match="token id -1"):
        check_tokens(torch.full((1, 4), -1), V)
    with pytest.raises(ValueError, match="integer token ids"):
        check_tokens(torch.zeros(1, 4), V)
    with pytest.raises(ValueError, match="shape"):
        check_tokens(torch.zeros(4, dtype=torch.long), V)
    with pytest.raises(ValueError, match=r"token id 50 outside \[0, vocab_size=50\)"):
        model.generate(torch.full((1, 4), 50), 2)  # the prompt is where ids enter generation
    check_tokens(torch.randint(0, V, (2, 4)), V)


def test_parameter_audit_against_paper():
    rows = {(r.model, r.n_layers, r.variant): r for r in paper_audit()}
    assert rows[("transformer", 6, "as described")].params == 12_585_472
    assert rows[("transformer", 12, "as described")].params == 17_324_032
    assert rows[("grassmann", 6, "as described")].params == 12_607_168
    assert rows[("grassmann", 12, "as described")].params == 17_367_424
    assert rows[("transformer", 6, "as described")].matches and rows[("transformer", 12, "as described")].matches
    assert not rows[("grassmann", 6, "as described")].matches
    assert rows[("grassmann", 6, "+ Linear(d, d) per layer")].params == 13_001_920
    assert rows[("grassmann", 12, "+ Linear(d, d) per layer")].params == 18_156_928
    assert all(r.matches for r in rows.values() if r.variant.startswith("+"))
    assert "65,792" in format_audit()


@pytest.mark.parametrize("arch,impl", [("grassmann", "fast"), ("grassmann", "reference"), ("grassmann", "fused"),
                                       ("grassmann", "native"), ("transformer", "fast")])
def test_no_host_sync_in_a_training_step(arch, impl):
    """After the first step, forward and backward read no tensor value back to Python (``.item()``, ``int(t)``, a mask check): on
    a GPU each would make the host wait for the device every step. ``aten._local_scalar_dense`` is the one
    operation every such read goes through."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Reads(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.seen.append(str(func))
            return func(*args, **(kwargs or {}))

    model = build(arch, impl=impl).train()
    idx, targets = torch.randint(0, V, (2, 24)), torch.randint(0, V, (2, 24))
    model(idx, targets)[1].backward()  # the first step may build what later steps reuse (a kernel's index maps)
    with Reads() as reads:
        _, loss = model(idx, targets)
        loss.backward()
    assert reads.seen and not [op for op in reads.seen if "_local_scalar_dense" in op]
    with Reads() as reads:  # the check can see a read: check_tokens makes one, once, where ids enter
        check_tokens(idx, V)
    assert any("_local_scalar_dense" in op for op in reads.seen)
