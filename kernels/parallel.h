// kernels/parallel.h — OpenMP loops that do not enter a parallel region when they run on one thread.
// Why: libgomp ends every parallel region with a futex wake of the team barrier — a system call,
// even for a one-thread team from `if (false)` or num_threads(1) — about 1.5 µs on this machine,
// more than the work of most per-step kernels of a small or sparse model (relu, bias, optimizer on
// a few thousand nonzeros). A sparse LeNet-300 step entered ~24 such regions. So the decision to
// fork is taken here, and a serial loop runs inline with no OpenMP call at all.
// Orphaned `#pragma omp barrier`s inside a region body are fine in both cases (no-ops off-team).
#pragma once
#include <omp.h>

#include <cstdint>

namespace st::kernels {

// Fork only with enough work, more than one thread available, and not already inside a region.
inline bool worth_parallel(int64_t work, int64_t min_work) {
  return work >= min_work && !omp_in_parallel() && omp_get_max_threads() > 1;
}

// body(i) for i in [0, n): split statically over the team when `parallel`, else a plain loop.
// Capture by value ([=]) in `body`: with [&] GCC 12 reloads every captured pointer on each
// iteration (a float store might alias it, as far as it can tell) and the loop does not vectorize.
// For the same reason each thread loops over its share with its own copy of `body`: inside an
// OpenMP-outlined function the shared closure is reached through a pointer, its captures are
// reloaded after every store, and `omp parallel for` over it ran scalar (ReLU's backward with a
// data-dependent branch per element: 3–6× slower than the vector loop on 128 M floats).
template <class Body>
inline void parallel_for(int64_t n, bool parallel, Body&& body) {
  if (parallel) {
#pragma omp parallel
    {
      const auto local = body;
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t end = n * (t + 1) / nt;
      for (int64_t i = n * t / nt; i < end; ++i) local(i);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) body(i);
  }
}

// body(begin, end) on one static share of [0, n) per thread, or body(0, n) inline. For hot loops
// (optimizer updates): the loop lives in an ordinary function with the arrays as arguments, where
// GCC vectorizes it with run-time alias checks, whatever the closure looks like.
template <class Body>
inline void parallel_range(int64_t n, bool parallel, Body&& body) {
  if (!parallel) {
    body(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    body(n * t / nt, n * (t + 1) / nt);
  }
}

// body(c) for c in [0, n) on a team of n threads, one chunk each (e.g. fixed reduction chunks whose
// partial sums must not depend on the team); inline when n <= 1.
template <class Body>
inline void parallel_chunks(int n, Body&& body) {
  if (n <= 1) {
    for (int c = 0; c < n; ++c) body(c);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(n)
  for (int c = 0; c < n; ++c) body(c);
}

// body(t, nt) on every thread of a team of `threads`; body(0, 1) inline when threads <= 1.
template <class Body>
inline void parallel_region(int threads, Body&& body) {
  if (threads <= 1) {
    body(0, 1);
    return;
  }
#pragma omp parallel num_threads(threads)
  body(omp_get_thread_num(), omp_get_num_threads());
}

}  // namespace st::kernels
