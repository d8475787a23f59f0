// cuda/dense.cu — dense GPU kernels: tiled SGEMM, elementwise ops, bias add/grad, dropout,
// fused softmax-cross-entropy, sum, argmax (contracts in cuda/dense.h, mirroring kernels/*.h).
//   sgemm_tiled: C (M, N) = alpha · op(A) · op(B) + beta · C; TILE×TILE block tiles (64, or 32 when
//                64-tiles would leave SMs idle), each thread a 4×4 register micro-tile; op(A) and
//                op(B) are staged k-major in shared memory, so the inner loop reads one float4 of
//                each per k whatever the transposes; the next K-tile is fetched into registers
//                while the current one is multiplied; float4 global loads/stores where aligned.
//                A long K over few output tiles is split over K (chunks fixed by the shape) and
//                the splits added in order by a second kernel: deterministic, no atomics.
//   reductions:  per-thread double partials → warp shuffles → one slot per warp → warp 0; the
//                cross-block step is a second one-block kernel over the per-block partials, so
//                the order is fixed by the sizes (deterministic, no atomics).
//   row kernels: softmax-CE and argmax give each row one warp (8 rows per 256-thread block).
// Reference: kernels/elementwise.cpp, kernels/gemm.cpp. Tests: tests/cuda/test_dense.cpp.
#include "cuda/compat.h"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/dense.h"
#include "cuda/launch.h"
#include "cuda/runtime.h"


