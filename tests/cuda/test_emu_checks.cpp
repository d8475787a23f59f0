// tests/cuda/test_emu_checks.cpp — the emulator's bug-finding modes (cuda/emu/emu.h), each shown
// catching a deliberately broken kernel written like the real ones in cuda/*.cu:
//   schedules (SPARSETRAIN_EMU_SCHEDULE): an up-sweep reduction with its __syncthreads removed is
//       right in the forward order and wrong under reverse and random, and each order is as
//       documented;
//   ST_SHARED_POISON: a block reading a static __shared__ table only block 0 wrote reads NaN;
//   strict memory (SPARSETRAIN_EMU_STRICT): an off-by-one tail write throws, naming the kernel;
//       fresh allocations are poisoned; device_alloc no longer caches; a host read through a
//       device pointer kills the process (in a child here) with a report;
//   the race checker (SPARSETRAIN_EMU_RACECHECK, test_cuda_race only): the reduction missing its
//       __syncthreads is reported under every order, one missing __syncwarp too, two blocks
//       writing one word too, atomics are not;
//   launch limits: static + dynamic shared memory over 48 KiB (or the kernel's opt-in) and
//       blocks over 1024 threads fail the launch through cudaGetLastError;
//   streams: queued work runs at the synchronizing call; host code reading a stream's result
//       without synchronizing reads stale data, and in strict mode the read of the pinned
//       destination of a queued cudaMemcpyAsync (or a write into a queued copy's pinned source)
//       kills the process (in a child here) with a report naming the stream and the kernel; a
//       fault in queued work is sticky until cudaDeviceReset.
// Each test sets the mode it needs for its own scope, so it passes whatever mode ctest runs the
// whole suite in. Emulator only: test_cuda_gpu compiles this file to nothing.
#if !defined(ST_CUDA_GPU_TESTS)
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/compat.h"
#include "cuda/runtime.h"
#include "cuda_test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define ST_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ST_TEST_ASAN 1
#endif
#endif
// The race checker needs this file and the kernels compiled for it (test_cuda_race).
#if defined(__SANITIZE_THREAD__)
constexpr bool kRacecheck = true;
#else
constexpr bool kRacecheck = false;
#endif

#if defined(ST_TEST_ASAN)
// Strict guards are poisoned for AddressSanitizer, which stops the process at a guard write
// before the emulator's check can report it: the guard-write cases cannot run there.
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

namespace {

using st::emu::Schedule;

using st::cuda::test::DeviceArray;  // device_alloc: exact-size blocks in strict mode

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

Schedule reverse() { return Schedule{Schedule::reverse, 0}; }
Schedule random_seed(uint64_t seed) { return Schedule{Schedule::random, seed}; }

// ---- broken kernels ---------------------------------------------------------------------------

// out[b] = Σ of block b's slice (blockDim.x a power of 2) by the up-sweep of a scan: at each
// stride, thread t = k·2·stride - 1 adds the partial sum ending at t - stride, which the level
// before (or the load) completed. BROKEN: the __syncthreads that starts each level is missing.
// The forward order runs each thread to its end before the next one starts, and a thread reads
// only lower threads' sums, which are final by then: the sum comes out right. Any order that runs
// a reader before its writer gets a partial (or poisoned) sum.
__global__ void upsweep_sum_missing_sync_kernel(const int* x, int* out) {
  __shared__ int s[256];
  ST_SHARED_POISON(s);
  const unsigned t = threadIdx.x;
  s[t] = x[blockIdx.x * blockDim.x + t];
  for (unsigned stride = 1; stride < blockDim.x; stride *= 2) {
    // __syncthreads();  <- removed
    if ((t + 1) % (2 * stride) == 0) s[t] += s[t - stride];
  }
  if (t == blockDim.x - 1) out[blockIdx.x] = s[t];  // its own last write
}

// The same with the barrier: right under every order.
__global__ void upsweep_sum_kernel(const int* x, int* out) {
  __shared__ int s[256];
  ST_SHARED_POISON(s);
  const unsigned t = threadIdx.x;
  s[t] = x[blockIdx.x * blockDim.x + t];
  for (unsigned stride = 1; stride < blockDim.x; stride *= 2) {
    __syncthreads();
    if ((t + 1) % (2 * stride) == 0) s[t] += s[t - stride];
  }
  if (t == blockDim.x - 1) out[blockIdx.x] = s[t];
}

// Where each thread came in each of two barrier phases (rank in the block), and each block's rank
// in the grid; one block's thread ranks go to phase0/phase1, every block's rank to block_rank.
__global__ void order_kernel(int* counters, int* phase0, int* phase1, int* block_rank) {
  const unsigned t = threadIdx.x;
  if (t == 0) block_rank[blockIdx.x] = atomicAdd(&counters[0], 1);
  if (blockIdx.x != 0) return;
  phase0[t] = atomicAdd(&counters[1], 1);
  __syncthreads();
  phase1[t] = atomicAdd(&counters[2], 1);
}

// y = table lookups. BROKEN: only block 0 fills the shared table; later blocks use it as if a
// block's shared memory outlived it (on a GPU each block gets fresh, undefined shared memory).
__global__ void stale_table_kernel(const float* table, float* y) {
  __shared__ float s_table[64];
  ST_SHARED_POISON(s_table);
  const unsigned t = threadIdx.x;
  if (blockIdx.x == 0) s_table[t] = table[t];
  __syncthreads();
  y[blockIdx.x * blockDim.x + t] = s_table[(t * 7) % 64];
}

// y[i] = value for i in [0, n). BROKEN: `i <= n` also writes y[n], one past the end.
__global__ void fill_off_by_one_kernel(int n, float value, float* y) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i <= n) y[i] = value;
}

