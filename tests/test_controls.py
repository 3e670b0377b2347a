"""The controls of "is it the geometry?": the pair feature replaced (concat, outer) and local attention.

Each control must be a real model of the family it controls for: causal (by perturbation and Jacobian),
its fast path equal to its paper-order reference, its parameters matched to the model it controls for
within 3% at the cpu-small size, and local attention equal to full attention with an explicit band mask.
"""

import pytest
import torch

from gflow_lite.controls import LocalSelfAttention, PairControlMixing
from gflow_lite.model import CausalGrassmannMixing, GrassmannLM, LMConfig, TransformerLM, build_model
from gflow_lite.options import check_lm_config

PAIRS = ["plucker", "concat", "outer"]


def layer(pair: str, impl: str, normalize: bool = True) -> CausalGrassmannMixing:
    torch.manual_seed(0)
    if pair == "plucker":
        mix = CausalGrassmannMixing(10, 4, (1, 2, 4), impl=impl, normalize=normalize)
    else:
        mix = PairControlMixing(10, 4, (1, 2, 4), pair=pair, impl=impl, normalize=normalize)
    for p in mix.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return mix.double()


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("pair", PAIRS)
def test_fast_equals_reference_outputs_and_gradients(pair, normalize):
    ref, fast = layer(pair, "reference", normalize), layer(pair, "fast", normalize)
    h = torch.randn(2, 11, 10, dtype=torch.float64, requires_grad=True)
    y_ref, y_fast = ref(h), fast(h)
    torch.testing.assert_close(y_fast, y_ref, rtol=1e-10, atol=1e-12)
    w = torch.randn_like(y_ref)
    for a, b in zip(torch.autograd.grad((y_fast * w).sum(), [h, *fast.parameters()]),
                    torch.autograd.grad((y_ref * w).sum(), [h, *ref.parameters()])):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("pair", ["concat", "outer"])
def test_pair_features_are_what_they_say(pair):
    mix = layer(pair, "reference", normalize=False)
    z, zp = torch.randn(1, 1, 4, dtype=torch.float64), torch.randn(1, 1, 4, dtype=torch.float64)
    feature = mix.pair_feature(z, zp)
    if pair == "concat":
        assert torch.equal(feature, torch.cat([z, zp], -1)) and mix.W_plu.in_features == 8
    else:
        assert torch.allclose(feature.view(4, 4), z.view(4, 1) * zp.view(1, 4)) and mix.W_plu.in_features == 16
        assert not torch.allclose(mix.pair_feature(zp, z), -feature)  # no antisymmetry, unlike ∧


@pytest.mark.parametrize("cfg", [dict(pair="concat", r=8), dict(pair="outer", r=4), dict(attn_window=3)])
def test_controls_are_causal(cfg):
    torch.manual_seed(0)
    arch = "transformer" if "attn_window" in cfg else "grassmann"
    model = build_model(arch, LMConfig(vocab_size=50, block_size=16, d_model=16, n_layers=2, d_ff=32,
                                       n_heads=2, dropout=0.0, offsets=(1, 3), **cfg)).eval()
    idx = torch.randint(0, 50, (1, 12))
    emb = model.tok_emb(idx).detach().requires_grad_(True)

    def from_embeddings(e):
        h = e + model.pos_emb(torch.arange(12))
        for block in model.blocks:
            h = block(h)
        return model.lm_head(model.ln_f(h))

    jac = torch.autograd.functional.jacobian(from_embeddings, emb)[0, :, :, 0]  # [T, V, T, d]
    dep = jac.abs().sum(dim=(1, 3))  # [t_out, t_in]
    assert torch.count_nonzero(torch.triu(dep, diagonal=1)) == 0
    y = model(idx)
    idx2 = idx.clone()
    idx2[:, 7:] = (idx2[:, 7:] + 1) % 50
    assert torch.equal(model(idx2)[:, :7], y[:, :7])


def test_local_attention_sees_exactly_its_window():
    torch.manual_seed(0)
    attn = LocalSelfAttention(8, 2, window=3).double()
    x = torch.randn(1, 10, 8, dtype=torch.float64)
    i, j = torch.arange(10)[:, None], torch.arange(10)[None, :]
    band = (j <= i) & (i - j <= 3)
    q, k, v = attn.qkv(x).split(8, dim=2)
    q, k, v = (t.view(1, 10, 2, 4).transpose(1, 2) for t in (q, k, v))
    scores = (q @ k.transpose(-1, -2)) / 2.0
    want = attn.proj((scores.masked_fill(~band, float("-inf")).softmax(-1) @ v).transpose(1, 2).reshape(1, 10, 8))
    torch.testing.assert_close(attn(x), want)
    jac = torch.autograd.functional.jacobian(attn, x)[0, :, :, 0].abs().sum(dim=(1, 3))
    assert torch.equal(jac != 0, band)


def test_local_attention_streams_like_its_full_forward():
    torch.manual_seed(0)
    model = TransformerLM(LMConfig(vocab_size=30, block_size=32, d_model=16, n_layers=2, d_ff=32, n_heads=2,
                                   dropout=0.0, attn_window=4)).eval()
    idx = torch.randint(0, 30, (2, 20))
    full = model(idx)
    cache = model.new_cache()
    steps = [model(idx[:, :5], cache=cache)] + [model(idx[:, t:t + 1], cache=cache) for t in range(5, 20)]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)


CPU_SMALL = dict(vocab_size=4096, block_size=128, d_model=128, n_layers=4, d_ff=512, n_heads=4)


@pytest.mark.parametrize("target,control,arch", [
    (dict(r=24, offsets=(1, 2, 4), norm="pre"), dict(r=100, offsets=(1, 2, 4), norm="pre", pair="concat"),
     "grassmann"),
    (dict(r=24, offsets=(1, 2, 4), norm="pre"), dict(r=17, offsets=(1, 2, 4), norm="pre", pair="outer"),
     "grassmann"),
    (dict(r=24, offsets=(1, 2, 4), norm="pre"), dict(attn_window=4), "transformer"),
    (dict(r=16), dict(r=46, pair="concat"), "grassmann"),
    (dict(r=16), dict(r=11, pair="outer"), "grassmann"),
])
def test_controls_match_parameters_within_3_percent(target, control, arch):
    n_target = GrassmannLM(LMConfig(**CPU_SMALL, **target)).num_params()
    n_control = build_model(arch, LMConfig(**CPU_SMALL, **control)).num_params()
    assert abs(n_control / n_target - 1) <= 0.03, (n_control, n_target)


def test_fused_refuses_the_controls():
    with pytest.raises(ValueError, match="impl='fused' computes Plücker pairs only"):
        check_lm_config(LMConfig(impl="fused", pair="outer"))
    with pytest.raises(ValueError, match="impl='native' computes Plücker pairs only"):
        check_lm_config(LMConfig(impl="native", pair="concat"))
    with pytest.raises(ValueError, match="pair='wedge' is not allowed"):
        check_lm_config(LMConfig(pair="wedge"))
    with pytest.raises(ValueError, match="attn_window=-1 must be an integer >= 0"):
        check_lm_config(LMConfig(attn_window=-1))
