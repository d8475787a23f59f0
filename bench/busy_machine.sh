#!/usr/bin/env bash
# bench/busy_machine.sh — training throughput on a quiet machine and beside one busy process, for
# several OpenMP wait settings (the OpenMP runtime reads them from the environment when it loads).
# Each row: `sparsetrain bench train` samples/s quiet, then with one CPU-bound shell loop running,
# and the share of the quiet figure kept. Rounds alternate the settings so drift hits all alike.
# Usage: bench/busy_machine.sh BIN [--model lenet5] [--threads 2] [--rounds 3] [--steps 150]
#                               [--settings "binary default,OMP_WAIT_POLICY=passive,..."]
#   BIN: the sparsetrain binary. Settings compared: "binary default" (nothing set: sparsetrain's own
#   default applies), libgomp's default spin (GOMP_SPINCOUNT=300000, what OpenMP does when nothing
#   is set), passive waiting, and short spins.
set -euo pipefail
bin=$1; shift
model=lenet5 threads=2 rounds=3 steps=150
settings=("binary default" "GOMP_SPINCOUNT=300000" "OMP_WAIT_POLICY=passive" "GOMP_SPINCOUNT=10000" "GOMP_SPINCOUNT=1000")
while [ $# -gt 0 ]; do
  case $1 in
    --model) model=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --settings) IFS=, read -r -a settings <<<"$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

rate() {  # rate SETTING -> samples/s (median of the repeats)
  local env_args=()
  [ "$1" != "binary default" ] && env_args=("$1")
  env "${env_args[@]}" "$bin" bench train --model "$model" --threads "$threads" --steps "$steps" \
    --repeats 3 --warmup 20 | sed -n 's/.*samples_per_s=\([0-9]*\).*/\1/p'
}

declare -A quiet busy
for ((r = 1; r <= rounds; r++)); do
  for s in "${settings[@]}"; do
    q=$(rate "$s")
    sh -c 'while :; do :; done' & hog=$!
    b=$(rate "$s")
    kill "$hog"; wait "$hog" 2>/dev/null || true
    quiet[$s]+="$q "; busy[$s]+="$b "
    echo "round $r  $s: quiet $q, busy $b" >&2
  done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "model $model, $threads threads, $rounds rounds, $(lscpu | sed -n 's/^Model name: *//p')"
printf '%-26s %12s %12s %8s   %s\n' setting "quiet s/s" "busy s/s" kept "busy/quiet per round"
for s in "${settings[@]}"; do
  qm=$(echo "${quiet[$s]}" | median); bm=$(echo "${busy[$s]}" | median)
  per=$(paste -d/ <(echo "${busy[$s]}" | tr ' ' '\n' | grep .) <(echo "${quiet[$s]}" | tr ' ' '\n' | grep .) |
        awk -F/ '{printf "%.0f%% ", 100*$1/$2}')
  printf '%-26s %12s %12s %7.0f%%   %s\n' "$s" "$qm" "$bm" "$(awk -v b="$bm" -v q="$qm" 'BEGIN {print 100 * b / q}')" "$per"
done