// y[i] = value for i in [0, n); BROKEN (with shift 1): writes y[i - shift], y[-1] included.
__global__ void fill_shifted_kernel(int n, int shift, float value, float* y) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i - shift] = value;
}

// The reduction of upsweep_sum_kernel over a warp with __syncwarp between levels; BROKEN when
// `synced` is false (the lanes of one warp are not in lockstep either).
__global__ void warp_upsweep_kernel(const int* x, int* out, bool synced) {
  __shared__ int s[32];
  ST_SHARED_POISON(s);
  const unsigned t = threadIdx.x;
  s[t] = x[t];
  for (unsigned stride = 1; stride < 32; stride *= 2) {
    if (synced) __syncwarp();
    if ((t + 1) % (2 * stride) == 0) s[t] += s[t - stride];
  }
  if (t == 31) *out = s[t];
}

// Every block counts into counters[0] with atomicAdd (fine), and every block also writes
// flags[0] (BROKEN when `racy`: blocks of one launch are not ordered).
__global__ void block_counter_kernel(int* counters, int* flags, bool racy) {
  atomicAdd(&counters[0], 1);
  if (threadIdx.x == 0) flags[racy ? 0 : blockIdx.x] = static_cast<int>(blockIdx.x);
}

// y[i] = 2·x[i] with 40 KiB of static shared memory (as a big tile would take).
__global__ void big_static_shared_kernel(const float* x, float* y) {
  __shared__ float tile[10 * 1024];
  ST_SHARED_POISON(tile);
  ST_DYNAMIC_SHARED(float, extra);
  tile[threadIdx.x] = x[threadIdx.x];
  if (threadIdx.x == 0) extra[0] = 0.f;
  __syncthreads();
  y[threadIdx.x] = 2.f * tile[threadIdx.x];
}

// y[i] = value for i in [0, n).
__global__ void fill_kernel(int n, float value, float* y) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] = value;
}

__global__ void throw_kernel(int* y) {
  if (threadIdx.x == 3) throw std::runtime_error("kernel fault");
  y[threadIdx.x] = 1;
}

}  // namespace

// ---- schedules --------------------------------------------------------------------------------

TEST_CASE("emulator checks: a reduction missing __syncthreads is wrong under reverse and random") {
  const int threads = 256, blocks = 3;
  std::vector<int> x(threads * blocks);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<int>(i % 97) + 1;
  std::vector<int> want(blocks, 0);
  for (size_t i = 0; i < x.size(); ++i) want[i / threads] += x[i];
  DeviceArray<int> dx(x), dout(blocks);
  st::emu::ScopedRacecheck off(false);  // it would stop the broken kernel (the next test case)
  auto run = [&](Schedule order, bool broken) {
    st::emu::ScopedSchedule scope(order);
    if (broken)
      ST_LAUNCH(blocks, threads, 0, nullptr, upsweep_sum_missing_sync_kernel)(dx.get(), dout.get());
    else
      ST_LAUNCH(blocks, threads, 0, nullptr, upsweep_sum_kernel)(dx.get(), dout.get());
    ST_CUDA_CHECK_LAUNCH();
    return dout.download();
  };
  for (Schedule order : {Schedule{}, reverse(), random_seed(1), random_seed(12345)})
    CHECK(run(order, false) == want);
  CHECK(run(Schedule{}, true) == want);  // why the forward order alone hides it
  std::vector<int> rev = run(reverse(), true), rnd = run(random_seed(1), true);
  for (int b = 0; b < blocks; ++b) {
    CAPTURE(b);
    CHECK(rev[static_cast<size_t>(b)] != want[static_cast<size_t>(b)]);
    CHECK(rnd[static_cast<size_t>(b)] != want[static_cast<size_t>(b)]);
  }
}

