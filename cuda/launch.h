// cuda/launch.h — launch helpers shared by the kernel files (cuda/*.cu), after cuda/compat.h:
// the backend's one stream, the block size and grid of the 1-D grid-stride kernels, the unroll
// pragma that both nvcc and g++ (the emulator build) understand, and the float4 beta epilogue.
#pragma once
#include <cstdint>

#include "cuda/compat.h"
#include "cuda/runtime.h"

// Full unrolling of fixed-trip loops (micro-tiles, shuffle trees); g++ reads its own pragma.
#if defined(__CUDACC__)
#define ST_UNROLL _Pragma("unroll")
#else
#define ST_UNROLL _Pragma("GCC unroll 16")
#endif

// for i in [0, n) over the whole grid, whatever its size.
#define ST_GRID_STRIDE(i, n)                                                              \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

namespace st::cuda::launch {

// *c = out + beta·*c as one float4 store (c 16-byte aligned); beta == 0 does not read *c (it may
// hold NaN).
__device__ __forceinline__ void store4_beta(float* c, float4 out, float beta) {
  if (beta != 0.f) {
    const float4 old = *reinterpret_cast<const float4*>(c);
    out.x += beta * old.x;
    out.y += beta * old.y;
    out.z += beta * old.z;
    out.w += beta * old.w;
  }
  *reinterpret_cast<float4*>(c) = out;
}

inline cudaStream_t current_stream() { return static_cast<cudaStream_t>(st::cuda::stream()); }

constexpr int kThreads = 256;          // block size of the 1-D (elementwise) kernels
constexpr int64_t kMaxBlocks = 4096;   // grid-stride loops cover the rest

// Blocks for n items at per_block items per block: at least 1, at most kMaxBlocks.
inline int blocks_for(int64_t n, int64_t per_block = kThreads) {
  const int64_t b = (n + per_block - 1) / per_block;
  return static_cast<int>(b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b));
}

}  // namespace st::cuda::launch
