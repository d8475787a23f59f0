// data/prefetch.h — a Loader's next batch, copied on a thread of its own while the caller trains on
// the current one, when the caller leaves a core idle.
//   request(first, last, parts, x, y): asks for loader.next_parts(first, last, parts, x, y);
//   wait():                            that call's result (the batch size, 0 once the epoch is
//                                      exhausted); rethrows what it threw.
// Why: a shuffled batch of 64 MNIST samples is 64 reads from anywhere in a 170 MB array, and the copy
// waits on memory at each sample's start: 18-24 µs timed alone, 17-20% of a whole 95%-sparse
// LeNet-300 run's training time (perf), whose step runs on one core (docs/design.md, "Performance
// notes"). Copied on another core it costs the step nothing; but where the step keeps every core busy (dense training on all cores) the thread only
// takes a core from it, and that was 1-17% slower than copying in place. So the prefetcher measures:
// every kWindow batches it compares the CPU time the process spent (less the copying thread's) with
// the wall time, and copies in the background over the next window only if at least half a core of
// those allowed to this process (sched_getaffinity) stood idle; otherwise wait() copies in place.
// Either way the batch is the same samples, the same bits, in the same order. After a copy the thread
// polls for the next request for up to kSpinMicros before it sleeps, yielding its core between looks:
// waking a sleeping thread cost the caller a futex system call, ~4% of a CSR LeNet-300 step (perf).
// Rules: one request at a time (wait() before the next request); between request() and wait() the
// caller touches neither the Loader nor x and y. The destructor waits for a copy in flight.
// Tests: tests/data/test_loader.cpp
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>

#include "data/loader.h"

namespace st::data {

class BatchPrefetcher {
public:
    enum class Policy { measure, background, in_place };
    static constexpr int kWindow = 32;
    static constexpr int kSpinMicros = 250;

    explicit BatchPrefetcher(Loader& loader, Policy policy = Policy::measure);
    ~BatchPrefetcher();
    BatchPrefetcher(const BatchPrefetcher&) = delete;
    BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

    void request(int first, int last, int parts, float* x, int32_t* y);
    void request(float* x, int32_t* y) { request(0, 1, 1, x, y); }
    int wait();
    bool pending() const { return pending_; }
    // Whether the batch requested next will be copied on the thread.
    bool background() const { return background_; }

private:
    void work();
    void measure();

    Loader* loader_;
    Policy policy_;
    bool background_;
    // The caller's side: a request made and not yet waited for, and where it goes.
    bool pending_ = false, queued_ = false;
    int first_ = 0, last_ = 1, parts_ = 1;
    float* x_ = nullptr;
    int32_t* y_ = nullptr;
    // Measure policy: the clocks at the start of the current window.
    int waits_ = 0, cores_ = 1;
    double wall0_ = 0, process0_ = 0, thread0_ = 0;
    // Shared with the thread, under mutex_.
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    bool has_job_ = false, finished_ = false, stop_ = false;
    std::atomic<bool> posted_{false};  // set after has_job_ or stop_, read without the lock by the polling thread
    int result_ = 0;
    std::exception_ptr error_;
    std::thread thread_;  // last: started after everything it reads is initialized
};

}  // namespace st::data
