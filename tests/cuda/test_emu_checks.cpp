// tests/cuda/test_emu_checks.cpp — the emulator's bug-finding modes (cuda/emu/emu.h), each shown
// catching a deliberately broken kernel written like the real ones in cuda/*.cu:
//   schedules (SPARSETRAIN_EMU_SCHEDULE): an up-sweep reduction with its __syncthreads removed is
//       right in the forward order and wrong under reverse and random, and each order is as
//       documented;
//   ST_SHARED_POISON: a block reading a static __shared__ table only block 0 wrote reads NaN;
//   strict memory (SPARSETRAIN_EMU_STRICT): an off-by-one tail write throws, naming the kernel;
//       fresh allocations are poisoned; device_alloc no longer caches.
// Each test sets the mode it needs for its own scope, so it passes whatever mode ctest runs the
// whole suite in. Emulator only: test_cuda_gpu compiles this file to nothing.
#if !defined(ST_CUDA_GPU_TESTS)
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
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

}  // namespace

// ---- schedules --------------------------------------------------------------------------------

TEST_CASE("emulator checks: a reduction missing __syncthreads is wrong under reverse and random") {
  const int threads = 256, blocks = 3;
  std::vector<int> x(threads * blocks);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<int>(i % 97) + 1;
  std::vector<int> want(blocks, 0);
  for (size_t i = 0; i < x.size(); ++i) want[i / threads] += x[i];
  DeviceArray<int> dx(x), dout(blocks);
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
  std::string e, e_strict;
  Schedule from_env;
  bool strict_from_env = false;
  {
    SavedVariable schedule_var("SPARSETRAIN_EMU_SCHEDULE"), strict_var("SPARSETRAIN_EMU_STRICT");
    setenv("SPARSETRAIN_EMU_SCHEDULE", "sideways", 1);
    e = error_of([] { st::emu::reload_environment(); });
    setenv("SPARSETRAIN_EMU_STRICT", "yes", 1);
    setenv("SPARSETRAIN_EMU_SCHEDULE", "reverse", 1);
    e_strict = error_of([] { st::emu::reload_environment(); });
    setenv("SPARSETRAIN_EMU_STRICT", "1", 1);
    st::emu::reload_environment();
    from_env = st::emu::schedule();
    strict_from_env = st::emu::strict();
  }
  st::emu::reload_environment();
  CHECK(e ==
        "emulator: SPARSETRAIN_EMU_SCHEDULE=\"sideways\" is not a schedule; accepted values: "
        "forward (the default), reverse, random:SEED (SEED a decimal unsigned integer)");
  CHECK(e_strict.find("emulator: SPARSETRAIN_EMU_STRICT=\"yes\"") == 0);
  CHECK(e_strict.find("accepted values: 1") != std::string::npos);
  CHECK(from_env.order == Schedule::reverse);
  CHECK(strict_from_env);
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
    std::vector<float> got = y.download();  // the guard was repaired: reported once
    CHECK(got[0] == 1.0f);
    CHECK(got[n - 1] == 1.0f);
    e = error_of([&] { ST_LAUNCH(2, 128, 0, nullptr, fill_shifted_kernel)(n, 1, 2.0f, y.get()); });
    CHECK(e == "emulator: write before the start of a 1000-byte allocation in fill_shifted_kernel");
    ST_LAUNCH(2, 128, 0, nullptr, fill_shifted_kernel)(n, 0, 3.0f, y.get());  // the fixed bound
    ST_CUDA_CHECK_LAUNCH();
    CHECK(y.download()[n - 1] == 3.0f);
  }
  {
    // Host code writing through a device pointer (possible only in the emulator) is found by
    // the next synchronization, which names the kernel that ran last.
    DeviceArray<unsigned char> bytes(100);
    bytes.get()[100] = 0;
    std::string e = error_of([] { ST_CUDA_CHECK(cudaDeviceSynchronize()); });
    CHECK(e == "emulator: write past the end of a 100-byte allocation in fill_shifted_kernel "
               "(found by cudaDeviceSynchronize)");
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

#endif  // !ST_CUDA_GPU_TESTS
