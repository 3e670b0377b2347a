# %% [markdown]
# # 0. Welcome
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gflow-lite/gflow_lite/blob/main/book/00_welcome.ipynb)
#
# *Attention Is Not What You Need: Grassmann Flows as an Attention-Free Alternative for Sequence
# Modeling* (Zhang Chong, arXiv [2512.19428](https://arxiv.org/abs/2512.19428)) proposes to replace
# self-attention with a layer that never compares all pairs of tokens. Each token is paired with a few
# earlier tokens at fixed offsets; each pair is encoded by the **2-plane** the two (reduced) vectors
# span, through its **Plücker coordinates**; a gate blends that geometric feature back into the token.
# This book rebuilds that layer from the ground up, runs it, and checks the paper's claims, on a CPU in
# minutes or on a GPU at full size.
#
# **Learning goals.** After this chapter you can
#
# 1. state what the paper claims and which of those claims this book tests;
# 2. run the book locally, on Binder or on Colab, in quick or full mode;
# 3. train a tiny Grassmann language model and its Transformer twin side by side, and read their loss
#    curves;
# 4. use the self-checking exercises at the end of every chapter.

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

from gflow_lite import GrassmannLM, LMConfig, TransformerLM
from gflow_lite.data import RandomBlockSampler, read_wikitext2_lines
from gflow_book.demo_training import train_lm
from gflow_book.sizing import describe_mode, sizes

print(describe_mode())
torch.manual_seed(0)
plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3})

# %% [markdown]
# ## 0.1 What the paper claims
#
# 1. **An attention-free layer.** The *Causal Grassmann* layer reduces each token state to $r$
#    dimensions, pairs it with earlier tokens at offsets $\Delta \in \{1, 2, 4, 8, 12, 16\}$, encodes
#    each pair by its normalised Plücker coordinates, projects back, averages over offsets and blends
#    the result into the token through a learned gate. No $L \times L$ attention matrix is formed.
# 2. **Competitive language modelling.** On WikiText-2, the paper's Grassmann models come within
#    10–15% of size-matched Transformers (best validation perplexity over 30 epochs):
#
#    | model | layers | block | params (M) | val PPL |
#    |---|---|---|---|---|
#    | Transformer | 6 | 128 | 12.59 | 248.4 |
#    | Grassmann | 6 | 128 | 13.00 | 275.7 |
#    | Transformer | 12 | 256 | 17.32 | 235.2 |
#    | Grassmann | 12 | 256 | 18.16 | 261.1 |
#
# 3. **Natural language inference.** As a classification head on DistilBERT features, the Grassmann
#    head matches a Transformer head on SNLI (test accuracy 0.8538 vs 0.8511).
# 4. **Linear cost in length.** Per layer, $O(L\,d^2)$ work for fixed $r$ and number of offsets,
#    against $O(L^2 d + L\,d^2)$ for attention: its $L \times L$ scores cost $L^2 d$, and its query, key,
#    value and output maps $L\,d^2$, the same order as the Grassmann layer's own maps.
#
# ## 0.2 What this book checks
#
# Every chapter runs its code and asserts its numerical claims, so a page you read is a page that ran.
#
# | chapter | question |
# |---|---|
# | 1. Geometry | what attention's "lift" costs; Plücker coordinates, the Grassmann–Plücker relations, principal angles |
# | 2. The layer | equations (G1)–(G6) from scratch equal the library's layer; the fast identity; causality |
# | 3. From the layer to a language model | the block, the whole model and the training loop from scratch; the paper's "pair with the future" sentence (a leak); receptive fields; the parameter audit |
# | 4. Complexity | FLOPs and memory counted, checked against PyTorch's counters, and measured; generation with a constant-size cache |
# | 5. WikiText-2 | the paper's language-model comparison, the reproductions and ours, side by side |
# | 6. SNLI | the paper's classification-head comparison, rebuilt on frozen sentence features |
# | 7. A trained model's geometry | what a trained layer's pairs, planes, offsets and gates look like |
#
# Where the paper is ambiguous or inconsistent, the book says so and shows both readings: the pairing
# sentence would leak the target token if taken literally (chapter 3); "offsets" can mean all offsets
# in every layer or one offset per layer, which changes how far back the model can see (43 or 96
# tokens at six layers); and the paper's Grassmann parameter counts are larger than the layer it
# describes (chapter 3's audit). Independent reproductions report gaps to the Transformer that differ
# from the paper's 10–15% in both directions: most are larger, one (with a modern pre-LN recipe for
# both models) is smaller. Chapter 5 sets them side by side with ours; {ref}`the paper notes <notes-3-3>`
# say what each reproduction ran, and the [references](references.md) link to each.
#
# ## 0.3 How to run it
#
# | where | how |
# |---|---|
# | locally | `make book` builds this website into `book/_build/html`; `make lab` opens the chapters in JupyterLab; `make test` runs every test, every chapter included |
# | Binder | the rocket icon at the top of a page → *Binder* (CPU only, so quick mode) |
# | Colab | the *Open in Colab* badge under each title; the first (hidden) cell installs `gflow_lite` on Colab only, without touching Colab's PyTorch |
# | GPU | any of the above on a CUDA machine (Colab: *Runtime → Change runtime type → GPU*) |
#
# **Quick or full.** One environment variable decides how big the experiments are, read by one
# function, `gflow_book.sizing.quick_mode()` (the book's small support package, `book/gflow_book`): `GFLOW_QUICK=1` gives tiny models that run on two CPU cores
# in about a minute per chapter; `GFLOW_QUICK=0` gives the larger runs; unset, it picks full mode only
# when a CUDA GPU is present. Every chapter prints the mode it ran in (see the line above), and the
# sizes come from `gflow_book.sizing.sizes()`:

