#!/usr/bin/env bash
# The whole test suite (ctest -LE gpu, as ./test.sh) built with AddressSanitizer, LeakSanitizer and
# UndefinedBehaviorSanitizer (gcc, -O1) in build-asan/. Any report stops the process that made it
# with SIGABRT, so its test fails even where the test expects a failing command (exit code 1).
# Without the nvcc backend: nvcc's code is not instrumented, and its tests need a GPU; the CUDA
# kernels still run, in the emulator.
# Arguments go to ctest: scripts/test_sanitized.sh -R experiment
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/fetch_data.sh
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DSPARSETRAIN_TESTS=ON -DSPARSETRAIN_SANITIZE=ON \
  -DSPARSETRAIN_CUDA=OFF >/dev/null
cmake --build build-asan -j"$(nproc)"
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_init_order=1:check_initialization_order=1
export UBSAN_OPTIONS=print_stacktrace=1:abort_on_error=1:halt_on_error=1
cd build-asan
ctest --output-on-failure -j"$(nproc)" -LE gpu "$@"
