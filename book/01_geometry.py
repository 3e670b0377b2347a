# %% [markdown]
# # 1. Lifting vs Plücker geometry
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gflow-lite/gflow_lite/blob/main/book/01_geometry.ipynb)
#
# The paper's argument starts from geometry. Self-attention, it says, *lifts* a sequence of $L$ vectors
# into an $L \times L$ tensor of pairwise scores, and then reads its output back out of that tensor.
# The Causal Grassmann layer instead takes each token's vector together with a few earlier ones, looks
# at the **2-plane** they span, and describes that plane by its **Plücker coordinates**: a fixed-size
# vector per pair, however long the sequence.
#
# This chapter builds both objects from scratch, counts what each one costs, and checks every
# statement numerically against `gflow_lite`.
#
# **Learning goals.** After this chapter you can
#
# 1. build the causal attention tensor of one head and say how its size grows with $L$;
# 2. compute the Plücker coordinates of the plane spanned by two vectors in $\mathbb{R}^r$, and see the
#    cross product in them when $r = 3$;
# 3. tell a Plücker vector (a point of the Grassmannian $\mathrm{Gr}(2, r)$) from an arbitrary vector
#    with the Grassmann–Plücker relations;
# 4. say what *normalised* Plücker coordinates remember (the plane and its orientation) and what they
#    forget (lengths, angles, the choice of basis), and compare two planes by their principal angles.
#
# **Prerequisites.** Linear algebra (span, determinant, orthonormal bases, the SVD by name); PyTorch
# tensor indexing and broadcasting; chapter 0 for how the exercises work.

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
from mpl_toolkits.mplot3d.art3d import Poly3DCollection
from torch.testing import assert_close

from gflow_lite import CausalGrassmannMixing, CausalSelfAttention, PAPER_OFFSETS
from gflow_lite import geometry as geo
from gflow_book.sizing import describe_mode

print(describe_mode())
torch.manual_seed(0)
plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3})

# %% [markdown]
# ## 1.1 Attention lifts a sequence to an $L \times L$ tensor
#
# Take $L$ token states $h_1, \dots, h_L \in \mathbb{R}^d$. One attention head forms queries and keys,
# and scores **every pair** $(t, s)$:
#
# $$ S_{ts} = \frac{\langle W_Q h_t,\, W_K h_s \rangle}{\sqrt{d_\text{head}}}, \qquad
#    A_{t\cdot} = \operatorname{softmax}_{s \le t} S_{t s}, \qquad y_t = W_O \sum_{s \le t} A_{ts} W_V h_s. $$
#
# The sequence has been *lifted* into the tensor $S \in \mathbb{R}^{L \times L}$ (causally, its lower
# triangle). We build it by hand from the weights of `gflow_lite`'s attention module, then check that our
# $y$ is exactly what the module computes.

# %%
L, d = 10, 16
attn = CausalSelfAttention(d, n_heads=1).eval()
h = torch.randn(1, L, d)

q, k, v = attn.qkv(h)[0].split(d, dim=-1)  # [L, d] each
S = q @ k.T / math.sqrt(d)  # [L, L]: one score per pair (t, s)
causal = torch.ones(L, L, dtype=torch.bool).tril()  # s <= t
A = torch.softmax(S.masked_fill(~causal, float("-inf")), dim=-1)
y = attn.proj(A @ v)

assert_close(y, attn(h)[0], rtol=1e-5, atol=1e-6)  # our lift == the library's attention
assert_close(A.sum(-1), torch.ones(L), rtol=0, atol=1e-6)  # each row is a distribution
assert int(causal.sum()) == L * (L + 1) // 2  # the causal lift has L(L+1)/2 entries
print(f"L = {L}: the head computed {int(causal.sum())} pairwise scores")

# %% [markdown]
# The Grassmann layer also works with pairs, but only with pairs $(t, t - \Delta)$ for a fixed set of
# offsets (the paper's $\{1, 2, 4, 8, 12, 16\}$). The library's layer reports which offsets are valid at
# each position; counting them gives the number of pairs it touches.

# %%
layer = CausalGrassmannMixing(256, r=32, offsets=PAPER_OFFSETS)  # the paper's d = 256, r = 32


def grassmann_pairs(L: int) -> int:
    """Number of (t, t - Δ) pairs the layer forms in a sequence of length L."""
    a, _ = layer.offset_weights(torch.arange(L))
    return int((a > 0).sum())


