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
from IPython.display import display
from matplotlib.patches import Patch
from torch.testing import assert_close

from gflow_lite import build_model
from gflow_lite.data import load_wikitext2
from gflow_lite.experiments import CompareSpec, run_compare
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
ax_gap.plot([], [], "x", color="black", label="... / the Transformer trained alike (pre-LN)")
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
# ## 5.6 Is it the geometry? (optional: research section)
#
# grassmann-plus comes within a few percent of the Transformer at the preset's learning rate, yet each
# of its tokens meets only three fixed earlier positions per layer. Is it the Plücker geometry that does
# the work, or would any mixer with the same reach do as well? No public reproduction asked. Two things
# come first: a baseline tuned as fairly as the variant; then **controls**, each with the same data,
# tokenizer, budget and schedule, and about the parameter count of the model it controls for (each table
# below lists the counts).
#
# Every number below is read from `results/wikitext2/` and verified first (`report.check`, section 5.3).
#
# > **Under re-examination (issue 22).** The comparisons in 5.6 and 5.7 tune some models and not others:
# > the pre-LN Transformer and the paper's layer were never swept, and the controls ran at another model's
# > rate. Every run's best checkpoint is also its last step, so the ratios measure learning speed at a fixed
# > budget, not a plateau. A fair re-run is under way: every model swept on the same ×2 grid with two seeds
# > at its best, then trained to a plateau with early stopping, then at the second size. Its decision rule
# > is in `results/wikitext2/fair/README.md`; its tables, rendered from the run folders with every finished
# > run, are in `results/wikitext2/fair/RESULTS.md`. These two sections will be rewritten from them.

# %%
def runs_of(folder: str, model: str, seeds=None) -> dict:
    """``{seed: summary}`` of the finished, verified runs of ``model`` in ``results/wikitext2/<folder>``."""
    c = report.complete_comparison(folder)
    if c is None:
        return {}
    return {r.seed: r.summary for r in c.finished_runs if r.model == model and (seeds is None or r.seed in seeds)}


def val_of(runs: dict) -> list:
    return [s["best_val_ppl"] for _, s in sorted(runs.items())]


def per_seed(values) -> str:
    return f"{statistics.mean(values):.1f} ({' / '.join(f'{v:.1f}' for v in values)})"


# %% [markdown]
# ### A fairly tuned baseline
#
# The preset's peak learning rate, 1e-3, was tuned for neither model. We swept it for the Transformer
# and for grassmann-plus at seed 0 (the schedule's floor moves with it, `min_lr = lr / 10`): halving it
# once, and doubling it while the best value sat at the top of the range. `report.sweep_runs` finds the
# runs by the rate their own configuration records:

# %%
swept = {key: val for key, (_, val) in report.sweep_runs().items()}  # (model, lr): seed 0's best val PPL
lrs = sorted({lr for _, lr in swept})
display(report.Table(["peak lr", "Transformer best val PPL (seed 0)", "grassmann-plus best val PPL (seed 0)"],
                     [[f"{lr:g}", *(f"{swept[m, lr]:.1f}" if (m, lr) in swept else "–"
                                    for m in ("transformer", "grassmann"))] for lr in lrs]))
stopped = report.stopped_runs()
print("stopped, did not train:", stopped)

# %% [markdown]
# Both models train much better above the preset's rate, and much worse below it (at 5e-4 both stay
# near a perplexity of 100, about a third above their values at 1e-3). At seed 0 both are best at 4e-3,
# with a worse value on each side: at 8e-3 grassmann-plus is clearly worse and the post-LN Transformer
# **does not train** (its loss stalls at the level of a unigram model, perplexity near 680). Then the Transformer's
# second seed at 4e-3 stalled in the same way, from its first hundred steps (stopped at step 713; its
# files are in `lr-sweep/stopped/`). A rate at which one seed of two does not train is not a rate to
# recommend, so we take each model's best **reliable** rate (`report.best_lrs`): the best seed-0 value
# among the rates at which no seed failed. For grassmann-plus (pre-LN) that is 4e-3, for the post-LN
# Transformer 2e-3, 3% behind its lucky seed at 4e-3. At those rates we trained a second seed of each:

# %%
best = report.best_lrs()
assert swept["transformer", 8e-3] > 5 * swept["transformer", 4e-3]  # 8e-3: does not train
assert ("transformer", 4e-3) in stopped and not any(m == "grassmann" for m, _ in stopped)
assert {m: lr for m, (lr, _) in best.items()} == {"transformer": 2e-3, "grassmann": 4e-3}
assert all(1.25 < swept[m, 5e-4] / swept[m, 1e-3] < 1.4 and 95 < swept[m, 5e-4] < 105 for m in best)  # "a third", "near 100"
assert all(swept[m, lr] > swept[m, best[m][0]] for m, lr in swept if lr != best[m][0] and (m, lr) not in stopped)
assert swept["transformer", 2e-3] / swept["transformer", 4e-3] < 1.04  # "3% behind its lucky seed"
at = {"preset": {"transformer": runs_of(report.MAIN, "transformer"),
                 "grassmann": runs_of("ablations/grassmann-plus", "grassmann")},
      "best": {m: runs_of(folder, m) for m, (_, folder) in best.items()}}
ratio = {k: statistics.mean(val_of(r["grassmann"])) / statistics.mean(val_of(r["transformer"])) for k, r in at.items()}
display(report.Table(
    ["learning rate", "Transformer val PPL (per seed)", "grassmann-plus val PPL (per seed)", "grassmann-plus / Transformer"],
    [["the preset's, 1e-3", per_seed(val_of(at["preset"]["transformer"])), per_seed(val_of(at["preset"]["grassmann"])),
      f"{ratio['preset']:.3f}"],
     [f"each one's best reliable (Transformer {best['transformer'][0]:g}, grassmann-plus {best['grassmann'][0]:g})",
      per_seed(val_of(at["best"]["transformer"])), per_seed(val_of(at["best"]["grassmann"])), f"{ratio['best']:.3f}"]]))

# %% [markdown]
# **What the sweep says.** Tuning moves both models a long way: at its best reliable rate the
# Transformer's validation perplexity is about a sixth lower than at the preset's, grassmann-plus's about
# an eighth. The Transformer gains more, so the gap that looked like 2% at the preset's rate is **about
# 8%** when each model has its own best rate (two seeds each; the seeds agree within half a percent).
# The headline ratio of section 5.4, 1.024 at 1e-3, therefore overstates how close grassmann-plus comes.

# %%
assert all(len(r) == 2 for r in at["best"].values()), "two seeds of each model at its best rate"
assert 1.01 < ratio["preset"] < 1.04 and 1.06 < ratio["best"] < 1.10  # "2%", "about 8%"
gain = {m: statistics.mean(val_of(at["preset"][m])) / statistics.mean(val_of(at["best"][m])) for m in best}
assert 1.15 < gain["transformer"] < 1.25 and 1.10 < gain["grassmann"] < 1.18  # "a sixth", "an eighth"
assert all(max(v) / min(v) < 1.005 for v in (val_of(r) for r in at["best"].values()))  # "within half a percent"

# %% [markdown]
# ### The controls
#
# Three controls with the reach of grassmann-plus:
#
# 1. **local attention with the same reach**: the Transformer baseline (post-LN, its better block) with
#    attention restricted to the token itself and the $w = 4$ before it (`attn_window=4`), the largest
#    offset of grassmann-plus. Matching $w$ per layer also matches the stacks: four layers of either
#    reach $4 \times 4 = 16$ tokens back (`LMConfig.receptive_field`). Within its window attention sees
#    every token, the Grassmann layer only those at its offsets: that difference is the point of the
#    control;
# 2. **the same layer without the geometry**: everything of grassmann-plus kept (reduction, offsets,
#    normalisation, projection, mean over offsets, gate, blend, block), only the pair feature
#    $z_t \wedge z_{t-\Delta}$ replaced (`LMConfig.pair`), with $r$ chosen to match the parameters:
#    (a) **no interaction**, the concatenation $[z_t; z_{t-\Delta}]$ ($r = 100$); (b) **bilinear without
#    antisymmetry**, the full outer product $z_t \otimes z_{t-\Delta}$ ($r^2$ features, $r = 17$).
#
# The controls are tested like the two models (`tests/test_controls.py`: causality by perturbation and
# Jacobian, the fast path equal to the paper-order reference, parameters within 3%). Each runs at the
# tuned rate of its family: the two pair features at grassmann-plus's 4e-3, local attention (a
# Transformer block, which does not train reliably at 4e-3) at the Transformer's 2e-3.

