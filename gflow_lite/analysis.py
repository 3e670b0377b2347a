"""Measuring a trained Grassmann model: pair geometry, plane motion, gates, and which offsets matter.

The paper calls its layer interpretable ("the geometry of token pairs") but measures nothing; chapter 7
of the book (book/07_geometry_trained.py) does, with these functions. Equations (G1)-(G6) are those of
`gflow_lite.model`.

* `layer_statistics`: for every Grassmann layer, on one batch, the quantities (G2)-(G6) act on:
  the angle θ between z_t and z_{t-Δ} (``sin θ = ||z_t ∧ z_{t-Δ}|| / (|z_t| |z_{t-Δ}|)``, the Lagrange
  identity), the Plücker norm ``||z_t ∧ z_{t-Δ}||`` that the floor ε of (G3) guards, the principal angles
  between consecutive pair planes ``P_t = span{z_t, z_{t-Δ}}`` and ``P_{t-1}`` (how fast the plane moves
  along the sequence), the gate α of (G5) and the offset weights a_t^Δ of (G4).
* `ablated_weights`, `ablate_offset`, `offset_ablation`: remove one offset from the average (G4),
  renormalising over the offsets that remain valid, and measure the loss increase.
* `Snapshots`: copies of a model's weights at chosen steps of a training loop that draws one batch per step.
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .geometry import pair_angle, plucker_norm, principal_angles
from .model import CausalGrassmannMixing, shift_back

__all__ = [
    "LayerStats",
    "layer_inputs",
    "layer_statistics",
    "plane_step_angles",
    "ablated_weights",
    "ablate_offset",
    "AblationResult",
    "mean_loss",
    "offset_ablation",
    "token_losses",
    "Snapshots",
]

Batch = Tuple[Tensor, Tensor]


def _mixers(model: nn.Module) -> List[CausalGrassmannMixing]:
    """The Grassmann mixers of a `GrassmannLM`, in layer order."""
    mixers = [block.mix for block in getattr(model, "blocks", [])]
    if not mixers or not all(isinstance(m, CausalGrassmannMixing) for m in mixers):
        raise TypeError("expected a GrassmannLM: a model whose blocks' mixers are CausalGrassmannMixing")
    return mixers


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


# ---------------------------------------------------------------------------------------- geometry
def plane_step_angles(z: Tensor, delta: int, min_sin: float = 1e-3) -> Tuple[Tensor, Tensor]:
    """Principal angles between consecutive pair planes ``P_{t-1}`` and ``P_t = span{z_t, z_{t-Δ}}``.

    ``z: [B, T, r]`` -> ``(angles [B, T, 2], defined [B, T])``, in float64. ``angles[:, t]`` holds the two
    principal angles (radians, ascending) between ``P_{t-1}`` and ``P_t``; ``defined`` is True where both
    planes exist (``t - 1 >= Δ``) and are well conditioned (the sine of each pair's angle is at least
    ``min_sin``; a near-degenerate pair spans almost a line, whose second direction is noise). Elsewhere
    the angles are 0. For ``Δ = 1`` the two planes share the line of ``z_{t-1}``, so the smaller angle is 0.
    """
    z = z.to(torch.float64)
    partner = shift_back(z, delta)
    sin = plucker_norm(z, partner) / (z.norm(dim=-1) * partner.norm(dim=-1)).clamp_min(1e-300)
    t = torch.arange(z.shape[1], device=z.device)
    plane_ok = (t >= delta)[None, :] & (sin >= min_sin)  # [B, T]
    defined = torch.zeros_like(plane_ok)
    defined[:, 1:] = plane_ok[:, 1:] & plane_ok[:, :-1]
    planes = torch.stack([z, partner], dim=-1)  # [B, T, r, 2]
    angles = torch.zeros(*z.shape[:2], 2, dtype=z.dtype, device=z.device)
    if z.shape[1] > 1:
        angles[:, 1:] = principal_angles(planes[:, :-1], planes[:, 1:])
    return angles.masked_fill(~defined[..., None], 0.0), defined


@dataclass(frozen=True)
class LayerStats:
    """What one Grassmann layer computes on one batch (``m`` offsets, ``B`` sequences of ``T`` tokens).

    Tensors are on the CPU. Per-pair tensors ``[B, T, m]`` are meaningful only where ``valid[t, k]``
    (``t >= Δ_k``); at other positions the partner is the zero vector and the library's values are 0.
    """

    layer: int
    offsets: Tuple[int, ...]
    eps: float  # the floor ε of (G3)
    z: Tensor  # [B, T, r]  (G1)
    pair_sin: Tensor  # [B, T, m]  sin θ = ||z_t ∧ z_{t-Δ}|| / (|z_t| |z_{t-Δ}|), from the layer's diagnostics
    pair_norm: Tensor  # [B, T, m]  ||z_t ∧ z_{t-Δ}||, the norm (G3) divides by
    pair_angle: Tensor  # [B, T, m]  θ in radians, [0, π/2], by `geometry.pair_angle` (atan2: accurate near 0)
    valid: Tensor  # [T, m] bool
    plane_angles: Tensor  # [B, T, m, 2]  principal angles between P_{t-1} and P_t (`plane_step_angles`)
    plane_defined: Tensor  # [B, T, m] bool
    g: Tensor  # [B, T, d]  the geometric feature (G4); 0 where no offset is valid
    alpha: Tensor  # [B, T, d]  the gate (G5)
    weights: Tensor  # [T, m]  the offset weights a_t^Δ of (G4)

    def pairs(self, values: Tensor, k: int) -> Tensor:
        """The entries of a ``[B, T, m]`` tensor at the valid pairs of offset ``k``, flattened."""
        return values[:, self.valid[:, k], k].reshape(-1)

    def angles_deg(self, k: int) -> Tensor:
        """Pair angles θ of offset ``k`` in degrees (valid pairs only)."""
        return torch.rad2deg(self.pairs(self.pair_angle, k))

    def median_angle_deg(self) -> Tensor:
        """Median pair angle per offset, in degrees: ``[m]``."""
        return torch.stack([self.angles_deg(k).median() for k in range(len(self.offsets))])

    def near_degenerate(self, max_sin: float) -> Tensor:
        """Fraction of valid pairs per offset with ``sin θ < max_sin`` (nearly parallel): ``[m]``."""
        return torch.stack([(self.pairs(self.pair_sin, k) < max_sin).double().mean()
                            for k in range(len(self.offsets))])

    def floor_fraction(self) -> float:
        """Fraction of valid pairs where (G3)'s floor is active: ``||z_t ∧ z_{t-Δ}|| < ε``."""
        norms = torch.cat([self.pairs(self.pair_norm, k) for k in range(len(self.offsets))])
        return float((norms < self.eps).double().mean())

    def plane_steps(self, k: int) -> Tensor:
        """Principal angles (radians) between consecutive planes of offset ``k`` where defined: ``[N, 2]``."""
        return self.plane_angles[..., k, :][self.plane_defined[..., k]]

    def alpha_by_position(self) -> Tensor:
        """Mean gate over sequences and dimensions at each position: ``[T]`` (the share of h_t in (G6))."""
        return self.alpha.mean(dim=(0, 2))

    def gate_variance_shares(self) -> Tuple[float, float]:
        """How much of the gate's variance is a fixed preference of each dimension, and how much of each
        token: ``(var_d(mean over tokens), var_tokens(mean over dimensions)) / var(α)`` over all
        (token, dimension) entries. What both leave is the token-by-dimension interaction (a constant
        gate has no variance to share: ``(0, 0)``)."""
        a = self.alpha.reshape(-1, self.alpha.shape[-1]).double()  # [tokens, d]
        total = a.var(unbiased=False)
        if total == 0:
            return 0.0, 0.0
        return float(a.mean(0).var(unbiased=False) / total), float(a.mean(1).var(unbiased=False) / total)


