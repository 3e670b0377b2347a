"""`gflow_lite.analysis`: layer statistics, plane motion, offset ablation and training snapshots."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.testing import assert_close

from gflow_lite import CausalGrassmannMixing, GrassmannLM, LMConfig, TransformerLM
from gflow_lite.analysis import (Snapshots, ablate_offset, ablated_weights, layer_diagnostics, layer_statistics, mean_loss,
                                 offset_ablation, plane_step_angles, token_losses)
from gflow_book.demo_training import train_lm
from gflow_lite.geometry import principal_angles

DT = torch.float64


def _tiny_lm(**changes) -> GrassmannLM:
    torch.manual_seed(0)
    cfg = LMConfig(vocab_size=11, block_size=12, d_model=16, n_layers=2, d_ff=32, r=4, offsets=(1, 2, 4),
                   dropout=0.0).replace(**changes)
    return GrassmannLM(cfg).eval()


def _batches(n=2, B=3, T=12, V=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        block = torch.randint(0, V, (B, T + 1), generator=g)
        out.append((block[:, :-1], block[:, 1:]))
    return out


# ----------------------------------------------------------------------------------- plane motion
def test_plane_step_angles_by_hand():
    # P_1 = span{e1, e0} (Δ = 1 at t = 1), P_2 = span{e2, e1}: they share e1, the rest is a right angle
    z = torch.eye(3, dtype=DT)[None]  # z_t = e_t, T = 3
    angles, defined = plane_step_angles(z, 1)
    assert defined.tolist() == [[False, False, True]]
    assert_close(angles[0, 2], torch.tensor([0.0, math.pi / 2], dtype=DT), rtol=0, atol=1e-12)
    assert torch.all(angles[0, :2] == 0)


def test_plane_step_angles_match_principal_angles_and_share_a_line_at_delta_1():
    z = torch.randn(2, 9, 5, dtype=DT)
    for delta in (1, 2, 3):
        angles, defined = plane_step_angles(z, delta)
        assert angles.shape == (2, 9, 2) and defined.shape == (2, 9)
        assert defined[:, delta + 1 :].all() and not defined[:, : delta + 1].any()
        for t in range(delta + 1, 9):
            prev = torch.stack([z[:, t - 1], z[:, t - 1 - delta]], -1)
            cur = torch.stack([z[:, t], z[:, t - delta]], -1)
            assert_close(angles[:, t], principal_angles(prev, cur), rtol=1e-10, atol=1e-10)
        if delta == 1:
            assert angles[:, 2:, 0].abs().max() < 1e-7


def test_plane_step_angles_skip_degenerate_pairs():
    z = torch.randn(1, 6, 4, dtype=DT)
    z[0, 3] = 2.0 * z[0, 2]  # the Δ = 1 pair at t = 3 is parallel: no plane
    _, defined = plane_step_angles(z, 1)
    assert defined[0].tolist() == [False, False, True, False, False, True]


# ------------------------------------------------------------------------------------ statistics
def test_layer_statistics_agree_with_the_layer_and_are_in_range():
    model = _tiny_lm()
    x = _batches(1, B=2)[0][0]
    stats = layer_statistics(model, x)
    assert len(stats) == 2
    for L in stats:
        B, T, m = L.pair_sin.shape
        assert (B, T, m) == (2, 12, 3) and L.valid.shape == (T, m) and L.alpha.shape == (B, T, 16)
        assert L.plane_angles.shape == (B, T, m, 2) and L.weights.shape == (T, m)
        assert torch.all((L.pair_sin >= 0) & (L.pair_sin <= 1 + 1e-6))
        assert_close(torch.sin(L.pair_angle).float(), L.pair_sin, rtol=0, atol=2e-3)
        assert torch.all(L.g[:, 0] == 0) and torch.all((L.alpha >= 0) & (L.alpha <= 1))
        assert_close(L.weights.sum(-1)[1:], torch.ones(T - 1))
        assert L.median_angle_deg().shape == (m,) and L.near_degenerate(0.1).shape == (m,)
        assert L.floor_fraction() == 0.0  # nothing near eps = 1e-6 here
        assert L.angles_deg(2).numel() == B * (T - 4)
        by_dim, by_tok = L.gate_variance_shares()
        assert 0 <= by_dim <= 1 and 0 <= by_tok <= 1
    # the hooks saw the inputs of the mixers: layer 0 reads embeddings + positions
    with torch.no_grad():
        h0 = model.tok_emb(x) + model.pos_emb(torch.arange(12))
    assert_close(stats[0].z, model.blocks[0].mix.W_red(h0))


def test_gate_variance_shares_separate_dimension_from_token():
    L = layer_statistics(_tiny_lm(), _batches(1, B=2)[0][0])[0]
    d = L.alpha.shape[-1]
    per_dimension = dataclasses.replace(L, alpha=torch.linspace(0.1, 0.9, d).expand_as(L.alpha).clone())
    shares = torch.tensor(per_dimension.gate_variance_shares())
    assert_close(shares, torch.tensor([1.0, 0.0]), rtol=0, atol=1e-9)
    per_token = dataclasses.replace(L, alpha=torch.rand(*L.alpha.shape[:2], 1).expand_as(L.alpha).clone())
    shares = torch.tensor(per_token.gate_variance_shares())
    assert_close(shares, torch.tensor([0.0, 1.0]), rtol=0, atol=1e-9)


def test_statistics_need_a_grassmann_model():
    cfg = LMConfig(vocab_size=11, block_size=8, d_model=16, n_layers=1, d_ff=32, n_heads=2)
    with pytest.raises(TypeError, match="GrassmannLM"):
        layer_statistics(TransformerLM(cfg), torch.zeros(1, 4, dtype=torch.long))


# -------------------------------------------------------------------------------------- ablation
def test_ablated_weights_mean():
    layer = CausalGrassmannMixing(4, 2, (1, 2, 4))
    a, _ = layer.offset_weights(torch.arange(6))
    b, any_valid = ablated_weights(a, 0)
    expected = torch.tensor([[0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0.5, 0.5], [0, 0.5, 0.5]])
    assert_close(b, expected)
    assert any_valid.tolist() == [False, False, True, True, True, True]
    b2, _ = ablated_weights(a, 2)  # Δ = 4 is unused before t = 4: those rows are untouched, bit for bit
    assert torch.equal(b2[:4], a[:4])
    with pytest.raises(IndexError):
        ablated_weights(a, 3)


def test_ablated_weights_learned_is_the_softmax_without_the_offset():
    layer = CausalGrassmannMixing(4, 2, (1, 2, 3), aggregate="learned")
    with torch.no_grad():
        layer.offset_logits.copy_(torch.tensor([0.3, -1.0, 2.0]))
        a, _ = layer.offset_weights(torch.arange(5))
    b, _ = ablated_weights(a, 2)
    rest = torch.softmax(torch.tensor([0.3, -1.0]), -1)
    assert_close(b[3:, :2], rest.expand(2, 2))
    assert torch.all(b[:, 2] == 0)


@pytest.mark.parametrize("impl", ["fast", "reference", "fused", "native"])
def test_ablate_offset_equals_a_layer_without_that_offset(impl):
    torch.manual_seed(0)
    layer = CausalGrassmannMixing(8, 4, (1, 2, 4), impl=impl).double().eval()
    h = torch.randn(2, 10, 8, dtype=DT)
    for k, rest in ((0, (2, 4)), (1, (1, 4)), (2, (1, 2))):
        reduced = CausalGrassmannMixing(8, 4, rest, impl=impl).double().eval()
        reduced.load_state_dict(layer.state_dict())
        with torch.no_grad(), ablate_offset(layer, k):
            assert_close(layer(h), reduced(h), rtol=1e-12, atol=1e-12)
            assert_close(layer(h), reduced(h), rtol=1e-12, atol=1e-12)  # twice: nothing memoised
            assert_close(layer_diagnostics(layer, h)["g"], layer_diagnostics(reduced, h)["g"])
        assert "offset_weights" not in layer.__dict__  # restored
        with torch.no_grad():  # and the full layer is back, whatever its implementation remembers
            assert not torch.allclose(layer(h), reduced(h))
    # nested: two offsets removed
    only_4 = CausalGrassmannMixing(8, 4, (4,), impl=impl).double().eval()
    only_4.load_state_dict(layer.state_dict())
    with torch.no_grad(), ablate_offset(layer, 0), ablate_offset(layer, 1):
        assert_close(layer(h), only_4(h), rtol=1e-12, atol=1e-12)
    assert "offset_weights" not in layer.__dict__


def test_ablating_changes_nothing_before_the_offset_exactly():
    model = _tiny_lm()
    x, y = _batches(1)[0]
    base = token_losses(model, x, y)
    for block in model.blocks:
        for k, delta in enumerate(block.mix.offsets):
            with ablate_offset(block.mix, k):
                ablated = token_losses(model, x, y)
            assert torch.equal(ablated[:, :delta], base[:, :delta])
            assert not torch.equal(ablated[:, delta:], base[:, delta:])


def test_offset_ablation_shape_and_unused_offset():
    model = _tiny_lm(offsets=(1, 2, 8))
    batches = _batches(2, T=8)  # Δ = 8 is never valid in 8 tokens: removing it changes nothing
    result = offset_ablation(model, batches)
    assert result.increase.shape == (2, 3) and result.offsets == ((1, 2, 8), (1, 2, 8))
    assert torch.isfinite(result.increase).all()
    assert torch.all(result.increase[:, 2] == 0)
    assert result.base_loss == mean_loss(model, batches)
    assert_close(token_losses(model, *batches[0]).mean(), torch.tensor(model(*batches[0])[1].item()))
    per_layer = _tiny_lm(n_layers=2, offsets=(1, 2), offset_mode="per_layer")
    assert offset_ablation(per_layer, batches).increase.shape == (2, 1)
    with pytest.raises(ValueError):
        offset_ablation(model, [])


# ------------------------------------------------------------------------------------- snapshots
def test_snapshots_equal_shorter_training_runs():
    def make_batches():
        g = torch.Generator().manual_seed(3)

        def next_batch():
            block = torch.randint(0, 11, (4, 13), generator=g)
            return block[:, :-1], block[:, 1:]
        return next_batch

    model = _tiny_lm().train()
    snaps = Snapshots(model, make_batches(), [0, 2, 5])
    train_lm(model, snaps, 5, 1e-2)
    assert snaps.finish().steps == [0, 2, 5]
    for steps in (2, 5):
        fresh = _tiny_lm().train()
        train_lm(fresh, make_batches(), steps, 1e-2)
        for key, value in fresh.state_dict().items():
            assert torch.equal(snaps.states[steps][key], value), (steps, key)
    assert torch.equal(snaps.states[0]["tok_emb.weight"], _tiny_lm().tok_emb.weight)
    early = snaps.model_at(2)
    assert early is not model and not early.training
    assert torch.equal(early.lm_head.weight, snaps.states[2]["tok_emb.weight"])  # tied, restored
    with pytest.raises(KeyError):
        snaps.model_at(3)


def test_snapshots_complain_about_steps_never_reached():
    model = _tiny_lm()
    snaps = Snapshots(model, lambda: _batches(1)[0], [0, 10])
    train_lm(model, snaps, 3, 1e-3)
    with pytest.raises(RuntimeError, match="no snapshot at steps \\[10\\]"):
        snaps.finish()
    with pytest.raises(ValueError):
        Snapshots(model, lambda: _batches(1)[0], [-1])