# %%
def table_of(spec: dict, seeds=None) -> dict:
    """Display params, seeds, val PPL per seed and test PPL of each ``label: (folder, model)``; return
    ``{label: [val PPL per seed]}``."""
    rows, values = [], {}
    for label, (folder, model) in spec.items():
        runs = runs_of(folder, model, seeds)
        assert runs, f"missing: results/wikitext2/{folder} ({model})"
        values[label] = val_of(runs)
        rows.append([label, f"{runs[min(runs)]['params']:,}", ", ".join(map(str, sorted(runs))),
                     per_seed(values[label]), f"{statistics.mean(s['test_ppl'] for s in runs.values()):.1f}"])
    display(report.Table(["model", "params", "seeds", "best val PPL (per seed)", "test PPL"], rows))
    return values


def verdict(base: list, other: list) -> str:
    """How the base model compares with ``other``: 'better', 'worse', or 'within the seed spread'. A
    difference counts only if it is larger than the larger seed range of the two (of grassmann-plus's
    two seeds, where the other model has one)."""
    spread = max(max(base) - min(base), max(other) - min(other))
    diff = statistics.mean(other) - statistics.mean(base)
    return "better" if diff > spread else "worse" if diff < -spread else "within the seed spread"


PLUS = "grassmann-plus (Plücker pairs)"
lr_t, lr_g = (report.lr_tag(best[m][0]) for m in ("transformer", "grassmann"))
TUNED = {
    PLUS: (best["grassmann"][1], "grassmann"),
    "local attention, w = 4": (f"controls/plus-local-attention-w4-lr{lr_t}", "transformer"),
    "pair [z_t; z_t-Δ] (no interaction)": (f"controls/plus-concat-lr{lr_g}", "grassmann"),
    "pair z_t ⊗ z_t-Δ (bilinear)": (f"controls/plus-outer-lr{lr_g}", "grassmann"),
    "Transformer (full attention)": (best["transformer"][1], "transformer"),
}
tuned = table_of(TUNED)
n_plus = runs_of(*TUNED[PLUS])[0]["params"]
for label, spec in TUNED.items():
    if "Transformer" not in label:  # matched parameters
        assert abs(runs_of(*spec)[0]["params"] / n_plus - 1) <= 0.03, label

# %% [markdown]
# The learning curves (validation perplexity at each evaluation, every seed):

# %%
fig, ax = plt.subplots(figsize=(7.5, 4.2))
for (label, (folder, model)), colour in zip(TUNED.items(), ("tab:blue", "tab:red", "tab:green", "tab:purple",
                                                             "tab:orange")):
    c = report.complete_comparison(folder)
    for i, run in enumerate(r for r in c.finished_runs if r.model == model):
        points = [(e["step"], e["val_ppl"]) for e in run.metrics() if "val_ppl" in e]
        ax.plot(*zip(*points), "o-", ms=3, color=colour, alpha=0.85, label=label if i == 0 else None)
ax.set(xlabel="optimizer step", ylabel="validation perplexity", yscale="log",
       title="cpu-small, tuned rates: grassmann-plus and its controls")
ax.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %%
verdicts = {label: verdict(tuned[PLUS], v) for label, v in tuned.items() if label != PLUS}
rel = {label: statistics.mean(v) / statistics.mean(tuned[PLUS]) for label, v in tuned.items()}
for label, v in verdicts.items():
    print(f"against {label:36s} grassmann-plus is {v:24s} (val PPL {rel[label]:.3f}x grassmann-plus's)")

