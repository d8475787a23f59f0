#!/usr/bin/env bash
# tests/bad_input/lib.sh — the harness of the bad-input suite. Each cases_*.sh file beside it is one
# ctest test: it sources this file, builds its inputs under $tmp, runs its cases and calls `finish`.
#
#   refused NAME CODE WORDS CMD...   CMD must exit with CODE (never a signal, never after the time
#                                    limit), print every word of WORDS ('|'-separated, fixed
#                                    strings) on stdout or stderr, and leave every file that existed
#                                    under $tmp byte-identical (none removed) and create nothing new
#                                    outside $tmp/scratch.
#   accepted NAME CMD...             CMD must exit 0 (a valid input close to refused ones).
#   skip NAME WHY                    a case that cannot run on this machine: named and counted.
#
# Usage of a cases file: bash cases_X.sh <sparsetrain binary> <repo root>
set -u
bin=$1
root=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/scratch"
cd "$root"
passed=0
failed=0
skipped=0
case_timeout=${ST_BAD_INPUT_TIMEOUT:-120}

ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
skip() { skipped=$((skipped + 1)); echo "skipped: $1 ($2)"; }

# Every file under $tmp but the scratch folder and the captured output, with its hash.
snapshot() {
  (cd "$tmp" && find . -path ./scratch -prune -o -path ./out -prune -o -print0 | sort -z |
     xargs -0 -r sh -c 'for f; do if [ -f "$f" ]; then sha256sum "$f"; else echo "dir $f"; fi; done' _)
}

refused() {
  local name=$1 code=$2 words=$3; shift 3
  local before after rc
  before=$(snapshot)
  timeout -k 5 "$case_timeout" "$@" >"$tmp/out" 2>&1
  rc=$?
  after=$(snapshot)
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then fail "$name: hung (no exit within ${case_timeout}s)"; return; fi
  if [ "$rc" -ne "$code" ]; then fail "$name: exit $rc, wanted $code; output:"; head -c 2000 "$tmp/out"; echo; return; fi
  local IFS='|' w
  for w in $words; do
    if ! grep -qF -- "$w" "$tmp/out"; then fail "$name: \"$w\" not in the output:"; head -c 2000 "$tmp/out"; echo; return; fi
  done
  if [ "$before" != "$after" ]; then
    fail "$name: the command changed files that existed:"
    diff <(echo "$before") <(echo "$after") | head -20
    return
  fi
  ok
}

accepted() {
  local name=$1; shift
  timeout -k 5 "$case_timeout" "$@" >"$tmp/out" 2>&1
  local rc=$?
  if [ "$rc" -eq 0 ]; then ok; else fail "$name: exit $rc, wanted 0; output:"; head -c 2000 "$tmp/out"; echo; fi
}

finish() {
  echo "$(basename "$0" .sh): $passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
}
