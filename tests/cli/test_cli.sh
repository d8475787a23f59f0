#!/usr/bin/env bash
# End-to-end checks of the `sparsetrain` command line: train / info / eval / resume on the synthetic
# dataset, --help, and that user mistakes end as one clear error line (exit 1), never a crash.
# Usage: test_cli.sh <sparsetrain binary> <repo root>
set -u
bin=$1
root=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
passed=0
failed=0
skipped=0

ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
# skip WHAT WHY: a group of checks that cannot run on this machine, named in the output and counted
skip() { skipped=$((skipped + 1)); echo "skipped: $1 ($2)"; }

# expect_ok NAME CMD...: exit 0
expect_ok() {
  local name=$1; shift
  if "$@" >"$tmp/out" 2>&1; then ok; else fail "$name (exit $?)"; cat "$tmp/out"; fi
}
# expect_error NAME SUBSTRING CMD...: exit 1 with SUBSTRING in the output, and no crash
expect_error() {
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>&1
  local rc=$?
  if [ $rc -eq 1 ] && grep -qF -- "$want" "$tmp/out"; then ok
  else fail "$name: exit $rc, wanted 1 and \"$want\" in:"; cat "$tmp/out"; fi
}
contains() {
  local name=$1 want=$2 file=$3
  if grep -qF -- "$want" "$file"; then ok; else fail "$name: \"$want\" not in $file"; cat "$file"; fi
}

cfg=configs/mlp_synthetic.json
run="$tmp/run"
expect_ok "train" "$bin" train "$cfg" --run-dir "$run" --set train.epochs=2 --quiet
for f in config.json metrics.jsonl checkpoint.safetensors summary.json; do
  [ -f "$run/$f" ] && ok || fail "run folder lacks $f"
done
[ "$(wc -l <"$run/metrics.jsonl")" -eq 2 ] && ok || fail "metrics.jsonl should have 2 lines"
[ ! -s "$tmp/out" ] && ok || { fail "--quiet printed something:"; cat "$tmp/out"; }

# every finished run closes with its summary: accuracy, sparsity, CSR layers, epoch times, checkpoint
expect_ok "train with pruning" "$bin" train "$cfg" --run-dir "$tmp/pruned" --set train.epochs=4 \
  --set 'pruning={"method": "gradual", "target": 0.9, "schedule": {"start_epoch": 1, "end_epoch": 2}}'
for words in "done: test accuracy" "sparsity 90.0%:" "weights nonzero" "CSR: fc1.weight from epoch" \
             "epoch time (median):" "in CSR:" "checkpoint " "run folder $tmp/pruned"; do
  contains "closing summary: $words" "$words" "$tmp/out"
done

expect_ok "info" "$bin" info "$run"
contains "info lists weights" "fc1.weight" "$tmp/out"
contains "info lists optimizer state" "optimizer.fc1.weight.exp_avg" "$tmp/out"

expect_ok "eval" "$bin" eval "$run/checkpoint.safetensors"
contains "eval prints accuracy" "accuracy" "$tmp/out"
expect_ok "eval on validation split of another size" "$bin" eval "$run" --split train --batch 7

# stop and resume
part="$tmp/part"
expect_ok "train --stop-after" "$bin" train "$cfg" --run-dir "$part" --stop-after 1 --quiet
expect_ok "resume" "$bin" train --resume "$part" --quiet
[ "$(wc -l <"$part/metrics.jsonl")" -eq 3 ] && ok || fail "resumed metrics.jsonl should have 3 lines"
expect_error "resume with a config" "--resume" "$bin" train "$cfg" --resume "$part"

# --help on every command
for c in "" train eval info export sweep device "bench train" "bench kernels" "bench distributed"; do
  # shellcheck disable=SC2086
  expect_ok "help $c" "$bin" $c --help
done

