#!/usr/bin/env bash
# Data-parallel training and sweeps under `mpirun -np 2` on this machine, against one process:
#   - 2 ranks give the same checkpoint bytes as 1 rank with the same train.micro_batches (weights,
#     optimizer state, RNG streams), for a dense config and for a pruned one (gradual magnitude
#     pruning with dropout, mask changes and CSR switches; RigL regrowing its CSR layers from the
#     x and dy gathered from both ranks);
#   - a run stopped on 2 ranks and resumed on 1, and the other way round, ends as the uninterrupted run;
#   - an MPI sweep trains every point once, each point equal to the plain sweep's;
#   - refusals: micro_batches that the ranks cannot share, and nothing written by a refused run.
# Usage: test_train_mpi.sh <sparsetrain binary> <repo root>. Exits 77 (skipped) without MPI.
set -u
bin=$1
root=$2
here=$(cd "$(dirname "$0")" && pwd)
mpi() { bash "$here/run_mpi.sh" "$@"; }
mpi 1 "$bin" --version >/dev/null || exit $?  # 77 (skipped): no mpirun, or a build without MPI
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
export OMP_NUM_THREADS=1
passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
run() {  # run NAME CMD...: must exit 0
  local name=$1; shift
  if "$@" >"$tmp/out" 2>&1; then ok; else fail "$name (exit $?)"; cat "$tmp/out"; fi
}
same() {  # same NAME FILE1 FILE2: byte-identical
  if cmp -s "$2" "$3"; then ok; else fail "$1: $2 and $3 differ"; fi
}

cat >"$tmp/gradual.json" <<'JSON'
{
  "name": "mpi_gradual", "seed": 5, "threads": 1,
  "data": { "dataset": "synthetic", "synthetic": { "train": 1000, "test": 300, "classes": 10 } },
  "model": { "arch": "mlp", "hidden": [96, 48], "init": "kaiming_uniform", "dropout": 0.2 },
  "train": { "epochs": 4, "batch_size": 50, "micro_batches": 2 },
  "optimizer": { "type": "sgd", "lr": 0.05, "momentum": 0.9 },
  "sparse": { "threshold": 0.5 },
  "pruning": { "method": "gradual", "target": 0.9,
               "schedule": { "start_epoch": 0, "end_epoch": 2, "every_steps": 7 } }
}
JSON
sed 's/"method": "gradual", "target": 0.9,/"method": "rigl", "target": 0.9, "distribution": { "type": "erk" },/;
     s/"start_epoch": 0, "end_epoch": 2, "every_steps": 7/"every_steps": 9, "end_epoch": 3, "drop_fraction": 0.3/' \
  "$tmp/gradual.json" >"$tmp/rigl.json"
dense=(configs/mlp_synthetic.json --set threads=1 --set train.micro_batches=2 --set train.epochs=2)

# Dense: 1 rank (2 parts) = 2 ranks.
run "dense, 1 rank" "$bin" train "${dense[@]}" --run-dir "$tmp/d1" -q
run "dense, 2 ranks" mpi 2 "$bin" train "${dense[@]}" --run-dir "$tmp/d2" -q
same "dense: 2 ranks = 1 rank" "$tmp/d1/checkpoint.safetensors" "$tmp/d2/checkpoint.safetensors"
grep -q '"ranks": 2' "$tmp/d2/summary.json" && ok || fail "summary.json of the 2-rank run has no \"ranks\": 2"

