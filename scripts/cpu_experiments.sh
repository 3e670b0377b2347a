#!/usr/bin/env bash
# The WikiText-2 experiments of chapter 4 on a 2-core CPU, all at the cpu-small budget (2000 steps of
# 16 x 128 BPE-4096 tokens). Every run records its config, seed, git commit, hardware and wall time
# (summary.json); each compare.json aggregates its runs. Reruns reuse finished runs.
#
# Usage: scripts/cpu_experiments.sh STAGE [OUT_ROOT]     (OUT_ROOT default: results/wikitext2)
#   main       the paper's layer vs the Transformer, 2 seeds (two runs at a time, one thread each)
#   variant    the gap-closing variant "grassmann-plus" and the pre-LN Transformer it must be compared to
#   variant2   grassmann-plus again with 2 seeds (reuses seed 0) beside the first ablation
#   ablations  one switch at a time on the paper's layer (seed 0)
#   all        main, variant, ablations
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
STAGE=${1:-all}
OUT=${2:-results/wikitext2}
export TQDM_DISABLE=${TQDM_DISABLE:-1}
cmp() { "$PY" -m gflow_lite compare --preset cpu-small "$@"; }
one() {  # one comparison of one model: NAME MODEL OVERRIDES... (seeds 0..SEEDS-1, default 1)
  local name=$1 model=$2; shift 2
  cmp --seeds "${SEEDS:-1}" --jobs 1 --models "$model" --label "$name" --set num_threads=1 "--set-$model" "$@" \
      --out "$OUT/ablations/$name"
}

main() {
  cmp --seeds 2 --jobs 2 --label "cpu-small: paper layer vs Transformer" --out "$OUT/cpu-small"
}

variant() {
  # grassmann-plus (ours, not the paper's layer): pre-LN with a residual around the mixer, fewer and
  # shorter offsets {1,2,4}, r = 24 (which brings its parameter count to the Transformer's).
  one grassmann-plus grassmann norm=pre offsets=1,2,4 r=24 &
  one pre-ln-transformer transformer norm=pre
  wait
}

variant2() {
  SEEDS=2 one grassmann-plus grassmann norm=pre offsets=1,2,4 r=24 &
  one offsets-1-2-4 grassmann offsets=1,2,4
  wait
}

ablations() {
  one offsets-1-2-4 grassmann offsets=1,2,4 &
  one pre-ln grassmann norm=pre
  wait
  one r32 grassmann r=32 &
  one no-normalize grassmann normalize=false
  wait
  one r64 grassmann r=64 &
  one per-layer-1-2-4-8 grassmann offset_mode=per_layer offsets=1,2,4,8
  wait
}

case "$STAGE" in
  main) main ;;
  variant) variant ;;
  variant2) variant2 ;;
  ablations) ablations ;;
  all) main; variant; ablations ;;
  *) echo "unknown stage '$STAGE'; use main, variant, ablations or all" >&2; exit 2 ;;
esac
