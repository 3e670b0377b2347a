# %% [markdown]
# # 5. Experiments: WikiText-2
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gflow-lite/gflow_lite/blob/main/book/05_wikitext2.ipynb)
#
# The paper's central empirical claim is one table: on WikiText-2, Grassmann language models reach a
# best validation perplexity within 10–15% of size-matched Transformers. Every public reproduction but
# one found a larger gap. This chapter sets out how we test the claim (the protocol, and the choices the paper
# leaves to us), runs the `compare` command that produces a result, reads and verifies the results
# committed to the repository, and sets them beside the paper's and the reproductions' numbers.
#
# **Learning goals.** After this chapter you can
#
# 1. state the experimental protocol, and say which of its choices the paper leaves open and what we
#    chose;
# 2. run `python -m gflow_lite compare` and read the `compare.json` it writes;
# 3. verify a results file before believing it: provenance, aggregates, ratios, one training budget;
# 4. place our Grassmann / Transformer perplexity ratio beside the paper's and the reproductions';
# 5. read an ablation against the baseline run of the same seed and budget, and estimate what the
#    paper-sized runs cost.
# 6. tell a fair comparison from an unfair one: every model at its own best rate, controls in the same
#    block, runs to a plateau (sections 5.6 and 5.7, optional).

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
import os
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display
from matplotlib.patches import Patch
from torch.testing import assert_close

from gflow_lite import build_model
from gflow_lite.data import load_wikitext2
from gflow_lite.experiments import CompareSpec, fair, run_compare
from gflow_lite.experiments.compare import format_compare
from gflow_lite.training.presets import ARCHITECTURES, resolve
from gflow_book import published_runs as published
from gflow_book import results as report
from gflow_book.sizing import by_mode, describe_mode

print(describe_mode())
plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3})

# %% [markdown]
# ## 5.1 The protocol
#
# A comparison trains both architectures with **everything but the token mixer held equal**: the same
# data, tokenizer, width, depth, feed-forward, embeddings and tied head, the same number of optimizer
# steps on the same batches, the same schedule. Concretely:
#
# * **Data.** WikiText-2 as shipped with the repository (`data/wikitext-2`, checksum-verified): the
#   *tokenized* v1 release, in which rare words are already `<unk>` and punctuation is split off. The
#   paper used the *raw* release. Even with the same tokenizer, perplexities on the two releases are
#   not the same quantity, so we never compare our perplexities with the paper's, only the
#   **Grassmann / Transformer ratio**.
# * **Tokenizers.** The paper-sized presets use the paper's WordPiece vocabulary (bert-base-uncased,
#   30,522 entries). The CPU preset uses a byte-level BPE of 4,096 tokens trained on the training split:
#   with a 128-wide model, a 30,522-row embedding would hold most of the parameters and most of the
#   compute.
# * **Budget and schedule.** A fixed number of optimizer steps (or epochs) of random training windows,
#   identical for both models; AdamW with linear warmup and cosine decay.
# * **Checkpoint and metrics.** Every `eval_interval` steps we measure perplexity on the whole
#   validation split (non-overlapping blocks, every token scored once) and keep the best checkpoint. We
#   report its validation perplexity, as the paper does, and also the **test perplexity of that
#   checkpoint**. The paper's "best validation perplexity over training" selects on the validation set,
#   so it is an optimistic number; the test perplexity at the selected checkpoint is not.
# * **Seeds.** The seed sets the initialisation, the dropout masks and the order of the training
#   windows. The main comparison uses two seeds, each ablation one.
#
# The presets (`gflow_lite.training.presets`) hold these settings as data. Both architectures of a
# preset differ in nothing but the mixer:

# %%
PRESET_NAMES = ("tiny", "cpu-small", "paper-6l", "paper-12l")
rows = []
for name in PRESET_NAMES:
    g, t = resolve(name, "grassmann"), resolve(name, "transformer")
    assert report.config_diff(t.to_dict(), g.to_dict()) == {}  # only `arch` differs
    m = g.model
    length = f"{g.max_steps} steps" if g.max_steps else f"{g.epochs:g} epochs"
    rows.append([name, f"{g.tokenizer} {m.vocab_size:,}", m.n_layers, m.d_model, m.r,
                 f"{m.offsets} ({m.offset_mode})", m.receptive_field(), m.block_size, m.norm,
                 g.batch_size * g.grad_accum, length, f"{g.lr:g} → {g.min_lr:g}", g.warmup_steps])
display(report.Table(
    ["preset", "tokenizer", "layers", "d", "r", "offsets (mode)", "Grassmann receptive field", "block L",
     "LN", "batch", "length", "lr", "warmup"], rows))

# %% [markdown]
# Why not the paper's WordPiece vocabulary on the CPU? Build the `cpu-small` Grassmann model with it (on
# PyTorch's `meta` device, which allocates nothing) and see where its parameters and its work go:

# %%
wide_cfg = resolve("cpu-small", "grassmann", {"tokenizer": "wordpiece"})
with torch.device("meta"):
    wide = build_model("grassmann", wide_cfg.model)
embedding = wide.tok_emb.weight.numel()  # shared with the output layer (tied head)
head_flops = 6 * wide_cfg.model.d_model * wide_cfg.model.vocab_size  # the output layer, per training token
share_params, share_flops = embedding / wide.num_params(), head_flops / report.train_flops_per_token(wide_cfg)
print(f"cpu-small with WordPiece: {wide.num_params():,} parameters, {share_params:.0%} of them in the "
      f"embedding; the output layer does {share_flops:.0%} of the matrix-multiply work of a training step")
assert share_params > 0.5 and share_flops > 0.5

# %% [markdown]
# `tiny` is for tests and for the live run below; `cpu-small` is the comparison we ran on a CPU;
# `paper-6l` and `paper-12l` are the paper's two settings, for a GPU. The paper's 12-layer
# schedule is read as one offset per layer here (chapter 3 shows the two readings); `offset_mode=all`
# is one override away.
#
# ### What the paper leaves silent, and what we chose
#
# The paper states the architecture, the data, the tokenizer, 30 epochs and the batch sizes. It does not
# state the rest of the training recipe. Our choices are data in the presets
# (`gflow_lite.training.presets`); the table reads them from there, for the `cpu-small` preset (the
# runs committed to the repository, which section 5.3 checks used exactly these) and for the two paper
# presets, which differ from it in the learning rate, its floor and the warmup:

# %%
cpu, paper6 = resolve("cpu-small", "grassmann"), resolve("paper-6l", "grassmann")
recipe = ("lr", "min_lr", "warmup_steps", "betas", "weight_decay", "grad_clip")
assert {k for k in recipe if getattr(cpu, k) != getattr(paper6, k)} == {"lr", "min_lr", "warmup_steps"}
ours = {
    "optimiser": f"AdamW, betas {cpu.betas}",
    "learning rate": f"peak {cpu.lr:g} (cpu-small), {paper6.lr:g} (paper presets)",
    "schedule and warmup": f"linear warmup ({cpu.warmup_steps} / {paper6.warmup_steps} steps), cosine decay "
                           f"to {cpu.min_lr:g} / {paper6.min_lr:g}",
    "weight decay": f"{cpu.weight_decay:g} on matrices, none on biases and LayerNorms",
    "gradient clipping": f"global norm {cpu.grad_clip:g}",
    "initialisation": f"N(0, {cpu.model.init_std:g}) for every linear and embedding weight, zero biases",
    "dropout rate": f"{cpu.model.dropout:g}",
    "precision": f"{cpu.precision!r}: fp32 on a CPU, bf16 autocast on a GPU that supports it",
    "seeds": "2 for the main comparison, 1 per ablation (seed 0)",
    "hardware": "whatever ran it: recorded in every run's summary.json",
    "chunking (overlap)": "training: random windows of L + 1 tokens; evaluation: non-overlapping blocks",
    "test perplexity": "reported, at the best-validation checkpoint",
}
assert set(ours) == set(published.PAPER_SILENT)  # every silent item has an answer
display(report.Table(["the paper is silent on", "our choice"],
                     [[k, ours[k]] for k in published.PAPER_SILENT]))