# Pruned: gradual (mask changes every 7 steps, CSR switches, dropout), uninterrupted and resumed on
# the other rank count; RigL.
run "gradual, 1 rank" "$bin" train "$tmp/gradual.json" --run-dir "$tmp/g1" -q
run "gradual, 2 ranks" mpi 2 "$bin" train "$tmp/gradual.json" --run-dir "$tmp/g2" -q
same "gradual: 2 ranks = 1 rank" "$tmp/g1/checkpoint.safetensors" "$tmp/g2/checkpoint.safetensors"
grep -q '"mode":"csr"' "$tmp/g2/metrics.jsonl" && ok || fail "the gradual run never switched a layer to CSR"
run "gradual, 2 ranks, stopped" mpi 2 "$bin" train "$tmp/gradual.json" --run-dir "$tmp/g21" -q --stop-after 2
run "gradual, resumed on 1 rank" "$bin" train --resume "$tmp/g21" -q
same "gradual: 2 ranks then 1 = 1 rank" "$tmp/g1/checkpoint.safetensors" "$tmp/g21/checkpoint.safetensors"
run "gradual, 1 rank, stopped" "$bin" train "$tmp/gradual.json" --run-dir "$tmp/g12" -q --stop-after 1
run "gradual, resumed on 2 ranks" mpi 2 "$bin" train --resume "$tmp/g12" -q
same "gradual: 1 rank then 2 = 1 rank" "$tmp/g1/checkpoint.safetensors" "$tmp/g12/checkpoint.safetensors"
same "gradual: metrics of the resumed run" <(cut -d, -f1-3 "$tmp/g1/metrics.jsonl") <(cut -d, -f1-3 "$tmp/g12/metrics.jsonl")
run "rigl, 1 rank" "$bin" train "$tmp/rigl.json" --run-dir "$tmp/r1" -q
run "rigl, 2 ranks" mpi 2 "$bin" train "$tmp/rigl.json" --run-dir "$tmp/r2" -q
same "rigl: 2 ranks = 1 rank" "$tmp/r1/checkpoint.safetensors" "$tmp/r2/checkpoint.safetensors"

# Refusals: nothing is written, the message names the key.
mpi 3 "$bin" train "$tmp/gradual.json" --run-dir "$tmp/refused" -q >"$tmp/out" 2>&1
if [ $? -ne 0 ] && grep -qF "train.micro_batches = 2 cannot be split evenly over 3 ranks" "$tmp/out" &&
   [ ! -e "$tmp/refused" ]; then ok; else fail "3 ranks for 2 parts: not refused cleanly"; cat "$tmp/out"; fi

# Ranks that would sum differently are refused at the start, naming the difference (MPMD launches:
# rank 1 gets another config, or other CPU kernels).
mpmd() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
  mpirun --allow-run-as-root --oversubscribe --bind-to none -np 1 "$bin" train "$tmp/gradual.json" -q --run-dir "$1" \
  : -np 1 "${@:2}" "$bin" train "$tmp/gradual.json" -q --run-dir "$1" "${extra[@]}" >"$tmp/out" 2>&1; }
extra=(--set optimizer.lr=0.1)
mpmd "$tmp/refused_config" env
if grep -qF "rank 1 read a different config than rank 0" "$tmp/out" && [ ! -e "$tmp/refused_config" ]; then ok
else fail "ranks with different configs: not refused"; cat "$tmp/out"; fi
extra=()
mpmd "$tmp/refused_isa" env SPARSETRAIN_ISA=generic
if grep -qF "rank 1 runs the generic CPU kernels" "$tmp/out" && [ ! -e "$tmp/refused_isa" ]; then ok
else fail "ranks with different CPU kernels: not refused"; cat "$tmp/out"; fi

# Sweeps: 2 ranks share the points; each point equals the plain sweep's, and the curves list the same points.
cat >"$tmp/sweep.json" <<JSON
{
  "name": "mpi_sweep", "base": "$tmp/gradual.json",
  "overrides": { "train.epochs": 3, "train.micro_batches": 1 },
  "sparsity_key": "pruning.target", "sparsities": [0.5, 0.8, 0.9],
  "methods": { "gradual": { "pruning": { "method": "gradual" } } },
  "dense_baseline": true, "output": "$tmp/sweep_plain"
}
JSON
sed "s|$tmp/sweep_plain|$tmp/sweep_mpi|" "$tmp/sweep.json" >"$tmp/sweep_mpi.json"
run "sweep, 1 process" "$bin" sweep "$tmp/sweep.json" -q
run "sweep, 2 ranks" mpi 2 "$bin" sweep "$tmp/sweep_mpi.json" -q
grep -c "training" "$tmp/out" | grep -qx 4 && ok || { fail "the 2-rank sweep did not train each of its 4 points once"; cat "$tmp/out"; }
for ck in "$tmp"/sweep_plain/runs/*/checkpoint.safetensors; do
  point=$(basename "$(dirname "$ck")")
  same "sweep point $point" "$ck" "$tmp/sweep_mpi/runs/$point/checkpoint.safetensors"
done
same "sweep: the curve tables" <(sed 's|sweep_plain|sweep|' "$tmp/sweep_plain/curve.md") <(sed 's|sweep_mpi|sweep|' "$tmp/sweep_mpi/curve.md")

echo "train_mpi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