# %%
s = sizes()
print(s)

# %% [markdown]
# ## 0.4 A two-minute tour: two tiny language models, side by side
#
# We train both models of the paper, at toy size, on the characters of WikiText-2 (shipped with the
# repository, checksum-verified, read offline). Characters keep the vocabulary small (about 150
# symbols), so that a few hundred steps on a CPU already show learning.

# %%
train_text = "\n".join(read_wikitext2_lines("train"))[:2_000_000]  # 2M characters
valid_text = "\n".join(read_wikitext2_lines("valid"))[:200_000]
chars = sorted(set(train_text))
stoi = {c: i for i, c in enumerate(chars)}
unk = stoi[" "]  # a character unseen in our slice of train becomes a space


def encode(text: str) -> torch.Tensor:
    return torch.tensor([stoi.get(c, unk) for c in text])


def decode(ids) -> str:
    return "".join(chars[int(i)] for i in ids)


train_ids, valid_ids = encode(train_text), encode(valid_text)
V = len(chars)
print(f"{len(train_ids):,} training and {len(valid_ids):,} validation characters")
print(f"vocabulary: V = {V} characters")
print(repr(decode(train_ids[:120])))

# %% [markdown]
# One `LMConfig` describes both models: same width, depth, feed-forward size, embeddings and tied
# output head. The Grassmann model mixes tokens with the paper's six offsets and reduced width `r`; the
# Transformer with causal self-attention.
#
# One deliberate departure from the paper: this tour uses the **pre-LN** block (a LayerNorm *before*
# each part, as GPT-2 does) for both models, not the paper's post-LN block. The tour shows that both
# models learn, trained the same way; it is not a comparison of them. Chapter 3 builds the paper's
# post-LN block, and chapter 5 trains it and returns to how much the baseline's recipe moves the
# comparison.

# %%
cfg = LMConfig(vocab_size=V, block_size=s.block_size, d_model=s.d_model, n_layers=s.n_layers,
               d_ff=s.d_ff, r=s.r, n_heads=s.n_heads, dropout=0.0, norm="pre")
device = "cuda" if torch.cuda.is_available() else "cpu"
models = {}
for name, cls in (("Grassmann", GrassmannLM), ("Transformer", TransformerLM)):
    torch.manual_seed(0)
    models[name] = cls(cfg).to(device)
    print(f"{name:12s} {models[name].num_params():>9,} parameters")

# %% [markdown]
# Before training, a model that knows nothing should spread its probability evenly over the $V$
# symbols, so its loss should be close to $\ln V$ (exercise 0.1 asks why). Both do:

# %%
x, y = RandomBlockSampler(valid_ids, s.block_size, s.batch_size, seed=0).next_batch()
for name, model in models.items():
    with torch.no_grad():
        _, loss0 = model(x.to(device), y.to(device))
    assert_close(loss0.cpu(), torch.tensor(math.log(V)), rtol=0, atol=0.2)
    print(f"{name:12s} initial loss {loss0.item():.3f}   ln V = {math.log(V):.3f}")

# %% [markdown]
# Now train each for the same number of AdamW steps on random windows of the training text, measuring
# the loss on held-out validation windows along the way. `train_lm` (from `gflow_book.demo_training`) is
# a dozen-line loop: AdamW, a learning rate that warms up over the first tenth of the steps and then
# decays along a cosine, gradient clipping. Chapter 3 writes it out line by line.

