// app/openmp_defaults.h — the OpenMP wait policy sparsetrain runs with when the user sets none.
//
// Why: OpenMP threads that reach a barrier first spin before they sleep (libgomp: up to 300 000
// pause loops, milliseconds). With one other busy process on a 2-core machine, a spinning thread
// holds a core while the thread it waits for is queued behind the other process, and every parallel
// region stalls for a scheduler tick: 2-thread training fell to a fraction of its quiet speed. A
// short spin keeps the quiet speed (barriers on a quiet machine resolve within it) and gives the
// core up quickly under load. The figures behind the value: bench/busy_machine.sh, docs/design.md.
//
// How: the OpenMP runtime reads its settings from the environment once, when it is loaded, before
// main() runs; the only way to change its default from inside the program is to start the program
// again with the setting in its environment (one exec, a few milliseconds). A user's own
// OMP_WAIT_POLICY or GOMP_SPINCOUNT always wins and is left alone.
#pragma once

namespace st::app {

inline constexpr const char* kDefaultSpinCount = "3000";

// Restarts this process (same arguments) with GOMP_SPINCOUNT=kDefaultSpinCount when neither
// OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set. Returns without effect when one is set, when this
// process is already the restarted one, or when the restart fails (the run then keeps libgomp's
// default, which only costs speed).
void apply_openmp_wait_default(char** argv);

}  // namespace st::app