# %% [markdown]
# How much data is one run? A step consumes `batch × block` tokens, and an epoch is one training
# split's worth of tokens under the preset's tokenizer (exercise 5.3 asks you to compute it):

# %%
n_train = {"bpe-4096": len(load_wikitext2("train", "bpe", 4096)),
           "wordpiece": len(load_wikitext2("train", "wordpiece"))}
for name, key in (("cpu-small", "bpe-4096"), ("paper-6l", "wordpiece"), ("paper-12l", "wordpiece")):
    cfg = resolve(name, "grassmann")
    steps = cfg.total_steps(n_train[key])
    tokens = steps * cfg.tokens_per_step
    print(f"{name:10s} {steps:7,} steps x {cfg.tokens_per_step:5,} tokens = {tokens / 1e6:6.1f}M tokens "
          f"= {tokens / n_train[key]:5.2f} epochs of {n_train[key]:,} {key} tokens")
cpu_epochs = resolve("cpu-small", "grassmann").max_steps * cpu.tokens_per_step / n_train["bpe-4096"]
assert 1 < cpu_epochs < 2  # cpu-small is a short run: between one and two passes over the data

# %% [markdown]
# The CPU comparison sees the data barely more than once, against the paper's thirty passes. It measures
# the two mixers early in training, at a small size; the paper presets measure them where the paper did.
#
# ## 5.2 Quick mode: the `compare` command, live
#
# `compare` trains every (model, seed) pair as an ordinary `python -m gflow_lite train` run, in its own
# folder, and aggregates them into `compare.json`. From a terminal:
#
# ```bash
# python -m gflow_lite compare --preset tiny --seeds 2 --set max_steps=40 --out /tmp/tiny
# ```
#
# Here we call the same function from Python on the `tiny` preset: a 40k-parameter model, a few dozen
# steps. **This is a smoke test of the command, not a result**: at this size and budget both models are
# far from trained, and nothing about their order carries over to real runs.

# %%
demo_steps = by_mode(40, 400)
demo_spec = CompareSpec(preset="tiny", seeds=by_mode([0, 1], [0, 1, 2]), jobs=2,
                        overrides=[f"max_steps={demo_steps}", f"eval_interval={demo_steps // 4}"],
                        label="tiny: a smoke test of compare, not a result")
demo_tmp = tempfile.TemporaryDirectory(prefix="gflow_ch5_")
demo_dir = Path(demo_tmp.name) / "tiny"
start = time.perf_counter()
demo_result = run_compare(demo_spec, demo_dir, log=lambda message: None)
print(format_compare(demo_result))
print(f"{len(demo_result['runs'])} runs in {time.perf_counter() - start:.0f} s; wrote "
      f"{sorted(p.name for p in demo_dir.iterdir())}")

# %% [markdown]
# Each run folder holds `config.json` (the resolved configuration), `metrics.jsonl` (one line per
# logged step, with the validation perplexity at each evaluation) and `summary.json` (the final numbers
# and their provenance: seed, git commit, hardware, wall time). `report.load_comparison` reads such a
# folder and `report.check` verifies it (section 5.3 spells out what it checks). A fresh run must pass:

# %%
demo = report.check(report.load_comparison(demo_dir))
vocab = demo.finished_runs[0].summary["tokenizer"]["vocab_size"]
for run in demo.finished_runs:  # both models learned something: better than a uniform guess over V
    assert run.summary["best_val_ppl"] < vocab
print(f"{len(demo.finished_runs)} runs verified; all below the uniform perplexity V = {vocab}")

# %% [markdown]
# The learning curves come from `metrics.jsonl`. The right panel divides the Grassmann model's validation
# perplexity by the Transformer's at each evaluation, seed by seed: the ratio the paper reports, as it
# develops during training.

# %%
COLOURS = {"grassmann": "tab:blue", "transformer": "tab:orange"}
SEED_COLOURS = ("tab:green", "tab:purple", "tab:brown", "tab:pink")


def val_curve(run):
    """(tokens, validation perplexity) at each evaluation of a run."""
    return [(r["tokens"], r["val_ppl"]) for r in run.metrics() if r.get("val_ppl") is not None]


def plot_comparison(comparison, title):
    fig, (ax, ax_ratio) = plt.subplots(1, 2, figsize=(10, 3.8))
    for run in comparison.finished_runs:
        tokens, ppl = zip(*val_curve(run))
        ax.plot([x / 1e6 for x in tokens], ppl, "o-", ms=3, color=COLOURS[run.model],
                alpha=0.5 + 0.5 / (1 + run.seed), label=f"{run.model}, seed {run.seed}")
    ax.set(xlabel="training tokens (millions)", ylabel="validation perplexity", title=title)
    ax.legend(fontsize=8)
    for seed in sorted({r.seed for r in comparison.finished_runs}):
        g, t = comparison.run("grassmann", seed), comparison.run("transformer", seed)
        if g is None or t is None:
            continue
        t_at = dict(val_curve(t))
        pts = [(x / 1e6, y / t_at[x]) for x, y in val_curve(g) if x in t_at]
        ax_ratio.plot(*zip(*pts), "s-", ms=3, color=SEED_COLOURS[seed % len(SEED_COLOURS)],
                      label=f"seed {seed}")
    ax_ratio.axhline(1.0, color="gray", ls=":", label="parity")
    ax_ratio.set(xlabel="training tokens (millions)", ylabel="Grassmann / Transformer perplexity",
                 title="the ratio during training")
    ax_ratio.legend(fontsize=8)
    fig.tight_layout()
    return fig


plot_comparison(demo, demo_spec.label)
plt.show()
demo_tmp.cleanup()

# %% [markdown]
# ## 5.3 The committed results
#
# The results in the repository were produced by `scripts/cpu_experiments.sh` on a CPU (every run
# records its hardware; see below): the `cpu-small` comparison (both models, two seeds) and the
# single-seed runs of section 5.4. They live in
# `results/wikitext2/`, found through the installed package (set `GFLOW_RESULTS_DIR` to read another
# results root). The main comparison must be there:

# %%
root = report.results_dir()
via = f" (from ${report.RESULTS_ENV})" if os.environ.get(report.RESULTS_ENV) else ""
main_dir = report.wikitext2_dir() / report.MAIN
print(f"results root: {root}{via}")
main = report.load_comparison(main_dir)
assert main is not None and main.complete, f"the main comparison is missing: {main_dir}/compare.json"
print(f"{main.label}: preset {main.data['preset']}, seeds {main.data['seeds']}, "
      f"{len(main.finished_runs)} runs")

# %% [markdown]
# **Verify before believing.** A results file is a claim too. `report.check` raises unless every run
# records its configuration, seed, git commit, hardware and wall time; its perplexities are
# $\exp(\text{loss})$; its folder agrees with `compare.json`; its best validation perplexity is the best
# one in `metrics.jsonl`; all runs had one training budget and tokenizer; and every mean, spread and
# ratio in `compare.json` is what the runs' numbers give. The key ones, spelled out:

