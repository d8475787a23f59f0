// data/prefetch.cpp — the copying thread behind BatchPrefetcher and its measure policy; see
// prefetch.h.
#include "data/prefetch.h"

#include <chrono>
#include <ctime>
#include <stdexcept>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace st::data {

namespace {

double seconds_of(clockid_t clock) {
    timespec t{};
    if (clock_gettime(clock, &t) != 0) return 0;
    return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// Polls `flag` for up to `micros` microseconds, yielding the core between looks: a thread of the
// caller's that wants this core gets it (polling with pause instead took cores from the OpenMP team
// in dense runs, which then looked idle to measure(), which kept the polling on: 1.8x slower).
void poll(const std::atomic<bool>& flag, int micros) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
    while (!flag.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < end)
        std::this_thread::yield();
}

int usable_cores() {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
#endif
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : int(n);
}

}  // namespace

BatchPrefetcher::BatchPrefetcher(Loader& loader, Policy policy)
    : loader_(&loader), policy_(policy), background_(policy == Policy::background),
      thread_([this] { work(); }) {
    if (policy_ != Policy::measure) return;
    cores_ = usable_cores();
    measure();  // the first window's starting clocks; it copies in place
}

BatchPrefetcher::~BatchPrefetcher() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    posted_.store(true, std::memory_order_release);
    wake_.notify_one();
    thread_.join();  // the thread finishes a copy in flight first: x and y outlive it
}

void BatchPrefetcher::request(int first, int last, int parts, float* x, int32_t* y) {
    if (pending_) throw std::logic_error("BatchPrefetcher::request: the previous batch was not waited for");
    pending_ = true;
    queued_ = background_;
    if (!queued_) {  // wait() copies
        first_ = first, last_ = last, parts_ = parts, x_ = x, y_ = y;
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        first_ = first, last_ = last, parts_ = parts, x_ = x, y_ = y;
        finished_ = false;
        error_ = nullptr;
        has_job_ = true;
    }
    // After the unlock: the polling thread, seeing it, takes the mutex without waiting for ours.
    posted_.store(true, std::memory_order_release);
    wake_.notify_one();  // no system call unless the thread sleeps
}

int BatchPrefetcher::wait() {
    if (!pending_) throw std::logic_error("BatchPrefetcher::wait: no batch was requested");
    pending_ = false;
    int n = 0;
    if (queued_) {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [this] { return finished_; });
        if (error_) std::rethrow_exception(error_);
        n = result_;
    } else {
        n = loader_->next_parts(first_, last_, parts_, x_, y_);
    }
    if (policy_ == Policy::measure && ++waits_ % kWindow == 0) measure();
    return n;
}

// Ends a window: the process's CPU time less the copying thread's, over the wall time, is how many
// cores the caller kept busy. Copying in the background pays when half a core or more stood idle.
void BatchPrefetcher::measure() {
    const double wall = seconds_of(CLOCK_MONOTONIC), process = seconds_of(CLOCK_PROCESS_CPUTIME_ID);
    double thread = 0;
#if defined(__linux__)
    clockid_t thread_clock;
    if (pthread_getcpuclockid(thread_.native_handle(), &thread_clock) == 0) thread = seconds_of(thread_clock);
#endif
    if (wall0_ > 0 && wall > wall0_) {
        const double busy = ((process - process0_) - (thread - thread0_)) / (wall - wall0_);
        background_ = cores_ >= 2 && double(cores_) - busy >= 0.5;
    }
    wall0_ = wall, process0_ = process, thread0_ = thread;
}

void BatchPrefetcher::work() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        if (!has_job_ && !stop_) {
            lock.unlock();
            poll(posted_, kSpinMicros);
            lock.lock();
        }
        wake_.wait(lock, [this] { return has_job_ || stop_; });
        if (!has_job_) return;  // stop_ with nothing in flight
        has_job_ = false;
        posted_.store(false, std::memory_order_relaxed);
        const int first = first_, last = last_, parts = parts_;
        float* x = x_;
        int32_t* y = y_;
        lock.unlock();
        int result = 0;
        std::exception_ptr error;
        try {
            result = loader_->next_parts(first, last, parts, x, y);
        } catch (...) {
            error = std::current_exception();
        }
        lock.lock();
        result_ = result;
        error_ = error;
        finished_ = true;
        done_.notify_one();
    }
}

}  // namespace st::data
