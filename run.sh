#!/usr/bin/env bash
# Set-up and main job, from a fresh clone on Debian 12: installs missing packages, fetches the
# datasets (checksum-verified), builds Release, and runs the default experiment. Arguments are passed
# to the CLI: ./run.sh train configs/lenet300_mnist.json --set train.epochs=3
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh
scripts/fetch_data.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSPARSETRAIN_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"
if [ $# -eq 0 ]; then set -- train configs/default.json; fi
exec build/sparsetrain "$@"
