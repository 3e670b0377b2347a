# %% [markdown]
# # 7. The geometry of a trained model
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gflow-lite/gflow_lite/blob/main/book/07_geometry_trained.ipynb)
#
# The paper's case against attention is partly about interpretability: attention's lift into all
# pairwise interactions is "analytically opaque", while in the Grassmann model information flows "by
# controlled deformations of low-rank subspaces across layers and multi-scale local windows". The paper
# never looks at those subspaces in a trained model. This chapter does. We train a small Grassmann
# language model on WikiText-2, keep copies of it along the way, and measure what each layer's
# equations (G1)–(G6) (chapter 2) actually see and do.
#
# **Learning goals.** After this chapter you can
#
# 1. read a trained layer's pair geometry: the angle between $z_t$ and $z_{t-\Delta}$, how often a pair
#    nearly degenerates (where the floor $\varepsilon$ of (G3) could matter), and how fast the plane
#    $\operatorname{span}\{z_t, z_{t-\Delta}\}$ moves along the sequence, measured by principal angles;
# 2. read the gate (G5): how much of $h_t$ and how much of the geometric feature $g_t$ pass;
# 3. find which offsets carry signal by ablation, removing one offset from the average (G4) at
#    evaluation, and compare with a model that learns its offset weights;
# 4. follow all of these through training, and tell a robust property from an outcome of one run.

# %% tags=["remove-cell"]
# colab-setup (written by book/sync.py from book/_config.yml: edit it there)
import os, subprocess, sys
if "google.colab" in sys.modules:  # Colab only; Colab keeps its own torch
    GFLOW_REPO, GFLOW_BRANCH = "https://github.com/gflow-lite/gflow_lite", "main"
    GFLOW_HOME = "/content/gflow_lite"
    if not os.path.isdir(GFLOW_HOME):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", GFLOW_BRANCH,
                        GFLOW_REPO, GFLOW_HOME], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", GFLOW_HOME],
                   check=True)
    GFLOW_BOOK = os.path.join(GFLOW_HOME, "book")
    sys.path[:0] = [GFLOW_BOOK, GFLOW_HOME]  # the book's support code, the package
    os.chdir(GFLOW_BOOK)

# %%
# %matplotlib inline
import math

import matplotlib.pyplot as plt
import torch
from torch.testing import assert_close

from gflow_lite import PAPER_OFFSETS, GrassmannLM, LMConfig
from gflow_lite.analysis import (Snapshots, ablate_offset, ablated_weights, layer_statistics,
                                 offset_ablation, token_losses)
from gflow_lite.data import RandomBlockSampler, load_corpus
from gflow_book.demo_training import train_lm
from gflow_lite.geometry import pair_angle, plucker, principal_angles
from gflow_lite.model import shift_back
from gflow_book.sizing import by_mode, describe_mode, sizes

print(describe_mode())
torch.manual_seed(0)
plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3})

# %% [markdown]
# ## 7.1 A model to look at, and copies of it along the way
#
# WikiText-2 under a small byte-level BPE trained on its training split (`gflow_lite.data`; 512 tokens in
# quick mode, 4,096 in full mode), and the Grassmann model of chapter 0 at the sizes of
# `gflow_book.sizing.sizes()`: the paper's six offsets $\{1, 2, 4, 8, 12, 16\}$ in every layer, the mean
# over valid offsets in (G4), the paper's post-LN block, no dropout.

# %%
s = sizes()
corpus = load_corpus("bpe", bpe_vocab_size=by_mode(512, 4096))
V = corpus.tokenizer.vocab_size
device = "cuda" if torch.cuda.is_available() else "cpu"
cfg = LMConfig(vocab_size=V, block_size=s.block_size, d_model=s.d_model, n_layers=s.n_layers,
               d_ff=s.d_ff, r=s.r, offsets=PAPER_OFFSETS, dropout=0.0)
print(f"{len(corpus.train):,} training tokens, vocabulary V = {V}")
print(f"d = {cfg.d_model}, {cfg.n_layers} layers, r = {cfg.r}, offsets {cfg.offsets}, "
      f"block {cfg.block_size}")

# %% [markdown]
# `train_lm` (the short AdamW loop the chapters share) draws one batch before each optimizer step.
# `gflow_lite.analysis.Snapshots` wraps the batch source and, when it is asked for the batch of step
# $n + 1$, copies the weights the model has after $n$ steps: here at steps 0, 1/8, 1/4, 1/2, 3/4 and the
# end, all kept in memory.

