#!/usr/bin/env bash
# Every file that a source comment's "Tests:", "Test:", "Bench:", "Reference:" or "Kernels:" list
# names exists, so a reader who follows one never lands on nothing. A list may name several files
# and wrap onto the next comment lines (a line that ends in a comma continues); each name is a path
# from the repository root and must exist exactly (a name with * must match something). The
# documents (README.md, docs/*.md) are held to the same rule for every repository path they name
# with a file extension (tests/..., core/..., results/..., ...). Before checking the tree, the
# script checks itself on a fixture with two good and three missing names.
# Usage: check_refs.sh <repo root>
set -u

# The sources to scan under the current directory: git's list when it is a checkout, else find.
sources() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files '*.h' '*.cpp' '*.cu' '*.cuh'
  else
    find . -path ./build\* -prune -o \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) \
      -print | sed 's|^\./||'
  fi
}

# An awk program that prints "file:line: list" for every reference list in the files it reads,
# the list's wrapped lines joined. A list starts after the first marker in a // comment.
refs_awk='
  function flush() { if (pending) print name ":" at ": " list; pending = 0; list = "" }
  FNR == 1 { flush() }
  {
    if (pending && $0 ~ /^[[:space:]]*\/\//) {
      text = $0; sub(/^[[:space:]]*\/\/+/, "", text); list = list " " text
    } else {
      flush()
      comment = index($0, "//")
      if (comment && match(substr($0, comment), /(^|[^A-Za-z_])([Tt]ests?|Bench|Reference|Kernels): /)) {
        list = substr(substr($0, comment), RSTART + RLENGTH); pending = 1; name = FILENAME; at = FNR
      }
    }
    if (pending && list !~ /,[[:space:]]*$/) flush()
  }
  END { flush() }'

# Prints "file:line: path" for every repository path a document names (a top-level folder, then a
# file name with an extension).
document_paths() {
  local top='(\.ci|app|bench|configs|core|cuda|data|docs|experiment|kernels|models|pruning|results|scripts|tests)'
  for doc in README.md docs/*.md; do
    [ -f "$doc" ] || continue
    grep -noE "(^|[^A-Za-z0-9_./-])$top/[A-Za-z0-9_./*-]*\.[a-z]+" "$doc" |
      sed -E "s|^([0-9]+):[^A-Za-z.]?|$doc:\1: |"
  done
}

# Checks every path named in the reference lists of the sources under the current directory;
# prints one FAIL line per missing file and a summary; returns 1 when something is missing.
check_tree() {
  local passed=0 failed=0 where_list where list ref
  while IFS= read -r where_list; do
    where=${where_list%%: *}
    list=${where_list#*: }
    for ref in $(grep -oE '[A-Za-z0-9_.*/-]+\.(h|cpp|cu|cuh|sh|py|md|json|jsonl|txt|csv|svg)\b' <<<"$list"); do
      if [ -e "$ref" ] || { [[ $ref == *'*'* ]] && compgen -G "$ref" >/dev/null; }; then
        passed=$((passed + 1))
      else
        failed=$((failed + 1))
        echo "FAIL: $where names $ref, which does not exist (a path from the repository root)"
      fi
    done
  done < <(sources | xargs -d '\n' -r awk "$refs_awk"; document_paths)
  echo "check_refs: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# The checker must catch a missing file in a wrapped list, a bare file name and a document's path.
self_test() {
  local fixture out
  fixture=$(mktemp -d)
  mkdir -p "$fixture/src" "$fixture/tests"
  touch "$fixture/tests/test_a.cpp"
  printf '%s\n' '// src/a.h — a fixture. Tests: tests/test_a.cpp,' '// tests/test_missing.cpp.' \
    '// Bench: bench_missing.cpp' '#pragma once' >"$fixture/src/a.h"
  printf '%s\n' 'See `tests/test_a.cpp` and `tests/test_gone.cpp`.' >"$fixture/README.md"
  out=$(cd "$fixture" && check_tree)
  rm -rf "$fixture"
  if grep -q "check_refs: 2 passed, 3 failed" <<<"$out" && grep -q "names tests/test_missing.cpp" <<<"$out" &&
     grep -q "names bench_missing.cpp" <<<"$out" && grep -q "README.md:1 names tests/test_gone.cpp" <<<"$out"; then
    return 0
  fi
  echo "FAIL: the self-test on a fixture with three missing references reported:"
  echo "$out"
  return 1
}

self_test || exit 1
cd "$1" || exit 1
check_tree
