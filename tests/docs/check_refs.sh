#!/usr/bin/env bash
# Every file that a source comment's "Tests:", "Bench:" or "Reference:" line names exists, so a
# reader who follows one never lands on nothing. Usage: check_refs.sh <repo root>
set -u
cd "$1"
passed=0
failed=0
while IFS=: read -r file line text; do
  for ref in $(grep -oE '(tests|bench|kernels|cuda|core|models|pruning|data|experiment|app|scripts|docs)/[A-Za-z0-9_./-]*[A-Za-z0-9_]' <<<"$text"); do
    if [ -e "$ref" ] || compgen -G "$ref.*" >/dev/null || compgen -G "$ref*" >/dev/null; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
      echo "FAIL: $file:$line names $ref, which does not exist"
    fi
  done
done < <({ git ls-files '*.h' '*.cpp' '*.cu' '*.cuh' 2>/dev/null ||
           find . -path ./build\* -prune -o \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) -print; } |
         xargs grep -nE '(Tests?|Bench|Reference):' /dev/null)
echo "check_refs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