# %%
steps = s.steps
snapshot_steps = sorted({0, steps // 8, steps // 4, steps // 2, 3 * steps // 4, steps})

torch.manual_seed(0)
model = GrassmannLM(cfg).to(device)
train_batches = RandomBlockSampler(corpus.train, s.block_size, s.batch_size, seed=1)
snapshots = Snapshots(model, train_batches.next_batch, snapshot_steps)
log = train_lm(model, snapshots, steps, s.lr)
snapshots.finish()
print(f"{steps} steps in {log.seconds:.1f} s; snapshots at steps {snapshots.steps}")

# %% [markdown]
# Every measurement below uses the same held-out material: a few batches of validation windows, whose
# first 128 (quick mode) or 64 (full mode) sequences are also the ones whose geometry we read. For every
# snapshot we collect the layer statistics (`layer_statistics`, section 7.2) and the offset ablation
# (`offset_ablation`, section 7.7) once, here.

# %%
valid_sampler = RandomBlockSampler(corpus.valid, s.block_size, s.batch_size, seed=2)
valid_batches = [valid_sampler.next_batch() for _ in range(by_mode(s.eval_batches, 20))]
x_read = torch.cat([x for x, _ in valid_batches])[: by_mode(128, 64)]  # [sequences, T]

history = {}
for step in snapshots.steps:
    snap = snapshots.model_at(step)
    history[step] = {"stats": layer_statistics(snap, x_read),
                     "ablation": offset_ablation(snap, valid_batches)}
first, last = snapshots.steps[0], snapshots.steps[-1]
valid_loss = {step: h["ablation"].base_loss for step, h in history.items()}
print("validation loss (nats) at the snapshots:", {k: round(v, 3) for k, v in valid_loss.items()})

# %%
fig, ax = plt.subplots(figsize=(6.8, 4))
ax.plot(log.smoothed(20), color="tab:blue", alpha=0.8, label="training (moving average of 20 steps)")
ax.plot(list(valid_loss), list(valid_loss.values()), "o--", color="tab:red",
        label="validation, at the snapshots")
ax.axhline(math.log(V), color="gray", ls=":", label="$\\ln V$ (uniform guess)")
ax.set_xlabel("training step")
ax.set_ylabel("cross-entropy (nats per token)")
ax.set_title(f"The model this chapter reads ({s.name} mode, BPE-{V})")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# A robust claim, and the only one about training we assert: the model learned something (its validation
# loss fell well below that of the untrained model, which sits at $\ln V$).

# %%
assert valid_loss[last] < valid_loss[first] - 1.0, "the model did not learn"
assert_close(torch.tensor(valid_loss[first]), torch.tensor(math.log(V)), rtol=0, atol=0.1)
print(f"validation loss {valid_loss[first]:.3f} -> {valid_loss[last]:.3f} nats "
      f"(ln V = {math.log(V):.3f})")

# %% [markdown]
# ## 7.2 Reading a layer
#
# `layer_statistics(model, x)` hooks the input $h$ of every Grassmann layer and asks the layer for its
# own intermediate quantities (`CausalGrassmannMixing.diagnostics`): the reduced vectors $z$ of (G1),
# for every pair the Plücker norm $\lVert z_t \wedge z_{t-\Delta} \rVert$ and the sine of the angle
# $\theta$ between the two vectors,
#
# $$ \sin\theta_t^\Delta = \frac{\lVert z_t \wedge z_{t-\Delta} \rVert}{|z_t|\,|z_{t-\Delta}|}
#    = \sqrt{1 - \cos^2\theta_t^\Delta} \quad \text{(by the Lagrange identity)}, $$
#
# the feature $g$ of (G4), the gate $\alpha$ of (G5) and the offset weights $a_t^\Delta$. Before we read
# them, we check them against independent computations in float64, on the trained model's last layer.
#
# One caveat about the tolerance. The layer computes the norm in float32 as base times height,
# $|z_t|\,|z_{t-\Delta}^\perp|$ (`geometry.wedge_height`), not by the Lagrange identity, whose
# $|z_t|^2 |z_{t-\Delta}|^2 - \langle z_t, z_{t-\Delta} \rangle^2$ cancels for nearly parallel pairs: its
# rounding error, about $\epsilon_{32} |z_t|^2 |z_{t-\Delta}|^2$, would become an error of up to
# $\sqrt{\epsilon_{32}}\, |z_t|\,|z_{t-\Delta}| \approx 3 \times 10^{-4}\, |z_t|\,|z_{t-\Delta}|$ after the
# square root. We compare in units of $|z_t|\,|z_{t-\Delta}|$ with that worst case, a few
# $\sqrt{\epsilon_{32}}$, as the tolerance; the printed worst error shows how far inside it the layer stays.

# %%
stats = history[last]["stats"]
L = stats[-1]
z = L.z.double()
tol = 4 * math.sqrt(torch.finfo(torch.float32).eps)  # 1.4e-3, in units of |z_t| |z_{t-Δ}|
worst_error = 0.0
for k, delta in enumerate(L.offsets):
    partner = shift_back(z, delta)
    scale = (z.norm(dim=-1) * partner.norm(dim=-1)).clamp_min(1e-30)
    # the norm from the full Plücker vector (chapter 1) == the layer's base-times-height norm
    error = (plucker(z, partner).norm(dim=-1) - L.pair_norm[..., k].double()).abs() / scale
    assert error.max() < tol, (delta, error.max())
    # the sine from atan2 (geometry.pair_angle, float64) == the layer's sine
    assert_close(torch.sin(pair_angle(z, partner)), L.pair_sin[..., k].double(), rtol=0, atol=tol)
    worst_error = max(worst_error, float(error.max()))
for layer in (st for snapshot in history.values() for st in snapshot["stats"]):
    for name in ("pair_sin", "pair_norm", "pair_angle", "plane_angles", "g", "alpha"):
        assert torch.isfinite(getattr(layer, name)).all(), name
    assert layer.pair_sin.min() >= 0 and layer.pair_sin.max() <= 1 + 1e-6  # a sine
    assert torch.all(layer.pair_sin[:, ~layer.valid] == 0)  # no partner: zero vector, sine 0
print(f"{len(L.offsets)} offsets x {L.z.shape[0]} sequences x {L.z.shape[1]} positions per layer: "
      f"norms and sines agree with float64 to {worst_error:.1e} |z_t||z_(t-Δ)| "
      f"(sqrt(eps32) = {math.sqrt(torch.finfo(torch.float32).eps):.1e}); every statistic is finite")

# %% [markdown]
# ## 7.3 The angle between partners
#
# After normalisation (G3), what reaches $W_\text{plu}$ is only the oriented plane: $\hat p$ is the same
# for every pair of vectors that span the plane with the same orientation, whatever their lengths and
# whatever the angle between them. So the angle $\theta \in [0°, 90°]$ between the lines of $z_t$ and
# $z_{t-\Delta}$ is not something the layer reads. It is what tells us how related the two reduced
# vectors are, and how well defined their plane is ($\theta \to 0$ degenerates it, section 7.4).
# A reference: for two independent isotropic Gaussian vectors in $\mathbb{R}^r$ the angle concentrates
# near 90° as $r$ grows.

# %%
reference = torch.Generator().manual_seed(0)
u, v = torch.randn(2, 20_000, cfg.r, generator=reference, dtype=torch.float64)
random_angles = torch.rad2deg(pair_angle(u, v))

fig, axes = plt.subplots(1, cfg.n_layers, figsize=(3.6 * cfg.n_layers, 3.8), sharey=True, squeeze=False)
bins = torch.linspace(0, 90, 31)
colors = plt.cm.viridis(torch.linspace(0, 0.9, len(cfg.offsets)).numpy())
for ax, L0, L1 in zip(axes[0], history[first]["stats"], history[last]["stats"]):
    for k, delta in enumerate(L1.offsets):
        ax.hist(L1.angles_deg(k).numpy(), bins=bins.numpy(), density=True, histtype="step",
                color=colors[k], lw=1.4, label=f"$\\Delta = {delta}$, step {last}")
    ax.hist(torch.cat([L0.angles_deg(k) for k in range(len(L0.offsets))]).numpy(), bins=bins.numpy(),
            density=True, histtype="stepfilled", color="gray", alpha=0.25, label="all $\\Delta$, step 0")
    ax.hist(random_angles.numpy(), bins=bins.numpy(), density=True, histtype="step", color="black",
            ls="--", label=f"random pairs in $\\mathbb{{R}}^{{{cfg.r}}}$")
    ax.set(xlabel="angle $\\theta$ between $z_t$ and $z_{t-\\Delta}$ (degrees)", title=f"layer {L1.layer}")
axes[0, 0].set_ylabel("density (1/degree)")
axes[0, -1].legend(fontsize=7)
plt.show()

# %%
for L0, L1 in zip(history[first]["stats"], history[last]["stats"]):
    print(f"layer {L1.layer}: median angle (degrees) per offset {L1.offsets}")
    print(f"   step {first:4d}: {L0.median_angle_deg().numpy().round(1)}")
    print(f"   step {last:4d}: {L1.median_angle_deg().numpy().round(1)}")
print(f"random pairs in R^{cfg.r}: median {random_angles.median():.1f}")

# what the next paragraph says, asserted (tolerances in degrees)
random_median = float(random_angles.median())
for L0, L1 in zip(history[first]["stats"], history[last]["stats"]):
    assert (L0.median_angle_deg() - random_median).abs().max() < 8  # untrained: like random vectors
    assert (L1.median_angle_deg() < random_median).all()  # trained: more aligned than random
    assert int(L1.median_angle_deg().argmin()) == 0  # Δ = 1 gives the most aligned pairs

# %% [markdown]
# The untrained layers see angles like those of random vectors (every median within 8° of the random
# pairs' median, asserted above). After training the pairs are more aligned than random ones, and in
# every layer the shortest offset, $\Delta = 1$, gives the most aligned pairs: neighbouring tokens have
# more similar reduced vectors than distant ones. The exact medians are in the printout; they are one
# run of a small model, so the page asserts only these comparisons. Section 7.9 shows that the change is
# not a steady drift: the angles first collapse, then reopen.
#
# ## 7.4 Near-degenerate pairs, and when the floor $\varepsilon$ matters
#
# A pair is degenerate when $z_t \parallel z_{t-\Delta}$ (or one of them is 0): the plane collapses to a
# line and $p = z_t \wedge z_{t-\Delta} = 0$. Near that point the direction $\hat p = p / \lVert p
# \rVert$ is ill-conditioned: a small change of $z$ turns it by a large angle, about $1/\sin\theta$ times
# larger. The floor of (G3), $\max(\lVert p \rVert, \varepsilon)$ with $\varepsilon = 10^{-6}$, only acts
# when $\lVert p \rVert = |z_t|\,|z_{t-\Delta}| \sin\theta < \varepsilon$: an **absolute** threshold, so
# whether it matters depends on the scale of $z$ as much as on the angle.

# %%
fig, ax = plt.subplots(figsize=(6.8, 4))
styles = {first: ":", last: "-"}
for step in (first, last):
    for L, color in zip(history[step]["stats"], plt.cm.tab10.colors):
        norms = torch.cat([L.pairs(L.pair_norm, k) for k in range(len(L.offsets))])
        ax.hist(norms.clamp_min(1e-12).log10().numpy(), bins=60, density=True, histtype="step",
                color=color, ls=styles[step], lw=1.4, label=f"layer {L.layer}, step {step}")
ax.axvline(math.log10(L.eps), color="crimson", lw=2, label="$\\log_{10} \\varepsilon$: the floor of (G3)")
ax.set_xlabel("$\\log_{10} \\| z_t \\wedge z_{t-\\Delta} \\|$ (valid pairs, all offsets)")
ax.set_ylabel("density (per decade)")
ax.set_title("How far the Plücker norms stay from the floor")
ax.legend(fontsize=7)
plt.show()

# %%
for step in snapshots.steps:  # every snapshot, not only the two in the figure
    for L in history[step]["stats"]:
        norms = torch.cat([L.pairs(L.pair_norm, k) for k in range(len(L.offsets))])
        fraction = L.floor_fraction()
        assert 0.0 <= fraction <= 1.0
        print(f"step {step:4d}, layer {L.layer}: floor active for {fraction:.2%} of pairs; "
              f"smallest ||p|| = {norms.min():.2e} = {norms.min() / L.eps:,.0f} eps; "
              f"sin(theta) < 0.1 for {L.near_degenerate(0.1).mean():.2%} of pairs")

# %%
for step in snapshots.steps:  # what the next paragraph says, asserted
    for L in history[step]["stats"]:
        assert L.floor_fraction() == 0.0  # the floor never acts
        assert float(L.near_degenerate(0.1).float().mean()) < 0.01  # nearly parallel pairs: under 1%

# %% [markdown]
# The floor was never active, at any snapshot, and nearly parallel pairs ($\sin\theta < 0.1$, an angle
# under 6°) stayed under 1% at every snapshot (both asserted). The printout shows which norms came
# closest to $\varepsilon$: look for the **untrained first layer**. Its input is the raw embedding sum
# (initialised with standard deviation 0.02), so $z$ is small, and $\lVert p \rVert$ scales like
# $|z|^2$; the second layer reads LayerNorm outputs of unit scale. So in this setting the floor is a
# guard for the first steps of the first layer, not a part of what the trained model computes.
#
# ## 7.5 How fast the plane moves
#
# The paper's picture is a flow: the plane $P_t^\Delta = \operatorname{span}\{z_t, z_{t-\Delta}\}$ moves
# along the sequence. The distance between two 2-planes is described by their two **principal angles**
# $0 \le \theta_1 \le \theta_2 \le 90°$ (chapter 1): $\theta_1$ is the smallest angle between a line of
# one plane and a line of the other, $\theta_2$ the angle left after that; the geodesic distance on
# $\mathrm{Gr}(2, r)$ is $\sqrt{\theta_1^2 + \theta_2^2}$. `plane_step_angles` computes them between
# consecutive planes $P_{t-1}^\Delta$ and $P_t^\Delta$ (in float64, only where both pairs have
# $\sin\theta \ge 10^{-3}$). First, two sanity checks. A plane is at distance 0 from itself:

# %%
planes = torch.stack([z, shift_back(z, 4)], dim=-1)[:, 4:]  # [B, T-4, r, 2]: P_t for Δ = 4
self_angles = principal_angles(planes, planes)
assert_close(self_angles, torch.zeros_like(self_angles), rtol=0, atol=1e-5)
other_basis = planes @ torch.tensor([[1.0, 2.0], [-3.0, 0.5]], dtype=torch.float64)  # same planes
assert_close(principal_angles(planes, other_basis), torch.zeros_like(self_angles), rtol=0, atol=1e-5)
print(f"{planes.shape[0] * planes.shape[1]} planes: principal angles with themselves "
      f"<= {self_angles.max():.1e} rad, in any basis")

# %% [markdown]
# And for $\Delta = 1$ consecutive planes **share a line**: $P_{t-1}^1 = \operatorname{span}\{z_{t-1},
# z_{t-2}\}$ and $P_t^1 = \operatorname{span}\{z_t, z_{t-1}\}$ both contain $z_{t-1}$, so $\theta_1 = 0$
# exactly, and the whole motion is the single angle $\theta_2$: the plane turns about $z_{t-1}$. For
# $\Delta \ge 2$ consecutive planes share no vector.

# %%
for L in history[last]["stats"]:
    k1 = L.offsets.index(1)
    steps_1 = L.plane_steps(k1)  # [N, 2] radians
    assert steps_1.shape[0] > 0 and steps_1[:, 0].abs().max() < 1e-6, "Δ = 1 planes share a line"
    print(f"layer {L.layer}, Δ = 1: {steps_1.shape[0]} steps, max theta_1 = {steps_1[:, 0].max():.1e} rad")

# %%
a_ref, b_ref = torch.randn(2, 5_000, cfg.r, 2, generator=reference, dtype=torch.float64)
random_planes = torch.rad2deg(principal_angles(a_ref, b_ref)).median(0).values

fig, axes = plt.subplots(1, cfg.n_layers, figsize=(3.6 * cfg.n_layers, 3.8), sharey=True, squeeze=False)
for ax, L0, L1 in zip(axes[0], history[first]["stats"], history[last]["stats"]):
    for L, ls, when in ((L0, ":", f"step {first}"), (L1, "-", f"step {last}")):
        med = torch.stack([torch.rad2deg(L.plane_steps(k)).median(0).values for k in range(len(L.offsets))])
        ax.plot(L.offsets, med[:, 0], "o" + ls, color="tab:blue", label=f"$\\theta_1$, {when}")
        ax.plot(L.offsets, med[:, 1], "s" + ls, color="tab:orange", label=f"$\\theta_2$, {when}")
    for angle, color in zip(random_planes, ("tab:blue", "tab:orange")):
        ax.axhline(angle, color=color, lw=0.8, ls="--")
    ax.plot([], [], "k--", lw=0.8, label=f"random planes in $\\mathbb{{R}}^{{{cfg.r}}}$")
    ax.set(xlabel="offset $\\Delta$", title=f"layer {L1.layer}", xticks=list(L1.offsets))
axes[0, 0].set_ylabel("median principal angle, $P_{t-1}$ to $P_t$ (degrees)")
axes[0, -1].legend(fontsize=7)
plt.show()

# %%
for L in history[last]["stats"]:
    med = torch.stack([torch.rad2deg(L.plane_steps(k)).median(0).values for k in range(len(L.offsets))])
    print(f"layer {L.layer}, step {last}: median (theta_1, theta_2) in degrees, per offset "
          + ", ".join(f"Δ={d}: ({a:.1f}, {b:.1f})" for d, (a, b) in zip(L.offsets, med.tolist())))
print("random planes in R^{}: median (theta_1, theta_2) = ({:.1f}, {:.1f})".format(
    cfg.r, *random_planes.tolist()))
for L in history[last]["stats"]:  # what the next paragraph says, asserted
    med = torch.stack([torch.rad2deg(L.plane_steps(k)).median(0).values for k in range(len(L.offsets))])
    assert (med[:, 1] > 0.6 * random_planes[1]).all()  # theta_2: large turns at every token
    assert (med[1:, 0] < random_planes[0]).all()  # theta_1 (Δ >= 2): below random, a shared direction

# %% [markdown]
# The plane does not flow smoothly: from one token to the next it turns by large angles (every median
# $\theta_2$ above 60% of that of two unrelated random planes), while for $\Delta \ge 2$ the smaller
# angle $\theta_1$ stays below the random planes' one: consecutive planes share roughly one direction,
# not two (both asserted; the printout has the angles). Whatever "controlled deformation" means, in this small
# model it is a jump at every token rather than a slow drift, and it is about as large for $\Delta = 16$
# as for $\Delta = 2$.
#
# ## 7.6 The gate: how much of $h$ and how much of $g$
#
# (G6) blends $\tilde h_t = \alpha_t \odot h_t + (1 - \alpha_t) \odot g_t$ with $\alpha_t = \sigma(\cdot)
# \in (0, 1)^d$. Where no offset is valid (here only $t = 0$) the layer sets $g_t = 0$, so $\tilde h_0 =
# \alpha_0 \odot h_0$.

# %%
for L in history[last]["stats"]:
    assert L.alpha.min() >= 0 and L.alpha.max() <= 1  # a sigmoid (saturates to 0 or 1 only in float)
    assert torch.all(L.g[:, 0] == 0) and torch.all(L.g[:, 1:].abs().amax(-1) > 0)  # g_0 = 0, else not
    saturated = ((L.alpha == 0) | (L.alpha == 1)).double().mean()
    by_dimension, by_token = L.gate_variance_shares()
    assert 0 <= by_dimension <= 1 and 0 <= by_token <= 1
    print(f"layer {L.layer}: mean alpha {L.alpha.mean():.3f} (share of h), "
          f"1 - alpha {1 - L.alpha.mean():.3f} (share of g); "
          f"alpha at t = 0: {L.alpha_by_position()[0]:.3f}; saturated in float32: {saturated:.2%}")
    print(f"         variance of alpha explained by the dimension alone {by_dimension:.0%}, "
          f"by the token alone {by_token:.0%}")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.9))