# user mistakes: one clear line naming the file / key / value
expect_error "missing config" "nope.json" "$bin" train configs/nope.json
printf '{"data": {"dataset": "synthetic"}, "model": {"arch": "mlp", "hidden": [8]}, "optimizer": {"momentun": 0.9}}' >"$tmp/typo.json"
expect_error "unknown key" "optimizer.momentun" "$bin" train "$tmp/typo.json"
printf '{"data": {"dataset": "synthetic"}, "model": {"arch": "mlp", "hidden": [8]},' >"$tmp/broken.json"
expect_error "broken JSON" "broken.json" "$bin" train "$tmp/broken.json"
expect_error "bad override value" "optimizer.lr" "$bin" train "$cfg" --set optimizer.lr=-1
expect_error "unknown override key" "optimizer.nope" "$bin" train "$cfg" --set optimizer.nope=1
expect_error "missing dataset dir" "$tmp/nodata" "$bin" train configs/lenet300_mnist.json --set data.dir="$tmp/nodata" --run-dir "$tmp/x"
printf 'garbage' >"$tmp/bad.safetensors"
expect_error "corrupt checkpoint" "bad.safetensors" "$bin" info "$tmp/bad.safetensors"
expect_error "init-from a missing file" "missing.safetensors" "$bin" train "$cfg" --init-from "$tmp/missing.safetensors" --run-dir "$tmp/y"
expect_error "resume a non-run folder" "not a run folder" "$bin" train --resume "$tmp"

expect_error "diverging run stops with a clear error" "training diverged" "$bin" train "$cfg" --set optimizer.lr=1e30 --set optimizer.type=sgd --run-dir "$tmp/div"

# device "cuda": `sparsetrain device` says whether there is one. Without one (no GPU, or the emulator
# switched off) a cuda run stops at start-up with the reason and leaves no run folder; with one (a
# GPU, or this test's SPARSETRAIN_CUDA_EMULATION=1 in an emulated build) it trains, and its
# checkpoint resumes and evaluates on the other device.
expect_ok "device" "$bin" device
contains "device names the backend" "cuda backend:" "$tmp/out"
contains "device names the CPU kernels' instruction set" "cpu kernels: " "$tmp/out"
contains "device says whether MPI is built in" "distributed: built with" "$tmp/out"
# The nvcc-built binary opens libcusparse only when asked (here by `device`, which reports it): a
# CPU run must not load it, nor the libnvJitLink it drags in (the loader's LD_DEBUG=libs log).
if grep -q "^cuda backend: nvcc-built" "$tmp/out"; then
  contains "device says whether cuSPARSE loads" "cusparse: loads" "$tmp/out"
  LD_DEBUG=libs "$bin" train "$cfg" --run-dir "$tmp/nolib" --set train.epochs=1 --quiet \
    >"$tmp/ld_train" 2>&1
  if grep -q "calling init: .*libdnnl" "$tmp/ld_train"; then  # the log does name libraries
    grep -q "calling init: .*lib\(cusparse\|nvJitLink\)" "$tmp/ld_train" &&
      fail "a CPU training run loaded cuSPARSE" || ok
  else
    fail "LD_DEBUG=libs log names no library init (cannot check what a CPU run loads)"
  fi
  LD_DEBUG=libs "$bin" device >"$tmp/ld_device" 2>&1
  grep -q "calling init: .*libcusparse" "$tmp/ld_device" && ok ||
    fail "device did not load libcusparse"
else
  skip "cuSPARSE is opened only when used" "CPU-emulator build (no nvcc)"
fi
SPARSETRAIN_ISA=generic "$bin" device >"$tmp/dev_generic" 2>&1
contains "SPARSETRAIN_ISA picks the CPU kernels" "cpu kernels: generic" "$tmp/dev_generic"
env -u SPARSETRAIN_CUDA_EMULATION "$bin" device >"$tmp/dev_plain" 2>&1
if grep -q "^device: none" "$tmp/dev_plain"; then
  expect_error "cuda without a device" 'asks for device "cuda"' env -u SPARSETRAIN_CUDA_EMULATION \
    "$bin" train "$cfg" --set device=cuda --run-dir "$tmp/cuda"
  [ ! -e "$tmp/cuda" ] && ok || fail "a cuda run that could not start left a run folder"
else
  skip "cuda without a device" "this machine has a GPU"
