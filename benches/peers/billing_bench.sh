#!/usr/bin/env bash
# CodiEsp benchmark in one run: the scikit-learn TF-IDF + one-vs-rest logistic regression
# baseline (billing_baseline.py) and cohort's pooled, federated (in-process FedAvg through
# billing::federated::LocalCoding) and local-only code models, trained on the same train split
# and scored on the same dev split by the same evaluator (billing::codiesp::evaluate: CodiEsp
# MAP, micro-F1 at the tuned threshold, CodiEsp-X). Prints one JSON object (also kept in OUT).
#
# usage: billing_bench.sh [CODIESP_DIR] [OUT.json] [HOSPITALS] [ROUNDS] [LOCAL_EPOCHS]
# env: PYTHON (a python with scikit-learn; default: billing_setup.sh's venv under ~/.cache),
#      SPLIT (dev; `test` once the held-out test split is there), and codiesp_bench's knobs
#      (BUCKETS_LOG2, MAX_N, DIM, EPOCHS, BATCH, LR, WD, MIN_COUNT, DP_CLIP, DP_NOISE).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
data="${1:-$root/../shared/data/codiesp}"
out="${2:-/tmp/billing_bench.json}"
hospitals="${3:-8}" rounds="${4:-30}" local_epochs="${5:-2}"
split="${SPLIT:-dev}"
python="${PYTHON:-$HOME/.cache/billing-venv/bin/python}"
[ -x "$python" ] || python="$(bash "$here/billing_setup.sh" "$HOME/.cache/billing-venv")"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

start=$(date +%s)
"$python" "$here/billing_baseline.py" "$data/train" "$data/$split" "$work/baseline.json" es
baseline_s=$(( $(date +%s) - start ))
echo "baseline: ${baseline_s} s" >&2

(cd "$root" && cargo build --release -p billing --example codiesp_bench)
BASELINE="$work/baseline.json" BASELINE_S="$baseline_s" SPLIT="$split" \
    "$target/release/examples/codiesp_bench" "$data" "$hospitals" "$rounds" "$local_epochs" es \
    | tee "$out"
