#!/usr/bin/env bash
# The same set-up as run.sh, then a build with tests and the whole suite through ctest. The CUDA
# kernels run in the CPU emulator here (label cpu); `ctest -L gpu` in build-test runs the same cases
# on a real GPU, and is left out by default so a machine without one passes.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh
scripts/fetch_data.sh
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DSPARSETRAIN_TESTS=ON >/dev/null
cmake --build build-test -j"$(nproc)"
cd build-test
ctest --output-on-failure -j"$(nproc)" -LE gpu "$@"