for L_ in (10, 100, 1000):
    assert grassmann_pairs(L_) == sum(max(L_ - delta, 0) for delta in PAPER_OFFSETS)
print({L_: grassmann_pairs(L_) for L_ in (10, 100, 1000)})

# %% [markdown]
# ## 1.2 Two vectors span a plane; its Plücker coordinates
#
# The set of all 2-dimensional subspaces of $\mathbb{R}^r$ is the **Grassmannian** $\mathrm{Gr}(2, r)$.
# Given two vectors $u, v$, stack them as the columns of an $r \times 2$ matrix. Its $2 \times 2$ minors
#
# $$ p_{ij} = u_i v_j - u_j v_i, \qquad 0 \le i < j < r, $$
#
# are the **Plücker coordinates** of the plane $\operatorname{span}\{u, v\}$: the wedge product
# $u \wedge v$, a vector with $P = \binom{r}{2}$ entries. We use the order of `torch.triu_indices`:
# $(0,1), (0,2), \dots, (0, r-1), (1, 2), \dots$. Here it is with two loops:

# %%
def plucker_from_scratch(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r = len(u)
    return torch.stack([u[i] * v[j] - u[j] * v[i]
                        for i in range(r) for j in range(i + 1, r)])


u, v = torch.randn(5), torch.randn(5)
p = plucker_from_scratch(u, v)
assert_close(p, geo.plucker(u, v), rtol=0, atol=1e-6)  # == the library
assert_close(geo.plucker(v, u), -p, rtol=0, atol=1e-6)  # v ∧ u = -(u ∧ v)
assert geo.n_plucker(5) == len(p) == 10 and geo.n_plucker(32) == 496
print("p =", p.numpy().round(3))

# %% [markdown]
# ### What each side costs
#
# Each pair becomes its $P = r(r-1)/2$ Plücker coordinates ($P = 496$ for the paper's $r = 32$). So per
# layer the Grassmann layer, computed in the paper's order (every pair's Plücker vector formed, as
# `impl="reference"` does), handles about $6 \cdot 496 \cdot L$ numbers, linear in $L$, while four
# attention heads hold $4 \cdot L(L+1)/2$ scores, quadratic in $L$. The constants matter: below a
# crossover length the "linear" layer handles *more* numbers than attention. The count below is that of
# the paper's order. Chapter 2 derives an equal layer that averages over the offsets first and forms
# one Plücker vector per token, $496 L$ numbers, whose crossover is much shorter; chapter 4 counts the
# arithmetic of every path.

# %%
lengths = [2**k for k in range(4, 15)]
n_attn = [4 * L_ * (L_ + 1) // 2 for L_ in lengths]  # 4 heads, causal scores
n_grass = [grassmann_pairs(L_) * geo.n_plucker(32) for L_ in lengths]  # r = 32, the paper's order

# where does the lift overtake? (the pair count in closed form, checked against the layer above)
Ls = torch.arange(1, 10_001)
n_pairs = sum((Ls - delta).clamp_min(0) for delta in PAPER_OFFSETS)
lift_bigger = 4 * Ls * (Ls + 1) // 2 > n_pairs * 496
crossover = int(Ls[~lift_bigger].max()) + 1
assert lift_bigger[crossover - 1 :].all()
assert grassmann_pairs(crossover) * 496 < 4 * crossover * (crossover + 1) // 2
# doubling L multiplies the lift by ~4 and the Plücker features by ~2
assert abs(n_attn[-1] / n_attn[-2] - 4.0) < 4e-3
assert abs(n_grass[-1] / n_grass[-2] - 2.0) < 2e-2
# averaged first (chapter 2): one Plücker vector per token, 496 L numbers
crossover_averaged = int(Ls[4 * Ls * (Ls + 1) // 2 <= Ls * 496].max()) + 1
assert crossover_averaged == 248 and crossover > 5 * crossover_averaged
print(f"attention's lift outgrows the Plücker features of the paper's order from L = {crossover} tokens on "
      f"(the averaged-first order's, one vector per token: from L = {crossover_averaged})")

# %%
fig, ax = plt.subplots(figsize=(6.4, 4))
ax.loglog(lengths, n_attn, "o-", label="attention: $4 \\cdot L(L+1)/2$ scores")
ax.loglog(lengths, n_grass, "s-", label="Grassmann, paper's order: pairs $\\times$ 496 coordinates")
ax.axvline(crossover, color="gray", ls="--", lw=1, label=f"crossover, L = {crossover}")
ax.set_xlabel("sequence length L (tokens)")
ax.set_ylabel("numbers per layer")
ax.set_title("The lift grows as $L^2$, the Plücker features as $L$")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ### $r = 3$: the cross product
#
# In $\mathbb{R}^3$ there are three minors, and they are the cross product in another order:
# $u \times v = (p_{12}, -p_{02}, p_{01})$. The cross product is the normal of the plane; its length is
# the parallelogram's area. Only in $\mathbb{R}^3$ is there such a normal: for $r > 3$ the directions
# orthogonal to a plane form an $(r-2)$-dimensional space, not a line. What carries over to every $r$ is
# what the normal encoded: the Plücker vector determines the plane (up to orientation) and its length is
# the area.

# %%
u3, v3 = torch.randn(3), torch.randn(3)
p01, p02, p12 = geo.plucker(u3, v3)
cross = torch.linalg.cross(u3, v3)
assert_close(torch.stack([p12, -p02, p01]), cross, rtol=0, atol=1e-6)
print("u x v =", cross.numpy().round(3))


# %% [markdown]
# Below: three pairs of vectors in $\mathbb{R}^3$, the parallelograms they span, and the Plücker vector
# drawn as the normal $(p_{12}, -p_{02}, p_{01})$. On the right, the same three planes spanned by a
# *different* basis of each: the parallelograms change, the normalised normals do not.

# %%
def draw_planes(ax, pairs, title):
    colors = ["tab:blue", "tab:orange", "tab:green"]
    for (a, b), c in zip(pairs, colors):
        corners = torch.stack([torch.zeros(3), a, a + b, b]).numpy()
        ax.add_collection3d(Poly3DCollection([corners], alpha=0.25, facecolor=c))
        for vec in (a, b):
            ax.quiver(0, 0, 0, *vec.numpy(), color=c, lw=1, arrow_length_ratio=0.08)
        q01, q02, q12 = geo.plucker(a, b)
        n = torch.stack([q12, -q02, q01])
        n = n / n.norm()
        ax.quiver(0, 0, 0, *n.numpy(), color=c, lw=2.5, ls="--",
                  arrow_length_ratio=0.15)
    ax.set(xlim=(-1.5, 1.5), ylim=(-1.5, 1.5), zlim=(-1.5, 1.5),
           xlabel="$x_0$", ylabel="$x_1$", zlabel="$x_2$", title=title)


g = torch.Generator().manual_seed(3)
pairs = [(0.8 * torch.randn(3, generator=g), 0.8 * torch.randn(3, generator=g))
         for _ in range(3)]
M = torch.tensor([[1.3, 0.4], [-0.5, 0.6]])  # a change of basis with det > 0
rebased = [(M[0, 0] * a + M[1, 0] * b, M[0, 1] * a + M[1, 1] * b) for a, b in pairs]

fig = plt.figure(figsize=(10, 4.6))
draw_planes(fig.add_subplot(1, 2, 1, projection="3d"), pairs,
            "planes span{u, v} and unit Plücker normals")
draw_planes(fig.add_subplot(1, 2, 2, projection="3d"), rebased,
            "same planes, another basis")
plt.show()

# %% [markdown]
# ## 1.3 Not every vector is a plane: the Grassmann–Plücker relations
#
# A generic vector of $\mathbb{R}^P$ is **not** the wedge of two vectors. For $r = 4$ there are six
# coordinates and one quadratic relation they must satisfy,
#
# $$ p_{01}\, p_{23} - p_{02}\, p_{13} + p_{03}\, p_{12} = 0, $$
#
# and in general one relation for every $i < j < k < l$. The relations hold exactly on wedges
# ("decomposable" bivectors) and fail on generic ones.

# %%
u4, v4 = torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
q01, q02, q03, q12, q13, q23 = geo.plucker(u4, v4)
residual = q01 * q23 - q02 * q13 + q03 * q12
library = geo.grassmann_plucker_residual(geo.plucker(u4, v4), 4)
assert_close(residual[None], library, rtol=0, atol=1e-12)
assert abs(float(residual)) < 1e-12
print(f"r = 4 wedge: residual = {float(residual):.1e}")

# %%
r, n = 8, 2000
U, V = torch.randn(n, r, dtype=torch.float64), torch.randn(n, r, dtype=torch.float64)
res_wedge = geo.grassmann_plucker_residual(geo.plucker(U, V), r).abs().amax(-1)
scale = geo.plucker(U, V).std()  # generic vectors of the same typical size
generic = scale * torch.randn(n, geo.n_plucker(r), dtype=torch.float64)
res_generic = geo.grassmann_plucker_residual(generic, r).abs().amax(-1)

assert res_wedge.max() < 1e-10  # every wedge satisfies all C(8, 4) = 70 relations
assert res_generic.min() > 1e-2  # no generic bivector does
print(f"largest residual over the wedges:   {res_wedge.max():.1e}")
print(f"smallest residual over the generic: {res_generic.min():.2f}")

# %%
fig, ax = plt.subplots(figsize=(6.4, 3.6))
bins = torch.linspace(-18, 3, 64).numpy()
ax.hist(res_wedge.clamp_min(1e-18).log10().numpy(), bins=bins, alpha=0.7,
        label="wedges $u \\wedge v$")
ax.hist(res_generic.log10().numpy(), bins=bins, alpha=0.7,
        label="generic vectors of $\\mathbb{R}^{28}$")
ax.set_xlabel("$\\log_{10}$ of the largest Grassmann–Plücker residual (r = 8)")
ax.set_ylabel("count (of 2000 vectors)")
ax.set_title("Wedges satisfy the relations to rounding error")
ax.legend()
plt.show()

# %% [markdown]
# How thin is the set of wedges? Change the basis of the plane, $u' = a u + b v$, $v' = c u + d v$.
# The wedge is bilinear and antisymmetric ($u \wedge u = 0$, $v \wedge u = -\,u \wedge v$), so
#
# $$ u' \wedge v' = ac\, u \wedge u + ad\, u \wedge v + bc\, v \wedge u + bd\, v \wedge v
#    = (ad - bc)\; u \wedge v . $$
#
# The map $(u, v) \mapsto u \wedge v$ has $2r$ inputs, but every change of basis with $ad - bc = 1$ leaves
# $u \wedge v$ unchanged: a 3-parameter family. So the
# wedges form a cone of dimension $2r - 3$ inside $\mathbb{R}^P$ (and $\mathrm{Gr}(2, r)$ itself has
# dimension $2(r-2)$). The rank of the map's Jacobian confirms it:

# %%
for r_ in (4, 6, 10):
    uv = torch.randn(2 * r_, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(
        lambda x: geo.plucker(x[:r_], x[r_:]), uv)  # [P, 2r]
    rank = int(torch.linalg.matrix_rank(J))
    assert rank == 2 * r_ - 3
    print(f"r = {r_:2d}: P = {geo.n_plucker(r_):3d} coordinates, "
          f"wedges fill {rank} dimensions")
print(f"paper, r = 32: P = {geo.n_plucker(32)} coordinates, "
      f"wedges fill {2 * 32 - 3} dimensions")

# %% [markdown]
# ## 1.4 What normalised coordinates forget
#
# Section 1.3 showed that a change of basis of the plane, $u' = a u + b v$, $v' = c u + d v$, multiplies
# the wedge by its determinant: $u' \wedge v' = (ad - bc)\, u \wedge v$.
#
# The paper normalises, $\hat p = p / \max(\lVert p \rVert, \varepsilon)$ (it calls this step optional).
# After normalising, only the **plane** and its **orientation** (the sign of $ad - bc$) are left: the
# lengths of $u$ and $v$ and the basis are gone.
#
# To check "the same plane" independently of any coordinates we use **principal angles**. Between two
# planes $A$ and $B$ of $\mathbb{R}^r$ there are two: $\theta_1$ is the smallest angle between a line of
# $A$ and a line of $B$; $\theta_2$ is the smallest angle between the lines of $A$ and $B$ orthogonal to
# that first pair, so $0 \le \theta_1 \le \theta_2 \le 90°$. They are the arccosines of the singular
# values of $Q_A^\top Q_B$, where the columns of $Q_A$, $Q_B$ are orthonormal bases (from a QR
# decomposition). Both are 0 exactly when $A = B$; two planes sharing one line have $\theta_1 = 0$.
# `gflow_lite.geometry.principal_angles` computes them (chapter 7 uses them on a trained model):

# %%
def principal_angles_by_hand(a, b):
    qa, qb = torch.linalg.qr(a).Q, torch.linalg.qr(b).Q  # orthonormal bases, [r, 2]
    cosines = torch.linalg.svdvals(qa.T @ qb).clamp(-1, 1)  # descending
    return torch.arccos(cosines)  # ascending angles


E = torch.eye(4, dtype=torch.float64)
xy, xz = E[:, [0, 1]], E[:, [0, 2]]  # span{e0, e1} and span{e0, e2}: they share the line e0
angles_deg = torch.rad2deg(principal_angles_by_hand(xy, xz))
assert_close(angles_deg, torch.tensor([0.0, 90.0], dtype=torch.float64), rtol=0, atol=1e-6)
assert_close(geo.principal_angles(xy, xz), principal_angles_by_hand(xy, xz), rtol=0, atol=1e-9)
print("span{e0, e1} vs span{e0, e2}: principal angles", angles_deg.numpy().round(1), "degrees")

# %% [markdown]
# Now the claim: a change of basis multiplies $p$ by its determinant, normalising leaves $\pm \hat p$,
# and the plane itself does not move (both principal angles 0).

# %%
u, v = torch.randn(6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
for a, b, c, d_ in [(2.0, 0.5, -1.0, 3.0), (0.1, 0.0, 0.0, 7.0), (0.0, 1.0, 1.0, 0.0)]:
    det = a * d_ - b * c
    p_new = geo.plucker(a * u + b * v, c * u + d_ * v)
    assert_close(p_new, det * geo.plucker(u, v), rtol=1e-10, atol=1e-12)
    p_hat_old = geo.normalize_plucker(geo.plucker(u, v))
    assert_close(geo.normalize_plucker(p_new), math.copysign(1, det) * p_hat_old,
                 rtol=1e-10, atol=1e-12)
    old_basis = torch.stack([u, v], -1)
    new_basis = torch.stack([a * u + b * v, c * u + d_ * v], -1)
    angles = geo.principal_angles(old_basis, new_basis)  # 0, 0: the same plane
    assert_close(angles, torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-6)
print("a change of basis multiplies p by det;")
print("p / ||p|| keeps only the plane (and its orientation)")

# %% [markdown]
# And what is the length that normalisation divides out? The **Lagrange identity**
#
# $$ \lVert u \wedge v \rVert^2 = \lVert u \rVert^2 \lVert v \rVert^2 - \langle u, v \rangle^2
#    = \lVert u \rVert^2 \lVert v \rVert^2 \sin^2\theta $$
#
# gives it in $O(r)$ operations instead of $O(r^2)$: the area of the parallelogram. It vanishes when the
# two vectors are parallel, where the plane is undefined.

# %%
U = torch.randn(100, 32, dtype=torch.float64)
V = torch.randn(100, 32, dtype=torch.float64)
norm_p = geo.plucker(U, V).norm(dim=-1)
assert_close(geo.plucker_norm(U, V), norm_p, rtol=1e-10, atol=1e-10)
area = U.norm(dim=-1) * V.norm(dim=-1) * torch.sin(geo.pair_angle(U, V))
assert_close(area, norm_p, rtol=1e-8, atol=1e-10)
print("||u ∧ v|| = |u| |v| sin(theta) for all 100 random pairs in R^32")

# %% [markdown]
# Rotate $v$ inside a fixed plane and watch: the length $\lVert u \wedge v \rVert$ follows
# $\sin\theta$, while a normalised coordinate stays constant and flips sign when the orientation flips
# (at $\theta = 180°$). At $\theta = 0°$ and $180°$ the plane degenerates; the $\varepsilon$ floor makes
# $\hat p = 0$ there instead of dividing by zero.

# %%
e0, e1 = torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
e0[0], e1[1] = 1.0, 1.0
theta = torch.linspace(0, 2 * math.pi, 721, dtype=torch.float64)
u_fix = e0.expand(len(theta), 4)
v_rot = torch.cos(theta)[:, None] * e0 + torch.sin(theta)[:, None] * e1
p_rot = geo.plucker(u_fix, v_rot)
p_hat = geo.normalize_plucker(p_rot, eps=1e-6)
assert_close(p_rot.norm(dim=-1), torch.sin(theta).abs(), rtol=0, atol=1e-12)
half_turn = (theta > 0.01) & (theta < math.pi - 0.01)
assert torch.all(p_hat[half_turn, 0] > 0.999)  # constant while the orientation holds

fig, ax = plt.subplots(figsize=(6.4, 3.6))
deg = torch.rad2deg(theta).numpy()
ax.plot(deg, p_rot.norm(dim=-1).numpy(), label="$||u \\wedge v||$ (area)")
ax.plot(deg, p_hat[:, 0].numpy(), label="$\\hat p_{01}$ (normalised)")
ax.set_xlabel("angle $\\theta$ between u and v inside the plane (degrees)")
ax.set_ylabel("value")
ax.set_xticks(range(0, 361, 45))
ax.set_title("Normalising keeps the oriented plane, forgets the area")
ax.legend(loc="lower left")
plt.show()

# %% [markdown]
# **Summary.** Attention lifts a sequence into an $L \times L$ table of scores. The Grassmann layer
# instead encodes pairs of nearby tokens by the plane they span: $\binom{r}{2}$ Plücker coordinates per
# pair, constrained by the Grassmann–Plücker relations to a $(2r-3)$-dimensional cone, and, once
# normalised, blind to lengths and bases. Chapter 2 builds the layer on these coordinates.
#
# **Questions.** (Answers for instructors are on the instructors' page.)
#
# 1. At $r = 32$ a pair becomes 496 numbers, of which only 61 are free. Why would a model still want
#    all 496 rather than a 61-number parametrisation?
# 2. Normalising forgets the angle between $u$ and $v$. Which information about the token pair does the
#    layer lose by that, and where could it come back?
# 3. Two pairs span the same plane with opposite orientations. What do their normalised Plücker vectors
#    have in common, and what will a linear map of them (the layer's $W_\text{plu}$) see?
#
# ## Exercises
#
# Each exercise is a function to fill in; the cell after it checks your function against `gflow_lite`
# on random and edge-case inputs and prints PASS, FAIL (with a hint) or NOT DONE YET.

# %%
from gflow_book import chapter_exercises
from gflow_book.checks import (check_causal_attention, check_lagrange_norm, check_on_grassmannian,
                               check_plucker_coordinates, check_plucker_features)

exercise = chapter_exercises("01_geometry")

# %% [markdown]
# **Exercise 1.1 (Plücker coordinates, batched).** Write `plucker_coordinates(u, v)` for tensors of
# shape `[..., r]` without Python loops over $i, j$, returning `[..., r(r-1)/2]` in the order of
# `torch.triu_indices(r, r, offset=1)`.

# %%
@exercise
def plucker_coordinates(u, v):
    raise NotImplementedError("Exercise 1.1: your code here")


# %%
check_plucker_coordinates(plucker_coordinates)

# %% [markdown]
# **Exercise 1.2 (the Lagrange norm).** Write `lagrange_norm(u, v)` returning $\lVert u \wedge v\rVert$
# for `[..., r]` inputs in $O(r)$, without forming the Plücker vector. Mind parallel vectors.

# %%
@exercise
def lagrange_norm(u, v):
    raise NotImplementedError("Exercise 1.2: your code here")


# %%
check_lagrange_norm(lagrange_norm)

# %% [markdown]
# **Exercise 1.3 (is it a plane?).** Write `on_grassmannian(p, r, tol)`: for `p` of shape
# `[..., r(r-1)/2]`, return a bool tensor of shape `p.shape[:-1]` that is True where every
# Grassmann–Plücker relation holds within `tol`.

# %%
@exercise
def on_grassmannian(p, r, tol):
    raise NotImplementedError("Exercise 1.3: your code here")


# %%
check_on_grassmannian(on_grassmannian)

# %% [markdown]
# **Exercise 1.4 (the lift, end to end).** Write `causal_attention(q, k, v)` for tensors of shape
# `[..., L, d]`: single-head causal attention as section 1.1 builds it, the $L \times L$ scores
# $q_t \cdot k_s / \sqrt d$, no weight on a later position $s > t$, a softmax over $s$, and the weighted
# mean of the values. Write it with torch operations, not `scaled_dot_product_attention` (the check
# compares with it). Mind large scores.

# %%
@exercise
def causal_attention(q, k, v):
    raise NotImplementedError("Exercise 1.4: your code here")


# %%
check_causal_attention(causal_attention)

# %% [markdown]
# **Exercise 1.5 (the Plücker lift, end to end).** Write `plucker_features(z, delta, eps)` for `z` of shape
# `[B, T, r]`: pair each $z_t$ with $z_{t-\Delta}$, take the pair's Plücker coordinates (your exercise 1.1
# may be used) and divide them by $\max(\lVert p \rVert, \varepsilon)$; where $t < \Delta$ there is no
# partner and the features are 0. Shape `[B, T, r(r-1)/2]`.

# %%
@exercise
def plucker_features(z, delta, eps):
    raise NotImplementedError("Exercise 1.5: your code here")


# %%
check_plucker_features(plucker_features)

# %%
exercise.summary();