TEST_CASE("emulator checks: threads in each barrier phase and blocks follow the schedule") {
  const int threads = 70, blocks = 5;  // 3 warps, the last one partial
  auto ranks = [&](Schedule order) {
    st::emu::ScopedSchedule scope(order);
    DeviceArray<int> counters(3), phase0(threads), phase1(threads), block_rank(blocks);
    ST_CUDA_CHECK(cudaMemset(counters.get(), 0, 3 * sizeof(int)));
    ST_LAUNCH(blocks, threads, 0, nullptr, order_kernel)
    (counters.get(), phase0.get(), phase1.get(), block_rank.get());
    ST_CUDA_CHECK_LAUNCH();
    return std::vector<std::vector<int>>{phase0.download(), phase1.download(), block_rank.download()};
  };
  std::vector<int> up(threads), down(threads), bup(blocks), bdown(blocks);
  for (int i = 0; i < threads; ++i) {
    up[static_cast<size_t>(i)] = i;
    down[static_cast<size_t>(i)] = threads - 1 - i;
  }
  for (int b = 0; b < blocks; ++b) {
    bup[static_cast<size_t>(b)] = b;
    bdown[static_cast<size_t>(b)] = blocks - 1 - b;
  }
  std::vector<std::vector<int>> fwd = ranks(Schedule{});
  CHECK(fwd[0] == up);
  CHECK(fwd[2] == bup);
  // forward: the thread completing the barrier (the last one) goes on first, then the others.
  CHECK(fwd[1][threads - 1] == 0);
  CHECK(fwd[1][0] == 1);
  std::vector<std::vector<int>> rev = ranks(reverse());
  CHECK(rev[0] == down);
  CHECK(rev[1] == down);
  CHECK(rev[2] == bdown);
  std::vector<std::vector<int>> r1 = ranks(random_seed(1)), r1again = ranks(random_seed(1)),
                                r2 = ranks(random_seed(2));
  CHECK(r1 == r1again);  // seeded: reproducible
  CHECK(r1 != r2);
  CHECK(r1[0] != up);
  CHECK(r1[0] != r1[1]);  // drawn again each phase
  CHECK(r1[2] != bup);
  for (const std::vector<int>& phase : {r1[0], r1[1]}) {  // each a permutation
    std::vector<int> sorted = phase;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == up);
  }
}

