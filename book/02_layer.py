# %% [markdown]
# # 2. The layer
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gflow-lite/gflow_lite/blob/main/book/02_layer.ipynb)
#
# This chapter builds the **Causal Grassmann layer** one equation at a time, with the weights of
# `gflow_lite`'s `CausalGrassmannMixing`, and checks after each step that we compute what the library
# computes. The paper's equations are unnumbered; we number them (G1)–(G6) as the library's docstring
# does:
#
# $$
# \begin{aligned}
# &\text{(G1)}\quad z_t = W_\text{red}\, h_t + b_\text{red} && \text{reduce to } r \text{ dimensions}\\
# &\text{(G2)}\quad p_t^{\Delta} = z_t \wedge z_{t-\Delta}, \quad \Delta \in \mathcal{W},\ t - \Delta \ge 0 && \text{Plücker coordinates of a pair}\\
# &\text{(G3)}\quad \hat p_t^{\Delta} = p_t^{\Delta} / \max(\lVert p_t^{\Delta} \rVert, \varepsilon) && \text{normalise}\\
# &\text{(G4)}\quad g_t = \tfrac{1}{|\mathcal{W}_t|} \textstyle\sum_{\Delta \in \mathcal{W}_t} \big(W_\text{plu}\, \hat p_t^{\Delta} + b_\text{plu}\big) && \text{project, average over valid offsets}\\
# &\text{(G5)}\quad \alpha_t = \sigma\big(W_\text{gate} [h_t; g_t] + b_\text{gate}\big) && \text{gate}\\
# &\text{(G6)}\quad \tilde h_t = \alpha_t \odot h_t + (1 - \alpha_t) \odot g_t && \text{blend}
# \end{aligned}
# $$
#
# **Learning goals.** After this chapter you can
#
# 1. implement (G1)–(G6) and match the library's layer to floating-point precision;
# 2. derive the fast identity that replaces one Plücker product per offset by one per token;
# 3. read the gate as a convex blend, the layer's only skip path;
# 4. prove causality by perturbation, and write a detector that finds any dependence on the future.
#
# **Prerequisites.** Chapter 1 (Plücker coordinates, the Lagrange identity); PyTorch tensors and
# `nn.Linear`. Chapter 3 puts this layer into a block and a whole language model.

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
import time

import matplotlib.pyplot as plt
import torch
from torch.testing import assert_close

from gflow_book import scratch
from gflow_book.sizing import describe_mode
from gflow_lite import PAPER_OFFSETS, CausalGrassmannMixing
from gflow_lite.analysis import layer_diagnostics
from gflow_lite.geometry import n_plucker, plucker
from gflow_lite.model import shift_back

print(describe_mode())
torch.manual_seed(0)
plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3})

# %% [markdown]
# ## 2.1 A small layer to take apart
#
# Width $d = 16$, reduced width $r = 6$ (so $P = 15$ Plücker coordinates), offsets $\{1, 2, 4\}$, and a
# batch of two sequences of twelve token states. `impl="reference"` asks the library for its literal
# implementation; section 2.8 meets the fast one.

# %%
d, r, offsets, T = 16, 6, (1, 2, 4), 12
layer = CausalGrassmannMixing(d, r, offsets, impl="reference")
layer.eval().requires_grad_(False)  # we only evaluate it here
h = torch.randn(2, T, d)
lib = layer_diagnostics(layer, h)  # the library's own z, g and alpha, to compare with
print({name: tuple(p.shape) for name, p in layer.named_parameters()})

# %% [markdown]
# ## 2.2 (G1) Reduce
#
# One linear map per layer, shared by all offsets, takes each token state from $d$ to $r$ dimensions.

# %%
z = h @ layer.W_red.weight.T + layer.W_red.bias  # [B, T, r]
assert_close(z, lib["z"], rtol=1e-5, atol=1e-6)
print("z:", tuple(z.shape))

# %% [markdown]
# ## 2.3 (G2) Pair each token with the past
#
# For each offset $\Delta$, token $t$ is paired with token $t - \Delta$. The first $\Delta$ tokens have
# no partner at that offset: we give them a zero partner and mark them invalid.

# %%
def pair_past(z, delta):
    """Partner z_{t-Δ} for every t (zeros where t < Δ) and the mask t >= Δ."""
    T = z.shape[1]
    partner = torch.zeros_like(z)
    if delta < T:
        partner[:, delta:] = z[:, : T - delta]
    return partner, (torch.arange(T, device=z.device) >= delta).to(z.dtype)


for delta in offsets:
    assert torch.equal(pair_past(z, delta)[0], shift_back(z, delta))  # == library