def layer_inputs(model: nn.Module, idx: Tensor) -> List[Tensor]:
    """The hidden states each Grassmann mixer receives when ``model`` reads ``idx: [B, T]`` (no grad)."""
    captured: List[Tensor] = []
    hooks = [mix.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach()))
             for mix in _mixers(model)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(idx.to(_device(model)))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return captured


@torch.no_grad()
def layer_diagnostics(layer: CausalGrassmannMixing, h: Tensor) -> Dict[str, Tensor]:
    """The layer's intermediate quantities on its input ``h: [B, T, d]`` (chapter on trained models).

    ``z`` (G1); per offset the pair norm ``||z_t ∧ z_{t-Δ}||`` and the sine of the pair's angle
    ``||z_t ∧ z_{t-Δ}|| / (|z_t| |z_{t-Δ}|)`` (both by the stable `geometry.plucker_norm`), ``valid``;
    ``g`` (G4) and the gate ``alpha`` (G5), computed by the layer's own methods.
    """
    z = layer.W_red(h).float()
    T = z.shape[1]
    t = torch.arange(T, device=h.device)
    partners = [shift_back(z, delta) for delta in layer.offsets]
    a, _ = layer.offset_weights(t)
    norms = torch.stack([plucker_norm(z, zp) for zp in partners], -1)
    lengths = torch.stack([z.norm(dim=-1) * zp.norm(dim=-1) for zp in partners], -1)
    g = layer.g_fast(z, partners, a)
    alpha = torch.sigmoid(layer.W_gate(torch.cat([h, g.to(h.dtype)], dim=-1)))
    return {
        "z": z,
        "pair_norm": norms,
        "pair_sin": norms / lengths.clamp_min(1e-12),
        "valid": t[:, None] >= torch.tensor(layer.offsets, device=h.device)[None, :],
        "g": g,
        "alpha": alpha,
    }


