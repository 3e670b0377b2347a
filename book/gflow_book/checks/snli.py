"""Checks for chapter 6 (SNLI): the pair-validity mask, Plücker widths of grouped planes, pooled matching
features. Each compares the learner's function with the SNLI head's own code (`gflow_lite.nli`)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from gflow_lite.nli.features import PairBatch, TokenFeatures, collate_pairs
from gflow_lite.nli.heads import PairClassifier
from gflow_lite.nli.window_mixing import WindowGrassmannMixing, window_pair_mask
from .core import Mismatch, expect_close, expect_equal, make_generator, run_check

__all__ = ["check_pair_validity_mask", "check_plucker_width", "check_matching_features"]


def _single_sentence_mask(lengths: Sequence[int], window: int, stride: int) -> Tensor:
    """The library's mask for a batch of single sentences (segment 0) padded to ``max(lengths)``."""
    L = max(lengths)
    position = torch.arange(L).expand(len(lengths), L).clone()
    real = position < torch.tensor(list(lengths))[:, None]
    segment = torch.zeros(len(lengths), L, dtype=torch.long)
    return window_pair_mask(segment, position, real, window, stride)


def check_pair_validity_mask(fn: Callable[[Sequence[int], int, int], Tensor]) -> bool:
    """``fn(lengths, window, stride)`` must equal `window_pair_mask` on single, right-padded sentences."""

    def case(lengths, window, stride):
        def run(f):
            out = f(list(lengths), window, stride)
            expect_equal(None if out is None else torch.as_tensor(out).bool(),
                         _single_sentence_mask(lengths, window, stride),
                         f"lengths={list(lengths)}, window={window}, stride={stride}")
        return run

    cases = [case([11, 3, 8], 8, 8), case([16], 8, 8), case([30, 17, 1], 8, 8), case([1], 8, 8),
             case([12, 7], 4, 2), case([20, 5], 6, 3), case([9, 9], 3, 1), case([10], 1, 1),
             case([48, 25], 8, 4)]
    return run_check("6.1 pair-validity mask", fn, cases,
                     hint=[
        "two tokens may pair when they are different, both real, and some window contains both",
        "t and s share a window when some k has k*stride <= min(t, s) and max(t, s) < k*stride + window; also "
        "require t != s, t < length and s < length of that row"])


def check_plucker_width(fn: Callable[[int, int], int]) -> bool:
    """``fn(d_proj, groups)`` must equal the input width of `WindowGrassmannMixing`'s ``W_plu``."""

    def case(d_proj, groups):
        def run(f):
            expected = WindowGrassmannMixing(4, d_proj, groups).W_plu.in_features
            out = f(d_proj, groups)
            expect_equal(None if out is None else int(out), expected, f"d_proj={d_proj}, groups={groups}")
        return run

    cases = [case(64, 4), case(64, 1), case(32, 1), case(64, 8), case(64, 32), case(12, 3), case(6, 3),
             case(48, 2)]
    return run_check("6.2 Plücker width", fn, cases,
                     hint=[
        "each group is its own small vector, spanning its own planes",
        "each group is a vector in R^r with r = d_proj // groups, and a plane in R^r has r (r - 1) / 2 "
        "Plücker coordinates; the groups' coordinates are concatenated: groups * r * (r - 1) // 2"])


def _layouts(seed: int, d: int):
    """Two layouts of the same random pairs: packed (padding at the end) and separately padded."""
    g = make_generator(seed)
    lens_p = torch.randint(1, 12, (3,), generator=g).tolist()
    lens_h = torch.randint(1, 9, (3,), generator=g).tolist()
    feats = TokenFeatures.from_list([torch.randn(n, d, generator=g) for n in lens_p + lens_h], d)
    packed = collate_pairs(feats, [0, 1, 2], [3, 4, 5], [0, 1, 2])
    # [premise, padding | hypothesis, padding]: padding inside the row, with segment 0 and 1
    lp, lh = max(lens_p), max(lens_h)
    x = torch.randn(3, lp + lh, d, generator=g) * 10.0  # noise on padding: it must not count
    segment = torch.cat([torch.zeros(3, lp, dtype=torch.long), torch.ones(3, lh, dtype=torch.long)], 1)
    position = torch.cat([torch.arange(lp), torch.arange(lh)]).expand(3, -1).clone()
    real = torch.zeros(3, lp + lh, dtype=torch.bool)
    for b in range(3):
        x[b, : lens_p[b]] = feats.sentence(b).float()
        x[b, lp : lp + lens_h[b]] = feats.sentence(3 + b).float()
        real[b, : lens_p[b]] = True
        real[b, lp : lp + lens_h[b]] = True
    apart = PairBatch(x, segment, position, real, packed.labels)
    return {"packed": packed, "separately padded": apart}


def _matching(batch: PairBatch) -> Tensor:
    u = PairClassifier.sentence_mean(batch.x, batch, 0)
    v = PairClassifier.sentence_mean(batch.x, batch, 1)
    return torch.cat([u, v, (u - v).abs(), u * v], dim=-1)


def check_matching_features(fn: Callable[[Tensor, Tensor, Tensor], Tensor]) -> bool:
    """``fn(h, segment, real)`` must equal the SNLI classifier's ``[u; v; |u - v|; u ⊙ v]``."""

    def case(seed, d, layout):
        def run(f):
            batch = _layouts(seed, d)[layout]
            with torch.no_grad():
                out = f(batch.x.clone(), batch.segment.clone(), batch.real.clone())
            if out is not None and tuple(torch.as_tensor(out).shape) != (len(batch), 4 * d):
                raise Mismatch(f"{layout}, d={d}: shape {tuple(torch.as_tensor(out).shape)}, "
                               f"expected {(len(batch), 4 * d)} = [B, 4d]")
            expect_close(out, _matching(batch), f"{layout} batch, d={d}", rtol=1e-5, atol=1e-6)
        return run

    cases = [case(0, 5, "packed"), case(1, 8, "packed"), case(2, 5, "separately padded"),
             case(3, 16, "separately padded")]
    return run_check("6.3 matching features", fn, cases,
                     hint=[
        "pool each sentence over its own real tokens only, then build the four matching features",
        "weight each token by real & (segment == 0) for u and real & (segment == 1) for v; divide the "
        "weighted sum by the number of such tokens; then concatenate u, v, |u - v| and u * v along the last "
        "dimension"])
