#!/usr/bin/env bash
# The same set-up as run.sh, then a build with tests and the whole suite through ctest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh
scripts/fetch_data.sh
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DSPARSETRAIN_TESTS=ON >/dev/null
cmake --build build-test -j"$(nproc)"
cd build-test
ctest --output-on-failure -j"$(nproc)" "$@"