def layer_statistics(model: nn.Module, idx: Tensor, min_sin: float = 1e-3) -> List[LayerStats]:
    """`LayerStats` of every Grassmann layer of ``model`` on the token batch ``idx: [B, T]``.

    Pair quantities come from `layer_diagnostics` (the layer's own computation); the pair
    angle from `geometry.pair_angle` and the plane motion from `plane_step_angles` (float64).
    """
    out: List[LayerStats] = []
    for i, (mix, h) in enumerate(zip(_mixers(model), layer_inputs(model, idx))):
        diag = layer_diagnostics(mix, h)
        z = diag["z"]
        T = z.shape[1]
        angles, planes, defined = [], [], []
        for delta in mix.offsets:
            angles.append(pair_angle(z.double(), shift_back(z.double(), delta)))
            step, ok = plane_step_angles(z, delta, min_sin)
            planes.append(step)
            defined.append(ok)
        with torch.no_grad():
            weights, _ = mix.offset_weights(torch.arange(T, device=z.device))
        out.append(LayerStats(
            layer=i, offsets=tuple(mix.offsets), eps=mix.eps, z=z.cpu(),
            pair_sin=diag["pair_sin"].cpu(), pair_norm=diag["pair_norm"].cpu(),
            pair_angle=torch.stack(angles, -1).cpu(), valid=diag["valid"].cpu(),
            plane_angles=torch.stack(planes, -2).cpu(), plane_defined=torch.stack(defined, -1).cpu(),
            g=diag["g"].cpu(), alpha=diag["alpha"].cpu(), weights=weights.cpu(),
        ))
    return out