# %% [markdown]
# **The answer, at tuned rates**, control by control:
#
# 1. **Local attention with the same reach wins clearly.** Attention over the same four earlier tokens,
#    at its own tuned rate, reaches a validation perplexity about 9% lower than tuned grassmann-plus, far
#    outside the seeds' spread, and lower even than full attention's at this budget (as at 1e-3).
# 2. **Without the geometry, nothing measurable is lost once both are tuned.** The concatenation, with no
#    interaction between the two tokens at all, is within the seed spread of the Plücker layer (a wide
#    band: its own two seeds differ by about 2%, its mean is 1% behind). The general
#    bilinear feature (the outer product, with more features per pair than $z_t \wedge z_{t-\Delta}$ at the
#    same parameter count) ends about 0.5% behind it: just beyond grassmann-plus's own seed range, a small
#    difference.
#
# So on cpu-small, with every model at a tuned rate, what grassmann-plus does with its three fixed
# partners is matched by a linear map of the concatenated pair and beaten by attention over the same
# window. The Plücker coordinates are not what makes the layer work here. One small model, one budget,
# two seeds per control: a finding to test at other sizes, not a law.

# %%
STATED = {  # what the list above says about grassmann-plus against each model
    "local attention, w = 4": "worse",
    "pair [z_t; z_t-Δ] (no interaction)": "within the seed spread",
    "pair z_t ⊗ z_t-Δ (bilinear)": "better",
    "Transformer (full attention)": "worse",
}
assert verdicts == STATED, verdicts
assert 0.89 < rel["local attention, w = 4"] < 0.93  # "about 9% lower"
assert statistics.mean(tuned["local attention, w = 4"]) < statistics.mean(tuned["Transformer (full attention)"])
assert 1.0 < rel["pair z_t ⊗ z_t-Δ (bilinear)"] < 1.01  # "about 0.5% behind"
concat_seeds = tuned["pair [z_t; z_t-Δ] (no interaction)"]
assert 1.015 < max(concat_seeds) / min(concat_seeds) < 1.03 and 1.0 < rel["pair [z_t; z_t-Δ] (no interaction)"] < 1.015

# %% [markdown]
# **At the preset's rate.** Before the sweep we ran the same three controls at 1e-3 (two seeds each, all
# five models at 1e-3):

# %%
PRESET = {
    PLUS: ("ablations/grassmann-plus", "grassmann"),
    "local attention, w = 4": ("controls/plus-local-attention-w4", "transformer"),
    "pair [z_t; z_t-Δ] (no interaction)": ("controls/plus-concat", "grassmann"),
    "pair z_t ⊗ z_t-Δ (bilinear)": ("controls/plus-outer", "grassmann"),
    "Transformer (full attention)": (report.MAIN, "transformer"),
}
at_preset = table_of(PRESET)
verdicts_preset = {label: verdict(at_preset[PLUS], v) for label, v in at_preset.items() if label != PLUS}
rel_preset = {label: statistics.mean(v) / statistics.mean(at_preset[PLUS]) for label, v in at_preset.items()}
print({label: f"{v} ({rel_preset[label]:.3f}x)" for label, v in verdicts_preset.items()})

# %% [markdown]
# There, local attention was about 6% better than grassmann-plus, the concatenation about 1.6% worse
# (beyond the seed spread) and the outer product within the spread of the Plücker layer.
# Tuning changed the second answer: the concatenation's 1.6% at 1e-3 was a learning rate it had not
# been given, not a feature it lacked.

# %%
assert verdicts_preset == {"local attention, w = 4": "worse", "pair [z_t; z_t-Δ] (no interaction)": "better",
                           "pair z_t ⊗ z_t-Δ (bilinear)": "within the seed spread",
                           "Transformer (full attention)": "worse"}, verdicts_preset
assert 0.92 < rel_preset["local attention, w = 4"] < 0.96
assert 1.01 < rel_preset["pair [z_t; z_t-Δ] (no interaction)"] < 1.03

# %% [markdown]
# ### The paper's own layer and its controls
#
# The same three controls for the layer as the paper describes it (post-LN, its six offsets up to 16,
# $r = 16$), one seed, at the preset's rate (the paper's layer was not swept): local attention over the
# last $w = 16$ tokens (its largest offset), the concatenation ($r = 46$) and the outer product
# ($r = 11$). The two pair features match the paper's layer within 1% of its parameters; local attention
# and the Transformer have their fixed count, 4.9% more. A difference counts only beyond the paper's
# layer's own seed range (two seeds in the main comparison).