TEST_CASE("emulator checks: schedules from the API and from SPARSETRAIN_EMU_SCHEDULE") {
  Schedule s = st::emu::parse_schedule("random:42", "test");
  CHECK(s.order == Schedule::random);
  CHECK(s.seed == 42);
  CHECK(st::emu::parse_schedule("reverse", "test").order == Schedule::reverse);
  CHECK(st::emu::parse_schedule("forward", "test").order == Schedule::forward);
  for (const char* bad : {"", "backward", "random", "random:", "random:-1", "random:1x"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(st::emu::parse_schedule(bad, "test"),
                         doctest::Contains("accepted values: forward"), std::invalid_argument);
  }

  // The variables are set here, read again, and restored (ctest runs this suite under several).
  struct SavedVariable {
    const char* name;
    bool set;
    std::string value;
    explicit SavedVariable(const char* n) : name(n), set(std::getenv(n) != nullptr) {
      if (set) value = std::getenv(n);
    }
    ~SavedVariable() {
      if (set)
        setenv(name, value.c_str(), 1);
      else
        unsetenv(name);
    }
  };
  std::string e, e_strict, e_race;
  Schedule from_env;
  bool strict_from_env = false, race_from_env = true;
  {
    SavedVariable schedule_var("SPARSETRAIN_EMU_SCHEDULE"), strict_var("SPARSETRAIN_EMU_STRICT"),
        race_var("SPARSETRAIN_EMU_RACECHECK");
    setenv("SPARSETRAIN_EMU_RACECHECK", "yes", 1);
    e_race = error_of([] { st::emu::reload_environment(); });
    setenv("SPARSETRAIN_EMU_RACECHECK", "0", 1);
    setenv("SPARSETRAIN_EMU_SCHEDULE", "sideways", 1);
    e = error_of([] { st::emu::reload_environment(); });
    setenv("SPARSETRAIN_EMU_STRICT", "yes", 1);
    setenv("SPARSETRAIN_EMU_SCHEDULE", "reverse", 1);
    e_strict = error_of([] { st::emu::reload_environment(); });
    setenv("SPARSETRAIN_EMU_STRICT", "1", 1);
    st::emu::reload_environment();
    from_env = st::emu::schedule();
    strict_from_env = st::emu::strict();
    race_from_env = st::emu::racecheck();
  }
  st::emu::reload_environment();
  CHECK(e ==
        "emulator: SPARSETRAIN_EMU_SCHEDULE=\"sideways\" is not a schedule; accepted values: "
        "forward (the default), reverse, random:SEED (SEED a decimal unsigned integer)");
  CHECK(e_strict.find("emulator: SPARSETRAIN_EMU_STRICT=\"yes\"") == 0);
  CHECK(e_strict.find("accepted values: 1") != std::string::npos);
  CHECK(from_env.order == Schedule::reverse);
  CHECK(strict_from_env);
  CHECK_FALSE(race_from_env);
  CHECK(e_race == "emulator: SPARSETRAIN_EMU_RACECHECK=\"yes\" is not a race checker switch; "
                 "accepted values: 1 (on) and 0 or unset (off)");
}

// ---- static shared memory ---------------------------------------------------------------------

TEST_CASE("emulator checks: a block reading static shared memory it never wrote reads NaN") {
  std::vector<float> table(64);
  for (int i = 0; i < 64; ++i) table[static_cast<size_t>(i)] = 0.5f * static_cast<float>(i);
  const int threads = 64, blocks = 3;
  DeviceArray<float> dtable(table), dy(threads * blocks);
  for (Schedule order : {Schedule{}, reverse()}) {
    st::emu::ScopedSchedule scope(order);
    ST_LAUNCH(blocks, threads, 0, nullptr, stale_table_kernel)(dtable.get(), dy.get());
    ST_CUDA_CHECK_LAUNCH();
    std::vector<float> y = dy.download();
    for (int i = 0; i < threads * blocks; ++i) {
      const float v = y[static_cast<size_t>(i)];
      CAPTURE(i);
      if (i < threads)
        CHECK(v == table[static_cast<size_t>((i * 7) % 64)]);
      else
        CHECK(v != v);  // NaN: blocks 1 and 2 see poison, not block 0's table
    }
  }
}

// ---- strict memory ----------------------------------------------------------------------------

TEST_CASE("emulator checks: strict mode reports an off-by-one write past an allocation" *
          doctest::skip(kAsan)) {
  st::emu::ScopedStrict strict(true);
  const int n = 250;  // 1000 bytes: within cudaMalloc's 256-byte rounding, y[250] is not caught
  {
    DeviceArray<float> y(n);
    std::string e = error_of([&] {
      ST_LAUNCH(2, 128, 0, nullptr, fill_off_by_one_kernel)(n, 1.0f, y.get());
    });
    CHECK(e == "emulator: write past the end of a 1000-byte allocation in fill_off_by_one_kernel");
    CHECK(cudaDeviceReset() == cudaSuccess);  // the fault is sticky
    std::vector<float> got = y.download();  // the guard was repaired: reported once
    CHECK(got[0] == 1.0f);
    CHECK(got[n - 1] == 1.0f);
    e = error_of([&] { ST_LAUNCH(2, 128, 0, nullptr, fill_shifted_kernel)(n, 1, 2.0f, y.get()); });
    CHECK(e == "emulator: write before the start of a 1000-byte allocation in fill_shifted_kernel");
    CHECK(cudaDeviceReset() == cudaSuccess);
    ST_LAUNCH(2, 128, 0, nullptr, fill_shifted_kernel)(n, 0, 3.0f, y.get());  // the fixed bound
    ST_CUDA_CHECK_LAUNCH();
    CHECK(y.download()[n - 1] == 3.0f);
  }
  {
    // Without strict mode the same bug writes into cudaMalloc's rounding and goes unseen.
    st::emu::ScopedStrict lenient(false);
    DeviceArray<float> y(n);
    ST_LAUNCH(2, 128, 0, nullptr, fill_off_by_one_kernel)(n, 1.0f, y.get());
    ST_CUDA_CHECK_LAUNCH();
    CHECK(y.download()[n - 1] == 1.0f);
  }
}

TEST_CASE("emulator checks: strict allocations are exact, poisoned and not cached") {
  st::emu::ScopedStrict strict(true);
  DeviceArray<float> fresh(3);
  for (float v : fresh.download()) CHECK(v != v);  // 0xFF bytes: NaN
  CHECK(reinterpret_cast<uintptr_t>(fresh.get()) % 256 == 0);

  // device_alloc (cuda/runtime.h) hands every block out once: a freed block is cudaFree'd, and the
  // next one is a new exact-size allocation, so the guard follows the bytes asked for.
  st::cuda::release_cache();
  const st::emu::Stats e0 = st::emu::stats();
  const st::cuda::DeviceAllocatorStats s0 = st::cuda::device_allocator_stats();
  for (int step = 0; step < 3; ++step) {
    void* p = st::cuda::device_alloc(1000);
    REQUIRE(p != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(p) % 256 == 0);
    std::vector<unsigned char> back(1000);
    st::cuda::copy_d2h(back.data(), p, 1000);
    CHECK(back == std::vector<unsigned char>(1000, 0xFF));
    CHECK(cudaMemcpy(back.data(), p, 1001, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
    (void)cudaGetLastError();
    st::cuda::device_free(p, 1000);
  }
  const st::cuda::DeviceAllocatorStats s1 = st::cuda::device_allocator_stats();
  CHECK(s1.device_mallocs == s0.device_mallocs + 3);
  CHECK(s1.cached_reuses == s0.cached_reuses);
  CHECK(s1.bytes_cached == 0);
  CHECK(s1.bytes_in_use == s0.bytes_in_use);
  CHECK(st::emu::stats().mallocs == e0.mallocs + 3);
  CHECK(st::emu::stats().frees == e0.frees + 3);

  // A block allocated in one mode and freed in the other goes back the right way.
  void* lenient_block = nullptr;
  {
    st::emu::ScopedStrict lenient(false);
    lenient_block = st::cuda::device_alloc(512);
  }
  void* strict_block = st::cuda::device_alloc(512);
  {
    st::emu::ScopedStrict lenient(false);
    st::cuda::device_free(strict_block, 512);
  }
  st::cuda::device_free(lenient_block, 512);
  CHECK(st::cuda::device_allocator_stats().bytes_cached == 512);  // only the lenient one
  st::cuda::release_cache();
}

// ---- the race checker ---------------------------------------------------------------------------

TEST_CASE("emulator checks: the race checker finds a missing __syncthreads in every order" *
          doctest::skip(!kRacecheck)) {
  REQUIRE(st::emu::racecheck_available());
  st::emu::ScopedRacecheck on(true);
  const int threads = 256, blocks = 2;
  std::vector<int> x(threads * blocks, 1);
  DeviceArray<int> dx(x), dout(blocks);
  for (Schedule order : {Schedule{}, reverse(), random_seed(1), random_seed(99)}) {
    st::emu::ScopedSchedule scope(order);
    ST_LAUNCH(blocks, threads, 0, nullptr, upsweep_sum_kernel)(dx.get(), dout.get());
    ST_CUDA_CHECK_LAUNCH();
    CHECK(dout.download() == std::vector<int>(blocks, threads));
    std::string e = error_of([&] {
      ST_LAUNCH(blocks, threads, 0, nullptr, upsweep_sum_missing_sync_kernel)(dx.get(), dout.get());
    });
    CAPTURE(e);
    // Which pair is found first depends on the order; that it is found does not.
    CHECK(e.find("emulator: race in upsweep_sum_missing_sync_kernel (block (") == 0);
    CHECK(e.find("of a 1024-byte __shared__ array)") != std::string::npos);
    CHECK(e.find(" with no __syncthreads") != std::string::npos);
    CHECK(cudaDeviceReset() == cudaSuccess);
  }
  // The forward order, where the broken kernel's result is right: the earliest pair.
  std::string e = error_of([&] {
    ST_LAUNCH(1, threads, 0, nullptr, upsweep_sum_missing_sync_kernel)(dx.get(), dout.get());
  });
  CHECK(e == "emulator: race in upsweep_sum_missing_sync_kernel (block (0,0,0)): thread 0 wrote "
             "shared memory (byte 0 of a 1024-byte __shared__ array), thread 1 read it with no "
             "__syncthreads or __syncwarp between");
  CHECK(cudaDeviceReset() == cudaSuccess);
}

TEST_CASE("emulator checks: the race checker honours __syncwarp and exempts atomics" *
          doctest::skip(!kRacecheck)) {
  st::emu::ScopedRacecheck on(true);
  std::vector<int> x(32);
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(i)] = i;
  DeviceArray<int> dx(x), dout(1), counters(1), flags(4);
  for (Schedule order : {Schedule{}, reverse()}) {
    st::emu::ScopedSchedule scope(order);
    ST_LAUNCH(1, 32, 0, nullptr, warp_upsweep_kernel)(dx.get(), dout.get(), true);
    ST_CUDA_CHECK_LAUNCH();
    CHECK(dout.download()[0] == 31 * 32 / 2);
    std::string e = error_of([&] {
      ST_LAUNCH(1, 32, 0, nullptr, warp_upsweep_kernel)(dx.get(), dout.get(), false);
    });
    CHECK(e.find("emulator: race in warp_upsweep_kernel (block (0,0,0)): thread ") == 0);
    CHECK(e.find("with no __syncthreads or __syncwarp between") != std::string::npos);
    CHECK(cudaDeviceReset() == cudaSuccess);

    ST_CUDA_CHECK(cudaMemset(counters.get(), 0, sizeof(int)));
    ST_LAUNCH(4, 64, 0, nullptr, block_counter_kernel)(counters.get(), flags.get(), false);
    ST_CUDA_CHECK_LAUNCH();
    CHECK(counters.download()[0] == 4 * 64);
    e = error_of([&] {
      ST_LAUNCH(4, 64, 0, nullptr, block_counter_kernel)(counters.get(), flags.get(), true);
    });
    CAPTURE(e);
    CHECK(e.find("emulator: race in block_counter_kernel (block (") == 0);
    CHECK(e.find("thread 0 of block (") != std::string::npos);
    CHECK(e.find("wrote global memory (byte 0 of a 16-byte allocation)") != std::string::npos);
    CHECK(e.find("blocks of one launch are not ordered") != std::string::npos);
    CHECK(cudaDeviceReset() == cudaSuccess);
  }
}

TEST_CASE("emulator checks: the race checker is off or missing outside its build") {
  if (kRacecheck) {
    CHECK(st::emu::racecheck_available());
    return;
  }
  CHECK_FALSE(st::emu::racecheck_available());
  st::emu::ScopedRacecheck on(true);
  DeviceArray<float> y(4);
  std::string e = error_of([&] { ST_LAUNCH(1, 4, 0, nullptr, fill_kernel)(4, 1.f, y.get()); });
  CHECK(e.find("emulator: the race checker (SPARSETRAIN_EMU_RACECHECK=1) is on, but no kernel") == 0);
}

// ---- launch resources ---------------------------------------------------------------------------

TEST_CASE("emulator checks: shared memory and block size limits fail the launch like CUDA") {
  std::vector<float> x(64, 1.5f);
  DeviceArray<float> dx(x), dy(64);
  // 40 KiB static + 4 KiB dynamic fits the default 48 KiB; 40 + 16 does not.
  ST_LAUNCH(1, 64, 4096, nullptr, big_static_shared_kernel)(dx.get(), dy.get());
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(dy.download() == std::vector<float>(64, 3.f));
  ST_LAUNCH(1, 64, 16384, nullptr, big_static_shared_kernel)(dx.get(), dy.get());
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  ST_LAUNCH(1, 64, 49 * 1024, nullptr, fill_kernel)(64, 0.f, dy.get());
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  ST_LAUNCH(1, 1025, 0, nullptr, fill_kernel)(64, 0.f, dy.get());
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  CHECK(dy.download() == std::vector<float>(64, 3.f));  // none of them ran
  CHECK(cudaGetLastError() == cudaSuccess);  // not sticky

  // The opt-in: up to 163 KiB (sm_80) with cudaFuncAttributeMaxDynamicSharedMemorySize.
  int optin = 0;
  CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0) == cudaSuccess);
  CHECK(optin == 163 * 1024);
  CHECK(cudaFuncSetAttribute(fill_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin + 1) ==
        cudaErrorInvalidValue);
  (void)cudaGetLastError();
  CHECK(cudaFuncSetAttribute(big_static_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             16384) == cudaSuccess);
  ST_LAUNCH(1, 64, 16384, nullptr, big_static_shared_kernel)(dx.get(), dy.get());
  CHECK(cudaGetLastError() == cudaSuccess);
  ST_LAUNCH(1, 64, 16385, nullptr, big_static_shared_kernel)(dx.get(), dy.get());
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);  // over its own opt-in
}