# %%
report.check(main)
data = main.data
g_stats, t_stats = data["models"]["grassmann"], data["models"]["transformer"]
for run in main.finished_runs:
    s = run.summary
    assert {"config", "seed", "git_commit", "hardware", "wall_time_s"} <= s.keys()
    assert s["config"]["seed"] == s["seed"] and s["wall_time_s"] > 0
    assert_close(s["test_ppl"], math.exp(s["test_loss"]), rtol=1e-9, atol=0.0)
    assert s["tokens_seen"] == main.finished_runs[0].summary["tokens_seen"]  # one budget for all
    for k in recipe:  # the recipe of section 5.1's table (cpu-small's); betas come back as a list
        assert s["config"][k] == (list(cpu.betas) if k == "betas" else getattr(cpu, k)), k
for stats in (g_stats, t_stats):
    assert_close(stats["best_val_ppl"]["mean"], statistics.fmean(stats["best_val_ppl"]["values"]),
                 rtol=1e-12, atol=0.0)
assert_close(data["ratio_val_ppl"], g_stats["best_val_ppl"]["mean"] / t_stats["best_val_ppl"]["mean"],
             rtol=1e-12, atol=0.0)
assert_close(data["ratio_test_ppl"], g_stats["test_ppl"]["mean"] / t_stats["test_ppl"]["mean"],
             rtol=1e-12, atol=0.0)
print("consistent:", ", ".join(sorted({r.summary['git_commit'][:12] for r in main.finished_runs})),
      "|", main.finished_runs[0].summary["hardware"]["device"],
      f"| {data['wall_time_s'] / 3600:.1f} h in all")
display(report.summary_table(main))

# %%
plot_comparison(main, main.label)
plt.show()
at_end = [r.name for r in main.finished_runs if r.summary["best_step"] == r.summary["steps"]]
print(f"best checkpoint at the last step (still improving when training stopped): {at_end or 'none'}")

# %% [markdown]
# ### Beside the paper and the reproductions
#
# `gflow_book.published_runs` holds the paper's Table 1 and every public reproduction's
# WikiText-2 numbers, each entry with its model, depth, block, parameters, perplexities, tokenizer,
# recipe and source. A **matched gap** pairs a Grassmann run with the Transformer that the same source
# trained alike; the table below lists each source's gap for the paper's layer. Perplexities differ
# across rows for reasons unrelated to the mixer (tokenizer, data release, size, budget); the ratio is
# the one number that can be compared.

# %%
gaps = published.headline_gaps()
paper = [gap.ratio for gap in gaps if gap.source == "paper"]
repro = {f"{gap.source} {gap.setting}": gap.ratio for gap in gaps if gap.source != "paper"}
assert all(1.10 <= r <= 1.15 for r in paper)  # the paper's own table: "within 10-15%"
outliers = [k for k, r in repro.items() if r <= max(paper)]
assert len(outliers) == 1  # every reproduction but one found a larger gap than the paper
print(f"paper: {min(paper):.3f}-{max(paper):.3f}; reproductions: {min(repro.values()):.3f}-"
      f"{max(repro.values()):.3f}; at or below the paper's gap: {outliers}")
display(report.context_table(main, compact=True))  # the README has the recipes too

# %%
ratio, low, high = report.ratio_and_spread(*(
    [main.run(m, s).summary["best_val_ppl"] for s in data["seeds"]] for m in ARCHITECTURES))
assert_close(ratio, data["ratio_val_ppl"], rtol=1e-12, atol=0.0)
above = sorted(r for r in repro.values() if r > max(paper))
where = ("below the paper's gaps" if ratio < min(paper) else "within the paper's range" if ratio <= max(paper)
         else "between the paper's and every larger reproduction gap" if not above or ratio < min(above)
         else "within the range of the reproductions' larger gaps")
print(f"ours: {ratio:.3f} (seeds {low:.3f}-{high:.3f}): {where}")

fig, ax = plt.subplots(figsize=(7.5, 4.6))
labels = [f"{gap.source}: {gap.setting}" for gap in gaps]
ax.scatter([gap.ratio for gap in gaps], range(len(gaps)), marker="o", zorder=3,
           c=["tab:red" if gap.source == "paper" else "tab:gray" for gap in gaps])
ax.scatter([], [], c="tab:red", label="the paper (Table 1)")
ax.scatter([], [], c="tab:gray", label="reproductions (matched pairs)")
ax.errorbar([ratio], [len(gaps)], xerr=[[ratio - low], [high - ratio]], fmt="D", color="tab:blue",
            capsize=4, label=f"ours ({main.data['preset']}; bar: per-seed range)")