for step in (first, last):
    for L, color in zip(history[step]["stats"], plt.cm.tab10.colors):
        ax1.hist(L.alpha.flatten().numpy(), bins=50, range=(0, 1), density=True, histtype="step",
                 color=color, ls=styles[step], lw=1.4, label=f"layer {L.layer}, step {step}")
        if step == last:
            ax2.plot(L.alpha_by_position().numpy(), color=color, label=f"layer {L.layer}, step {step}")
for delta in cfg.offsets:
    ax2.axvline(delta, color="gray", lw=0.7, ls=":")
ax2.plot([], [], color="gray", lw=0.7, ls=":", label="a new offset becomes valid")
ax1.set(xlabel="gate $\\alpha$ (share of $h_t$ in each dimension)", ylabel="density",
        title="Distribution of the gate")
ax2.set(xlabel="position $t$ in the block", ylabel="mean $\\alpha$ over sequences and dimensions",
        title="Mean gate by position")
ax1.legend(fontsize=7)
ax2.legend(fontsize=7)
plt.show()

# %% [markdown]
# At initialisation every gate sits near $\sigma(0) = 0.5$ (all weights start small). What to read in
# the figure and the printout of this run (one seed of a small model, so none of it is a claim the page
# asserts): how far training moved the mean gate of each layer, and how widely it spread the gates. That spread is not a fixed split of channels into "token" and "geometry"
# dimensions: a fixed preference of each dimension explains only part of the gate's variance, the token
# alone less still, and the rest is the interaction of the two: the gate routes each dimension
# differently for each token. On average neither $h$ nor $g$ takes over, and the mean gate barely depends
# on the position: positions with fewer valid offsets (before $t = 16$), and even $t = 0$ where
# $g_0 = 0$, get about the same share of $h$.
#
# ## 7.7 Which offsets carry signal: ablation
#
# To remove offset $\Delta_k$ from a layer at evaluation, set its weight in (G4) to zero and renormalise
# the average over the offsets that remain valid at each position:
#
# $$ a'^{\,\Delta}_t = \frac{a_t^\Delta\,[\Delta \ne \Delta_k]}{\sum_{\Delta' \ne \Delta_k} a_t^{\Delta'}}
#    \qquad (\text{and } a'_t = 0 \text{ where nothing remains, so } g_t = 0). $$
#
# `ablated_weights` computes $a'$; `ablate_offset(layer, k)` makes a layer use it inside a `with` block.
# For the paper's mean over six offsets, removing $\Delta = 1$ gives:

# %%
mixer = model.blocks[0].mix
a, any_valid = mixer.offset_weights(torch.arange(18))
a_abl, any_valid_abl = ablated_weights(a, 0)
print("t   a_t (mean over valid offsets)       a'_t (without Δ = 1)")
for t in (0, 1, 2, 3, 4, 8, 16, 17):
    print(f"{t:2d}  {a[t].numpy().round(3)}  {a_abl[t].numpy().round(3)}")
assert_close(a_abl.sum(-1), any_valid_abl.float(), rtol=0, atol=1e-6)  # rows sum to 1, or are 0
assert not any_valid_abl[1] and torch.equal(any_valid_abl[2:], any_valid[2:])  # t = 1 had only Δ = 1

# %% [markdown]
# Ablating $\Delta_k$ changes the weights only at positions $t \ge \Delta_k$; since every layer is
# causal, the model's predictions at positions $t < \Delta_k$ must not change at all. We check that
# **bit for bit**, for every layer and offset of the trained model, and that positions $t \ge \Delta_k$
# do change. (On the CPU: a GPU's matrix products need not be bitwise reproducible across calls.)

# %%
x_check, y_check = valid_batches[0]
cpu_model = snapshots.model_at(last).cpu()
base = token_losses(cpu_model, x_check, y_check)  # [B, T] per-token cross-entropy
for layer, block in enumerate(cpu_model.blocks):
    for k, delta in enumerate(block.mix.offsets):
        with ablate_offset(block.mix, k):
            ablated = token_losses(cpu_model, x_check, y_check)
        assert torch.equal(ablated[:, :delta], base[:, :delta]), (layer, delta)
        assert not torch.equal(ablated[:, delta:], base[:, delta:]), (layer, delta)