// ---- streams and faults -------------------------------------------------------------------------

TEST_CASE("emulator checks: work on a stream runs at the synchronizing call, in order") {
  const int n = 300;
  DeviceArray<float> y(std::vector<float>(n, 0.f));
  cudaStream_t s = nullptr;
  ST_CUDA_CHECK(cudaStreamCreate(&s));
  cudaEvent_t after_first = nullptr;
  ST_CUDA_CHECK(cudaEventCreate(&after_first));
  float* pinned = nullptr;
  ST_CUDA_CHECK(cudaMallocHost(&pinned, n * sizeof(float)));
  const st::emu::Stats before = st::emu::stats();
  ST_LAUNCH(2, 256, 0, s, fill_kernel)(n, 1.f, y.get());
  ST_CUDA_CHECK_LAUNCH();  // checks the configuration; the launch itself is queued...
  ST_CUDA_CHECK(cudaEventRecord(after_first, s));
  ST_LAUNCH(2, 256, 0, s, fill_kernel)(n, 2.f, y.get());
  ST_CUDA_CHECK(cudaMemcpyAsync(pinned, y.get(), n * sizeof(float), cudaMemcpyDeviceToHost, s));
  if (!st::cuda_detail::checked_launches()) {
    CHECK(st::emu::stats().launches == before.launches);  // ...unless launches are checked
    ST_CUDA_CHECK(cudaEventSynchronize(after_first));    // runs the queue up to the event
    CHECK(st::emu::stats().launches == before.launches + 1);
  }
  ST_CUDA_CHECK(cudaStreamSynchronize(s));
  CHECK(st::emu::stats().launches == before.launches + 2);
  CHECK(std::vector<float>(pinned, pinned + n) == std::vector<float>(n, 2.f));
  ST_CUDA_CHECK(cudaFreeHost(pinned));
  ST_CUDA_CHECK(cudaEventDestroy(after_first));
  ST_CUDA_CHECK(cudaStreamDestroy(s));
}

