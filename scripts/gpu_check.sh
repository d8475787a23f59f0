#!/usr/bin/env bash
# Everything CUDA in one go, on a machine with an NVIDIA GPU, with a report that cannot come out
# green by accident: a missing GPU, a driver the CUDA runtime cannot use, or a suite that skipped
# is a failure here, never a pass. Builds <build-dir> with nvcc and the GPU suite, then runs each
# step below, recording its command, exit code, seconds and last lines in results/gpu/report.md
# (full output in results/gpu/<step>.log):
#   build        nvcc and the GPU suite; ptxas's register and spill lines (-Xptxas=-v) in the log,
#                and the kernels that spill listed in the report
#   device       `sparsetrain device` must name a real GPU (not "none", not the emulator)
#   gpu_tests    test_cuda_gpu (the CUDA kernel cases, ctest -L gpu), each test case in a process of
#                its own (a kernel fault poisons its CUDA context, so it must not fail the cases
#                after it), with CUDA_LAUNCH_BLOCKING=1 and SPARSETRAIN_CUDA_CHECKED=1 (a fault is
#                reported at the launch that caused it); the failing cases are listed
#   core_gpu, models_gpu, experiment_gpu
#                the CUDA cases of the core, model and trainer suites (ops, optimizers, models, whole
#                training runs, cuSPARSE layers) on the GPU against the CPU, plain and under memcheck
#   memcheck, racecheck, synccheck, initcheck
#                test_cuda_gpu under compute-sanitizer's four tools (--error-exitcode 1)
#   train_cuda   2 epochs of LeNet-5 on MNIST on --device cuda, then the same on the cpu: both
#                accuracies in the report (they agree to float tolerance, not bit for bit)
#   bench_kernels, bench_train
#                sparsetrain bench kernels --device cuda, bench train --device cuda
# Exit status: 0 when every step passed, 1 when any failed, 2 when there is no usable GPU.
# Usage: scripts/gpu_check.sh [build-dir]        (default build-gpu)
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
out=results/gpu
mkdir -p "$out"
report="$out/report.md"
nvcc=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
sanitizer=$(command -v compute-sanitizer || echo "$(dirname "$nvcc")/compute-sanitizer")

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no usable NVIDIA GPU here (nvidia-smi is missing or lists no device): nothing was run" >&2
  exit 2
fi
[ -x "$nvcc" ] || { echo "gpu_check: no nvcc at $nvcc (set CUDACXX)" >&2; exit 2; }

{
  echo "# GPU check"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)"
  echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "- nvcc: $("$nvcc" --version | tail -1)"
  echo
  echo "| step | result | seconds |"
  echo "|---|---|---:|"
} >"$report"
details=$(mktemp)
failed=0

# step NAME CMD...: runs CMD, logs it, adds a row to the report.
step() {
  local name=$1; shift
  local start=$SECONDS rc
  echo "=== $name: $*"
  "$@" >"$out/$name.log" 2>&1
  rc=$?
  local result="passed"
  [ $rc -eq 0 ] || { result="**FAILED (exit $rc)**"; failed=1; }
  echo "| $name | $result | $((SECONDS - start)) |" >>"$report"
  { echo; echo "## $name"; echo; echo "\`$*\` → exit $rc"; echo; echo '```'; tail -n 25 "$out/$name.log"; echo '```'; } >>"$details"
  echo "=== $name: $result"
  return $rc
}

# device_is_real: the device line must name a GPU, not "none" and not the emulator.
device_is_real() {
  "$build/sparsetrain" device && "$build/sparsetrain" device | grep -q "^device: .*compute capability"
}

scripts/install_deps.sh && scripts/fetch_data.sh || { echo "gpu_check: set-up failed" >&2; exit 1; }
step build bash -c "cmake -S . -B '$build' -DCMAKE_BUILD_TYPE=Release -DSPARSETRAIN_TESTS=ON -DSPARSETRAIN_CUDA=ON \
  -DCMAKE_CUDA_COMPILER='$nvcc' >/dev/null && cmake --build '$build' -j$(nproc)" || { cat "$details" >>"$report"; exit 1; }
# Register use and spills (st_cuda is built with -Xptxas=-v): every kernel that spills, per arch,
# goes to the report; the lines are only there when the build compiled st_cuda in this run.
{
  echo
  echo "## ptxas: kernels that spill registers"
  echo
  echo '```'
  if grep -q "Used [0-9]* registers" "$out/build.log"; then
    grep -B1 -E "(^|[^0-9])[1-9][0-9]* bytes spill (stores|loads)" "$out/build.log" |
      grep -E "Function properties|spill" || echo "none"
  else
    echo "no ptxas output in $out/build.log (st_cuda was already built)"
  fi
  echo '```'
} >>"$details"
if ! step device device_is_real; then
  echo "gpu_check: the build sees no usable GPU (see $out/device.log): a driver too old for this CUDA runtime?" >&2
  cat "$details" >>"$report"
  exit 2
fi
tests="$build/test_cuda_gpu"
# each_case: every test case of the GPU suite in its own process; fails when any case fails.
each_case() {
  local n bad=0 i
  n=$("$tests" --count 2>/dev/null | sed -n 's/.*passing the current filters: *\([0-9]*\).*/\1/p')
  [ -n "$n" ] && [ "$n" -gt 0 ] || { echo "no test cases counted"; return 1; }
  for ((i = 1; i <= n; i++)); do
    if ! CUDA_LAUNCH_BLOCKING=1 SPARSETRAIN_CUDA_CHECKED=1 "$tests" --first="$i" --last="$i" >"$out/case_$i.log" 2>&1; then
      bad=$((bad + 1))
      echo "FAILED: case $i: $(grep -m1 'TEST CASE' -A1 "$out/case_$i.log" | tail -1)"
    fi
  done
  echo "$n cases, $bad failed"
  [ "$bad" -eq 0 ]
}
step gpu_tests each_case
for suite in core models experiment; do
  step "${suite}_gpu" env CUDA_LAUNCH_BLOCKING=1 "$build/test_${suite}_gpu"
  step "${suite}_gpu_memcheck" timeout 7200 "$sanitizer" --tool memcheck --error-exitcode 1 "$build/test_${suite}_gpu"
done
for tool in memcheck racecheck synccheck initcheck; do
  step "$tool" timeout 7200 "$sanitizer" --tool "$tool" --error-exitcode 1 "$tests"
done
rm -rf "$out/run_cuda" "$out/run_cpu"  # a run folder holds one run
step train_cuda bash -c "'$build/sparsetrain' train configs/lenet5_mnist.json --device cuda --set train.epochs=2 \
  --set lr_schedule.warmup_epochs=0 --run-dir '$out/run_cuda' && '$build/sparsetrain' train configs/lenet5_mnist.json \
  --set train.epochs=2 --set lr_schedule.warmup_epochs=0 --run-dir '$out/run_cpu' && \
  grep -h -o '\"test_accuracy\":[0-9.]*' '$out/run_cuda/metrics.jsonl' '$out/run_cpu/metrics.jsonl'"
step bench_kernels "$build/sparsetrain" bench kernels --device cuda --md "$out/kernels_cuda.md"
step bench_train "$build/sparsetrain" bench train --model all --device cuda --sparsity 0.9,0.95 --mode dense,csr,cusparse
cat "$details" >>"$report"
rm -f "$details"
echo "report: $report"
exit $failed