# ---------------------------------------------------------------------------------------- ablation
def ablated_weights(a: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """The offset weights of (G4) with offset ``k`` removed: ``(a', any_valid')`` from ``a: [T, m]``.

    ``a'_t^Δ = a_t^Δ / Σ_{Δ' ≠ Δ_k} a_t^{Δ'}`` for ``Δ ≠ Δ_k`` and ``a'_t^{Δ_k} = 0``: the average over the
    offsets that remain valid at t (for the paper's mean, ``1 / (|W_t| - 1)``; for learned softmax weights,
    the softmax renormalised without Δ_k). Rows with nothing left are 0 (then g_t = 0, as at t = 0), and
    rows where offset ``k`` has no weight (``t < Δ_k``) are returned **unchanged, bit for bit**.
    """
    if not -a.shape[-1] <= k < a.shape[-1]:
        raise IndexError(f"offset index {k} out of range for {a.shape[-1]} offsets")
    keep = torch.ones(a.shape[-1], dtype=torch.bool, device=a.device)
    keep[k] = False
    rest = a * keep
    total = rest.sum(-1, keepdim=True)
    renormalised = torch.where(total > 0, rest / torch.where(total > 0, total, torch.ones_like(total)),
                               torch.zeros_like(rest))
    out = torch.where(a[..., k : k + 1] != 0, renormalised, a)
    return out, (out != 0).any(-1)


@contextlib.contextmanager
def ablate_offset(layer: CausalGrassmannMixing, k: int) -> Iterator[CausalGrassmannMixing]:
    """Within the ``with`` block, ``layer`` averages (G4) without its ``k``-th offset (`ablated_weights`).

    Every implementation and `layer_diagnostics` read the weights through
    ``offset_weights``, which is shadowed on this instance and restored on exit. Nested blocks on one
    layer remove several offsets (the weights renormalised over those left).
    """
    if not 0 <= k < len(layer.offsets):
        raise IndexError(f"offset index {k} out of range for offsets {layer.offsets}")
    shadowed = layer.__dict__.get("offset_weights")  # an enclosing ablation, if any
    original = layer.offset_weights

    def without_k(t: Tensor, dtype: torch.dtype = torch.float32) -> Tuple[Tensor, Tensor]:
        return ablated_weights(original(t, dtype)[0], k)

    object.__setattr__(layer, "offset_weights", without_k)
    try:
        yield layer
    finally:
        if shadowed is None:
            object.__delattr__(layer, "offset_weights")
        else:
            object.__setattr__(layer, "offset_weights", shadowed)


@torch.no_grad()
def mean_loss(model: nn.Module, batches: Sequence[Batch]) -> float:
    """Mean next-token cross-entropy (nats) of ``model`` over ``batches`` of ``(x, y)``, in eval mode."""
    was_training = model.training
    model.eval()
    device = _device(model)
    try:
        total = sum(float(model(x.to(device), y.to(device))[1]) for x, y in batches)
    finally:
        model.train(was_training)
    return total / len(batches)


@dataclass(frozen=True)
class AblationResult:
    """Loss increase (nats) when one offset of one layer is removed from (G4), the rest renormalised."""

    base_loss: float
    increase: Tensor  # [n_layers, max m]; NaN where a layer has fewer offsets
    offsets: Tuple[Tuple[int, ...], ...]  # each layer's offsets


def offset_ablation(model: nn.Module, batches: Sequence[Batch]) -> AblationResult:
    """For every layer ℓ and offset Δ: mean loss on ``batches`` with Δ ablated in layer ℓ, minus the loss
    of the intact model (`ablate_offset`; one layer and one offset at a time)."""
    if len(batches) == 0:
        raise ValueError("offset_ablation needs at least one batch")
    mixers = _mixers(model)
    base = mean_loss(model, batches)
    width = max(len(mix.offsets) for mix in mixers)
    increase = torch.full((len(mixers), width), math.nan, dtype=torch.float64)
    for i, mix in enumerate(mixers):
        for k in range(len(mix.offsets)):
            with ablate_offset(mix, k):
                increase[i, k] = mean_loss(model, batches) - base
    return AblationResult(base, increase, tuple(tuple(mix.offsets) for mix in mixers))


def token_losses(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Per-position cross-entropy ``[B, T]`` (nats), in eval mode and without gradients."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(x.to(_device(model)))
    finally:
        model.train(was_training)
    return F.cross_entropy(logits.float().transpose(1, 2), y.to(logits.device), reduction="none").cpu()


# --------------------------------------------------------------------------------------- snapshots
class Snapshots:
    """A batch source that copies the model's weights at given steps of a training loop.

    A loop such as `gflow_lite.train.train` draws one batch before each optimizer step, so when the source is called for the
    ``n``-th time the model has made ``n - 1`` updates: that is when the weights "at step n - 1" are
    copied. Call `finish` after training to copy the final weights (step = the number of steps trained).
    All copies are kept in memory, on the CPU.
    """

    def __init__(self, model: nn.Module, next_batch: Callable[[], Batch], at_steps: Sequence[int]) -> None:
        if any(int(s) < 0 for s in at_steps):
            raise ValueError(f"snapshot steps must be >= 0, got {list(at_steps)}")
        self.model, self.next_batch = model, next_batch
        self.at_steps = sorted({int(s) for s in at_steps})
        self.states: Dict[int, Dict[str, Tensor]] = {}
        self.updates = 0  # optimizer steps the model has made when the next batch is drawn

    def _take(self) -> None:
        if self.updates in self.at_steps and self.updates not in self.states:
            self.states[self.updates] = {k: v.detach().to("cpu", copy=True)
                                         for k, v in self.model.state_dict().items()}

    def __call__(self) -> Batch:
        self._take()
        self.updates += 1
        return self.next_batch()

    def finish(self) -> "Snapshots":
        """Copy the weights after the last step (if that step was asked for); returns ``self``."""
        self._take()
        missing = [s for s in self.at_steps if s not in self.states]
        if missing:
            raise RuntimeError(f"training ended after {self.updates} steps; no snapshot at steps {missing}")
        return self

    @property
    def steps(self) -> List[int]:
        return sorted(self.states)

    def model_at(self, step: int) -> nn.Module:
        """A copy of the model with the weights of ``step`` (in eval mode, on the model's device)."""
        if step not in self.states:
            raise KeyError(f"no snapshot at step {step}; have {self.steps}")
        clone = copy.deepcopy(self.model)
        clone.load_state_dict(self.states[step])
        return clone.eval()