// BROKEN host code: the result of a kernel queued on a stream is read without synchronizing with
// that stream. On a GPU it usually reads the old values, sometimes the new ones; the emulator runs
// the kernel only when something synchronizes, so the bug shows every time. (Strict mode reports
// the read of the pinned destination instead: "in strict mode a missing stream synchronization
// before reading pinned memory is reported", below.)
TEST_CASE("emulator checks: a missing stream synchronization reads stale results") {
  st::emu::ScopedStrict lenient(false);
  const int n = 64;
  DeviceArray<float> y(std::vector<float>(n, 0.f));
  cudaStream_t s = nullptr;
  ST_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  float* pinned = nullptr;
  ST_CUDA_CHECK(cudaMallocHost(&pinned, n * sizeof(float)));
  std::fill(pinned, pinned + n, -1.f);
  auto launch = [&] {
    ST_LAUNCH(1, n, 0, s, fill_kernel)(n, 5.f, y.get());
    ST_CUDA_CHECK(cudaGetLastError());  // not ST_CUDA_CHECK_LAUNCH: that may synchronize
  };
  // 1. An asynchronous copy into pinned memory, read before cudaStreamSynchronize.
  launch();
  ST_CUDA_CHECK(cudaMemcpyAsync(pinned, y.get(), n * sizeof(float), cudaMemcpyDeviceToHost, s));
  CHECK(pinned[0] == -1.f);  // BROKEN: nothing has arrived yet
  ST_CUDA_CHECK(cudaStreamSynchronize(s));
  CHECK(pinned[0] == 5.f);   // fixed
  // 2. A synchronous copy on the legacy default stream, which does not wait for a non-blocking
  //    stream.
  ST_CUDA_CHECK(cudaMemset(y.get(), 0, n * sizeof(float)));
  launch();
  std::vector<float> host(n);
  ST_CUDA_CHECK(cudaMemcpy(host.data(), y.get(), n * sizeof(float), cudaMemcpyDeviceToHost));
  CHECK(host[0] == 0.f);  // BROKEN
  ST_CUDA_CHECK(cudaStreamSynchronize(s));
  ST_CUDA_CHECK(cudaMemcpy(host.data(), y.get(), n * sizeof(float), cudaMemcpyDeviceToHost));
  CHECK(host[0] == 5.f);  // fixed
  ST_CUDA_CHECK(cudaFreeHost(pinned));
  ST_CUDA_CHECK(cudaStreamDestroy(s));
}