fi
SPARSETRAIN_CUDA_EMULATION=1 "$bin" device >"$tmp/dev_emu" 2>&1
if ! grep -q "^device: none" "$tmp/dev_emu"; then
  gpu="$tmp/gpu"
  expect_ok "train on cuda" env SPARSETRAIN_CUDA_EMULATION=1 "$bin" train "$cfg" --set device=cuda \
    --set train.epochs=2 --stop-after 1 --run-dir "$gpu"
  contains "cuda run says where it runs" "cuda:" "$tmp/out"
  expect_ok "resume a cuda run on the cpu" "$bin" train --resume "$gpu" --device cpu --quiet
  [ "$(wc -l <"$gpu/metrics.jsonl")" -eq 2 ] && ok || fail "resumed cuda run should have 2 metrics lines"
  expect_ok "eval on cuda" env SPARSETRAIN_CUDA_EMULATION=1 "$bin" eval "$gpu" --device cuda
  contains "eval on cuda prints accuracy" "accuracy" "$tmp/out"
  if grep -q "^device:.*emulator" "$tmp/dev_emu"; then  # cuSPARSE runs only on a real GPU
    expect_error "cusparse needs a GPU" "needs a real GPU" env SPARSETRAIN_CUDA_EMULATION=1 "$bin" train "$cfg" \
      --set device=cuda --set sparse.impl=cusparse --run-dir "$tmp/cus"
  else
    skip "cusparse needs a GPU" "this machine has a GPU"
  fi
else
  skip "train, resume and eval on cuda" "a GPU build on a machine without a GPU"
fi

# the kernel benchmark runs end to end (quick mode, one small shape) and writes its files
expect_ok "bench kernels --quick" "$bin" bench kernels --quick --shapes 100x300x64 --threads 1 --csv "$tmp/k.csv" --svg "$tmp/k.svg"
[ -s "$tmp/k.csv" ] && [ -s "$tmp/k.svg" ] && ok || fail "bench kernels wrote no csv/svg"
# GPU benchmarks time a real GPU only: without one they stop with the reason, and the CPU emulator
# (an emulated build with SPARSETRAIN_CUDA_EMULATION=1) is refused. On a GPU they would run: skipped
# here, as timing them is not a test.
bench_refusal=""
grep -q "^device: none" "$tmp/dev_emu" && bench_refusal='asks for device "cuda"'
grep -q "^device:.*emulator" "$tmp/dev_emu" && bench_refusal="for correctness, not timing"
if [ -n "$bench_refusal" ]; then
  expect_error "bench kernels --device cuda without a GPU" "$bench_refusal" env SPARSETRAIN_CUDA_EMULATION=1 \
    "$bin" bench kernels --device cuda --quick --shapes 100x300x64
  expect_error "bench train --device cuda without a GPU" "$bench_refusal" env SPARSETRAIN_CUDA_EMULATION=1 \
    "$bin" bench train --device cuda --model lenet300 --steps 1 --repeats 1 --warmup 0
else
  skip "bench --device cuda refusals" "this machine has a GPU"
fi
expect_error "bench train --mode cusparse on the cpu" "GPU only" "$bin" bench train --mode dense,cusparse --sparsity 0.9
# bench train with --sparsity: the modes' rows and the ratio as the median of the rounds' ratios,
# between their minimum and maximum (a few steps: the output's shape, not a timing).
expect_ok "bench train --sparsity" "$bin" bench train --model lenet300 --sparsity 0.9 --mode dense,csr \
  --steps 2 --repeats 3 --warmup 1 --threads 1 --json "$tmp/bt.json"
contains "bench train --sparsity prints the ratio" "lenet300      90.0%" "$tmp/out"
if python3 - "$tmp/bt.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == 1, rows
r = rows[0]
assert r["model"] == "lenet300" and r["sparsity"] == 0.9, r
for m in ("dense", "csr"):
    s = r[m]
    assert 0 < s["min"] <= s["samples_per_s"] <= s["max"], s
assert 0 < r["ratio_min"] <= r["ratio"] <= r["ratio_max"], r
PY
then ok; else fail "bench train --json: modes and ratio range"; cat "$tmp/bt.json"; fi

echo "cli: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