n_valid_at = sum(pair_past(z, delta)[1] for delta in offsets)
print("valid offsets per position:", n_valid_at.int().tolist())

# %% [markdown]
# Compare who meets whom. Attention scores every earlier token; the Grassmann layer sees only the
# partners at the fixed offsets, here the paper's $\{1, 2, 4, 8, 12, 16\}$ over 40 positions. The
# library's layer reports the valid pairs itself (`offset_weights`).

# %%
n_pos = 40
paper_layer = CausalGrassmannMixing(8, 4, PAPER_OFFSETS)
a, _ = paper_layer.offset_weights(torch.arange(n_pos))  # [T, m], 0 where invalid
grass = torch.zeros(n_pos, n_pos)
for k, delta in enumerate(PAPER_OFFSETS):
    t_valid = torch.arange(delta, n_pos)
    assert torch.all(a[t_valid, k] > 0) and torch.all(a[:delta, k] == 0)
    grass[t_valid, t_valid - delta] = 1.0
attn_mask = torch.ones(n_pos, n_pos).tril()

fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
panels = ((attn_mask, "attention: every $s \\leq t$"),
          (grass + 0.5 * torch.eye(n_pos), "Grassmann: $s = t - \\Delta$ (and $t$)"))
for ax, (m, title) in zip(axes, panels):
    ax.imshow(m.numpy(), cmap="Greys", vmin=0, vmax=1)
    ax.set(xlabel="partner position s", ylabel="position t",
           title=f"{title}\n{int((m == 1).sum())} pairs")
    ax.grid(False)
plt.show()

# %% [markdown]
# ## 2.4 (G2)–(G3) Plücker coordinates, normalised
#
# Each pair becomes the Plücker vector of the plane it spans (chapter 1), then is scaled to unit length.
# The paper calls the normalisation optional and writes it with a floor $\varepsilon$ against division
# by zero; the library's default is $\varepsilon = 10^{-6}$. A zero partner gives $p = 0$, hence
# $\hat p = 0$.

# %%
p_hat = {}
for delta in offsets:
    p = plucker(z, pair_past(z, delta)[0])  # (G2) [B, T, P]
    p_hat[delta] = p / p.norm(dim=-1, keepdim=True).clamp_min(layer.eps)  # (G3)
print("P =", p_hat[1].shape[-1], "= r(r-1)/2 =", n_plucker(r))
print("norms at t = 0..5 for Δ = 4:", p_hat[4][0, :6].norm(dim=-1).numpy().round(3))

# %% [markdown]
# ## 2.5 (G4) Project back and average over the valid offsets
#
# A single $W_\text{plu} \in \mathbb{R}^{d \times P}$ maps every normalised Plücker vector back to width
# $d$; the results are averaged over the offsets valid at $t$. Where no offset is valid (here $t = 0$)
# the paper is silent; the library sets $g_t = 0$.

# %%
g = torch.zeros_like(h)
n_valid = torch.zeros(T)
for delta in offsets:
    valid = pair_past(z, delta)[1]
    g = g + valid[:, None] * (p_hat[delta] @ layer.W_plu.weight.T + layer.W_plu.bias)
    n_valid = n_valid + valid
g = g / n_valid.clamp_min(1)[:, None]  # (G4)

assert_close(g, lib["g"], rtol=1e-5, atol=1e-6)
assert torch.all(g[:, 0] == 0)  # no partner at t = 0
print("g:", tuple(g.shape))

# %% [markdown]
# ## 2.6 (G5)–(G6) The gate and the blend
#
# A per-dimension gate $\alpha_t \in (0, 1)^d$, computed from both $h_t$ and $g_t$, blends them
# convexly. This blend is the layer's only skip path: there is no separate residual around the mixer.

# %%
u = torch.cat([h, g], dim=-1)  # [B, T, 2d]
alpha = torch.sigmoid(u @ layer.W_gate.weight.T + layer.W_gate.bias)  # (G5)
h_mix = alpha * h + (1 - alpha) * g  # (G6)
assert_close(alpha, lib["alpha"], rtol=1e-5, atol=1e-6)
assert_close(h_mix, layer(h), rtol=1e-5, atol=1e-6)  # step by step == the library
print("our (G1)-(G6) equal CausalGrassmannMixing on the same weights")

# %% [markdown]
# Two consequences worth asserting. The blend is convex, so every output coordinate lies between the
# corresponding coordinates of $h_t$ and $g_t$. And at positions without partners ($g_t = 0$) the layer
# only rescales the token: $\tilde h_t = \alpha_t \odot h_t$.