TEST_CASE("emulator checks: a fault in queued work surfaces at the synchronizing call and sticks") {
  DeviceArray<int> y(std::vector<int>(8, 0));
  cudaStream_t s = nullptr;
  ST_CUDA_CHECK(cudaStreamCreate(&s));
  ST_LAUNCH(1, 8, 0, s, throw_kernel)(y.get());
  CHECK(cudaGetLastError() == cudaSuccess);  // queued, not run
  ST_LAUNCH(1, 8, 0, s, fill_kernel)(8, 1.f, reinterpret_cast<float*>(y.get()));
  std::string e = error_of([&] { ST_CUDA_CHECK(cudaStreamSynchronize(s)); });
  CHECK(e == "kernel fault");
  std::vector<int> host(8, -1);
  CHECK(cudaMemcpy(host.data(), y.get(), 8 * sizeof(int), cudaMemcpyDeviceToHost) ==
        cudaErrorLaunchFailure);
  CHECK(cudaStreamSynchronize(s) == cudaErrorLaunchFailure);  // the rest of the queue is dropped
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  CHECK(cudaDeviceReset() == cudaSuccess);
  ST_CUDA_CHECK(cudaMemcpy(host.data(), y.get(), 8 * sizeof(int), cudaMemcpyDeviceToHost));
  CHECK(std::count(host.begin(), host.end(), 0x3f800000) == 0);  // the fill (1.f) never ran
  ST_CUDA_CHECK(cudaStreamDestroy(s));
}

// Runs `f` in a child process; returns its stderr and how it ended.
template <class F>
std::pair<std::string, int> in_child(F&& f) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    f();
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {out, status};
}

TEST_CASE("emulator checks: in strict mode the host cannot dereference device memory" *
          doctest::skip(kAsan)) {
  st::emu::ScopedStrict strict(true);
  DeviceArray<float> y(std::vector<float>(100, 1.f));
  auto [err, status] = in_child([&] {
    volatile float v = y.get()[3];  // BROKEN: a device pointer read on the host
    (void)v;
  });
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGSEGV);
  CHECK(err.find("emulator: host code dereferenced device memory at ") == 0);
  CHECK(err.find("(byte 12 of a 400-byte allocation)") != std::string::npos);
  // Kernels and copies still reach it.
  ST_LAUNCH(1, 100, 0, nullptr, fill_kernel)(100, 4.f, y.get());
  ST_CUDA_CHECK_LAUNCH();
  CHECK(y.download() == std::vector<float>(100, 4.f));
}