ax.axvline(1.0, color="black", ls=":", label="parity")
ax.set_yticks(range(len(gaps) + 1), labels + [f"ours: {main.data['preset']}"], fontsize=7)
ax.set_xlabel("Grassmann / Transformer perplexity (validation; test where only test is reported)")
ax.set_title("The gap, source by source")
ax.legend(fontsize=7, loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# The sources, by the short codes the figure uses (each is listed with its link on the
# [references](references.md) page, and {ref}`the paper notes <notes-3-3>` say what each ran):
# **KAN**, Kane Norman's [kanenorman/grassmann](https://github.com/kanenorman/grassmann);
# **YOU**, [youdie006/grassmann](https://github.com/youdie006/grassmann);
# **AXV**, alphaXiv's [paper-implementations](https://github.com/alphaXiv/paper-implementations);
# **ARL**, Elliot Arledge's [Infatoshi/grassmann-flows](https://github.com/Infatoshi/grassmann-flows).
#
# How to read this. The paper's three pairs sit at 1.11. Two reproductions trained the paper's
# Transformer the old way (post-LN, PyTorch's default initialisation, learning rate 1e-3: KAN and YOU's
# 6-layer run) and matched the paper's Transformer perplexity, with the paper's tokenizer, yet found
# the Grassmann model much further behind. AXV, with the same tokenizer and a modern pre-LN recipe,
# trained a much better Transformer, and the Grassmann model gained far less from that recipe. The gap
# therefore measures the baseline's tuning as much as the mixer. One run has the Grassmann model ahead
# (YOU's "stabilised" 12-layer pair: a single seed, best at epoch 4, overfitting afterwards).
#
# Ours is a smaller model trained for a fraction of the paper's budget, with the paper's post-LN block
# and a modern optimiser recipe for both models: it tests the mixer early in training at small size,
# not the paper's exact setting. Those claims about the published runs, checked:

# %%
by_key = {(e.source, e.setting, e.model): e for e in published.WIKITEXT2 if e.variant == ""}
paper_t = by_key["paper", "6L L128 (first row pair)", "transformer"].val
for source, setting in (("KAN", "6L L128 post-LN"), ("YOU", "6L L128 post-LN")):
    assert abs(by_key[source, setting, "transformer"].val / paper_t - 1) < 0.05  # the paper's Transformer
    assert repro[f"{source} {setting}"] > 1.3  # ... but a much larger gap
axv_t, axv_g = (by_key["AXV", "6L L128", m].val for m in ("transformer", "grassmann"))
axv_paper_g = by_key["paper", "6L L128 (first row pair)", "grassmann"].val
assert axv_t < 0.8 * paper_t and axv_paper_g / axv_g < paper_t / axv_t  # the Transformer gains more
print(f"6 layers, L 128, WordPiece: Transformer {paper_t} (paper) -> {axv_t} (AXV), "
      f"Grassmann {axv_paper_g} -> {axv_g}")

# %% [markdown]
# ## 5.4 Ablations, and a variant
#
# `scripts/cpu_experiments.sh` also makes single-seed runs (seed 0) at the `cpu-small` budget. Each
# **ablation** changes one thing in the paper's layer and is read against the baseline run of the
# **same seed**: its own architecture's (does the change help the Grassmann model?) and the
# Transformer's (does it close the gap?). A change the Transformer has too (the pre-LN block) is also
# applied to the Transformer (`pre-ln-transformer`), so that its effect on the gap is measured like for
# like. `grassmann-plus` is not the paper's layer: it is our attempt to close the gap with the changes
# the reproductions point to (pre-LN, fewer and shorter offsets), its reduced width set so that it has
# the Transformer's parameter count; it is compared with the pre-LN Transformer. Where a public
# reproduction tried the same change, its effect on its own run of the paper's layer is listed too.
# Every run here is at the preset's peak rate, 1e-3, tuned for none of them: section 5.6 gives each
# model its own best rate, and there the pre-LN Transformer gains a fifth, so these ratios to it are
# labelled "both at the preset's lr".

# %%
status = report.ablation_status()
for name, what in report.ABLATIONS.items():
    print(f"{name:20s} {what}\n{'':20s} -> {status[name]}")

# %%
abl = report.ablation_rows(baseline=main)
for row in abl:  # each ablation is read against the baseline run of the same seed and budget
    base = main.run(row.model, row.seed)
    assert base is not None and row.seed == base.seed
    assert_close(row.vs_same_model, row.val_ppl / base.summary["best_val_ppl"], rtol=1e-12, atol=0.0)
if abl:
    display(report.ablation_table(abl))
else:
    print("no ablation has finished yet")

# %%
names = list(report.ABLATIONS)
done = {row.name: row for row in abl}
base_gap = dict(zip(data["seeds"], (g / t for g, t in zip(*(
    [main.run(m, s).summary["best_val_ppl"] for s in data["seeds"]] for m in ARCHITECTURES)))))
fig, (ax, ax_gap) = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
for i, name in enumerate(names):
    row = done.get(name)
    if row is None:
        ax.text(1.0, i, "  not yet run", va="center", fontsize=8, color="gray")
        continue
    ax.barh(i, row.vs_same_model - 1.0, left=1.0, color=COLOURS[row.model], alpha=0.8)
    if row.model == "grassmann":
        ax_gap.plot(row.vs_transformer, i, "o", color=COLOURS["grassmann"])
        if row.vs_twin is not None:
            ax_gap.plot(row.vs_twin, i, "x", color="black", ms=8)
ax.axvline(1.0, color="black", ls=":")
ax.set_ylim(len(names) - 0.4, -0.6)  # top to bottom, in the script's order
ax.set_yticks(range(len(names)), names, fontsize=8)
ax.set(xlabel="best val. perplexity / baseline of the same model and seed", title="Does it help its model?")
ax.legend(handles=[Patch(color=COLOURS["grassmann"], label="a Grassmann ablation"),
                   Patch(color=COLOURS["transformer"], label="a Transformer ablation")], fontsize=7,
          loc="best")
ablation_seed = abl[0].seed if abl else data["seeds"][0]
ax_gap.axvline(base_gap[ablation_seed], color="tab:blue", ls="--",
               label=f"baseline gap, seed {ablation_seed}")
ax_gap.axvline(1.0, color="black", ls=":", label="parity")
ax_gap.plot([], [], "o", color=COLOURS["grassmann"], label="ablation / baseline Transformer")
ax_gap.plot([], [], "x", color="black", label="... / the pre-LN Transformer (both at 1e-3)")
ax_gap.set(xlabel="Grassmann / Transformer best val. perplexity", title="Does it close the gap?")
ax_gap.legend(fontsize=7, loc="best")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5.5 Full mode: the paper's settings on a GPU
#
# The paper-sized comparisons are one command each; run them on a CUDA GPU (one run at a time), then
# point this chapter at the results (`GFLOW_RESULTS_DIR`) or extend section 5.3 to the new folders:
#
# ```bash
# python -m gflow_lite compare --preset paper-6l  --seeds 3 --jobs 1 --out results/wikitext2/paper-6l
# python -m gflow_lite compare --preset paper-12l --seeds 3 --jobs 1 --out results/wikitext2/paper-12l
# ```
#
# How long? We have measured nothing on a GPU, so the table below is an **estimate**, and a rough one.
# Both columns count the matrix-multiply work of a run (`report.train_flops_per_token` × tokens) and
# divide it by a measured rate of such work: the CPU column by the rate of our fastest `cpu-small` run of
# the same model, on the machine that produced it; the GPU column by the rate implied by the training
# throughput ARL reports for a 6-layer Grassmann model of the paper's width on one H100. Both leave out
# evaluation, and assume the rate does not change with the model's size.

# %%
speeds = {m: sorted(round(v) for v in main.values(m, "tokens_per_s").values()) for m in ARCHITECTURES}
print(f"measured training speed per run, tokens/s: {speeds} (the machine was shared: we use the fastest)")
measured = {m: max((r.summary for r in main.finished_runs if r.model == m), key=lambda s: s["tokens_per_s"])
            for m in ARCHITECTURES}
rows = []
for name in ("paper-6l", "paper-12l"):
    for arch in ARCHITECTURES:
        est = report.estimate_run(resolve(name, arch), n_train["wordpiece"], measured[arch])
        assert est.tokens == est.steps * resolve(name, arch).tokens_per_step
        rows.append([name, arch, f"{est.steps:,}", f"{est.tokens / 1e6:.0f}M", f"{est.cpu_hours / 24:.1f}",
                     f"{est.gpu_hours * 60:.0f}"])
display(report.Table(
    ["preset", "model", "steps", "tokens", "ESTIMATE: days on this CPU", "ESTIMATE: minutes on one H100"],
    rows))
gpu_minutes = [float(row[-1]) for row in rows]
assert all(10 <= x <= 15 for x in gpu_minutes)  # the instructors' page quotes "10-15 minutes a run"
tp = published.PUBLISHED_THROUGHPUT
print(f"GPU rate from {tp.source}: {tp.tokens_per_s:,.0f} tokens/s on {tp.device} ({tp.where})")

# %% [markdown]
# ## 5.6 A fair fight: every model at its own best rate (optional: research section)
#
# The ratio of two perplexities says something about two mixers only if nothing else favours one of
# them, and the learning rate does. The preset's peak rate, 1e-3, was tuned for no model; a model run
# at another model's best rate is handicapped by the choice, not by its mixer. So before any ratio is
# printed, every model of this section gets the same tuning budget, by a rule written down before the
# results came in (`results/wikitext2/fair/README.md`; it lives in code as
# `gflow_lite.experiments.fair`):
#
# 1. **sweep** each model at cpu-small's 2000 steps on a ×2 grid of peak rates (cosine decay to a tenth
#    of it), at least three rates, extended while the best sits at an edge;
# 2. a run **fails** when it ends without a summary (it crashed, or was stopped because it did not
#    train), its loss is not finite, or it ends more than twice above the best that model reached at
#    any rate; a rate at which any seed fails is a failure of that model at that rate, and is
#    reported, never replaced by another model's rate;
# 3. a model's **best rate** is its lowest mean best validation perplexity among the rates that did not
#    fail, with a second seed there;
# 4. a **ratio** is printed only between two models each at its own best rate. With two seeds a
#    difference is **provisional**, and one smaller than the larger of the two seed ranges is **within
#    seed noise**.
#
# Seven models: the Transformer in its post-LN and pre-LN blocks, the paper's layer, grassmann-plus,
# and three **controls** of grassmann-plus with its reach, which the next subsection explains.
# `fair.collect` reads every run the plan names and checks each one's configuration, field by field,
# against the model's settings before it counts:

# %%
plan = fair.load_plan()
fair_results = fair.collect(plan)
sweep = fair_results["sweep"]
names = fair.sweep_models(plan)
best = fair.best_rates(plan, {n: sweep[n] for n in names})
assert sorted(fair.settled(plan, fair_results, [])) == sorted(names), "every sweep is settled"
assert all(len(sweep[n]) >= 3 and len(sweep[n][best[n]]) == 2 for n in names)  # 3+ rates, 2 seeds at the best
display(Markdown("\n".join(fair.sweep_section(plan, fair_results)[2:])))

# %% [markdown]
# The whole sweep in one figure: each model's mean best validation perplexity at every rate it was
# given (a cross: the rate failed; a star: its best).

# %%
fig, ax = plt.subplots(figsize=(7.5, 4.4))
for name in names:
    status, _ = fair.verdicts(sweep[name], plan["fail_factor"])
    ok = sorted(lr for lr in sweep[name] if status[lr] == "ok")
    (line,) = ax.plot(ok, [fair.mean_ppl(sweep[name][lr]) for lr in ok], "o-", ms=4, label=name)
    ax.plot(best[name], fair.mean_ppl(sweep[name][best[name]]), "*", ms=13, color=line.get_color())
    bad = sorted(lr for lr in sweep[name] if status[lr] == "failed")
    ax.plot(bad, [150.0] * len(bad), "x", ms=9, mew=2, color=line.get_color())
ax.text(8e-3, 140, "failed", ha="center", fontsize=8)
rates = sorted({lr for n in names for lr in sweep[n]})
ax.set(xscale="log", yscale="log", ylim=(55, 165), xlabel="peak learning rate",
       ylabel="best validation perplexity (mean of seeds)", title="cpu-small, 2000 steps: every model swept")
ax.set_xticks(rates, [fair.rate_name(lr) for lr in rates], minor=False)
ax.set_yticks([60, 70, 80, 100, 130], ["60", "70", "80", "100", "130"])
ax.minorticks_off()
ax.legend(fontsize=7, ncol=2)
fig.tight_layout()
plt.show()

# %% [markdown]
# **The baseline.** The post-LN Transformer is the better block: 60.8 at its best rate, 2e-3, against
# the pre-LN block's 68.4 at 4e-3, 12.5% behind. Above 2e-3 the post-LN block fails. At 4e-3 seed 0
# reached 59.1, better than 60.8, but seed 1 stalled at the level of a unigram model (perplexity 699 at
# step 400) and was stopped at step 713 without a summary; at 8e-3 it does not train. By rule 2 it is
# not credited with its lucky seed at 4e-3. The pre-LN block was under-tuned where the preset left it:
# its best rate brings its perplexity down by a fifth from its one run at 1e-3. Every ratio below
# divides by the post-LN Transformer at 2e-3.

# %%
ref = fair.transformer_reference(plan, sweep, best)
post, pre = (sweep[n][best[n]] for n in ("transformer-post", "transformer-pre"))
status_post, _ = fair.verdicts(sweep["transformer-post"], plan["fail_factor"])
assert ref == "transformer-post" and best["transformer-post"] == 2e-3 and best["transformer-pre"] == 4e-3
assert [lr for lr, s in sorted(status_post.items()) if s == "failed"] == [4e-3, 8e-3]
assert 1.12 < fair.mean_ppl(pre) / fair.mean_ppl(post) < 1.13  # "12.5% behind"
lucky, stalled = sweep["transformer-post"][4e-3][0], sweep["transformer-post"][4e-3][1]
assert fair.ppl(lucky) < fair.mean_ppl(post) and fair.failed(stalled) and "step 713" in stalled["reason"]
assert 0.18 < 1 - fair.mean_ppl(pre) / fair.mean_ppl(sweep["transformer-pre"][1e-3]) < 0.22  # "a fifth"


def vs_ref(name: str) -> float:
    """The model's mean best-val ppl at its own best rate over the reference Transformer's at its own."""
    return fair.mean_ppl(sweep[name][best[name]]) / fair.mean_ppl(sweep[ref][best[ref]])


def per_seed_ratios(name: str) -> list:
    return [fair.ppl(sweep[name][best[name]][s]) / fair.ppl(sweep[ref][best[ref]][s]) for s in (0, 1)]


print({n: f"{vs_ref(n):.3f} (seeds {' / '.join(f'{r:.3f}' for r in per_seed_ratios(n))})" for n in names})

# %% [markdown]
# **The paper's layer** is best at 2e-3 and there **37% behind** the Transformer (ratio 1.37; each
# seed's ratio within 0.01 of it; provisional, two seeds). With both at the preset's 1e-3, section 5.3's
# comparison read 1.26: tuning both widens the gap, because the Transformer gains more from its best
# rate (a sixth lower perplexity) than the paper's layer does (a tenth). **grassmann-plus** is 8% behind
# (1.08; provisional): our variant closes most of the paper layer's gap, not all of it.

# %%
at_preset = fair.mean_ppl(sweep["paper"][1e-3]) / fair.mean_ppl(sweep[ref][1e-3])
assert 1.36 < vs_ref("paper") < 1.375 and all(abs(r - vs_ref("paper")) < 0.01 for r in per_seed_ratios("paper"))
assert 1.24 < at_preset < 1.28 and at_preset < vs_ref("paper")  # "widens the gap"
gain = {n: fair.mean_ppl(sweep[n][1e-3]) / fair.mean_ppl(sweep[n][best[n]]) for n in (ref, "paper")}
assert 0.16 < 1 - 1 / gain[ref] < 0.18 and 0.09 < 1 - 1 / gain["paper"] < 0.11  # "a sixth", "a tenth"
assert 1.075 < vs_ref("grassmann-plus") < 1.085  # "8% behind"
print(f"both at 1e-3: {at_preset:.3f}; each at its best: {vs_ref('paper'):.3f}")

# %% [markdown]
# ### Is it the geometry? Controls with the same reach
#
# grassmann-plus's tokens each meet three fixed earlier positions per layer. Is it the Plücker geometry
# of those pairs that does the work, or would any mixer with the same reach do as well? No public
# reproduction asked. Three controls keep everything of grassmann-plus but one thing, with its parameter
# count (within 3%), data, tokenizer, budget and schedule, each swept like the models above:
#
# 1. **local attention with the same reach** (`local-attention`): attention over the token itself and
#    the $w = 4$ before it (`attn_window=4`, grassmann-plus's largest offset), in the pre-LN block the
#    Grassmann layer stands in for. Within its window attention sees every token, the Grassmann layer
#    only those at its offsets: that difference is the point of the control;
# 2. **no interaction** (`concat`): the pair feature $z_t \wedge z_{t-\Delta}$ replaced by the
#    concatenation $[z_t; z_{t-\Delta}]$ ($r = 100$; `LMConfig.pair`);
# 3. **bilinear without antisymmetry** (`outer`): the full outer product $z_t \otimes z_{t-\Delta}$
#    ($r^2$ features, $r = 17$).
#
# The controls are tested like the two models (`tests/test_controls.py`: causality by perturbation and
# by Jacobian, the fast path equal to the reference, parameters within 3%). Each against grassmann-plus,
# both at their own best rates:

# %%
PLUS = "grassmann-plus"
CONTROLS = ("local-attention", "concat", "outer", "transformer-pre", "transformer-post")
plus = sweep[PLUS][best[PLUS]]
n_plus = plus[0]["params"]
rows, label_of = [], {}
for name in (PLUS, *CONTROLS):
    seeds = sweep[name][best[name]]
    assert name.startswith("transformer") or abs(seeds[0]["params"] / n_plus - 1) <= 0.03, name
    notes = fair.noise_notes(plus, seeds) if name != PLUS else []
    label_of[name] = notes
    rows.append([name, fair.rate_name(best[name]), f"{seeds[0]['params']:,}",
                 " / ".join(f"{fair.ppl(seeds[s]):.2f}" for s in (0, 1)), f"{fair.mean_ppl(seeds):.2f}",
                 f"{fair.mean_ppl(seeds) / fair.mean_ppl(plus):.3f}", "; ".join(notes)])
display(report.Table(["model", "best rate", "params", "best val PPL (seed 0 / 1)", "mean", "/ grassmann-plus",
                      "note"], rows))

# %% [markdown]
# Their learning curves at those rates (validation perplexity at each evaluation, every seed):

# %%
fig, ax = plt.subplots(figsize=(7.5, 4.2))
for name in (PLUS, *CONTROLS):
    colour = None
    for seed in (0, 1):
        steps, values = zip(*fair.val_curve(fair.run_folder(plan, "sweep", name, best[name], seed)))
        (line,) = ax.plot(steps, values, "o-", ms=3, alpha=0.85, color=colour,
                          label=f"{name} ({fair.rate_name(best[name])})" if seed == 0 else None)
        colour = line.get_color()
ax.set(xlabel="optimizer step", ylabel="validation perplexity", yscale="log",
       title="cpu-small: grassmann-plus, its controls and the Transformers, each at its best rate")
ax.set_yticks([60, 70, 80, 100, 150], ["60", "70", "80", "100", "150"])
ax.minorticks_off()
ax.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# **The answer, with every model at its own best rate**, control by control:
#
# 1. **Without the geometry, no loss that two seeds can detect.** The concatenation, with no
#    interaction between the two tokens at all, is 1.0% behind the Plücker layer, within seed noise (its
#    own two seeds differ by 2.3% of their mean). The outer product is half a percent behind, just beyond
#    both seed ranges: a provisional difference, and a small one.
# 2. **In the pre-LN block, attention over the same window does not beat it.** Local attention with
#    grassmann-plus's reach ends 3.7% behind grassmann-plus (provisional), level with full attention in
#    that block (within seed noise of the pre-LN Transformer).
# 3. **The block matters as much as the mixer.** The same full attention is 12.5% apart between its two
#    blocks, more than any gap between the mixers in one block.
#
# An earlier version of this section read "local attention beats grassmann-plus by 9%". That run put
# local attention in the post-LN block and grassmann-plus in the pre-LN one; in the pre-LN block the
# order reverses, and the post-LN block is taken up after the halves below. One small model, one
# budget, two seeds per model: findings to test at other sizes, not laws.

# %%
rel = {n: fair.mean_ppl(sweep[n][best[n]]) / fair.mean_ppl(plus) for n in CONTROLS}
spread = {n: fair.seed_range(sweep[n][best[n]]) for n in (PLUS, *CONTROLS)}
assert label_of["concat"] == ["within seed noise"] and 1.005 < rel["concat"] < 1.015  # "1.0% behind"
assert 0.0225 < spread["concat"] / fair.mean_ppl(sweep["concat"][4e-3]) < 0.0235  # "2.3% of their mean"
assert label_of["outer"] == ["provisional (2 seeds)"] and 1.003 < rel["outer"] < 1.007  # "half a percent"
assert label_of["local-attention"] == ["provisional (2 seeds)"] and 1.035 < rel["local-attention"] < 1.04  # "3.7%"
assert "within seed noise" in fair.noise_notes(sweep["local-attention"][best["local-attention"]], pre)
block_gap = rel["transformer-pre"] / rel["transformer-post"]
assert 1.12 < block_gap < 1.13  # "12.5% apart"
assert all(block_gap > max(rel[a], 1) / min(rel[b], 1) for a in ("local-attention", "concat", "outer")
           for b in ("local-attention", "concat", "outer"))  # more than any gap between pre-LN mixers
print({n: f"{r:.3f}" for n, r in rel.items()})

# %% [markdown]
# ### What "pre-LN" changed: the two halves
#
# For the Transformer the pre-LN switch moves the LayerNorm before the sublayer; the residual is there
# in both blocks. The paper's Grassmann block has no residual around the mixer (the gate blends the
# mixed and the old state instead), so for the Grassmann model the same switch is **two** changes: the
# norm moves before the mixer, and a residual appears around it. Section 5.4's ablation ("pre-LN + a
# residual around the mixer") cannot say which one helps. Three more runs of grassmann-plus at its best
# rate, seed 0, take them apart (`LMConfig.mix_residual`):

# %%
halves = fair_results["halves"]
display(Markdown("\n".join(fair.halves_section(plan, fair_results)[2:])))
half = {n: fair.ppl(halves[n][best[PLUS]][0]) for n in plan["stages"]["halves"]["models"]}
half["both"] = fair.ppl(plus[0])

# %% [markdown]
# **The residual is the change that matters.** Without either change (the paper's block with
# grassmann-plus's offsets) the model is at 104; the residual alone takes it to 62, two fifths lower;
# the norm placement alone only to 79. With the residual in place, moving the norm before the mixer
# *costs* 6% (one seed, one rate); the pre-LN block costs the Transformer 12.5% (each at its own
# rate). The best of the four, post-LN with the residual, is 1.6% behind the tuned Transformer: one
# seed, at grassmann-plus's rate, never swept, so a lead for the next sweep rather than a result.

# %%
assert half["plus-post"] > half["plus-norm-only"] > half["both"] > half["plus-residual-only"]
assert 0.38 < 1 - half["plus-residual-only"] / half["plus-post"] < 0.43  # "two fifths lower"
assert 1.05 < half["both"] / half["plus-residual-only"] < 1.07  # "costs 6%"
assert 1.01 < half["plus-residual-only"] / fair.ppl(post[0]) < 1.02  # "1.6% behind" (seed 0 against seed 0)
print({n: round(v, 2) for n, v in half.items()})

# %% [markdown]
# **And in the post-LN block?** Three models with a residual around every sublayer ran there: the
# Transformer (swept), the residual-only Grassmann model above (one seed, at grassmann-plus's rate), and
# local attention over the same four tokens, from an earlier run of the controls at the Transformer's
# 2e-3 (two seeds, not swept). Neither of the last two was tuned for this block, so each is labelled
# with its rate:

# %%
post_local = report.complete_comparison("controls/plus-local-attention-w4-lr2e-3")
local_post = {r.seed: r.summary for r in post_local.finished_runs if r.model == "transformer"}
assert all(s["config"]["lr"] == 2e-3 and s["config"]["model"]["norm"] == "post"
           and s["config"]["model"]["attn_window"] == 4 for s in local_post.values())
POST = {"transformer-post (2e-3, swept)": [fair.ppl(post[s]) for s in (0, 1)],
        "local attention w = 4, post-LN (2e-3, not swept)": [local_post[s]["best_val_ppl"] for s in (0, 1)],
        "plus-residual-only (4e-3, not swept)": [half["plus-residual-only"]]}
display(report.Table(["post-LN model (rate)", "best val PPL per seed", "mean", "/ transformer-post"],
                     [[k, " / ".join(f"{x:.2f}" for x in v), f"{statistics.mean(v):.2f}",
                       f"{statistics.mean(v) / fair.mean_ppl(post):.3f}"] for k, v in POST.items()]))

# %% [markdown]
# In the post-LN block local attention over four tokens is ahead of full attention (2% lower) and of
# the Grassmann model with the residual (4% lower), at rates found for other models. So which mixer
# leads depends on the block: in the pre-LN block the Grassmann mixer beats attention over its window,
# in the post-LN block it does not. Every post-LN model with the residual is ahead of every pre-LN one.
# Sweeping the two untuned post-LN models is the natural next step.

# %%
post_means = {k: statistics.mean(v) for k, v in POST.items()}
local_key, res_key, t_key = list(POST)[1], list(POST)[2], list(POST)[0]
assert 0.97 < post_means[local_key] / post_means[t_key] < 0.99  # "2% lower"
assert 0.95 < post_means[local_key] / post_means[res_key] < 0.97  # "4% lower"
pre_ln = [fair.mean_ppl(sweep[n][best[n]]) for n in names if plan["models"][n]["overrides"].get("norm") == "pre"]
assert max(post_means.values()) < min(pre_ln)  # every post-LN model with the residual ahead of every pre-LN one

# %% [markdown]
# ## 5.7 To a plateau, and a second size (optional: research section)
#
# Every run of 5.6 that did not fail has its best checkpoint at its last step: it was still improving
# when the budget ran out, so its ratio measures how fast a model learns, while the paper's claim is
# about the best validation perplexity after 30 epochs. And every run so far is one size.
#
# **To a plateau.** The better Transformer, grassmann-plus and the paper's layer, each at its own best
# rate, are evaluated every 250 steps. The cosine reaches the floor rate at step 16,000
# (`TrainConfig.decay_steps`); the run goes on at the floor for up to 48,000 steps (32 epochs; the paper trains 30) and
# stops once 8 evaluations have passed without a lower validation loss (`patience`) *and* its best step
# lies before the last 15% of the steps run (`patience_frac`): that is when a run has reached a plateau.
# (The first version of the rule stopped after 8 evaluations at most 16,000 steps in; any run still
# improving past step 11,333 could then never count as a plateau, and near step 10,000 both runs in
# flight still improved at every evaluation, so the rule was amended before any run finished; see the
# log in `results/wikitext2/fair/README.md`.) The runs take many hours each on one core; the table lists
# those committed so far (the closing table of issue 22 has them all):

# %%
trained = [r for stage in ("sweep", "halves") for n in plan["models"] if fair_results[stage][n]
           for lr, status in fair.verdicts(fair_results[stage][n], plan["fail_factor"])[0].items()
           if status == "ok" for r in fair_results[stage][n][lr].values()]
assert len(trained) > 30 and all(r["best_step"] == fair.steps_run(r) for r in trained)  # still improving
plateau = fair_results["plateau"]
done = [(n, lr, s, r) for n in plan["models"] for lr, seeds in plateau[n].items() for s, r in seeds.items()]
for name, lr, seed, res in done:
    if fair.failed(res):
        continue
    assert lr == best[name], f"{name}: a plateau run at its own best sweep rate"
    steps = fair.steps_run(res)
    assert fair.is_plateau(res) == (res["best_step"] < 0.85 * steps)
display(Markdown("\n".join(fair.plateau_section(plan, fair_results)[2:])))

# %%
fig, ax = plt.subplots(figsize=(7.5, 4.2))
for name in (ref, "grassmann-plus", "paper"):
    (line,) = ax.plot(*zip(*fair.val_curve(fair.run_folder(plan, "sweep", name, best[name], 0))), "--",
                      alpha=0.7, label=f"{name}, 2000 steps")
    folder = fair.run_folder(plan, "plateau", name, best[name], 0)
    if folder is not None and (folder / "summary.json").is_file():
        ax.plot(*zip(*fair.val_curve(folder)), "-", color=line.get_color(), label=f"{name}, to a plateau")
ax.set(xlabel="optimizer step", ylabel="validation perplexity", yscale="log",
       title="cpu-small, seed 0, each at its own best rate")
ax.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# **A second size.** The preset `cpu-medium` has the paper's width and depth ($d = 256$,
# $d_{ff} = 1024$, 6 layers, $r = 32$, 4 heads) on cpu-small's data and BPE-4096 vocabulary, where the
# paper's layer and grassmann-plus have the Transformer's parameter count within 0.4%; a run is 800
# steps. A learning rate found at one size need not be the best at another, so the rule re-tunes: the
# Transformer and grassmann-plus at their small best rate and at half of it (more while the best is at
# an edge), and (amended when its best turned out to lie at the lower edge) the paper's layer the same
# way. One seed each:

# %%
display(Markdown("\n".join(fair.medium_section(plan, fair_results)[2:])))
medium = fair_results["medium"]
params = {n: seeds[0]["params"] for n, runs in medium.items() for seeds in runs.values()
          if 0 in seeds and not fair.failed(seeds[0])}
assert all(abs(params[n] / params["transformer-post"] - 1) < 0.004 for n in params)  # "within 0.4%"
TRIO = (ref, "grassmann-plus", "paper")
medium_status = {n: fair.verdicts(medium[n], plan["fail_factor"])[0] for n in TRIO}
medium_best = fair.best_rates(plan, {n: medium[n] for n in TRIO})
assert all(len(medium[n]) >= 2 for n in TRIO)  # every model at two rates or more
edges = {n: medium_best[n] in (min(medium[n]), max(medium[n])) for n in TRIO}
print("best medium rate:", {n: fair.rate_name(lr) for n, lr in medium_best.items()},
      "| at an edge of the rates tried:", [n for n, at in edges.items() if at])

# %% [markdown]
# **Is the gap larger at the larger size?** Both sizes at one budget, 800 steps of $16 \times 128$
# tokens (1.64M), each tuned at that budget by the same rule: at cpu-small too, each model runs at its
# best rate of the 2000-step sweep and at half of it, and on while its best lies at an edge (the plan's
# stage `small-800`; the earlier 800-step runs at those rates count). A budget this short may favour
# other rates than the 2000-step sweep, which is why the small point is re-tuned as well:

# %%
display(Markdown("\n".join(fair.small_800_section(plan, fair_results)[2:])))
small = fair_results["small-800"]
small_best = fair.best_rates(plan, {n: small[n] for n in TRIO})
params_small = {n: seeds[0]["params"] for n in TRIO for seeds in small[n].values() if 0 in seeds}
small_edges = {n: small_best[n] in (min(small[n]), max(small[n])) for n in TRIO}
assert all(len(small[n]) >= 2 for n in TRIO) and not any(small_edges.values())  # every best inside its rates
sizes = {"cpu-small": (small, small_best), "cpu-medium": (medium, medium_best)}
size_val = {(size, n): fair.mean_ppl(runs[n][bests[n]]) for size, (runs, bests) in sizes.items() for n in TRIO}
size_lr = {(size, n): bests[n] for size, (runs, bests) in sizes.items() for n in TRIO}
size_gap = {(size, n): v / size_val[size, ref] for (size, n), v in size_val.items()}
display(report.Table(["size (800 steps)", "model", "best rate", "best val PPL", "/ Transformer"],
                     [[size, n, fair.rate_name(size_lr[size, n]), f"{v:.2f}", f"{size_gap[size, n]:.3f}"]
                      for (size, n), v in size_val.items()]))

# %%
fig, ax = plt.subplots(figsize=(6.4, 4.0))
for name in TRIO:
    xs = [params_small[name] if size == "cpu-small" else params[name] for size in ("cpu-small", "cpu-medium")]
    ax.plot([x / 1e6 for x in xs], [size_val[size, name] for size in ("cpu-small", "cpu-medium")], "o-",
            label=f"{name} ({' → '.join(fair.rate_name(size_lr[size, name]) for size in ('cpu-small', 'cpu-medium'))})")
ax.set(xscale="log", yscale="log", xlabel="parameters (millions)", ylabel="best validation perplexity",
       title="WikiText-2, BPE-4096, 800 steps (1.64M tokens), seed 0, each at its best rate")
ax.set_yticks([60, 70, 80, 100, 130], ["60", "70", "80", "100", "130"])
ax.set_xticks([1.25, 2.5, 5], ["1.25", "2.5", "5"])
ax.minorticks_off()
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Yes, at this budget the gap is larger at the larger size, for both Grassmann models, once both
# sizes are tuned at it.** 4.4 times the parameters lower the Transformer's perplexity by 15%,
# grassmann-plus's by 12% and the paper's layer's not at all: grassmann-plus goes from 9% behind the
# Transformer (1.088) to 12% behind (1.123), the paper's layer from 61% to 89% behind. Every model's best
# rate halves at the larger size (4e-3 → 2e-3 for the Transformer and grassmann-plus, 2e-3 → 1e-3 for the
# paper's layer). Re-tuning the small point mattered as much as re-tuning the large one: at the
# 2000-step sweep's rate (2e-3) the Transformer's 800-step run read 88.15, not 80.75, and set
# grassmann-plus level with it (0.997), the figure an earlier version of this section printed; at its
# small rate grassmann-plus would read 21% behind at cpu-medium. How far can this be trusted? Every rate
# is the best of a ×2 grid at its own size and budget, inside the rates tried, but there is one seed per
# point, two sizes and 800 steps (less than an epoch); and the Transformer's best at cpu-small, 4e-3, is
# the rate at which its second seed stalled in the 2000-step sweep. A provisional direction, not a law.
# Whether it holds at a plateau and at the paper's scale is open.

# %%
assert medium_best == {ref: 2e-3, "grassmann-plus": 2e-3, "paper": 1e-3} and not any(edges.values())
assert small_best == {ref: 4e-3, "grassmann-plus": 4e-3, "paper": 2e-3}
assert all(medium_best[n] == small_best[n] / 2 for n in TRIO)  # "every model's best rate halves"
drop = {n: 1 - size_val["cpu-medium", n] / size_val["cpu-small", n] for n in TRIO}
assert 0.14 < drop[ref] < 0.16 and 0.11 < drop["grassmann-plus"] < 0.13 and abs(drop["paper"]) < 0.005
assert 1.08 < size_gap["cpu-small", "grassmann-plus"] < 1.095 and 1.115 < size_gap["cpu-medium", "grassmann-plus"] < 1.13
assert 1.60 < size_gap["cpu-small", "paper"] < 1.615 and 1.88 < size_gap["cpu-medium", "paper"] < 1.90
at_2000_rate = fair.mean_ppl(small[ref][best[ref]])  # the Transformer at the 2000-step sweep's best rate
assert best[ref] == 2e-3 and abs(at_2000_rate - 88.15) < 0.005 and abs(size_val["cpu-small", ref] - 80.75) < 0.005
assert 0.99 < size_val["cpu-small", "grassmann-plus"] / at_2000_rate < 1.0  # "level with it (0.997)"
at_small_rate = fair.mean_ppl(medium["grassmann-plus"][best["grassmann-plus"]]) / size_val["cpu-medium", ref]
assert 1.20 < at_small_rate < 1.22  # "would read 21% behind"
stalled = sweep[ref][small_best[ref]]  # the 2000-step sweep at the Transformer's best 800-step rate
assert any(fair.failed(r) for r in stalled.values()) and not all(fair.failed(r) for r in stalled.values())
print({n: f"{drop[n]:.3f}" for n in TRIO}, f"grassmann-plus at its small rate: {at_small_rate:.3f}")

# %% [markdown]
# **Summary.** The comparison holds everything but the mixer equal, reports the test perplexity at the
# best-validation checkpoint besides the paper's best validation perplexity, and records its provenance
# in every run. The results committed to the repository are verified before they are shown. The ratio
# of the two models' perplexities is the only number comparable across the paper, the reproductions and
# us, and it depends on tuning: with every model at its own best rate, the paper's layer is 37% behind
# the Transformer on cpu-small at 2000 steps and grassmann-plus 8% (both provisional, two seeds), and
# at 800 steps both gaps are larger at the paper's width and depth (one seed).
# Replacing the Plücker feature by a plain concatenation costs nothing two seeds can detect, and the
# block (where the norm sits, whether the mixer has a residual) moves perplexity as much as the choice
# between attention and the Grassmann mixer, and decides which of them leads.
#
# **Questions.** (Answers for instructors are on the instructors' page.)
#
# 1. Why does this chapter compare the Grassmann / Transformer *ratio* of perplexities rather than the
#    perplexities themselves with the paper's?
# 2. Two reproductions matched the paper's Transformer yet found a much larger gap; one with a modern
#    recipe found a smaller one. What does that say about reading a single gap as a property of the mixer?
# 3. Why is an ablation read against the baseline run of the *same seed*?
#
# ## Exercises

# %%
from gflow_book import chapter_exercises
from gflow_book.checks import check_ratio_and_spread, check_split_perplexity, check_training_budget

exercise = chapter_exercises("05_wikitext2")

# %% [markdown]
# **Exercise 5.1 (the ratio and its spread).** Write `ratio_and_spread(grassmann_ppl, transformer_ppl)`:
# given per-seed perplexities (seed $k$ of one model at index $k$ of the other's list), return
# `(ratio, low, high)`: the ratio of the mean perplexities, as `compare.json` reports it, and the smallest
# and largest seed-matched ratio $g_k / t_k$.

# %%
@exercise
def ratio_and_spread(grassmann_ppl, transformer_ppl):
    raise NotImplementedError("Exercise 5.1: your code here")


# %%
check_ratio_and_spread(ratio_and_spread)

# %% [markdown]
# **Exercise 5.2 (perplexity of a split).** Evaluation scores a split in batches; the last batch is
# shorter. Write `split_perplexity(loss_sums, token_counts)`: given each batch's **summed**
# cross-entropy (nats) and its number of predicted tokens, return the split's perplexity as
# `gflow_lite.training.evaluate` computes it. (Why is the mean of the per-batch perplexities wrong?)

# %%
@exercise
def split_perplexity(loss_sums, token_counts):
    raise NotImplementedError("Exercise 5.2: your code here")


# %%
check_split_perplexity(split_perplexity)

# %% [markdown]
# **Exercise 5.3 (a run's budget).** Write
# `training_budget(batch_size, grad_accum, block_size, max_steps, epochs, n_train_tokens)`: return
# `(steps, tokens)`, the optimizer steps of the run and the training tokens it consumes. Exactly one of
# `max_steps` and `epochs` is set (the other is `None`); an epoch is `n_train_tokens` tokens, and a run
# given in epochs rounds its steps up.

# %%
@exercise
def training_budget(batch_size, grad_accum, block_size, max_steps, epochs, n_train_tokens):
    raise NotImplementedError("Exercise 5.3: your code here")


# %%
check_training_budget(training_budget)

# %%
exercise.summary();
