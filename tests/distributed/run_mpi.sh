#!/usr/bin/env bash
# run_mpi.sh N COMMAND...: COMMAND on N ranks of Open MPI's launcher on this machine. Exits 77
# (ctest: skipped) when there is no mpirun or the binary was built without MPI.
#   --allow-run-as-root: CI runs as root; --oversubscribe: more ranks than cores is allowed;
#   --bind-to none: each rank keeps every core (the tests set the threads per rank).
set -u
n=$1; shift
if ! command -v mpirun >/dev/null 2>&1; then
  echo "skipped: no mpirun (install openmpi-bin: scripts/install_deps.sh)"; exit 77
fi
if ! ldd "$1" 2>/dev/null | grep -q libmpi; then
  echo "skipped: $1 was built without MPI (install libopenmpi-dev and configure again)"; exit 77
fi
# In the sanitizer build the ranks run without LeakSanitizer: Open MPI unloads its components at
# MPI_Finalize, leaving allocations whose stacks name no module, so they cannot be told from ours.
# (The same code paths run leak-checked in one process: test_distributed, the trainer suites.)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
exec mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$n" "$@"