// BROKEN host code, as in "a missing stream synchronization reads stale results", caught in strict
// mode: while a cudaMemcpyAsync into a cudaMallocHost block is queued, the block's pages are
// unreachable from the host, so the read before cudaStreamSynchronize kills the process with a
// report naming the stream and the kernel queued before the copy. Likewise a host write into the
// pinned source of a queued host-to-device copy (the copy would send the new data), while reading
// that source stays allowed.
TEST_CASE("emulator checks: in strict mode a missing stream synchronization before reading "
          "pinned memory is reported" *
          doctest::skip(kAsan)) {
  st::emu::ScopedStrict strict(true);
  const int n = 64;  // 256 bytes
  DeviceArray<float> y(std::vector<float>(n, 0.f));
  ST_CUDA_CHECK(cudaDeviceSynchronize());  // the upload, queued on the backend's stream, first
  cudaStream_t s = nullptr;
  ST_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  char stream_name[96];
  std::snprintf(stream_name, sizeof stream_name, "queued on stream %p after kernel fill_kernel",
                static_cast<void*>(s));
  float* pinned = nullptr;
  ST_CUDA_CHECK(cudaMallocHost(&pinned, n * sizeof(float)));
  std::fill(pinned, pinned + n, -1.f);
  auto launch = [&](float value) {
    ST_LAUNCH(1, n, 0, s, fill_kernel)(n, value, y.get());
    ST_CUDA_CHECK(cudaGetLastError());  // not ST_CUDA_CHECK_LAUNCH: that may synchronize
  };

  // 1. Device to host: the destination is read before the stream is synchronized.
  launch(5.f);
  ST_CUDA_CHECK(cudaMemcpyAsync(pinned, y.get(), n * sizeof(float), cudaMemcpyDeviceToHost, s));
  auto [err, status] = in_child([&] {
    volatile float v = pinned[3];  // BROKEN: no cudaStreamSynchronize(s) before the read
    (void)v;
  });
  INFO("the child's stderr: " << err);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGSEGV);
  CHECK(err.find("emulator: host read of pinned memory at ") == 0);
  CHECK(err.find("(byte 12 of a 256-byte cudaMallocHost block) while a 256-byte cudaMemcpyAsync "
                 "into it is queued on stream ") != std::string::npos);
  CHECK(err.find(stream_name) != std::string::npos);
  CHECK(err.find("fill_kernel and not yet synchronized (missing "
                 "cudaStreamSynchronize/cudaEventSynchronize?)\n") != std::string::npos);
  // Fixed: synchronize first; the read runs clean and sees the kernel's result.
  ST_CUDA_CHECK(cudaStreamSynchronize(s));
  CHECK(std::vector<float>(pinned, pinned + n) == std::vector<float>(n, 5.f));
  // Fixed with an event recorded after the copy.
  cudaEvent_t copied = nullptr;
  ST_CUDA_CHECK(cudaEventCreate(&copied));
  launch(6.f);
  ST_CUDA_CHECK(cudaMemcpyAsync(pinned, y.get(), n * sizeof(float), cudaMemcpyDeviceToHost, s));
  ST_CUDA_CHECK(cudaEventRecord(copied, s));
  ST_CUDA_CHECK(cudaEventSynchronize(copied));
  CHECK(pinned[n - 1] == 6.f);
  ST_CUDA_CHECK(cudaEventDestroy(copied));

  // 2. Host to device: the source is written before the copy has run.
  std::fill(pinned, pinned + n, 7.f);
  launch(1.f);
  ST_CUDA_CHECK(cudaMemcpyAsync(y.get(), pinned, n * sizeof(float), cudaMemcpyHostToDevice, s));
  CHECK(pinned[0] == 7.f);  // reading the source is fine
  auto [werr, wstatus] = in_child([&] {
    pinned[5] = 8.f;  // BROKEN: the queued copy would send 8
  });
  INFO("the child's stderr: " << werr);
  CHECK(WIFSIGNALED(wstatus));
  CHECK(WTERMSIG(wstatus) == SIGSEGV);
  CHECK(werr.find("emulator: host write to pinned memory at ") == 0);
  CHECK(werr.find("(byte 20 of a 256-byte cudaMallocHost block) while a 256-byte "
                  "cudaMemcpyAsync from it is queued on stream ") != std::string::npos);
  CHECK(werr.find(stream_name) != std::string::npos);
  // Fixed: synchronize, then reuse the buffer.
  ST_CUDA_CHECK(cudaStreamSynchronize(s));
  pinned[5] = 8.f;
  CHECK(y.download() == std::vector<float>(n, 7.f));

  // Bytes outside a queued copy stay the host's, also where they share a page with the copy.
  launch(2.f);
  ST_CUDA_CHECK(cudaMemcpyAsync(pinned + n / 2, y.get(), n / 2 * sizeof(float),
                                cudaMemcpyDeviceToHost, s));
  CHECK(pinned[5] == 8.f);
  pinned[0] = 3.f;
  ST_CUDA_CHECK(cudaStreamSynchronize(s));
  CHECK(pinned[0] == 3.f);
  CHECK(pinned[n / 2 - 1] == 7.f);
  CHECK(pinned[n / 2] == 2.f);

  // 3. cudaFreeHost synchronizes the device, like CUDA's: the queued copy runs first.
  launch(9.f);
  ST_CUDA_CHECK(cudaMemcpyAsync(pinned, y.get(), n * sizeof(float), cudaMemcpyDeviceToHost, s));
  ST_CUDA_CHECK(cudaFreeHost(pinned));
  CHECK(y.download() == std::vector<float>(n, 9.f));
  ST_CUDA_CHECK(cudaStreamDestroy(s));

  // Without strict mode the pinned block is plain memory and the read goes unseen (stale).
  st::emu::ScopedStrict lenient(false);
  ST_CUDA_CHECK(cudaMallocHost(&pinned, n * sizeof(float)));
  std::fill(pinned, pinned + n, -1.f);
  ST_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  launch(10.f);
  ST_CUDA_CHECK(cudaMemcpyAsync(pinned, y.get(), n * sizeof(float), cudaMemcpyDeviceToHost, s));
  CHECK(pinned[3] == -1.f);  // BROKEN, unreported
  ST_CUDA_CHECK(cudaStreamSynchronize(s));
  CHECK(pinned[3] == 10.f);
  ST_CUDA_CHECK(cudaFreeHost(pinned));
  ST_CUDA_CHECK(cudaStreamDestroy(s));
}

#endif  // !ST_CUDA_GPU_TESTS
