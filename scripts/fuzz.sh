#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ (clang-14, ASan + UBSan, in build-fuzz/) and runs each
# one for a bounded time or number of inputs, from the seeds in tests/fuzz/corpus/<target>/. Fails
# on the first crash, hang (-timeout), leak or out-of-memory, naming the input that caused it.
#   scripts/fuzz.sh                  every target for 60 s (CI)
#   scripts/fuzz.sh -t 600 idx       one target, 10 minutes
#   scripts/fuzz.sh -r 1000000       every target until a million inputs each
# New inputs the fuzzer finds interesting go to build-fuzz/corpus/<target>/ (kept between runs);
# crash inputs to build-fuzz/artifacts/<target>/. A fixed crash input belongs in
# tests/fuzz/regressions/<target>/, which ctest replays in every build (fuzz_replay_<target>).
set -euo pipefail
cd "$(dirname "$0")/.."

limit=(-max_total_time=60)
while getopts "t:r:" opt; do
  case $opt in
    t) limit=(-max_total_time="$OPTARG") ;;
    r) limit=(-runs="$OPTARG") ;;
    *) echo "usage: scripts/fuzz.sh [-t SECONDS | -r RUNS] [target...]" >&2; exit 1 ;;
  esac
done
shift $((OPTIND - 1))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config sweep idx safetensors)

scripts/install_deps.sh fuzz
# The readers never touch a GPU or another rank: no nvcc backend, no MPI.
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++-14 \
  -DSPARSETRAIN_FUZZ=ON -DSPARSETRAIN_TESTS=OFF -DSPARSETRAIN_CUDA=OFF -DSPARSETRAIN_MPI=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
# One OpenMP thread: the inputs are tiny, and spinning worker threads only slow the fuzzer down.
export OMP_NUM_THREADS=1 SPARSETRAIN_CUDA_EMULATION=1

# The largest input worth mutating: a little over the biggest seed of each target.
max_len() {
  case $1 in
    idx) echo 1024 ;;
    safetensors) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

failed=()
for t in "${targets[@]}"; do
  work=build-fuzz/corpus/$t
  artifacts=build-fuzz/artifacts/$t/
  mkdir -p "$work" "$artifacts"
  dict=()
  [ "$t" = idx ] || dict=(-dict=tests/fuzz/json.dict)
  log=build-fuzz/fuzz_$t.log
  echo "== fuzz_$t (${limit[*]})"
  # Seeds are read-only input; the fuzzer adds what it finds to the first folder only. Runs from
  # the repository root so the sweeps' "configs/..." base paths resolve.
  if build-fuzz/fuzz_"$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
       "${dict[@]}" -artifact_prefix="$artifacts" -print_final_stats=1 \
       "$work" "tests/fuzz/corpus/$t" </dev/null >"$log" 2>&1; then
    grep -h "^Done \|stat::number_of_executed_units" "$log" || true
  else
    tail -n 60 "$log"
    echo "fuzz_$t FAILED; the input: $(grep -ho "Test unit written to .*" "$log" | sed 's/Test unit written to //')"
    echo "  replay: build-fuzz/fuzz_$t <that file>; once fixed, keep it in tests/fuzz/regressions/$t/"
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}"
  exit 1
fi