# %%
logs = {}
for name, model in models.items():
    torch.manual_seed(1)
    train_batches = RandomBlockSampler(train_ids, s.block_size, s.batch_size, seed=1)
    valid_batches = RandomBlockSampler(valid_ids, s.block_size, s.batch_size, seed=2)
    logs[name] = train_lm(model, train_batches.next_batch, s.steps, s.lr, warmup=s.steps // 10,
                          eval_batch=valid_batches.next_batch,
                          eval_every=max(s.steps // 6, 1), eval_batches=s.eval_batches)
    print(f"{name:12s} {s.steps} steps in {logs[name].seconds:.1f} s; "
          f"validation loss {logs[name].evals[-1][1]:.3f}")

# %%
fig, ax = plt.subplots(figsize=(6.8, 4))
for (name, log), color in zip(logs.items(), ("tab:blue", "tab:orange")):
    ax.plot(log.smoothed(20), color=color, alpha=0.8,
            label=f"{name}: training (moving average)")
    ax.plot(*zip(*log.evals), "o--", color=color, label=f"{name}: validation")
ax.axhline(math.log(V), color="gray", ls=":", label="$\\ln V$ (uniform guess)")
ax.set_xlabel("training step")
ax.set_ylabel("cross-entropy (nats per character)")
ax.set_title(f"Tiny models on WikiText-2 characters ({s.name} mode)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Both models learn: their validation loss falls well below the uniform guess, and, trained the same
# way, they end close to each other. The asserts below are the whole claim this tour makes. A few hundred
# steps at toy size is not a comparison: which curve is lower here says nothing about the paper's
# claim, which chapter 5 tests at a larger size.

# %%
final = {name: log.evals[-1][1] for name, log in logs.items()}
for name, loss in final.items():
    assert loss < math.log(V) - 1.0, f"{name} did not learn"
assert abs(final["Grassmann"] - final["Transformer"]) < 0.5  # nats per character
print({name: round(loss, 2) for name, loss in final.items()})

# %% [markdown]
# A language model is also a generator. Here is what each one writes after the same prompt (sampled at
# temperature 0.8; expect character soup at quick-mode size, and recognisable words at full size).

# %%
prompt = encode(" The game ")[None].to(device)
for name, model in models.items():
    sampler = torch.Generator(device).manual_seed(0)
    out = model.generate(prompt, 80, temperature=0.8, generator=sampler)
    print(f"{name:12s} {decode(out[0].tolist())!r}")

# %% [markdown]
# **Questions.** (Answers for instructors are on the instructors' page.)
#
# 1. Before training, both models' loss is close to $\ln V$. Why close and not equal?
# 2. The paper's Transformer and Grassmann models have nearly the same number of parameters. Why is a
#    size-matched baseline necessary for the paper's claim, and is it sufficient?
# 3. Why does attention's cost per layer contain both $L^2 d$ and $L\,d^2$, and which dominates at the
#    paper's $L = 128$, $d = 256$?

# %% [markdown]
# ## Exercises
#
# Every chapter ends like this. Each exercise is a function to fill in, marked `@exercise`; the cell
# after it calls a check from `gflow_book.checks`, which compares your function with the library on
# random and edge-case inputs and prints **PASS**, **FAIL** with a hint, **ANSWERED BY CALLING THE
# LIBRARY** (the exercise asks you to compute it yourself, so calling `gflow_lite` for the answer does
# not count), or **NOT DONE YET**. Hints start with the idea; run the check again after another attempt
# and they get more concrete. Where an exercise states a constraint ("without Python loops", "in
# $O(r)$"), the check measures it. The last cell prints the chapter's summary line, with the hints each
# exercise has shown. These checks are feedback for you; a course grades with hidden tests of its own,
# run outside your notebook on inputs drawn when grading.

# %%
from gflow_book import chapter_exercises
from gflow_book.checks import check_next_token_blocks, check_uniform_loss

exercise = chapter_exercises("00_welcome")

# %% [markdown]
# **Exercise 0.1 (the loss of knowing nothing).** Write `uniform_loss(vocab_size)`: the cross-entropy,
# in nats, of a model that assigns probability $1/V$ to every token. Compare with the initial losses
# above.

# %%
@exercise
def uniform_loss(vocab_size):
    raise NotImplementedError("Exercise 0.1: your code here")


# %%
check_uniform_loss(uniform_loss)

# %% [markdown]
# **Exercise 0.2 (next-token blocks).** A language model learns to predict token $t+1$ from tokens
# $\le t$. Write `next_token_blocks(ids, starts, block_size)`: for a 1-D tensor of token ids and a 1-D
# tensor of start positions, return `(x, y)`, each of shape `[len(starts), block_size]`, where row `b`
# of `x` is the window starting at `starts[b]` and `y` is the same window one token later.

# %%
@exercise
def next_token_blocks(ids, starts, block_size):
    raise NotImplementedError("Exercise 0.2: your code here")


# %%
check_next_token_blocks(next_token_blocks)

# %%
exercise.summary();
