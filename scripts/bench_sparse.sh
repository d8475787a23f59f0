#!/usr/bin/env bash
# The CSR issue's measurements in one go, on a quiet machine (nothing else running: OpenMP's
# spinning threads make 2-thread timings collapse under load). Writes results/bench/:
#   kernels.{csv,md,svg}   sparsetrain bench kernels (SpMM, SpMMᵀ, SDDMM vs our GEMM and oneDNN)
#   eigen.md               our SpMM vs Eigen's sparse × dense vs oneDNN, side by side (if built)
#   train_sparse.txt, train_sparse_<model>.json  bench train: dense-masked vs CSR training throughput
#   static95_*.txt         a whole training run at 95% sparsity, CSR vs dense-masked
# Usage: scripts/bench_sparse.sh [build-dir] [threads]   (defaults: build, 2)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
threads=${2:-2}
out=results/bench
mkdir -p "$out"
bin="$build/sparsetrain"
"$bin" bench kernels --threads "$threads" --csv "$out/kernels.csv" --md "$out/kernels.md" \
  --svg "$out/kernels.svg" > "$out/kernels.txt"
if [[ -x "$build/bench_eigen_spmm" ]]; then
  "$build/bench_eigen_spmm" --threads "$threads" > "$out/eigen.md"
fi
: > "$out/train_sparse.txt"
for model in lenet300 lenet5; do
  "$bin" bench train --model "$model" --sparsity 0.9,0.95,0.98 --mode dense,csr --threads "$threads" \
    --json "$out/train_sparse_$model.json" | tee -a "$out/train_sparse.txt"
done
for model in lenet300 lenet5; do
  for mode in csr dense; do
    enabled=$([[ $mode == csr ]] && echo true || echo false)
    rm -rf "runs/${model}_static95_$mode"
    "$bin" train "configs/${model}_static95.json" --set threads="$threads" \
      --set sparse.enabled="$enabled" --run-dir "runs/${model}_static95_$mode" \
      > "$out/static95_${model}_$mode.txt"
  done
done
