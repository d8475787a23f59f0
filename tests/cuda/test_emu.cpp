// tests/cuda/test_emu.cpp — the CUDA execution model as cuda/emu/emu.h emulates it: barriers at
// odd block sizes, warp shuffles and votes (partial warps, widths, out-of-range lanes), atomics
// across blocks, dynamic shared memory, 2-D/3-D grids, template kernels through ST_LAUNCH, argument
// copies, launch validation; and, in the emulator only, deadlock/divergence reports, exceptions
// and poison values. Expected values are computed on the host in plain loops.
// Built by g++ into test_cuda (emulator) and, through tests/cuda/gpu/test_emu_gpu.cu, by nvcc
// into test_cuda_gpu, so the same kernels pin down the emulator against a real GPU.
#include "cuda/compat.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// A device array for one test; the host side is a std::vector.
template <class T>
struct DeviceArray {
  T* ptr = nullptr;
  size_t n = 0;
  explicit DeviceArray(size_t count) : n(count) {
    ST_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T)));
    ST_CUDA_CHECK(cudaMemset(ptr, 0, n * sizeof(T)));
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) {
    ST_CUDA_CHECK(cudaMemcpy(ptr, host.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceArray() { cudaFree(ptr); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  std::vector<T> get() const {
    std::vector<T> host(n);
    ST_CUDA_CHECK(cudaDeviceSynchronize());
    ST_CUDA_CHECK(cudaMemcpy(host.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
};

std::vector<int> iota_ints(int n, int mod) {
  std::vector<int> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = (i * 7919) % mod - mod / 3;
  return v;
}

// ---- kernels ---------------------------------------------------------------------------------

// out[b] = sum of x over block b's slice; a halving tree that works for any block size.
__global__ void block_sum_kernel(const int* x, int n, int* out) {
  __shared__ int s[1024];
  ST_SHARED_POISON(s);
  unsigned t = threadIdx.x;
  long i = static_cast<long>(blockIdx.x) * blockDim.x + t;
  s[t] = i < n ? x[i] : 0;
  __syncthreads();
  for (unsigned active = blockDim.x; active > 1;) {
    unsigned half = (active + 1) / 2;
    if (t < active - half) s[t] += s[t + half];
    __syncthreads();
    active = half;
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

// Lanes that exist in this thread's warp (the last warp of a block may be partial).
__device__ unsigned warp_mask() {
  unsigned first = threadIdx.x & ~31u;
  unsigned lanes = blockDim.x - first < 32 ? blockDim.x - first : 32;
  return lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u;
}

// Per thread (1-D blocks): [0] sum over its width-16 segment by shfl_down (valid at segment
// start), [1] butterfly all-reduce over width 8, [2] inclusive prefix over the warp by shfl_up,
// [3] shfl from lane (lane + 35) of width 8, [4] shfl_down by 5 at width 8 (own value when out of
// range), [5] shfl_xor 4 at width 4 (a later group gives the own value, an earlier one its value).
__global__ void shuffle_kernel(const int* x, int* out) {
  unsigned mask = warp_mask();
  int lane = static_cast<int>(threadIdx.x & 31);
  int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  int v = x[i];
  int down = v;
  for (int o = 8; o > 0; o >>= 1)
    down += __shfl_down_sync(mask, down, static_cast<unsigned>(o), 16);
  int bfly = v;
  for (int o = 4; o > 0; o >>= 1) bfly += __shfl_xor_sync(mask, bfly, o, 8);
  int scan = v;
  for (unsigned d = 1; d < 32; d *= 2) {
    int y = __shfl_up_sync(mask, scan, d);
    if (static_cast<unsigned>(lane) >= d) scan += y;
  }
  int* o = out + 6 * i;
  o[0] = down;
  o[1] = bfly;
  o[2] = scan;
  o[3] = __shfl_sync(mask, v, lane + 35, 8);
  o[4] = __shfl_down_sync(mask, v, 5, 8);
  o[5] = __shfl_xor_sync(mask, v, 4, 4);
}

// The float and unsigned overloads: warp sums by xor butterfly.
__global__ void shuffle_types_kernel(const float* xf, const unsigned* xu, float* of, unsigned* ou) {
  unsigned mask = warp_mask();
  int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  float f = xf[i];
  unsigned u = xu[i];
  for (int o = 16; o > 0; o >>= 1) {
    f += __shfl_xor_sync(0xffffffffu & mask, f, o);
    u += __shfl_xor_sync(mask, u, o);
  }
  of[i] = f;
  ou[i] = u;
}

__global__ void vote_kernel(const int* x, unsigned* ballot, int* any, int* all, unsigned* active) {
  unsigned mask = warp_mask();
  int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  active[i] = __activemask();  // converged here: every lane of the warp
  int pred = x[i] & 1;
  ballot[i] = __ballot_sync(mask, pred);
  any[i] = __any_sync(mask, x[i] > 1000) ? 1 : 0;
  all[i] = __all_sync(mask, x[i] > -1000) ? 1 : 0;
  __syncwarp(mask);
}

__global__ void sync_variants_kernel(const int* x, int* out) {
  int pred = x[threadIdx.x] > 0;
  int count = __syncthreads_count(pred);
  int all = __syncthreads_and(pred);
  int any = __syncthreads_or(pred);
  if (threadIdx.x == 0) {
    out[0] = count;
    out[1] = all != 0;
    out[2] = any != 0;
  }
}

__global__ void atomics_kernel(const int* x, int n, int* hist, float* fsum, double* dsum,
                               unsigned long long* usum, int* imax, int* imin, unsigned* umax,
                               float* fmax_cas, int* last) {
  int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= n) return;
  int v = x[i];
  atomicAdd(&hist[(v % 16 + 16) % 16], 1);
  atomicAdd(fsum, static_cast<float>(v));
  atomicAdd(dsum, static_cast<double>(v));
  atomicAdd(usum, static_cast<unsigned long long>(v + 1000));
  atomicMax(imax, v);
  atomicMin(imin, v);
  atomicMax(umax, static_cast<unsigned>(v + 1000));
  // A float max through compare-and-swap, the usual pattern for ops without a native atomic.
  float f = static_cast<float>(v) * 0.5f;
  int* addr = reinterpret_cast<int*>(fmax_cas);
  int old = *addr;
  while (__int_as_float(old) < f) {
    int assumed = old;
    old = atomicCAS(addr, assumed, __float_as_int(f));
    if (old == assumed) break;
  }
  atomicExch(last, 1);
}

// Each block reverses its slice through dynamic shared memory; flag[b] = 1 when the dynamic
// buffer is 16-byte aligned (float4 loads from it are legal).
__global__ void reverse_kernel(const float* x, float* y, int* aligned) {
  ST_DYNAMIC_SHARED(float, buf);
  unsigned t = threadIdx.x;
  unsigned base = blockIdx.x * blockDim.x;
  buf[t] = x[base + t];
  __syncthreads();
  y[base + t] = buf[blockDim.x - 1 - t];
  if (t == 0) aligned[blockIdx.x] = reinterpret_cast<uintptr_t>(buf) % 16 == 0;
}

// Every thread of a 3-D grid of 3-D blocks writes its coordinates at its global linear index.
__global__ void coords_kernel(int* out) {
  unsigned bx = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  unsigned tx = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned g = bx * blockDim.x * blockDim.y * blockDim.z + tx;
  int* o = out + 6 * g;
  o[0] = static_cast<int>(blockIdx.x);
  o[1] = static_cast<int>(blockIdx.y);
  o[2] = static_cast<int>(blockIdx.z);
  o[3] = static_cast<int>(threadIdx.x);
  o[4] = static_cast<int>(threadIdx.y);
  o[5] = static_cast<int>(threadIdx.z);
}

template <typename T, int kUnroll>
__global__ void axpy_kernel(int n, T a, const T* x, T* y) {
  int i0 = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x) * kUnroll;
#pragma unroll
  for (int u = 0; u < kUnroll; ++u)
    if (i0 + u < n) y[i0 + u] += a * x[i0 + u];
}

struct Params {
  int n;
  int bump;
};

// Kernel arguments are per-thread copies: changing one must not leak to other threads.
__global__ void by_value_kernel(Params p, int* out) {
  int seen = p.n;
  p.n += p.bump;
  out[threadIdx.x] = seen;
}

__global__ void noop_kernel(int* out) {
  if (out) out[0] = 1;
}

}  // namespace

TEST_CASE("cuda: __shared__ tree reduction with __syncthreads at odd block sizes") {
  for (int threads : {1, 33, 96, 1000, 1024}) {
    for (int n : {1, 777, 5000}) {
      std::vector<int> x = iota_ints(n, 1001);
      int blocks = (n + threads - 1) / threads;
      DeviceArray<int> dx(x), dout(static_cast<size_t>(blocks));
      ST_LAUNCH(blocks, threads, 0, nullptr, block_sum_kernel)(dx.ptr, n, dout.ptr);
      ST_CUDA_CHECK_LAUNCH();
      std::vector<int> got = dout.get();
      for (int b = 0; b < blocks; ++b) {
        long want = 0;
        for (int i = b * threads; i < std::min(n, (b + 1) * threads); ++i)
          want += x[static_cast<size_t>(i)];
        CAPTURE(threads);
        CAPTURE(n);
        CAPTURE(b);
        CHECK(got[static_cast<size_t>(b)] == want);
      }
    }
  }
}

TEST_CASE("cuda: warp shuffles (down, xor, up, indexed) with widths and partial warps") {
  for (int threads : {32, 48, 80, 16}) {
    const int blocks = 3;
    int n = threads * blocks;
    std::vector<int> x = iota_ints(n, 97);
    DeviceArray<int> dx(x), dout(static_cast<size_t>(6 * n));
    ST_LAUNCH(blocks, threads, 0, nullptr, shuffle_kernel)(dx.ptr, dout.ptr);
    ST_CUDA_CHECK_LAUNCH();
    std::vector<int> got = dout.get();
    for (int i = 0; i < n; ++i) {
      int t = i % threads, warp0 = i - t + (t / 32) * 32;  // global index of the warp's lane 0
      int lanes = std::min(32, threads - (t / 32) * 32);
      int lane = t % 32;
      auto at = [&](int l) { return x[static_cast<size_t>(warp0 + l)]; };
      CAPTURE(threads);
      CAPTURE(i);
      const int* o = &got[static_cast<size_t>(6 * i)];
      if (lane % 16 == 0 && lane + 16 <= lanes) {
        int want = 0;
        for (int l = lane; l < lane + 16; ++l) want += at(l);
        CHECK(o[0] == want);
      }
      if (lane / 8 * 8 + 8 <= lanes) {
        int want = 0;
        for (int l = lane / 8 * 8; l < lane / 8 * 8 + 8; ++l) want += at(l);
        CHECK(o[1] == want);
      }
      int scan = 0;
      for (int l = 0; l <= lane; ++l) scan += at(l);
      CHECK(o[2] == scan);
      if (lane / 8 * 8 + 8 <= lanes) CHECK(o[3] == at(lane / 8 * 8 + (lane + 35) % 8));
      if (lane % 8 + 5 >= 8)
        CHECK(o[4] == at(lane));
      else if (lane + 5 < lanes)
        CHECK(o[4] == at(lane + 5));
      CHECK(o[5] == ((lane & 4) ? at(lane ^ 4) : at(lane)));  // earlier groups are readable
    }
  }
}

TEST_CASE("cuda: float and unsigned shuffles") {
  const int threads = 64, n = 128;
  std::vector<float> xf(n);
  std::vector<unsigned> xu(n);
  for (int i = 0; i < n; ++i) {
    xf[static_cast<size_t>(i)] = 0.25f * static_cast<float>(i % 13);
    xu[static_cast<size_t>(i)] = 4000000000u + static_cast<unsigned>(i);  // sums wrap
  }
  DeviceArray<float> dxf(xf), dof(n);
  DeviceArray<unsigned> dxu(xu), dou(n);
  ST_LAUNCH(n / threads, threads, 0, nullptr, shuffle_types_kernel)
  (dxf.ptr, dxu.ptr, dof.ptr, dou.ptr);
  ST_CUDA_CHECK_LAUNCH();
  std::vector<float> of = dof.get();
  std::vector<unsigned> ou = dou.get();
  for (int w = 0; w < n / 32; ++w) {
    float sf = 0;
    unsigned su = 0;
    for (int l = 0; l < 32; ++l) {
      sf += xf[static_cast<size_t>(w * 32 + l)];
      su += xu[static_cast<size_t>(w * 32 + l)];
    }
    for (int l = 0; l < 32; ++l) {
      CHECK(of[static_cast<size_t>(w * 32 + l)] == sf);  // quarter multiples: exact in any order
      CHECK(ou[static_cast<size_t>(w * 32 + l)] == su);
    }
  }
}

TEST_CASE("cuda: ballot, any, all and activemask on full and partial warps") {
  const int threads = 45, blocks = 2, n = threads * blocks;
  std::vector<int> x = iota_ints(n, 50);
  x[50] = 5000;  // block 1, warp 0: any(x > 1000) true there only
  DeviceArray<int> dx(x), dany(n), dall(n);
  DeviceArray<unsigned> dballot(n), dactive(n);
  ST_LAUNCH(blocks, threads, 0, nullptr, vote_kernel)
  (dx.ptr, dballot.ptr, dany.ptr, dall.ptr, dactive.ptr);
  ST_CUDA_CHECK_LAUNCH();
  std::vector<unsigned> ballot = dballot.get(), active = dactive.get();
  std::vector<int> any = dany.get(), all = dall.get();
  for (int i = 0; i < n; ++i) {
    int t = i % threads, warp0 = i - t + (t / 32) * 32;
    int lanes = std::min(32, threads - (t / 32) * 32);
    unsigned want = 0;
    bool want_any = false;
    for (int l = 0; l < lanes; ++l) {
      if (x[static_cast<size_t>(warp0 + l)] & 1) want |= 1u << l;
      want_any |= x[static_cast<size_t>(warp0 + l)] > 1000;
    }
    CAPTURE(i);
    CHECK(ballot[static_cast<size_t>(i)] == want);
    CHECK(any[static_cast<size_t>(i)] == (want_any ? 1 : 0));
    CHECK(all[static_cast<size_t>(i)] == 1);
    CHECK(active[static_cast<size_t>(i)] == (lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u));
  }
}

TEST_CASE("cuda: __syncthreads_count / _and / _or") {
  std::vector<int> x = iota_ints(100, 40);
  int count = 0;
  for (int v : x) count += v > 0;
  DeviceArray<int> dx(x), dout(3);
  ST_LAUNCH(1, 100, 0, nullptr, sync_variants_kernel)(dx.ptr, dout.ptr);
  ST_CUDA_CHECK_LAUNCH();
  std::vector<int> got = dout.get();
  CHECK(got[0] == count);
  CHECK(got[1] == (count == 100));
  CHECK(got[2] == (count > 0));
}

TEST_CASE("cuda: atomics across blocks") {
  const int n = 3001, threads = 128;
  std::vector<int> x = iota_ints(n, 1999);
  DeviceArray<int> dx(x), hist(16), imax(1), imin(1), last(1);
  DeviceArray<float> fsum(1), fmax_cas(1);
  DeviceArray<double> dsum(1);
  DeviceArray<unsigned long long> usum(1);
  DeviceArray<unsigned> umax(1);
  const int lo = -1000000, hi = 1000000;
  ST_CUDA_CHECK(cudaMemcpy(imax.ptr, &lo, sizeof lo, cudaMemcpyHostToDevice));
  ST_CUDA_CHECK(cudaMemcpy(imin.ptr, &hi, sizeof hi, cudaMemcpyHostToDevice));
  const float neg = -1e30f;
  ST_CUDA_CHECK(cudaMemcpy(fmax_cas.ptr, &neg, sizeof neg, cudaMemcpyHostToDevice));
  ST_LAUNCH((n + threads - 1) / threads, threads, 0, nullptr, atomics_kernel)
  (dx.ptr, n, hist.ptr, fsum.ptr, dsum.ptr, usum.ptr, imax.ptr, imin.ptr, umax.ptr, fmax_cas.ptr,
   last.ptr);
  ST_CUDA_CHECK_LAUNCH();
  std::vector<int> want_hist(16, 0);
  long sum = 0;
  int mx = lo, mn = hi;
  for (int v : x) {
    want_hist[static_cast<size_t>((v % 16 + 16) % 16)]++;
    sum += v;
    mx = std::max(mx, v);
    mn = std::min(mn, v);
  }
  CHECK(hist.get() == want_hist);
  CHECK(fsum.get()[0] == static_cast<float>(sum));  // |partial sums| < 2^24: exact in any order
  CHECK(dsum.get()[0] == static_cast<double>(sum));
  CHECK(usum.get()[0] == static_cast<unsigned long long>(sum + 1000L * n));
  CHECK(imax.get()[0] == mx);
  CHECK(imin.get()[0] == mn);
  CHECK(umax.get()[0] == static_cast<unsigned>(mx + 1000));
  CHECK(fmax_cas.get()[0] == 0.5f * static_cast<float>(mx));
  CHECK(last.get()[0] == 1);
}

TEST_CASE("cuda: dynamic shared memory") {
  for (int threads : {1, 37, 256}) {
    const int blocks = 5, n = threads * blocks;
    std::vector<float> x(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i);
    DeviceArray<float> dx(x), dy(static_cast<size_t>(n));
    DeviceArray<int> aligned(blocks);
    ST_LAUNCH(blocks, threads, threads * sizeof(float), nullptr, reverse_kernel)
    (dx.ptr, dy.ptr, aligned.ptr);
    ST_CUDA_CHECK_LAUNCH();
    std::vector<float> y = dy.get();
    for (int i = 0; i < n; ++i) {
      int b = i / threads, t = i % threads;
      CHECK(y[static_cast<size_t>(i)] == x[static_cast<size_t>(b * threads + threads - 1 - t)]);
    }
    CHECK(aligned.get() == std::vector<int>(blocks, 1));
  }
}

TEST_CASE("cuda: 2-D and 3-D grids and blocks") {
  for (auto [grid, block] : {std::pair<dim3, dim3>{dim3(3, 2, 2), dim3(5, 4, 3)},
                             std::pair<dim3, dim3>{dim3(4, 3), dim3(16, 2)},
                             std::pair<dim3, dim3>{dim3(1), dim3(1, 1, 64)}}) {
    unsigned nb = grid.x * grid.y * grid.z, nt = block.x * block.y * block.z;
    DeviceArray<int> out(6 * nb * nt);
    ST_LAUNCH(grid, block, 0, nullptr, coords_kernel)(out.ptr);
    ST_CUDA_CHECK_LAUNCH();
    std::vector<int> got = out.get();
    size_t k = 0;
    for (unsigned bz = 0; bz < grid.z; ++bz)
      for (unsigned by = 0; by < grid.y; ++by)
        for (unsigned bx = 0; bx < grid.x; ++bx)
          for (unsigned tz = 0; tz < block.z; ++tz)
            for (unsigned ty = 0; ty < block.y; ++ty)
              for (unsigned tx = 0; tx < block.x; ++tx, k += 6) {
                std::vector<int> want{int(bx), int(by), int(bz), int(tx), int(ty), int(tz)};
                CHECK(std::vector<int>(got.begin() + long(k), got.begin() + long(k) + 6) == want);
              }
  }
}

TEST_CASE("cuda: template kernels through ST_LAUNCH; arguments are copied per thread") {
  const int n = 1001;
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) {
    x[static_cast<size_t>(i)] = static_cast<float>(i % 10);
    y[static_cast<size_t>(i)] = 1.0f;
  }
  DeviceArray<float> dx(x), dy(y);
  ST_LAUNCH((n + 4 * 64 - 1) / (4 * 64), 64, 0, nullptr, axpy_kernel<float, 4>)
  (n, 2.0f, dx.ptr, dy.ptr);
  ST_CUDA_CHECK_LAUNCH();
  ST_LAUNCH((n + 63) / 64, 64, 0, nullptr, axpy_kernel<float, 1>)(n, 0.5f, dx.ptr, dy.ptr);
  ST_CUDA_CHECK_LAUNCH();
  std::vector<float> got = dy.get();
  for (int i = 0; i < n; ++i)
    CHECK(got[static_cast<size_t>(i)] == 1.0f + 2.5f * x[static_cast<size_t>(i)]);

  DeviceArray<int> seen(64);
  ST_LAUNCH(1, 64, 0, nullptr, by_value_kernel)(Params{7, 100}, seen.ptr);
  ST_CUDA_CHECK_LAUNCH();
  CHECK(seen.get() == std::vector<int>(64, 7));
}

TEST_CASE("cuda: launch validation goes through cudaGetLastError") {
  (void)cudaGetLastError();
  ST_LAUNCH(1, 2048, 0, nullptr, noop_kernel)(nullptr);
  CHECK(cudaPeekAtLastError() == cudaErrorInvalidConfiguration);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  CHECK(cudaGetLastError() == cudaSuccess);  // not sticky
  ST_LAUNCH(1, dim3(32, 32, 2), 0, nullptr, noop_kernel)(nullptr);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  ST_LAUNCH(dim3(1, 70000), 32, 0, nullptr, noop_kernel)(nullptr);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  ST_LAUNCH(1, 32, 64 * 1024, nullptr, noop_kernel)(nullptr);  // over 48 KiB without opt-in
  CHECK(cudaGetLastError() != cudaSuccess);
  std::string message;
  try {
    ST_LAUNCH(1, 2048, 0, nullptr, noop_kernel)(nullptr);
    ST_CUDA_CHECK_LAUNCH();
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  CHECK(message.find("cudaGetLastError()") != std::string::npos);
  CHECK(message.find("invalid configuration argument") != std::string::npos);
  CHECK(message.find("test_emu.cpp:") != std::string::npos);
  // A good launch afterwards runs normally.
  DeviceArray<int> out(1);
  ST_LAUNCH(1, 1, 0, nullptr, noop_kernel)(out.ptr);
  ST_CUDA_CHECK_LAUNCH();
  CHECK(out.get()[0] == 1);
}

#if defined(ST_CUDA_EMULATION)
// ---- emulator only: what a GPU would hang on, crash on, or leave undefined -------------------
namespace {

__global__ void divergent_sync_kernel(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

// Lane 0 waits for its warp at __syncwarp while the other lanes wait at __syncthreads for it.
__global__ void deadlock_kernel(int* out) {
  if (threadIdx.x == 0)
    __syncwarp();
  else
    __syncthreads();
  out[threadIdx.x] = 1;
}

// Threads that return early do not hold up a barrier (the CUDA rule for exited threads).
__global__ void early_exit_kernel(const int* x, int n, int* out) {
  __shared__ int s[64];
  ST_SHARED_POISON(s);
  int t = static_cast<int>(threadIdx.x);
  if (t >= n) return;
  s[t] = x[t];
  __syncthreads();
  out[t] = s[n - 1 - t];
}

__global__ void throwing_kernel(int* out) {
  __syncthreads();
  if (blockIdx.x == 2 && threadIdx.x == 5) throw std::runtime_error("boom from a kernel");
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = 1;
}

__global__ void poison_kernel(float* out) {
  // 40 threads: warp 1 has lanes 0..7 only, so shfl_down by 8 in it reads lanes that do not exist.
  float v = 1.0f;
  unsigned mask = threadIdx.x < 32 ? 0xffffffffu : 0xffu;
  out[threadIdx.x] = __shfl_down_sync(mask, v, 8);
}

__global__ void bad_mask_kernel(float* out) {
  out[threadIdx.x] = __shfl_sync(0x1u, 1.0f, 0);  // lane 1.. are not in the mask
}

__global__ void read_dynamic_shared_kernel(float* out) {
  ST_DYNAMIC_SHARED(float, buf);
  out[threadIdx.x] = buf[threadIdx.x];  // never written: poisoned
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("emulator: divergent __syncthreads and deadlocks are reported, never hang") {
  DeviceArray<int> out(64);
  std::string e = error_of([&] { ST_LAUNCH(2, 32, 0, nullptr, divergent_sync_kernel)(out.ptr); });
  // The first block to run: (0,0,0) in the forward schedule, another one under reverse/random.
  CHECK(e.find("emulator: divergent __syncthreads in divergent_sync_kernel (block (") == 0);
  CHECK(e.find("test_emu.cpp:") != std::string::npos);
  // A fault is sticky, as on a GPU: every later call fails until the device is reset.
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  CHECK(cudaMemset(out.ptr, 0, 4) == cudaErrorLaunchFailure);
  ST_LAUNCH(1, 32, 0, nullptr, deadlock_kernel)(out.ptr);  // refused, not run
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  CHECK(cudaDeviceReset() == cudaSuccess);
  CHECK(cudaGetLastError() == cudaSuccess);

  e = error_of([&] { ST_LAUNCH(1, 32, 0, nullptr, deadlock_kernel)(out.ptr); });
  CHECK(e.find("emulator: deadlock in deadlock_kernel (block (0,0,0))") == 0);
  CHECK(e.find("31 threads wait at __syncthreads") != std::string::npos);
  CHECK(e.find("__syncwarp") != std::string::npos);
  CHECK(cudaDeviceReset() == cudaSuccess);

  // The emulator is usable after both.
  std::vector<int> x{1, 2, 3, 4, 5};
  DeviceArray<int> dx(x), dy(5);
  ST_LAUNCH(1, 64, 0, nullptr, early_exit_kernel)(dx.ptr, 5, dy.ptr);
  ST_CUDA_CHECK_LAUNCH();
  CHECK(dy.get() == std::vector<int>{5, 4, 3, 2, 1});
}

TEST_CASE("emulator: an exception thrown in a kernel propagates out of the launch") {
  st::emu::ScopedSchedule in_order(st::emu::Schedule{});  // which blocks ran depends on the order
  DeviceArray<int> out(4 * 64);
  std::string e = error_of([&] { ST_LAUNCH(4, 64, 0, nullptr, throwing_kernel)(out.ptr); });
  CHECK(e == "boom from a kernel");
  CHECK(cudaDeviceReset() == cudaSuccess);
  std::vector<int> got = out.get();
  CHECK(got[0] == 1);       // blocks 0 and 1 ran
  CHECK(got[3 * 64] == 0);  // block 3 never started
  e = error_of([&] { ST_LAUNCH(4, 64, 0, nullptr, throwing_kernel)(out.ptr); });
  CHECK(e == "boom from a kernel");  // the next launch starts clean and fails the same way
  CHECK(cudaDeviceReset() == cudaSuccess);
}

TEST_CASE("emulator: undefined values are poisoned, misuse is an error") {
  DeviceArray<float> out(40);
  ST_LAUNCH(1, 40, 0, nullptr, poison_kernel)(out.ptr);
  std::vector<float> got = out.get();
  for (int t = 0; t < 40; ++t) {
    bool defined = t < 32;  // warp 0: lane + 8 or, past lane 31, the own value
    CAPTURE(t);
    CHECK((got[static_cast<size_t>(t)] == got[static_cast<size_t>(t)]) == defined);  // NaN
  }
  std::string e = error_of([&] { ST_LAUNCH(1, 32, 0, nullptr, bad_mask_kernel)(out.ptr); });
  CHECK(e.find("emulator: bad warp mask in bad_mask_kernel") == 0);
  CHECK(cudaDeviceReset() == cudaSuccess);

  ST_LAUNCH(1, 8, 8 * sizeof(float), nullptr, read_dynamic_shared_kernel)(out.ptr);
  CHECK(out.get()[7] != out.get()[7]);

  CHECK_THROWS_WITH_AS(__syncthreads(), "emulator: __syncthreads called outside a kernel",
                       std::logic_error);
}

TEST_CASE("emulator: host/device pointer mix-ups fail like on a GPU") {
  std::vector<float> host(16, 1.0f);
  DeviceArray<float> dev(16);
  float back[16];
  CHECK(cudaMemcpy(dev.ptr, host.data(), 64, cudaMemcpyHostToDevice) == cudaSuccess);
  CHECK(cudaMemcpy(back, host.data(), 64, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
  CHECK(cudaMemcpy(back, dev.ptr, 65, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);  // overrun
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  CHECK(cudaFree(host.data()) == cudaErrorInvalidValue);
  (void)cudaGetLastError();
}

TEST_CASE("emulator: no device unless emulation is on") {
  st::emu::set_enabled(false);
  int count = -7;
  CHECK(cudaGetDeviceCount(&count) == cudaErrorNoDevice);
  CHECK(count == -7);  // unwritten, like the real runtime
  void* p = nullptr;
  CHECK(cudaMalloc(&p, 16) == cudaErrorNoDevice);
  ST_LAUNCH(1, 1, 0, nullptr, noop_kernel)(nullptr);
  CHECK(cudaGetLastError() == cudaErrorNoDevice);
  st::emu::set_enabled(true);
  CHECK(cudaGetDeviceCount(&count) == cudaSuccess);
  CHECK(count == 1);
}

TEST_CASE("emulator: repeated launches reuse the fibers") {
  // 200 launches x 4 blocks x 256 threads, each thread crossing 9 barriers (~0.2 s).
  const int n = 1024;
  std::vector<int> x = iota_ints(n, 11);
  DeviceArray<int> dx(x), dout(4);
  for (int rep = 0; rep < 200; ++rep)
    ST_LAUNCH(4, 256, 0, nullptr, block_sum_kernel)(dx.ptr, n, dout.ptr);
  ST_CUDA_CHECK_LAUNCH();
  long want = std::accumulate(x.begin(), x.begin() + 256, 0L);
  CHECK(dout.get()[0] == want);
}
#endif