print("ablating Δ changed no prediction before position Δ (exact), and changed later ones")

# %% [markdown]
# Now the measurement: the loss increase on the validation batches when one offset of one layer is
# removed, for the trained model (computed in section 7.1 by `offset_ablation`).

# %%
ablation = history[last]["ablation"]
assert torch.isfinite(ablation.increase).all()
print(f"intact validation loss {ablation.base_loss:.4f} nats; loss increase when removing Δ:")
for layer, row in enumerate(ablation.increase):
    print(f"  layer {layer}: " + "  ".join(f"Δ={d}: {x:+.4f}" for d, x in zip(ablation.offsets[layer], row)))
worst = divmod(int(ablation.increase.argmax()), ablation.increase.shape[1])
print(f"largest increase: layer {worst[0]}, Δ = {ablation.offsets[worst[0]][worst[1]]} "
      f"(+{ablation.increase.max():.4f} nats); offsets whose removal lowers the loss: "
      f"{int((ablation.increase < 0).sum())} of {ablation.increase.numel()}")

# %%
def ablation_heatmap(ax, result, title, limit=None):
    limit = float(result.increase.abs().max()) if limit is None else limit
    im = ax.imshow(result.increase.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    for (i, j), value in zip(torch.cartesian_prod(torch.arange(result.increase.shape[0]),
                                                  torch.arange(result.increase.shape[1])).tolist(),
                             result.increase.flatten().tolist()):
        ax.text(j, i, f"{value:+.3f}", ha="center", va="center", fontsize=8,
                color="white" if abs(value) > 0.6 * limit else "black")
    ax.set(xticks=range(len(result.offsets[0])), xticklabels=result.offsets[0],
           yticks=range(len(result.offsets)), xlabel="ablated offset $\\Delta$", ylabel="layer", title=title)
    ax.grid(False)
    return im


fig, ax = plt.subplots(figsize=(6.4, 1.2 + 0.7 * cfg.n_layers))
im = ablation_heatmap(ax, ablation, f"Loss increase when one offset is removed (step {last})")
fig.colorbar(im, ax=ax, label="validation loss increase (nats)")
plt.show()

# %% [markdown]
# In our run the short offsets carry the signal: removing $\Delta = 1$ costs the most in both layers,
# $\Delta = 2$ less, and removing any of $\Delta \in \{4, 8, 12, 16\}$ slightly **lowers** the loss,
# presumably because their share of the average then goes to the short offsets. The effects are small
# (hundredths of a nat): with the mean, each offset carries only a sixth of $g_t$, and the gate lets much
# of $h_t$ through. A small model trained for a few hundred steps is not the paper's model, so read this as a
# method, not a result about the paper's setting; full mode runs the same measurement on a larger model.
#
# ## 7.8 Letting the model weigh its offsets
#
# If the long offsets dilute the short ones, a model allowed to weigh them should down-weight them.
# `aggregate="learned"` (a named variant, not the paper's layer; one public reproduction uses it)
# replaces the mean by softmax weights over offsets, renormalised over the valid ones. We train that
# model exactly like the first one, with snapshots at every eighth of training.

# %%
torch.manual_seed(0)
learned = GrassmannLM(cfg.replace(aggregate="learned")).to(device)
learned_batches = RandomBlockSampler(corpus.train, s.block_size, s.batch_size, seed=1)
learned_steps = sorted({round(i * steps / 8) for i in range(9)})
learned_snapshots = Snapshots(learned, learned_batches.next_batch, learned_steps)
learned_log = train_lm(learned, learned_snapshots, steps, s.lr)
learned_snapshots.finish()
learned_ablation = offset_ablation(learned, valid_batches)
weights = {step: torch.stack([torch.softmax(state[f"blocks.{i}.mix.offset_logits"], -1)
                              for i in range(cfg.n_layers)])
           for step, state in learned_snapshots.states.items()}  # step -> [layers, offsets]
assert all(torch.isfinite(w).all() and (w > 0).all() for w in weights.values())
assert_close(weights[last].sum(-1), torch.ones(cfg.n_layers), rtol=0, atol=1e-5)
print(f"{steps} steps in {learned_log.seconds:.1f} s; validation loss {learned_ablation.base_loss:.3f} "
      f"(mean aggregate: {ablation.base_loss:.3f})")
for i in range(cfg.n_layers):
    print(f"layer {i}: learned weights {dict(zip(cfg.offsets, (round(w, 3) for w in weights[last][i].tolist())))}")

# %%
fig, axes = plt.subplots(1, cfg.n_layers, figsize=(3.8 * cfg.n_layers, 3.6), sharey=True, squeeze=False)
for i, ax in enumerate(axes[0]):
    trajectory = torch.stack([weights[step][i] for step in learned_snapshots.steps])  # [snapshots, m]
    for k, delta in enumerate(cfg.offsets):
        ax.plot(learned_snapshots.steps, trajectory[:, k].numpy(), "o-", ms=3, color=colors[k],
                label=f"$\\Delta = {delta}$")
    ax.axhline(1 / len(cfg.offsets), color="gray", ls=":", label=f"the mean: $1/{len(cfg.offsets)}$")
    ax.set(xlabel="training step", title=f"learned weights, layer {i}")
axes[0, 0].set_ylabel("softmax weight of the offset")
axes[0, 0].legend(fontsize=7)
plt.show()

# %% [markdown]
# And the ablation of both models side by side (same colour scale):

# %%
print("learned model, loss increase when removing Δ:")
for layer, row in enumerate(learned_ablation.increase):
    print(f"  layer {layer}: " + "  ".join(f"Δ={d}: {x:+.4f}" for d, x in zip(cfg.offsets, row)))
limit = float(torch.cat([ablation.increase, learned_ablation.increase]).abs().max())
fig, axes = plt.subplots(2, 1, figsize=(6.4, 2.4 + 1.4 * cfg.n_layers), layout="constrained")
for ax, result, name in ((axes[0], ablation, "mean over offsets (the paper)"),
                         (axes[1], learned_ablation, "learned softmax weights")):
    im = ablation_heatmap(ax, result, f"{name}: loss increase when ablated", limit)
fig.colorbar(im, ax=axes, label="validation loss increase (nats)")
plt.show()

# %%
ranks_ablation = ablation.increase.argsort(dim=1, descending=True)[:, :2]
ranks_learned = weights[last].argsort(dim=1, descending=True)[:, :2]
for i in range(cfg.n_layers):
    print(f"layer {i}: two most important offsets by ablation (mean model) "
          f"{[cfg.offsets[k] for k in ranks_ablation[i].tolist()]}, "
          f"by learned weight {[cfg.offsets[k] for k in ranks_learned[i].tolist()]}")
for i in range(cfg.n_layers):  # what the next paragraph says, asserted
    assert int(weights[last][i].argmax()) == 0  # Δ = 1 ends with the largest learned weight
    assert (weights[last][i][2:] < 1 / len(cfg.offsets)).all()  # the four long offsets: below the mean's 1/6
    assert set(ranks_ablation[i].tolist()) == set(ranks_learned[i].tolist())  # same two offsets

# %% [markdown]
# The learned weights tell the same story as the ablation, without being told: the four long offsets
# end below the mean's weight of 1/6, $\Delta = 1$ ends with the largest weight, and in every layer the
# two offsets with the largest learned weights are the two whose ablation costs the mean model most
# (all asserted above; the figure shows the trajectories, the printout the numbers).
# Ablating the learned model concentrates the cost on $\Delta = 1$ even more, and makes it several
# times larger (it carries half of $g_t$, not a sixth). Both models are one seed each; we do not compare
# their losses.
#
# ## 7.9 How the statistics evolve during training
#
# Finally, everything at every snapshot: for each layer (columns), the median pair angle per offset,
# the median plane step $\theta_2$, and the ablation cost per offset.

# %%
fig, axes = plt.subplots(3, cfg.n_layers, figsize=(3.6 * cfg.n_layers + 1.4, 8.4), sharex=True,
                         sharey="row", squeeze=False, layout="constrained")
steps_seen = snapshots.steps
for i in range(cfg.n_layers):
    angle = torch.stack([history[st]["stats"][i].median_angle_deg() for st in steps_seen])  # [S, m]
    turn = torch.stack([torch.stack([torch.rad2deg(history[st]["stats"][i].plane_steps(k)[:, 1]).median()
                                     for k in range(len(cfg.offsets))]) for st in steps_seen])
    cost = torch.stack([history[st]["ablation"].increase[i] for st in steps_seen])
    for k, delta in enumerate(cfg.offsets):
        style = dict(color=colors[k], marker="o", ms=3, label=f"$\\Delta = {delta}$")
        axes[0, i].plot(steps_seen, angle[:, k].numpy(), **style)
        axes[1, i].plot(steps_seen, turn[:, k].numpy(), **style)
        axes[2, i].plot(steps_seen, cost[:, k].numpy(), **style)
    axes[0, i].set_title(f"layer {i}")
    axes[2, i].set_xlabel("training step")
    axes[2, i].axhline(0, color="gray", lw=0.8)
axes[0, 0].set_ylabel("median pair angle $\\theta$ (degrees)")
axes[1, 0].set_ylabel("median plane step $\\theta_2$ (degrees)")
axes[2, 0].set_ylabel("loss increase when ablated (nats)")
fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside right center", fontsize=8)
plt.show()

# %%
for i in range(cfg.n_layers):
    angle = {st: round(float(history[st]["stats"][i].median_angle_deg().median()), 1) for st in steps_seen}
    cost_1 = {st: round(float(history[st]["ablation"].increase[i, 0]), 4) for st in steps_seen}
    print(f"layer {i}: median pair angle over offsets by step {angle}")
    print(f"         cost of removing Δ = 1 by step {cost_1}")

# %% [markdown]
# What to look for in the printout and the figure (one seed of a small model: the page asserts only the
# endpoints checked in the earlier sections). In the runs we made, the geometry changed fastest at the
# start: early in training the pair angles collapsed (the reduced vectors first align, as if each layer
# first found one shared direction), then reopened slowly as the loss kept falling, ending below their
# starting values; the plane steps followed the same path; the ablation costs started at zero (an
# untrained model gains nothing from any offset) and the cost of $\Delta = 1$ grew towards the end. How
# much of this survives a larger model and longer training is what full mode is for.
#
# **Summary.** The quantities the paper's "Grassmann flow" is made of can be read directly from a
# trained model, and checked: the pair sines and Plücker norms agree with independent computations, the
# principal angles vanish where geometry says they must (a plane with itself; consecutive $\Delta = 1$
# planes, which share a line), and ablating an offset changes nothing where it was not used, bit for
# bit. What they showed in our small run: pairs are nearly never degenerate and the floor $\varepsilon$
# never acts after initialisation; the pair planes jump at every token rather than flow; the gate keeps
# a balanced blend; and the signal sits in the shortest offsets, which a learned weighting finds by
# itself. Interpretable quantities, yes; a simple story about subspaces deforming smoothly, not in this
# model.
#
# **Questions.** (Answers for instructors are on the instructors' page.)
#
# 1. Why must ablating an offset change nothing, bit for bit, at positions where that offset was not
#    valid? What would it mean if it did?
# 2. Consecutive $\Delta = 1$ planes $P_{t-1} = \operatorname{span}(z_{t-1}, z_{t-2})$ and
#    $P_t = \operatorname{span}(z_t, z_{t-1})$ always have $\theta_1 = 0$. Why?
# 3. The floor $\varepsilon$ never acted in this run. Construct an input for which it would, and say
#    what the layer computes there.
#
# ## Exercises

# %%
from gflow_book import chapter_exercises
from gflow_book.checks import check_ablation_weights, check_pair_sine, check_plane_angles

exercise = chapter_exercises("07_geometry_trained")

# %% [markdown]
# **Exercise 7.1 (the pair sine).** Write `pair_sine(z, delta)` for `z` of shape `[B, T, r]`: the sine of
# the angle between $z_t$ and $z_{t-\Delta}$, shape `[B, T]`, from the Lagrange identity (without forming
# the Plücker vector), and 0 where $t < \Delta$ or a vector is zero.

# %%
@exercise
def pair_sine(z, delta):
    raise NotImplementedError("Exercise 7.1: your code here")


# %%
check_pair_sine(pair_sine)

# %% [markdown]
# **Exercise 7.2 (the ablation weights).** Write `ablation_weights(a, k)`: given offset weights `a` of
# shape `[T, m]` (each row sums to 1 over the valid offsets, or is 0), return the weights with offset `k`
# removed and each row renormalised over the offsets that remain; a row with nothing left is 0. The check
# uses the paper's mean and learned softmax weights.

# %%
@exercise
def ablation_weights(a, k):
    raise NotImplementedError("Exercise 7.2: your code here")


# %%
check_ablation_weights(ablation_weights)

# %% [markdown]
# **Exercise 7.3 (principal angles).** Write `plane_angles(a, b)` for `a, b` of shape `[..., r, 2]`: the two
# principal angles between the planes spanned by the columns of `a` and of `b`, in radians, ascending,
# shape `[..., 2]`. It must not depend on which basis of each plane you are given.

# %%
@exercise
def plane_angles(a, b):
    raise NotImplementedError("Exercise 7.3: your code here")


# %%
check_plane_angles(plane_angles)

# %%
exercise.summary();