# %%
tol = 1e-6
assert torch.all(h_mix >= torch.minimum(h, g) - tol)
assert torch.all(h_mix <= torch.maximum(h, g) + tol)
assert_close(h_mix[:, 0], alpha[:, 0] * h[:, 0], rtol=1e-6, atol=1e-7)
print(f"gate at initialisation: mean {alpha.mean():.3f}, "
      f"range [{alpha.min():.3f}, {alpha.max():.3f}]")

# %% [markdown]
# ## 2.7 The whole layer in one function
#
# The same steps, gathered into one function of a layer's weights and an input. Chapter 3 builds a
# block and a whole model on it; the book keeps the same function as `gflow_book.scratch` for that, and
# the assert below checks that the two agree.

# %%
def grassmann_from_scratch(layer, h):
    z = h @ layer.W_red.weight.T + layer.W_red.bias  # (G1)
    g = torch.zeros_like(h)
    n_valid = torch.zeros(h.shape[1], dtype=h.dtype, device=h.device)
    for delta in layer.offsets:
        partner, valid = pair_past(z, delta)
        p = plucker(z, partner)  # (G2)
        p_hat = p / p.norm(dim=-1, keepdim=True).clamp_min(layer.eps)  # (G3)
        g = g + valid[:, None] * (p_hat @ layer.W_plu.weight.T + layer.W_plu.bias)
        n_valid = n_valid + valid
    g = g / n_valid.clamp_min(1)[:, None]  # (G4)
    u = torch.cat([h, g], dim=-1)
    alpha = torch.sigmoid(u @ layer.W_gate.weight.T + layer.W_gate.bias)  # (G5)
    return alpha * h + (1 - alpha) * g  # (G6)


# the paper's sizes: d = 256, r = 32, six offsets; both library implementations
big = CausalGrassmannMixing(256, 32, PAPER_OFFSETS, impl="reference")
big.eval().requires_grad_(False)
h_big = torch.randn(2, 40, 256)
ours = grassmann_from_scratch(big, h_big)
for impl in ("reference", "fast"):
    big.impl = impl
    assert_close(ours, big(h_big), rtol=1e-4, atol=1e-5)
assert_close(ours, scratch.grassmann_from_scratch(big, h_big), rtol=0, atol=0)  # the book's copy
print("from scratch == library (reference and fast), d = 256, r = 32,", PAPER_OFFSETS)

# %% [markdown]
# ## 2.8 The fast identity
#
# The reference path computes, for every token, one Plücker vector and one $P \times d$ projection
# *per offset*. Two facts make one of each enough:
#
# * the wedge is linear in its second argument: $z \wedge (a x + b y) = a\,(z \wedge x) + b\,(z \wedge y)$;
# * the normalisation divides by a scalar $n_t^\Delta = \max(\lVert z_t \wedge z_{t-\Delta} \rVert,
#   \varepsilon)$, which $O(r)$ work gives without forming the wedge: the Lagrange identity
#   $\sqrt{|z_t|^2 |z_{t-\Delta}|^2 - \langle z_t, z_{t-\Delta}\rangle^2}$, or base times height,
#   $|z_t|\,|z_{t-\Delta}^\perp|$ with $z_{t-\Delta}^\perp$ the part of $z_{t-\Delta}$ orthogonal to $z_t$, which is
#   what the library computes (`geometry.wedge_height`: no cancellation for nearly parallel pairs).
#
# Hence, with $a_t^\Delta = 1/|\mathcal{W}_t|$ for valid offsets and 0 otherwise,
#
# $$ \sum_\Delta a_t^\Delta\, \frac{z_t \wedge z_{t-\Delta}}{n_t^\Delta}
#    = z_t \wedge w_t, \qquad w_t = \sum_\Delta \frac{a_t^\Delta}{n_t^\Delta}\, z_{t-\Delta}, $$
#
# and since $W_\text{plu}$ is linear, $g_t = W_\text{plu}(z_t \wedge w_t) + b_\text{plu}$ wherever some
# offset is valid. Exercise 2.1 asks you to compute $w_t$. First, linearity:

# %%
zt, x1, x2 = torch.randn(3, 32, dtype=torch.float64)
combined = plucker(zt, 0.3 * x1 - 2.0 * x2)
separate = 0.3 * plucker(zt, x1) - 2.0 * plucker(zt, x2)
assert_close(combined, separate, rtol=1e-12, atol=1e-12)

# %% [markdown]
# The library's `impl="fast"` uses this identity. Same parameters, same function, fewer operations:

# %%
fast = CausalGrassmannMixing(256, 32, PAPER_OFFSETS, impl="fast")
fast.eval().requires_grad_(False)
fast.load_state_dict(big.state_dict())
big.impl = "reference"
h_long = torch.randn(4, 256, 256)
with torch.no_grad():
    assert_close(fast(h_long), big(h_long), rtol=1e-4, atol=1e-5)
    seconds = {}
    for name, module in (("reference", big), ("fast", fast)):
        module(h_long)  # warm-up
        start = time.perf_counter()
        for _ in range(3):
            module(h_long)
        seconds[name] = (time.perf_counter() - start) / 3
ms = {name: round(1e3 * t) for name, t in seconds.items()}
print(f"B=4, L=256, d=256, r=32, 6 offsets, one forward on this machine: "
      f"reference {ms['reference']} ms, fast {ms['fast']} ms")

# %% [markdown]
# ## 2.9 Causality, by perturbation
#
# A causal layer's output at $t$ may depend only on inputs at positions $\le t$. The direct test:
# change the input at one position $s$ and check that every output before $s$ is **bit-for-bit**
# unchanged.

# %%
with torch.no_grad():
    base = layer(h)
    for s in range(T):
        h2 = h.clone()
        h2[:, s] += 1.0
        out = layer(h2)
        assert torch.equal(out[:, :s], base[:, :s])  # the past is untouched
        assert not torch.equal(out[:, s], base[:, s])  # the token itself matters
print(f"changing token s never changed an output before s (all {T} positions)")

# %% [markdown]
# **Summary.** The layer is six short equations; our step-by-step version equals the library's on the
# same weights, and so does the fast path that forms one Plücker vector per token instead of one per
# offset. The gate blends the token with the geometric feature convexly, the layer's only skip path.
# Pairing with the past is causal by construction and by test. Chapter 3 puts the layer into a block and
# a language model, trains it, and shows what happens when the pairing looks at the future instead.
#
# **Questions.** (Answers for instructors are on the instructors' page.)
#
# 1. Why does the fast identity need the normalisation to be a division by a *scalar* per pair? What
#    would break if (G3) normalised each coordinate separately?
# 2. At $t = 0$ the layer returns $\alpha_0 \odot h_0$. Why can it not return $h_0$ unchanged, and
#    does that matter once the layer sits in a block with LayerNorm?
# 3. The perturbation test in section 2.9 changes one input by $+1$. Could a non-causal layer pass it?
#    What does an exact Jacobian (the check of exercise 2.2 computes one) see that a single
#    perturbation might miss?
#
# ## Exercises

# %%
from gflow_book import chapter_exercises
from gflow_book.checks import check_dependency_matrix, check_fast_partner, check_grassmann_layer

exercise = chapter_exercises("02_layer")

# %% [markdown]
# **Exercise 2.1 (the fast partner).** Write `fast_partner(z, offsets, eps)` for `z` of shape
# `[B, T, r]`: the vector $w_t$ of section 2.8, so that `plucker(z, w)` equals the mean over valid
# offsets of the normalised wedges $z_t \wedge z_{t-\Delta}$ (and $w_t = 0$ where no offset is valid).
# Compute the norms in $O(r)$ (the Lagrange identity, or base times height), not by forming the wedges
# (the check measures it).

# %%
@exercise
def fast_partner(z, offsets, eps):
    raise NotImplementedError("Exercise 2.1: your code here")


# %%
check_fast_partner(fast_partner)

# %% [markdown]
# **Exercise 2.2 (a causality detector).** Write `dependency_matrix(mixer, T, d)`: given any function
# `mixer` from `[1, T, d]` to `[1, T, d]`, return a `[T, T]` bool tensor whose entry `[t, s]` is True
# when the output at `t` changes as the input at `s` is perturbed. The check runs it on the causal
# layer, on a layer that pairs with the future (chapter 3) and on two simple mixers. (No public
# reproduction had such a test; two shipped a leak.)

# %%
@exercise
def dependency_matrix(mixer, T, d):
    raise NotImplementedError("Exercise 2.2: your code here")


# %%
check_dependency_matrix(dependency_matrix)

# %% [markdown]
# **Exercise 2.3 (the fast layer, end to end).** Write `grassmann_layer(h, weights, offsets, eps)`: the
# layer (G1)–(G6) for `h` of shape `[B, T, d]`, with `weights` a dict of the six tensors `W_red`, `b_red`,
# `W_plu`, `b_plu`, `W_gate`, `b_gate` in `nn.Linear` layout (weight `[out, in]`). Use the fast identity
# of section 2.8 (your `fast_partner` from 2.1): one projection per token, not one per offset. Where no
# offset is valid, $g_t = 0$.

# %%
@exercise
def grassmann_layer(h, weights, offsets, eps):
    raise NotImplementedError("Exercise 2.3: your code here")


# %%
check_grassmann_layer(grassmann_layer)

# %%
exercise.summary();