# %%
PAPER = "the paper's layer (Plücker pairs)"
PAPER_SPEC = {
    PAPER: (report.MAIN, "grassmann"),
    "local attention, w = 16": ("controls/paper-local-attention-w16", "transformer"),
    "pair [z_t; z_t-Δ] (no interaction)": ("controls/paper-concat", "grassmann"),
    "pair z_t ⊗ z_t-Δ (bilinear)": ("controls/paper-outer", "grassmann"),
    "Transformer (full attention)": (report.MAIN, "transformer"),
}
paper = table_of(PAPER_SPEC, seeds=(0,))
paper_seeds = val_of(runs_of(*PAPER_SPEC[PAPER]))  # every seed of the paper's layer: its spread
n_paper = runs_of(*PAPER_SPEC[PAPER])[0]["params"]
excess = {label: runs_of(*spec)[0]["params"] / n_paper - 1 for label, spec in PAPER_SPEC.items()}
verdicts_paper = {label: verdict(paper_seeds, v) for label, v in paper.items() if label != PAPER}
rel_paper = {label: v[0] / paper[PAPER][0] for label, v in paper.items()}
for label, v in verdicts_paper.items():
    print(f"against {label:36s} the paper's layer is {v:24s} (seed 0: {rel_paper[label]:.3f}x; "
          f"params {excess[label]:+.1%})")

# %% [markdown]
# The paper's layer gives the same answers as grassmann-plus, more starkly. Local attention over its
# reach of 16 tokens is about a fifth lower in perplexity, and only 2% behind full attention. Replacing
# the Plücker feature by the concatenation costs 0.2%: beyond the paper's layer's own two seeds (they
# differ by 0.02%), so by the rule above the Plücker layer is "better", but by a fifth of a percent, on
# one seed of the control. The outer product is 1.6% behind, the one clear difference in favour of the
# geometry here. Both at the preset's untuned rate: for grassmann-plus, a difference of the same size
# (the concatenation's 1.6% at 1e-3) did not survive tuning, so we read these as upper bounds on what
# the geometry buys, not as findings.

# %%
assert all(abs(excess[label]) <= 0.01 for label in PAPER_SPEC if label.startswith("pair"))
assert all(0.04 < excess[label] < 0.06 for label in ("local attention, w = 16", "Transformer (full attention)"))
assert 0.78 < rel_paper["local attention, w = 16"] < 0.83  # "about a fifth lower"
assert 1.0 < paper["local attention, w = 16"][0] / paper["Transformer (full attention)"][0] < 1.03  # "2% behind"
assert 1.0 < rel_paper["pair [z_t; z_t-Δ] (no interaction)"] < 1.004  # "0.2%"
assert max(paper_seeds) / min(paper_seeds) < 1.0005  # "differ by 0.02%"
assert 1.01 < rel_paper["pair z_t ⊗ z_t-Δ (bilinear)"] < 1.02  # "1.6% behind"
assert {label: verdicts_paper[label] for label in PAPER_SPEC if label.startswith("pair")} == {
    "pair [z_t; z_t-Δ] (no interaction)": "better", "pair z_t ⊗ z_t-Δ (bilinear)": "better"}

# %% [markdown]
# ## 5.7 A second size: does the gap shrink? (optional: research section)
#
# Every number so far is from one small model, while the paper's claim is about 6 layers at $d = 256$;
# no public reproduction measured more than one size. The preset `cpu-medium` has the paper's width and
# depth ($d = 256$, $d_{ff} = 1024$, 6 layers, $r = 32$, 4 heads, the paper's six offsets) on cpu-small's
# data and BPE-4096 vocabulary. With this vocabulary the paper's layer at $r = 32$ already has the
# Transformer's parameter count (+0.4%), and so has grassmann-plus at $r = 32$ (pre-LN, offsets
# $\{1, 2, 4\}$). A run trains for 800 steps of $16 \times 128$ tokens (1.64M): about 25 minutes on one
# core, the budget three runs could have beside the controls. So that the two sizes differ in size only,
# cpu-small was trained for the same 800 steps too. Each model runs at the rate of the comparisons above:
# the Transformer at its best reliable 2e-3, grassmann-plus at 4e-3, the paper's layer (never swept) at
# the preset's 1e-3. One seed each.