namespace st::cuda {
namespace {

using launch::blocks_for;
using launch::current_stream;
using launch::kThreads;
using launch::store4_beta;

constexpr int kWarps = kThreads / 32;   // warps per block (rows per block in the row kernels)
constexpr int kReduceBlocks = 512;      // first-stage blocks of sum(); bounds the partials buffer

// Device scratch from the caching allocator, returned when the wrapper's scope ends. The stream
// is in order, so a later kernel that reuses the memory runs after the one that used it.
struct Scratch {
  void* p;
  size_t bytes;
  explicit Scratch(size_t b) : p(b ? device_alloc(b) : nullptr), bytes(b) {}
  ~Scratch() {
    if (p) device_free(p, bytes);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(p); }
};

// ---- SGEMM ---------------------------------------------------------------------------------
// Two block tiles, TILE × TILE outputs with a 4×4 micro-tile per thread and one float4 of each
// operand per thread per K-step: TILE 64 (256 threads, K-step 16) for large outputs, TILE 32
// (64 threads, K-step 8) when 64-tiles would leave most SMs idle (the batch-sized GEMMs of small
// Linear layers). Operands are staged k-major in shared memory — As[k][m], Bs[k][n] — so the
// inner loop reads one float4 of each per k whatever the transposes.

constexpr int kMicro = 4;    // per-thread micro-tile is kMicro × kMicro
constexpr int kSmemPad = 4;  // keeps rows 16-byte aligned and spreads the transposed stores

template <int TILE>
struct GemmTile {
  static constexpr int threads = (TILE / kMicro) * (TILE / kMicro);
  static constexpr int bk = 4 * threads / TILE;  // one float4 per thread per operand tile
  static_assert(bk % 4 == 0 && bk >= 4, "K-step must hold whole float4 groups");
};

// One float4 of a row-major (rows, cols) matrix starting at (r, c), zero outside it. `vec`: the
// matrix is 16-byte aligned with ld % 4 == 0, so an in-bounds group is one vector load (the flag
// is the same for the whole grid, so the branch never diverges).
__device__ __forceinline__ float4 load4(const float* __restrict__ p, int ld, int rows, int cols,
                                        int r, int c, bool vec) {
  float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
  if (r >= rows) return v;
  const float* src = p + static_cast<int64_t>(r) * ld + c;
  if (vec && c + 3 < cols) return __ldg(reinterpret_cast<const float4*>(src));
  if (c < cols) v.x = __ldg(src);
  if (c + 1 < cols) v.y = __ldg(src + 1);
  if (c + 2 < cols) v.z = __ldg(src + 2);
  if (c + 3 < cols) v.w = __ldg(src + 3);
  return v;
}

// The float4 this thread contributes to a (bk, TILE) k-major tile of an operand whose 64-extent
// (m for A, n for B) starts at e0. K_INNER: the operand is stored (extent, K), so the group runs
// along k (and is stored transposed); otherwise it is stored (K, extent) and the group runs
// along the extent.
template <int TILE, bool K_INNER>
__device__ __forceinline__ float4 fetch_tile(const float* __restrict__ p, int ld, int extent,
                                             int K, int e0, int k0, int tid, bool vec) {
  constexpr int bk = GemmTile<TILE>::bk;
  if (K_INNER) return load4(p, ld, extent, K, e0 + tid / (bk / 4), k0 + (tid % (bk / 4)) * 4, vec);
  return load4(p, ld, K, extent, k0 + tid / (TILE / 4), e0 + (tid % (TILE / 4)) * 4, vec);
}

template <int TILE, bool K_INNER>
__device__ __forceinline__ void store_tile(float (*tile)[TILE + kSmemPad], float4 v, int tid) {
  constexpr int bk = GemmTile<TILE>::bk;
  if (K_INNER) {
    const int e = tid / (bk / 4), k = (tid % (bk / 4)) * 4;
    tile[k][e] = v.x;
    tile[k + 1][e] = v.y;
    tile[k + 2][e] = v.z;
    tile[k + 3][e] = v.w;
  } else {
    *reinterpret_cast<float4*>(&tile[tid / (TILE / 4)][(tid % (TILE / 4)) * 4]) = v;
  }
}

// One SGEMM launch. Split-K: blockIdx.z takes K range [z·k_chunk, (z+1)·k_chunk) and writes its raw
// sums to partial (splits, M, N); splitk_reduce then adds the splits in order and applies
// alpha/beta. Without a split (partial == null) the block applies alpha/beta itself.
struct GemmArgs {
  int M, N, K;
  float alpha, beta;
  const float* A;
  const float* B;
  float* C;
  int lda, ldb, ldc;
  bool vec_a, vec_b, vec_c;  // operand aligned to 16 bytes with ld % 4 == 0
  int k_chunk;               // K per blockIdx.z (K when not split)
  float* partial;            // split-K sums, or null
};

// Block (bx, by, z) computes C[by·TILE .. +TILE, bx·TILE .. +TILE] over its K range. A's tile
// groups run along k when A is stored (M, K) (not transposed); B's when B is stored (N, K)
// (transposed). The next K-tile is fetched into registers while the current one is multiplied.
template <int TILE, bool TRANS_A, bool TRANS_B>
__global__ void sgemm_tiled(GemmArgs g) {
  constexpr int bk = GemmTile<TILE>::bk, lanes_n = TILE / kMicro;
  __shared__ __align__(16) float As[bk][TILE + kSmemPad];
  __shared__ __align__(16) float Bs[bk][TILE + kSmemPad];
  ST_SHARED_POISON(As);
  ST_SHARED_POISON(Bs);
  const float* __restrict__ A = g.A;
  const float* __restrict__ B = g.B;
  const int tid = static_cast<int>(threadIdx.x);
  const int tx = tid % lanes_n, ty = tid / lanes_n;
  const int m0 = static_cast<int>(blockIdx.y) * TILE, n0 = static_cast<int>(blockIdx.x) * TILE;
  const int k_begin = static_cast<int>(blockIdx.z) * g.k_chunk;
  const int k_end = min(g.K, k_begin + g.k_chunk);  // loads treat k ≥ k_end as zeros

  float acc[kMicro][kMicro];
  ST_UNROLL
  for (int i = 0; i < kMicro; ++i)
    ST_UNROLL
    for (int j = 0; j < kMicro; ++j) acc[i][j] = 0.f;

  float4 a_next = fetch_tile<TILE, !TRANS_A>(A, g.lda, g.M, k_end, m0, k_begin, tid, g.vec_a);
  float4 b_next = fetch_tile<TILE, TRANS_B>(B, g.ldb, g.N, k_end, n0, k_begin, tid, g.vec_b);
  for (int k0 = k_begin; k0 < k_end; k0 += bk) {
    store_tile<TILE, !TRANS_A>(As, a_next, tid);
    store_tile<TILE, TRANS_B>(Bs, b_next, tid);
    __syncthreads();
    if (k0 + bk < k_end) {  // the next tile's global loads overlap this tile's FMAs
      a_next = fetch_tile<TILE, !TRANS_A>(A, g.lda, g.M, k_end, m0, k0 + bk, tid, g.vec_a);
      b_next = fetch_tile<TILE, TRANS_B>(B, g.ldb, g.N, k_end, n0, k0 + bk, tid, g.vec_b);
    }
    ST_UNROLL
    for (int kk = 0; kk < bk; ++kk) {
      const float4 a4 = *reinterpret_cast<const float4*>(&As[kk][ty * kMicro]);
      const float4 b4 = *reinterpret_cast<const float4*>(&Bs[kk][tx * kMicro]);
      const float a[kMicro] = {a4.x, a4.y, a4.z, a4.w};
      const float b[kMicro] = {b4.x, b4.y, b4.z, b4.w};
      ST_UNROLL
      for (int i = 0; i < kMicro; ++i)
        ST_UNROLL
        for (int j = 0; j < kMicro; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }

  const int n = n0 + tx * kMicro;
  if (g.partial) {  // split-K: raw sums, (M, N) slice z of the partials
    float* slice = g.partial + static_cast<int64_t>(blockIdx.z) * g.M * g.N;
    ST_UNROLL
    for (int i = 0; i < kMicro; ++i) {
      const int m = m0 + ty * kMicro + i;
      if (m >= g.M) break;
      ST_UNROLL
      for (int j = 0; j < kMicro; ++j)
        if (n + j < g.N) slice[static_cast<int64_t>(m) * g.N + n + j] = acc[i][j];
    }
    return;
  }
  const float alpha = g.alpha, beta = g.beta;
  ST_UNROLL
  for (int i = 0; i < kMicro; ++i) {
    const int m = m0 + ty * kMicro + i;
    if (m >= g.M) break;
    float* c = g.C + static_cast<int64_t>(m) * g.ldc + n;
    if (g.vec_c && n + 3 < g.N) {
      store4_beta(c, make_float4(alpha * acc[i][0], alpha * acc[i][1], alpha * acc[i][2],
                                 alpha * acc[i][3]), beta);
    } else {
      ST_UNROLL
      for (int j = 0; j < kMicro; ++j)
        if (n + j < g.N) c[j] = beta != 0.f ? alpha * acc[i][j] + beta * c[j] : alpha * acc[i][j];
    }
  }
}

// C = alpha · Σ_z partial[z] + beta · C, the splits added in z order (deterministic).
__global__ void splitk_reduce(int M, int N, int splits, const float* __restrict__ partial,
                              float alpha, float beta, float* C, int ldc) {
  const int64_t total = static_cast<int64_t>(M) * N;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    float sum = 0.f;
    for (int z = 0; z < splits; ++z) sum += partial[z * total + i];
    float* c = C + (i / N) * ldc + i % N;
    *c = beta != 0.f ? alpha * sum + beta * *c : alpha * sum;
  }
}

// C = beta · C without reading C when beta == 0 (alpha == 0 or K == 0).
__global__ void scale_matrix(int M, int N, float beta, float* C, int ldc) {
  const int64_t total = static_cast<int64_t>(M) * N;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    float* c = C + (i / N) * ldc + i % N;
    *c = beta != 0.f ? beta * *c : 0.f;
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

int forced_tile = 0;  // detail::force_sgemm_tile; 0: automatic

// Streaming multiprocessors of the current device, asked once (the backend uses one device).
int sm_count() {
  static const int count = [] {
    int device = 0, n = 0;
    ST_CUDA_CHECK(cudaGetDevice(&device));
    ST_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
    return n > 0 ? n : 1;
  }();
  return count;
}

// Split-K: a long K over few output tiles (a conv's weight gradient: (OC, C·KH·KW) summed over
// N·OH·OW) would leave all but a handful of SMs idle. Chosen from the shape alone (not the
// device), so a given shape sums in the same order on every GPU.
constexpr int kSplitMinK = 2048;      // shorter K is never split
constexpr int kSplitChunk = 1024;     // at least this much K per split
constexpr int kSplitTargetBlocks = 128;  // enough blocks to fill a large GPU

template <int TILE, bool TA, bool TB>
void launch_sgemm(cudaStream_t s, const GemmArgs& g, int splits) {
  const dim3 grid((g.N + TILE - 1) / TILE, (g.M + TILE - 1) / TILE, splits);
  ST_LAUNCH(grid, GemmTile<TILE>::threads, 0, s, sgemm_tiled<TILE, TA, TB>)(g);
}

template <int TILE>
void launch_sgemm_tile(bool ta, bool tb, cudaStream_t s, const GemmArgs& g, int splits) {
  if (!ta && !tb)
    launch_sgemm<TILE, false, false>(s, g, splits);
  else if (!ta && tb)
    launch_sgemm<TILE, false, true>(s, g, splits);
  else if (ta && !tb)
    launch_sgemm<TILE, true, false>(s, g, splits);
  else
    launch_sgemm<TILE, true, true>(s, g, splits);
}

// ---- reductions ----------------------------------------------------------------------------

__device__ __forceinline__ double warp_sum(double v) {
  ST_UNROLL
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;  // lane 0 holds the warp's sum
}

// Sum over a kThreads-thread block; the result is valid in thread 0. Call once per kernel (the
// shared slots are not guarded against a second call).
__device__ double block_sum(double v) {
  __shared__ double warp_partial[kWarps];
  ST_SHARED_POISON(warp_partial);
  const int lane = static_cast<int>(threadIdx.x) % 32, warp = static_cast<int>(threadIdx.x) / 32;
  v = warp_sum(v);
  if (lane == 0) warp_partial[warp] = v;
  __syncthreads();
  v = 0.0;
  if (warp == 0) {
    if (lane < kWarps) v = warp_partial[lane];
    v = warp_sum(v);
  }
  return v;
}

// partial[block] = Σ of this block's grid-stride share of x (n).
__global__ void sum_partials(int64_t n, const float* __restrict__ x, double* __restrict__ partial) {
  double acc = 0.0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    acc += x[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// *out = scale · Σ in (count); one block, so the order is fixed.
__global__ void sum_doubles(int count, const double* __restrict__ in, double scale, double* out) {
  double acc = 0.0;
  for (int i = static_cast<int>(threadIdx.x); i < count; i += static_cast<int>(blockDim.x)) acc += in[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) *out = acc * scale;
}

__global__ void store_double(double* p, double v) {
  if (threadIdx.x == 0) *p = v;
}

double copy_back(const double* d_value) {
  double v = 0.0;
  copy_d2h(&v, d_value, sizeof(double));
  return v;
}

// ---- elementwise ---------------------------------------------------------------------------


__global__ void relu_forward_kernel(int64_t n, const float* x, float* y) {
  ST_GRID_STRIDE(i, n) { y[i] = x[i] > 0.f ? x[i] : 0.f; }
}
__global__ void relu_backward_kernel(int64_t n, const float* __restrict__ dy,
                                     const float* __restrict__ y, float* dx) {
  ST_GRID_STRIDE(i, n) { dx[i] = y[i] > 0.f ? dy[i] : 0.f; }
}
__global__ void add_kernel(int64_t n, const float* a, const float* b, float* out) {
  ST_GRID_STRIDE(i, n) { out[i] = a[i] + b[i]; }
}
__global__ void axpy_kernel(int64_t n, float alpha, const float* __restrict__ x, float* y) {
  ST_GRID_STRIDE(i, n) { y[i] += alpha * x[i]; }
}
__global__ void scale_kernel(int64_t n, float alpha, const float* x, float* y) {
  ST_GRID_STRIDE(i, n) { y[i] = alpha * x[i]; }
}
__global__ void fill_kernel(int64_t n, float value, float* y) {
  ST_GRID_STRIDE(i, n) { y[i] = value; }
}
__global__ void bias_add_rows_kernel(int64_t n, int cols, const float* __restrict__ bias, float* y) {
  ST_GRID_STRIDE(i, n) { y[i] += bias[i % cols]; }
}
__global__ void bias_add_channels_kernel(int64_t n, int C, int HW, const float* __restrict__ bias,
                                         float* y) {
  ST_GRID_STRIDE(i, n) { y[i] += bias[(i / HW) % C]; }
}
__global__ void dropout_mask_kernel(int64_t n, float p, uint64_t seed, uint64_t offset,
                                    uint8_t* keep) {
  ST_GRID_STRIDE(i, n) {
    keep[i] = dropout_uniform(seed, offset + static_cast<uint64_t>(i)) >= p ? 1 : 0;
  }
}
__global__ void dropout_apply_kernel(int64_t n, const float* x, const uint8_t* __restrict__ keep,
                                     float scale, float* y) {
  ST_GRID_STRIDE(i, n) { y[i] = keep[i] ? x[i] * scale : 0.f; }
}

// db[c] (+)= Σ_r dy[r, c]: a block owns 32 columns; its 8 warps take every 8th row, so each
// warp reads 32 consecutive floats of a row (coalesced); the 8 partial sums meet in shared memory
// and are added in warp order.
__global__ void bias_grad_rows_kernel(int rows, int cols, const float* __restrict__ dy, float* db,
                                      bool accumulate) {
  __shared__ double partial[kWarps][33];
  ST_SHARED_POISON(partial);
  const int lane = static_cast<int>(threadIdx.x) % 32, warp = static_cast<int>(threadIdx.x) / 32;
  const int c = static_cast<int>(blockIdx.x) * 32 + lane;
  double acc = 0.0;
  if (c < cols)
    for (int r = warp; r < rows; r += kWarps) acc += dy[static_cast<int64_t>(r) * cols + c];
  partial[warp][lane] = acc;
  __syncthreads();
  if (warp == 0 && c < cols) {
    double total = 0.0;
    for (int w = 0; w < kWarps; ++w) total += partial[w][lane];
    db[c] = static_cast<float>(accumulate ? db[c] + total : total);
  }
}

// db[c] (+)= Σ_{n,hw} dy[n, c, hw]: one block per channel, threads striding over its N·HW values.
__global__ void bias_grad_channels_kernel(int N, int C, int HW, const float* __restrict__ dy,
                                          float* db, bool accumulate) {
  const int c = static_cast<int>(blockIdx.x);
  const int64_t count = static_cast<int64_t>(N) * HW;
  double acc = 0.0;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
    const int64_t n = j / HW, i = j - n * HW;
    acc += dy[(n * C + c) * HW + i];
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) db[c] = static_cast<float>(accumulate ? db[c] + acc : acc);
}

// ---- row kernels: one warp per row ---------------------------------------------------------

__device__ __forceinline__ float warp_allmax(float v) {
  ST_UNROLL
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ double warp_allsum(double v) {
  ST_UNROLL
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// probs = softmax(logits) per row; row_loss[b] = log Σ exp(z − max) − (z_label − max), the CPU's
// formula (never the log of a tiny probability). exp(z − max) is stored first and rescaled in a
// second pass over the same (cache-resident) row by the same thread.
__global__ void softmax_xent_rows(int B, int C, const float* __restrict__ logits,
                                  const int32_t* __restrict__ labels, float* __restrict__ probs,
                                  double* __restrict__ row_loss) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int b = static_cast<int>(blockIdx.x) * kWarps + static_cast<int>(threadIdx.x) / 32;
  if (b >= B) return;  // whole warps leave together, so the shuffles below stay full-warp
  const float* z = logits + static_cast<int64_t>(b) * C;
  float* p = probs + static_cast<int64_t>(b) * C;
  float zmax = -INFINITY;
  for (int c = lane; c < C; c += 32) zmax = fmaxf(zmax, z[c]);
  zmax = warp_allmax(zmax);
  double denom = 0.0;
  for (int c = lane; c < C; c += 32) {
    const float e = expf(z[c] - zmax);
    p[c] = e;
    denom += e;
  }
  denom = warp_allsum(denom);
  const float inv = static_cast<float>(1.0 / denom);
  for (int c = lane; c < C; c += 32) p[c] *= inv;
  if (lane == 0) {
    const int32_t label = labels[b];
    row_loss[b] = (label >= 0 && label < C)
                      ? log(denom) - (static_cast<double>(z[label]) - zmax)
                      : static_cast<double>(NAN);
  }
}

__global__ void softmax_xent_backward_kernel(int B, int C, const float* __restrict__ probs,
                                             const int32_t* __restrict__ labels, float scale,
                                             float* dlogits) {
  ST_GRID_STRIDE(i, static_cast<int64_t>(B) * C) {
    const int64_t b = i / C;
    const int c = static_cast<int>(i - b * C);
    dlogits[i] = c == labels[b] ? (probs[i] - 1.0f) * scale : probs[i] * scale;
  }
}

// The CPU scans a row left to right with a strict `>`: the first maximum wins, a NaN in column 0
// wins (nothing compares greater), a NaN elsewhere never does. As an order over (value, column)
// that is: column-0 NaN ranks +inf, other NaNs −inf, equal ranks go to the smaller column —
// associative, so lanes can combine their candidates in any tree.
__device__ __forceinline__ float argmax_rank(float v, int c) {
  return isnan(v) ? (c == 0 ? INFINITY : -INFINITY) : v;
}
__device__ __forceinline__ bool argmax_better(float v, int c, float best_v, int best_c) {
  return v > best_v || (v == best_v && c < best_c);
}

__global__ void argmax_rows_kernel(int rows, int cols, const float* __restrict__ x, int32_t* out) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int r = static_cast<int>(blockIdx.x) * kWarps + static_cast<int>(threadIdx.x) / 32;
  if (r >= rows) return;
  const float* row = x + static_cast<int64_t>(r) * cols;
  float best_v = -INFINITY;
  int best_c = cols;  // "none yet": loses every tie
  for (int c = lane; c < cols; c += 32) {
    const float v = argmax_rank(row[c], c);
    if (argmax_better(v, c, best_v, best_c)) {
      best_v = v;
      best_c = c;
    }
  }
  ST_UNROLL
  for (int o = 16; o > 0; o >>= 1) {
    const float v = __shfl_down_sync(0xffffffffu, best_v, o);
    const int c = __shfl_down_sync(0xffffffffu, best_c, o);
    if (argmax_better(v, c, best_v, best_c)) {
      best_v = v;
      best_c = c;
    }
  }
  if (lane == 0) out[r] = best_c < cols ? best_c : 0;  // all −inf: column 0, as on the CPU
}

}  // namespace

// ---- host wrappers -------------------------------------------------------------------------

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  cudaStream_t s = current_stream();
  if (K <= 0 || alpha == 0.f) {
    if (beta == 1.f) return;
    ST_LAUNCH(blocks_for(static_cast<int64_t>(M) * N), kThreads, 0, s, scale_matrix)(M, N, beta, C, ldc);
    ST_CUDA_CHECK_LAUNCH();
    return;
  }
  GemmArgs g{M, N, K, alpha, beta, A, B, C, lda, ldb, ldc,
             aligned16(A) && lda % 4 == 0, aligned16(B) && ldb % 4 == 0,
             aligned16(C) && ldc % 4 == 0, K, nullptr};
  const int64_t blocks64 = static_cast<int64_t>((M + 63) / 64) * ((N + 63) / 64);
  int splits = 1;
  if (K >= kSplitMinK && blocks64 < kSplitTargetBlocks) {
    const int64_t want = kSplitTargetBlocks / blocks64, most = (K + kSplitChunk - 1) / kSplitChunk;
    const int64_t n = want < most ? want : most;
    if (n >= 2) {
      g.k_chunk = static_cast<int>(((K + n - 1) / n + 15) / 16 * 16);  // whole K-steps of both tiles
      splits = (K + g.k_chunk - 1) / g.k_chunk;
    }
  }
  Scratch partial(splits > 1 ? sizeof(float) * splits * static_cast<size_t>(M) * N : 0);
  g.partial = partial.as<float>();
  // 64-tiles unless they would leave more than half the SMs without a block.
  const int tile = forced_tile ? forced_tile : (2 * blocks64 * splits < sm_count() ? 32 : 64);
  if (tile == 32)
    launch_sgemm_tile<32>(trans_a, trans_b, s, g, splits);
  else
    launch_sgemm_tile<64>(trans_a, trans_b, s, g, splits);
  ST_CUDA_CHECK_LAUNCH();
  if (splits > 1) {
    ST_LAUNCH(blocks_for(static_cast<int64_t>(M) * N), kThreads, 0, s, splitk_reduce)(
        M, N, splits, g.partial, alpha, beta, C, ldc);
  }
  ST_CUDA_CHECK_LAUNCH();
}

#define ST_ELEMENTWISE_LAUNCH(n, kernel, ...)                                       \
  do {                                                                              \
    if ((n) <= 0) return;                                                           \
    ST_LAUNCH(blocks_for(n), kThreads, 0, current_stream(), kernel)(__VA_ARGS__);   \
    ST_CUDA_CHECK_LAUNCH();                                                         \
  } while (0)

void relu_forward(int64_t n, const float* x, float* y) {
  ST_ELEMENTWISE_LAUNCH(n, relu_forward_kernel, n, x, y);
}
void relu_backward(int64_t n, const float* dy, const float* y, float* dx) {
  ST_ELEMENTWISE_LAUNCH(n, relu_backward_kernel, n, dy, y, dx);
}
void add(int64_t n, const float* a, const float* b, float* out) {
  ST_ELEMENTWISE_LAUNCH(n, add_kernel, n, a, b, out);
}
void axpy(int64_t n, float alpha, const float* x, float* y) {
  ST_ELEMENTWISE_LAUNCH(n, axpy_kernel, n, alpha, x, y);
}
void scale(int64_t n, float alpha, const float* x, float* y) {
  ST_ELEMENTWISE_LAUNCH(n, scale_kernel, n, alpha, x, y);
}
void fill(int64_t n, float value, float* y) { ST_ELEMENTWISE_LAUNCH(n, fill_kernel, n, value, y); }

void bias_add_rows(int rows, int cols, const float* bias, float* y) {
  const int64_t n = static_cast<int64_t>(rows) * cols;
  ST_ELEMENTWISE_LAUNCH(n, bias_add_rows_kernel, n, cols, bias, y);
}
void bias_add_channels(int N, int C, int HW, const float* bias, float* y) {
  const int64_t n = static_cast<int64_t>(N) * C * HW;
  ST_ELEMENTWISE_LAUNCH(n, bias_add_channels_kernel, n, C, HW, bias, y);
}

void bias_grad_rows(int rows, int cols, const float* dy, float* db, bool accumulate) {
  if (cols <= 0) return;  // rows == 0 still writes db = 0 (or leaves it, accumulating)
  ST_LAUNCH((cols + 31) / 32, kThreads, 0, current_stream(), bias_grad_rows_kernel)(
      rows, cols, dy, db, accumulate);
  ST_CUDA_CHECK_LAUNCH();
}
void bias_grad_channels(int N, int C, int HW, const float* dy, float* db, bool accumulate) {
  if (C <= 0) return;
  ST_LAUNCH(C, kThreads, 0, current_stream(), bias_grad_channels_kernel)(N, C, HW, dy, db, accumulate);
  ST_CUDA_CHECK_LAUNCH();
}

void dropout_mask(int64_t n, float p, uint64_t seed, uint64_t offset, uint8_t* keep) {
  ST_ELEMENTWISE_LAUNCH(n, dropout_mask_kernel, n, p, seed, offset, keep);
}
void dropout_apply(int64_t n, const float* x, const uint8_t* keep, float scale, float* y) {
  ST_ELEMENTWISE_LAUNCH(n, dropout_apply_kernel, n, x, keep, scale, y);
}

void softmax_xent_forward_to_device(int B, int C, const float* logits, const int32_t* labels,
                                    float* probs, double* loss) {
  cudaStream_t s = current_stream();
  if (B <= 0) {  // on the stream, like the kernels that would otherwise write it
    ST_LAUNCH(1, 32, 0, s, store_double)(loss, 0.0);
    ST_CUDA_CHECK_LAUNCH();
    return;
  }
  Scratch row_loss(sizeof(double) * static_cast<size_t>(B));
  ST_LAUNCH((B + kWarps - 1) / kWarps, kThreads, 0, s, softmax_xent_rows)(
      B, C, logits, labels, probs, row_loss.as<double>());
  ST_CUDA_CHECK_LAUNCH();
  ST_LAUNCH(1, kThreads, 0, s, sum_doubles)(B, row_loss.as<double>(), 1.0 / B, loss);
  ST_CUDA_CHECK_LAUNCH();
}

double softmax_xent_forward(int B, int C, const float* logits, const int32_t* labels, float* probs) {
  if (B <= 0) return 0.0;
  Scratch loss(sizeof(double));
  softmax_xent_forward_to_device(B, C, logits, labels, probs, loss.as<double>());
  return copy_back(loss.as<double>());
}

void softmax_xent_backward(int B, int C, const float* probs, const int32_t* labels, float dloss,
                           float* dlogits) {
  const int64_t n = static_cast<int64_t>(B) * C;
  const float scale = dloss / static_cast<float>(B);
  ST_ELEMENTWISE_LAUNCH(n, softmax_xent_backward_kernel, B, C, probs, labels, scale, dlogits);
}

void sum_to_device(int64_t n, const float* x, double* out) {
  cudaStream_t s = current_stream();
  if (n <= 0) {
    ST_LAUNCH(1, 32, 0, s, store_double)(out, 0.0);
    ST_CUDA_CHECK_LAUNCH();
    return;
  }
  const int64_t per_block = kThreads * 4;  // a few elements per thread before the tree
  int blocks = static_cast<int>((n + per_block - 1) / per_block);
  if (blocks > kReduceBlocks) blocks = kReduceBlocks;
  Scratch partial(sizeof(double) * static_cast<size_t>(blocks));
  ST_LAUNCH(blocks, kThreads, 0, s, sum_partials)(n, x, partial.as<double>());
  ST_CUDA_CHECK_LAUNCH();
  ST_LAUNCH(1, kThreads, 0, s, sum_doubles)(blocks, partial.as<double>(), 1.0, out);
  ST_CUDA_CHECK_LAUNCH();
}

double sum(int64_t n, const float* x) {
  if (n <= 0) return 0.0;
  Scratch total(sizeof(double));
  sum_to_device(n, x, total.as<double>());
  return copy_back(total.as<double>());
}

void argmax_rows(int rows, int cols, const float* x, int32_t* out) {
  if (rows <= 0) return;
  ST_LAUNCH((rows + kWarps - 1) / kWarps, kThreads, 0, current_stream(), argmax_rows_kernel)(
      rows, cols, x, out);
  ST_CUDA_CHECK_LAUNCH();
}

namespace detail {
void force_sgemm_tile(int tile) {
  if (tile != 0 && tile != 32 && tile != 64)
    throw std::invalid_argument("force_sgemm_tile: tile must be 0, 32 or 64, got " +
                                std::to_string(tile));
  forced_tile = tile;
}
}  // namespace detail

}  // namespace st::cuda

#undef ST_ELEMENTWISE_LAUNCH
