#!/usr/bin/env bash
# tests/docs/check_config_reference.sh — docs/config.md is what `sparsetrain config-reference` prints
# from the key tables (experiment/config_keys.cpp, experiment/sweep_keys.cpp); a key added, removed
# or changed without regenerating the file fails here.
# Usage: check_config_reference.sh <sparsetrain> <source dir>
set -euo pipefail
bin=$1
root=$2
if ! diff -u "$root/docs/config.md" <("$bin" config-reference); then
  echo "docs/config.md is out of date: regenerate it with" >&2
  echo "  build/sparsetrain config-reference > docs/config.md" >&2
  exit 1
fi