# %%
SIZES = {  # (size, model) -> (folder, architecture)
    ("cpu-small", "Transformer"): ("cpu-small-800", "transformer"),
    ("cpu-small", "paper's layer"): ("cpu-small-800", "grassmann"),
    ("cpu-small", "grassmann-plus"): ("cpu-small-800-plus", "grassmann"),
    ("cpu-medium", "Transformer"): ("cpu-medium", "transformer"),
    ("cpu-medium", "paper's layer"): ("cpu-medium", "grassmann"),
    ("cpu-medium", "grassmann-plus"): ("cpu-medium-plus", "grassmann"),
}
points = {}
for key, (folder, model) in SIZES.items():
    (run,) = runs_of(folder, model).values()  # one seed
    assert run["tokens_seen"] == 800 * 16 * 128  # one budget for both sizes
    points[key] = dict(params=run["params"], lr=run["config"]["lr"], val=run["best_val_ppl"],
                       test=run["test_ppl"], tokens_per_s=run["tokens_per_s"], minutes=run["wall_time_s"] / 60)
gap = {key: p["val"] / points[key[0], "Transformer"]["val"] for key, p in points.items()}
display(report.Table(
    ["size", "model", "params", "peak lr", "best val PPL", "test PPL", "/ Transformer", "tokens/s", "minutes"],
    [[size, m, f"{p['params']:,}", f"{p['lr']:g}", f"{p['val']:.1f}", f"{p['test']:.1f}", f"{gap[size, m]:.3f}",
      f"{p['tokens_per_s']:,.0f}", f"{p['minutes']:.0f}"] for (size, m), p in points.items()]))

# %%
fig, ax = plt.subplots(figsize=(6.4, 4.0))
for m, colour in (("Transformer", COLOURS["transformer"]), ("paper's layer", COLOURS["grassmann"]),
                  ("grassmann-plus", "tab:green")):
    xs, ys = zip(*[(points[s, m]["params"] / 1e6, points[s, m]["val"]) for s in ("cpu-small", "cpu-medium")])
    ax.plot(xs, ys, "o-", color=colour, label=m)
ax.set(xscale="log", yscale="log", xlabel="parameters (millions)", ylabel="best validation perplexity",
       title="WikiText-2, BPE-4096, 800 steps (1.64M tokens), seed 0")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **The trend.** Four times the parameters buys the Transformer about a fifth lower perplexity, the
# paper's layer about a seventh and grassmann-plus only about a twentieth. So at this budget the gap
# **grows** with size: grassmann-plus, level with the Transformer at cpu-small, is about 21% behind at
# cpu-medium; the paper's layer goes from 71% to 89% behind. How far can two points be trusted? One seed
# per point: the two-seed runs of section 5.6 vary by well under 1%, far less than these changes, so the
# direction is not noise. But it is two sizes, a short budget (half an epoch, where a smaller model may
# still be ahead on speed of learning), learning rates found at the small size only (not rechecked at
# the larger one) and the paper's layer untuned; the paper's presets on a GPU (section 5.5) are the test
# at the paper's scale.

# %%
drop = {m: points["cpu-small", m]["val"] / points["cpu-medium", m]["val"] for m in ("Transformer", "paper's layer", "grassmann-plus")}
assert 1.22 < drop["Transformer"] < 1.33 and 1.12 < drop["paper's layer"] < 1.20 and 1.02 < drop["grassmann-plus"] < 1.08
assert abs(gap["cpu-small", "grassmann-plus"] - 1) < 0.01 and 1.18 < gap["cpu-medium", "grassmann-plus"] < 1.25
assert 1.68 < gap["cpu-small", "paper's layer"] < 1.74 and 1.86 < gap["cpu-medium", "paper's layer"] < 1.92
assert all(gap["cpu-medium", m] > gap["cpu-small", m] for m in ("paper's layer", "grassmann-plus"))  # "grows"

# %% [markdown]
# **Summary.** The comparison holds everything but the mixer equal, reports the test perplexity at the
# best-validation checkpoint besides the paper's best validation perplexity, and records its provenance
# in every run. The results committed to the repository are verified before they are shown. The ratio
# of the two models' perplexities is the only number comparable across the paper, the reproductions and
# us, and every reproduction but one found a larger one than the paper's 1.11.
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
