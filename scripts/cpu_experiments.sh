#!/usr/bin/env bash
# The WikiText-2 experiments of chapter 4 on a 2-core CPU: the cpu-small comparison (2 seeds) and the
# ablations the public reproductions point to (1 seed each, same budget). Every run records its config,
# seed, git commit, hardware and wall time (summary.json); compare.json aggregates them.
# Usage: scripts/cpu_experiments.sh [OUT_ROOT]   (default results/wikitext2); reruns reuse finished runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-results/wikitext2}
export TQDM_DISABLE=${TQDM_DISABLE:-1}
cmp() { "$PY" -m gflow_lite compare --preset cpu-small "$@"; }

# 1. The main comparison: both models, 2 seeds, two runs at a time (one thread each).
cmp --seeds 2 --jobs 2 --label "cpu-small: paper layer vs Transformer" --out "$OUT/cpu-small"

# 2. Ablations of the Grassmann model (seed 0), two at a time.
ablate() { local name=$1; shift; cmp --seeds 1 --jobs 1 --models grassmann --label "ablation: $name" \
             --set num_threads=1 --set-grassmann "$@" --out "$OUT/ablations/$name"; }
ablate offsets-1-2-4 offsets=1,2,4 &
ablate r32 r=32
wait
ablate r64 r=64 &
ablate no-normalize normalize=false
wait
ablate per-layer-1-2-4-8 offset_mode=per_layer offsets=1,2,4,8 &
ablate pre-ln norm=pre
wait
# the baseline under the same pre-LN switch, so the pre-LN gap is measured like for like
cmp --seeds 1 --jobs 1 --models transformer --label "ablation: pre-ln (transformer)" \
    --set-transformer norm=pre num_threads=1 --out "$OUT/ablations/pre-ln-transformer"
