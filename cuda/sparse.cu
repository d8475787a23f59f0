// cuda/sparse.cu — CSR kernels for sparse layers on the GPU (shapes and contracts: cuda/sparse.h).
// Sputnik-style (Gale et al., "Sparse GPU Kernels for Deep Learning"): rows are handed out in the
// CSR's row_order (longest first), so the rows sharing a warp have about the same length and the
// longest ones start first; each row gets a sub-warp of S = 1..32 lanes (S a power of two, chosen
// per call from the shape), and nothing is summed with atomics.
//   csr_spmm (also csr_spmm_t on the transposed copy): C (M, N) = A · B, B and C row-major.
//               A block = kThreads/S rows × one tile of S·VEC columns; S from N. Each row's column
//               indices and values are staged in shared memory 8–32 at a time, then every lane
//               walks them, reading B's row slices with float4 loads (VEC = 4 when N % 4 == 0 and
//               B, C are 16-byte aligned), so a warp reads whole 128/512-byte lines of B.
//   csr_spmm_xwt / csr_spmm_dyw ("row-dot"): y (B, OUT) = x (B, IN) · Wᵀ. In the batch-major
//               layout a W row meets a *column* of xᵀ, so lanes split the row's nonzeros instead
//               (consecutive nonzeros → nearby columns of one x row → coalesced), each lane keeping
//               TB batch rows of partial sums; S from the mean row length. The S partial vectors
//               are combined by a transpose-add tree of shuffles (TB·(S−1)/S shuffles per lane
//               instead of TB·log2 S), after which lane l owns batch rows [l·TB/S, (l+1)·TB/S).
//               No transposed copies of x or y go through memory.
//   csr_sddmm: vals[k] (+)= X[row(k), :] · Y[col(k), :]. One sub-warp per row (S from N, float4
//               when possible), S nonzeros at a time: each lane accumulates its slice of N for all S
//               dot products, then the same transpose-add tree leaves dot product l in lane l.
//               The grid also splits rows into chunks of 4·S nonzeros, and, when that still gives
//               few blocks (conv layers: a few rows, N = batch·pixels), N into ranges whose partial
//               dot products go to a workspace that a second kernel sums in range order
//               (split-K without atomics).
//   csr_sddmm_dyx: dw[k] (+)= Σ_b dy[b, row(k)] · x[b, col(k)]: the reduction runs over the batch,
//               a strided dimension here, so each lane owns 4 nonzeros of a row chunk and loops over
//               the batch (dy[b, row] is one broadcast load per sub-warp); no reduction needed.
//   csr_transpose_values: one thread per nonzero (grid-stride), gathering through perm.
// Every kernel's warp-level operations (__syncwarp, shuffles) are reached by all 32 lanes the same
// number of times: loop bounds that differ per row use the warp's maximum. Rows past the end, the
// tail of a row, and columns past N do their share of the shuffles and write nothing.
// Tests: tests/cuda/test_sparse.cpp (every variant against the CPU kernels, under the emulator).
#include "cuda/compat.h"

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/launch.h"
#include "cuda/runtime.h"
#include "cuda/sparse.h"


namespace st::cuda {
namespace {

constexpr int kThreads = 128;         // threads per block of the row kernels
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kRowDotUnroll = 4;      // nonzeros per lane per pass in the row-dot kernels
constexpr int kSddmmGroups = 4;       // groups of S nonzeros per row per block in csr_sddmm
constexpr int64_t kSddmmMinBlocks = 512;  // below this many blocks csr_sddmm also splits N ...
constexpr int64_t kSddmmMinSlabs = 8;     // ... into ranges of at least this many S·VEC slabs

int g_forced_lanes = 0;
int g_forced_sddmm_ranges = 0;

using launch::current_stream;
using launch::store4_beta;

// ---- device helpers ------------------------------------------------------------------------

__device__ inline int warp_lane() { return static_cast<int>(threadIdx.x) & 31; }

__device__ inline int warp_max(int v) {
  const int lane = warp_lane();
  ST_UNROLL
  for (int off = 16; off > 0; off /= 2) v = max(v, __shfl_sync(kFullMask, v, lane ^ off));
  return v;
}

// Lanes [0, S) of a sub-warp each hold TB partial sums; afterwards lane l holds, in v[0, TB/S),
// the complete sums of entries l·TB/S + j. Each step keeps the half of the entries chosen by one
// bit of the lane index and adds the partner's copy of it (partner = lane ^ OFF, same sub-warp).
template <int S, int TB, int OFF>
struct TransposeReduce {
  static_assert(TB >= S, "each lane must end with at least one sum");
  __device__ static void run(float (&v)[TB], int lane, int wlane) {
    constexpr int kHalf = TB * OFF / S;
    const bool upper = (lane & OFF) != 0;
    ST_UNROLL
    for (int j = 0; j < kHalf; ++j) {
      const float send = upper ? v[j] : v[j + kHalf];
      const float keep = upper ? v[j + kHalf] : v[j];
      v[j] = keep + __shfl_sync(kFullMask, send, wlane ^ OFF);
    }
    TransposeReduce<S, TB, OFF / 2>::run(v, lane, wlane);
  }
};
template <int S, int TB>
struct TransposeReduce<S, TB, 0> {
  __device__ static void run(float (&)[TB], int, int) {}
};

template <int S, int TB>
__device__ inline void transpose_reduce(float (&v)[TB], int lane) {
  TransposeReduce<S, TB, S / 2>::run(v, lane, warp_lane());
}

// The row of the CSR that sub-warp `slot` of this block works on (row_order[i], i = its rank).
struct RowRef {
  bool valid;
  int row, start, len;
};

__device__ inline RowRef row_at(int i, int rows, const int32_t* row_ptr, const int32_t* row_order) {
  RowRef r{false, 0, 0, 0};
  if (i < rows) {
    r.valid = true;
    r.row = __ldg(row_order + i);
    r.start = __ldg(row_ptr + r.row);
    r.len = __ldg(row_ptr + r.row + 1) - r.start;
  }
  return r;
}

// ---- csr_spmm ------------------------------------------------------------------------------

// Nonzeros of each row staged in shared memory per pass: enough to amortize the __syncwarp, small
// enough that a block of 128 one-lane rows stays at 8 KiB.
template <int S>
constexpr int kSpmmStage = S >= 8 ? 32 : 8;

// C (rows, N) = A · B (cols, N) + beta·C. Block = kThreads/S rows of row_order × S·VEC columns.
template <int S, int VEC>
__global__ void csr_spmm_kernel(int rows, int N, int row_blocks, const int32_t* __restrict__ row_ptr,
                                const int32_t* __restrict__ col_idx,
                                const float* __restrict__ values,
                                const int32_t* __restrict__ row_order, const float* __restrict__ B,
                                float* __restrict__ C, float beta) {
  constexpr int R = kThreads / S, CH = kSpmmStage<S>;
  __shared__ int32_t s_col[R][CH];
  __shared__ float s_val[R][CH];
  ST_SHARED_POISON(s_col);
  ST_SHARED_POISON(s_val);
  const int slot = static_cast<int>(threadIdx.x) / S, lane = static_cast<int>(threadIdx.x) % S;
  const int block_row = static_cast<int>(blockIdx.x) % row_blocks;
  const int tile = static_cast<int>(blockIdx.x) / row_blocks;
  const RowRef row = row_at(block_row * R + slot, rows, row_ptr, row_order);
  const int n = (tile * S + lane) * VEC;
  const int max_len = warp_max(row.len);

  float acc[VEC];
  ST_UNROLL
  for (int e = 0; e < VEC; ++e) acc[e] = 0.0f;
  for (int k0 = 0; k0 < max_len; k0 += CH) {
    const int cnt = min(CH, row.len - k0);  // ≤ 0 once this row is done
    for (int q = lane; q < cnt; q += S) {
      s_col[slot][q] = __ldg(col_idx + row.start + k0 + q);
      s_val[slot][q] = __ldg(values + row.start + k0 + q);
    }
    __syncwarp();
    if (n < N) {
      for (int j = 0; j < cnt; ++j) {
        const float a = s_val[slot][j];
        const float* b = B + static_cast<size_t>(s_col[slot][j]) * N + n;
        if constexpr (VEC == 4) {
          const float4 bv = __ldg(reinterpret_cast<const float4*>(b));
          acc[0] += a * bv.x;
          acc[1] += a * bv.y;
          acc[2] += a * bv.z;
          acc[3] += a * bv.w;
        } else {
          acc[0] += a * __ldg(b);
        }
      }
    }
    __syncwarp();  // the next pass overwrites what this one read
  }
  if (!row.valid || n >= N) return;
  float* c = C + static_cast<size_t>(row.row) * N + n;
  if constexpr (VEC == 4) {
    store4_beta(c, make_float4(acc[0], acc[1], acc[2], acc[3]), beta);
  } else {
    c[0] = beta == 0.0f ? acc[0] : acc[0] + beta * c[0];
  }
}

// ---- row-dot: y (batch, rows) = x (batch, K) · Aᵀ --------------------------------------------

// Batch rows per block of the row-dot kernel (≥ S so that every lane ends with whole sums).
template <int S>
constexpr int kRowDotBatchTile = S > 8 ? S : 8;

template <int S>
__global__ void csr_rowdot_kernel(int rows, int K, int batch, int row_blocks,
                                  const int32_t* __restrict__ row_ptr,
                                  const int32_t* __restrict__ col_idx,
                                  const float* __restrict__ values,
                                  const int32_t* __restrict__ row_order,
                                  const float* __restrict__ x, float* __restrict__ y, float beta) {
  constexpr int R = kThreads / S, TB = kRowDotBatchTile<S>, U = kRowDotUnroll;
  const int slot = static_cast<int>(threadIdx.x) / S, lane = static_cast<int>(threadIdx.x) % S;
  const int block_row = static_cast<int>(blockIdx.x) % row_blocks;
  const int b0 = static_cast<int>(blockIdx.x) / row_blocks * TB;
  const RowRef row = row_at(block_row * R + slot, rows, row_ptr, row_order);
  // Batch rows past the end read the last valid one (cached) and are never written.
  const int last = min(TB, batch - b0) - 1;
  const float* xb = x + static_cast<size_t>(b0) * K;

  float acc[TB];
  ST_UNROLL
  for (int t = 0; t < TB; ++t) acc[t] = 0.0f;
  for (int k0 = 0; k0 < row.len; k0 += S * U) {
    int col[U];
    float val[U];
    ST_UNROLL
    for (int u = 0; u < U; ++u) {
      const int q = k0 + u * S + lane;
      const bool in = q < row.len;
      col[u] = in ? __ldg(col_idx + row.start + q) : -1;
      val[u] = in ? __ldg(values + row.start + q) : 0.0f;
    }
    ST_UNROLL
    for (int u = 0; u < U; ++u) {
      if (col[u] < 0) continue;  // skipped, not multiplied by 0: x may hold inf
      ST_UNROLL
      for (int t = 0; t < TB; ++t)
        acc[t] += val[u] * __ldg(xb + static_cast<size_t>(min(t, last)) * K + col[u]);
    }
  }
  transpose_reduce<S, TB>(acc, lane);
  if (!row.valid) return;
  constexpr int kPerLane = TB / S;
  ST_UNROLL
  for (int j = 0; j < kPerLane; ++j) {
    const int t = lane * kPerLane + j;
    if (t > last) break;
    float* out = y + static_cast<size_t>(b0 + t) * rows + row.row;
    *out = beta == 0.0f ? acc[j] : acc[j] + beta * *out;
  }
}

// ---- csr_sddmm: vals (+)= X (M, N) · Y (K, N)ᵀ at the pattern ---------------------------------

// Block = (row block, chunk of CH nonzeros per row, range of N). With one range the sums go to
// `out`; with several, range s writes its partial sums to partial[s·nnz + k] (summed afterwards).
template <int S, int VEC>
__global__ void csr_sddmm_kernel(int rows, int N, int row_blocks, int chunks, int range_len,
                                 const int32_t* __restrict__ row_ptr,
                                 const int32_t* __restrict__ col_idx,
                                 const int32_t* __restrict__ row_order,
                                 const float* __restrict__ X, const float* __restrict__ Y,
                                 float* __restrict__ out, bool accumulate,
                                 float* __restrict__ partial, int64_t nnz) {
  constexpr int R = kThreads / S, G = kSddmmGroups, CH = S * G;
  __shared__ int32_t s_col[R][CH];
  ST_SHARED_POISON(s_col);
  const int slot = static_cast<int>(threadIdx.x) / S, lane = static_cast<int>(threadIdx.x) % S;
  const int block_row = static_cast<int>(blockIdx.x) % row_blocks;
  const int rest = static_cast<int>(blockIdx.x) / row_blocks;
  const int k0 = rest % chunks * CH;
  const int range = rest / chunks;
  const int n_begin = range * range_len, n_end = min(N, n_begin + range_len);
  const RowRef row = row_at(block_row * R + slot, rows, row_ptr, row_order);
  const int max_len = warp_max(row.len);
  if (k0 >= max_len) return;  // the whole warp: no row of it reaches this chunk
  const int cnt = min(CH, row.len - k0);
  for (int q = lane; q < cnt; q += S) s_col[slot][q] = __ldg(col_idx + row.start + k0 + q);
  __syncwarp();

  const float* xr = X + static_cast<size_t>(row.row) * N;
  for (int g = 0; g < G && k0 + g * S < max_len; ++g) {
    float acc[S];
    ST_UNROLL
    for (int t = 0; t < S; ++t) acc[t] = 0.0f;
    for (int n = n_begin + lane * VEC; n < n_end; n += S * VEC) {
      if constexpr (VEC == 4) {
        const float4 xv = __ldg(reinterpret_cast<const float4*>(xr + n));
        ST_UNROLL
        for (int t = 0; t < S; ++t) {
          if (g * S + t >= cnt) break;
          const float4 yv = __ldg(reinterpret_cast<const float4*>(
              Y + static_cast<size_t>(s_col[slot][g * S + t]) * N + n));
          acc[t] += xv.x * yv.x + xv.y * yv.y + xv.z * yv.z + xv.w * yv.w;
        }
      } else {
        const float xv = __ldg(xr + n);
        ST_UNROLL
        for (int t = 0; t < S; ++t) {
          if (g * S + t >= cnt) break;
          acc[t] += xv * __ldg(Y + static_cast<size_t>(s_col[slot][g * S + t]) * N + n);
        }
      }
    }
    transpose_reduce<S, S>(acc, lane);
    const int q = g * S + lane;
    if (q < cnt) {
      const int64_t k = row.start + k0 + q;
      if (partial) {
        partial[range * nnz + k] = acc[0];
      } else {
        out[k] = accumulate ? out[k] + acc[0] : acc[0];
      }
    }
  }
}

// ---- csr_sddmm_dyx: dw (+)= (dyᵀ · x) at W's nonzeros ----------------------------------------

template <int S>
__global__ void csr_sddmm_dyx_kernel(int rows, int K, int batch, int row_blocks,
                                     const int32_t* __restrict__ row_ptr,
                                     const int32_t* __restrict__ col_idx,
                                     const int32_t* __restrict__ row_order,
                                     const float* __restrict__ dy, const float* __restrict__ x,
                                     float* __restrict__ out, bool accumulate) {
  constexpr int R = kThreads / S, U = kRowDotUnroll;
  const int slot = static_cast<int>(threadIdx.x) / S, lane = static_cast<int>(threadIdx.x) % S;
  const int block_row = static_cast<int>(blockIdx.x) % row_blocks;
  const int q0 = static_cast<int>(blockIdx.x) / row_blocks * (S * U) + lane;
  const RowRef row = row_at(block_row * R + slot, rows, row_ptr, row_order);
  if (q0 >= row.len) return;  // no warp-level operations below: lanes may leave on their own
  int col[U];
  ST_UNROLL
  for (int u = 0; u < U; ++u) {
    const int q = q0 + u * S;
    // Past the row's end: read a valid column (the first) and discard the sum.
    col[u] = __ldg(col_idx + row.start + (q < row.len ? q : q0));
  }
  float acc[U];
  ST_UNROLL
  for (int u = 0; u < U; ++u) acc[u] = 0.0f;
  const float* d = dy + row.row;
  for (int b = 0; b < batch; ++b) {
    const float dv = __ldg(d + static_cast<size_t>(b) * rows);
    const float* xr = x + static_cast<size_t>(b) * K;
    ST_UNROLL
    for (int u = 0; u < U; ++u) acc[u] += dv * __ldg(xr + col[u]);
  }
  ST_UNROLL
  for (int u = 0; u < U; ++u) {
    const int q = q0 + u * S;
    if (q >= row.len) break;
    float* o = out + row.start + q;
    *o = accumulate ? *o + acc[u] : acc[u];
  }
}

// ---- elementwise at the nonzeros -------------------------------------------------------------

__device__ inline int64_t first_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

__global__ void gather_i32_kernel(int64_t n, const int32_t* __restrict__ index,
                                  const float* __restrict__ src, float* __restrict__ dst) {
  for (int64_t k = first_index(); k < n; k += grid_stride()) dst[k] = __ldg(src + __ldg(index + k));
}

// out[k] (+)= Σ_s partial[s·nnz + k], the ranges in order (deterministic).
__global__ void sum_ranges_kernel(int64_t nnz, int ranges, const float* __restrict__ partial,
                                  float* __restrict__ out, bool accumulate) {
  for (int64_t k = first_index(); k < nnz; k += grid_stride()) {
    float sum = 0.0f;
    for (int s = 0; s < ranges; ++s) sum += partial[s * nnz + k];
    out[k] = accumulate ? out[k] + sum : sum;
  }
}

// ---- host-side dispatch ----------------------------------------------------------------------

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int to_grid(int64_t blocks, const char* what) {
  if (blocks > INT_MAX)
    throw std::runtime_error(std::string(what) + ": grid of " + std::to_string(blocks) +
                             " blocks exceeds the launch limit");
  return static_cast<int>(blocks);
}


// Smallest power of two ≥ x, in [1, 32].
int pow2_lanes(int64_t x) {
  int s = 1;
  while (s < 32 && s < x) s *= 2;
  return s;
}

// Lanes per row when lanes split N (csr_spmm, csr_sddmm): enough to cover N in one pass.
int lanes_for_width(int64_t vectors) {
  return g_forced_lanes ? g_forced_lanes : pow2_lanes(vectors);
}

// Lanes per row when lanes split a row's nonzeros: about kRowDotUnroll nonzeros per lane.
int lanes_for_rows(const DeviceCsr& a) {
  if (g_forced_lanes) return g_forced_lanes;
  const int64_t mean = a.rows ? ceil_div(a.nnz, a.rows) : 0;
  return pow2_lanes(ceil_div(mean, kRowDotUnroll));
}

template <typename F>
void with_lanes(int lanes, F&& f) {
  switch (lanes) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    case 16: f(std::integral_constant<int, 16>{}); break;
    case 32: f(std::integral_constant<int, 32>{}); break;
    default: throw std::invalid_argument("cuda sparse: lanes per row must be a power of two ≤ 32");
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

void check_csr(const DeviceCsr& a, const char* op) {
  if (a.rows < 0 || a.cols < 0 || a.nnz < 0 || (a.rows > 0 && (!a.row_ptr || !a.row_order)) ||
      (a.nnz > 0 && (!a.col_idx || !a.values)))
    throw std::invalid_argument(std::string(op) + ": malformed DeviceCsr");
}

void spmm_rows(const DeviceCsr& A, const float* B, int N, float* C, float beta) {
  const bool vec4 = N % 4 == 0 && aligned16(B) && aligned16(C);
  const int vec = vec4 ? 4 : 1;
  with_lanes(lanes_for_width(ceil_div(N, vec)), [&](auto lanes) {
    constexpr int S = decltype(lanes)::value;
    const int64_t row_blocks = ceil_div(A.rows, kThreads / S);
    const int64_t tiles = ceil_div(N, static_cast<int64_t>(S) * vec);
    const int grid = to_grid(row_blocks * tiles, "csr_spmm");
    if (vec4)
      ST_LAUNCH(grid, kThreads, 0, current_stream(), csr_spmm_kernel<S, 4>)(
          A.rows, N, static_cast<int>(row_blocks), A.row_ptr, A.col_idx, A.values, A.row_order, B, C,
          beta);
    else
      ST_LAUNCH(grid, kThreads, 0, current_stream(), csr_spmm_kernel<S, 1>)(
          A.rows, N, static_cast<int>(row_blocks), A.row_ptr, A.col_idx, A.values, A.row_order, B, C,
          beta);
    ST_CUDA_CHECK_LAUNCH();
  });
}

// y (batch, A.rows) = x (batch, A.cols) · Aᵀ + beta·y
void rowdot(const DeviceCsr& A, const float* x, int batch, float* y, float beta) {
  with_lanes(lanes_for_rows(A), [&](auto lanes) {
    constexpr int S = decltype(lanes)::value;
    const int64_t row_blocks = ceil_div(A.rows, kThreads / S);
    const int64_t tiles = ceil_div(batch, kRowDotBatchTile<S>);
    const int grid = to_grid(row_blocks * tiles, "csr_spmm_xwt");
    ST_LAUNCH(grid, kThreads, 0, current_stream(), csr_rowdot_kernel<S>)(
        A.rows, A.cols, batch, static_cast<int>(row_blocks), A.row_ptr, A.col_idx, A.values,
        A.row_order, x, y, beta);
    ST_CUDA_CHECK_LAUNCH();
  });
}

template <typename T>
T* upload(const T* host, int64_t n) {
  if (n <= 0) return nullptr;
  const size_t bytes = sizeof(T) * static_cast<size_t>(n);
  T* dev = static_cast<T*>(device_alloc(bytes));
  copy_h2d(dev, host, bytes);
  return dev;
}

}  // namespace

namespace detail {
void force_lanes_per_row(int lanes) {
  if (lanes != 0 && (lanes < 1 || lanes > 32 || (lanes & (lanes - 1)) != 0))
    throw std::invalid_argument("force_lanes_per_row: expected 0 or a power of two ≤ 32");
  g_forced_lanes = lanes;
}
void force_sddmm_ranges(int ranges) {
  if (ranges < 0) throw std::invalid_argument("force_sddmm_ranges: expected ≥ 0");
  g_forced_sddmm_ranges = ranges;
}
}  // namespace detail

// ---- DeviceCsr -------------------------------------------------------------------------------

DeviceCsr device_csr_upload(const kernels::CsrMatrix& a) {
  if (a.row_ptr.size() != static_cast<size_t>(a.rows) + 1 ||
      a.row_order.size() != static_cast<size_t>(a.rows) ||
      static_cast<int64_t>(a.col_idx.size()) != a.nnz() ||
      static_cast<int64_t>(a.values.size()) != a.nnz())
    throw std::invalid_argument("device_csr_upload: inconsistent CsrMatrix (" +
                                std::to_string(a.rows) + "x" + std::to_string(a.cols) + ")");
  DeviceCsr d;
  d.rows = a.rows;
  d.cols = a.cols;
  d.nnz = a.nnz();
  d.row_ptr = upload(a.row_ptr.data(), static_cast<int64_t>(a.row_ptr.size()));
  d.col_idx = upload(a.col_idx.data(), d.nnz);
  d.values = upload(a.values.data(), d.nnz);
  d.row_order = upload(a.row_order.data(), a.rows);
  for (int r = 0; r < a.rows; ++r)
    d.max_row_nnz = std::max(d.max_row_nnz, a.row_ptr[r + 1] - a.row_ptr[r]);
  return d;
}

void device_csr_update_values(DeviceCsr& d, const kernels::CsrMatrix& a) {
  if (a.rows != d.rows || a.cols != d.cols || a.nnz() != d.nnz)
    throw std::invalid_argument(
        "device_csr_update_values: the matrix does not match the device copy");
  if (d.nnz) copy_h2d(d.values, a.values.data(), sizeof(float) * static_cast<size_t>(d.nnz));
}

kernels::CsrMatrix device_csr_download(const DeviceCsr& d) {
  kernels::CsrMatrix a;
  a.rows = d.rows;
  a.cols = d.cols;
  a.row_ptr.resize(static_cast<size_t>(d.rows) + 1);
  a.col_idx.resize(static_cast<size_t>(d.nnz));
  a.values.resize(static_cast<size_t>(d.nnz));
  a.row_order.resize(static_cast<size_t>(d.rows));
  if (d.row_ptr) copy_d2h(a.row_ptr.data(), d.row_ptr, sizeof(int32_t) * a.row_ptr.size());
  else a.row_ptr.assign(a.row_ptr.size(), 0);
  if (d.nnz) {
    copy_d2h(a.col_idx.data(), d.col_idx, sizeof(int32_t) * a.col_idx.size());
    copy_d2h(a.values.data(), d.values, sizeof(float) * a.values.size());
  }
  if (d.rows) copy_d2h(a.row_order.data(), d.row_order, sizeof(int32_t) * a.row_order.size());
  return a;
}

void device_csr_free(DeviceCsr& d) {
  if (d.row_ptr) device_free(d.row_ptr, sizeof(int32_t) * (static_cast<size_t>(d.rows) + 1));
  if (d.col_idx) device_free(d.col_idx, sizeof(int32_t) * static_cast<size_t>(d.nnz));
  if (d.values) device_free(d.values, sizeof(float) * static_cast<size_t>(d.nnz));
  if (d.row_order) device_free(d.row_order, sizeof(int32_t) * static_cast<size_t>(d.rows));
  d = DeviceCsr{};
}

int32_t* device_upload_i32(const int32_t* host, int64_t n) { return upload(host, n); }

void csr_transpose_values(const DeviceCsr& a, const int32_t* perm, DeviceCsr& at) {
  if (a.nnz != at.nnz || a.rows != at.cols || a.cols != at.rows)
    throw std::invalid_argument("csr_transpose_values: at is not the transpose of a");
  if (a.nnz == 0) return;
  ST_LAUNCH(launch::blocks_for(a.nnz), launch::kThreads, 0, current_stream(), gather_i32_kernel)(
      a.nnz, perm, a.values, at.values);
  ST_CUDA_CHECK_LAUNCH();
}

// ---- products --------------------------------------------------------------------------------

void csr_spmm(const DeviceCsr& A, const float* B, int N, float* C, float beta) {
  check_csr(A, "csr_spmm");
  if (A.rows == 0 || N <= 0) return;
  spmm_rows(A, B, N, C, beta);
}

void csr_spmm_t(const DeviceCsr& A, const DeviceCsr& At, const float* B, int N, float* C,
                float beta) {
  check_csr(At, "csr_spmm_t");
  if (At.rows != A.cols || At.cols != A.rows || At.nnz != A.nnz)
    throw std::invalid_argument("csr_spmm_t: At (" + std::to_string(At.rows) + "x" +
                                std::to_string(At.cols) + ") is not the transpose of A (" +
                                std::to_string(A.rows) + "x" + std::to_string(A.cols) + ")");
  if (At.rows == 0 || N <= 0) return;
  spmm_rows(At, B, N, C, beta);
}

void csr_sddmm(const DeviceCsr& P, const float* X, const float* Y, int N, float* out_values,
               bool accumulate) {
  check_csr(P, "csr_sddmm");
  if (P.nnz == 0) return;
  const bool vec4 = N % 4 == 0 && N > 0 && aligned16(X) && aligned16(Y);
  const int vec = vec4 ? 4 : 1;
  with_lanes(lanes_for_width(ceil_div(std::max(N, 1), vec)), [&](auto lanes) {
    constexpr int S = decltype(lanes)::value;
    const int64_t row_blocks = ceil_div(P.rows, kThreads / S);
    const int64_t chunks = ceil_div(P.max_row_nnz, static_cast<int64_t>(S) * kSddmmGroups);
    // Ranges of N: whole S·VEC slabs (float4 alignment holds in every range).
    const int64_t slab = static_cast<int64_t>(S) * vec;
    const int64_t slabs = std::max<int64_t>(ceil_div(N, slab), 1);
    int64_t ranges = 1;
    if (g_forced_sddmm_ranges)
      ranges = g_forced_sddmm_ranges;
    else if (row_blocks * chunks < kSddmmMinBlocks)
      ranges = std::min(ceil_div(kSddmmMinBlocks, row_blocks * chunks), slabs / kSddmmMinSlabs);
    ranges = std::clamp<int64_t>(ranges, 1, slabs);
    const int64_t range_len = ceil_div(slabs, ranges) * slab;
    ranges = ceil_div(std::max(N, 1), range_len);
    const int grid = to_grid(row_blocks * chunks * ranges, "csr_sddmm");
    float* partial = nullptr;
    const size_t partial_bytes = sizeof(float) * static_cast<size_t>(ranges * P.nnz);
    if (ranges > 1) partial = static_cast<float*>(device_alloc(partial_bytes));
    if (vec4)
      ST_LAUNCH(grid, kThreads, 0, current_stream(), csr_sddmm_kernel<S, 4>)(
          P.rows, N, static_cast<int>(row_blocks), static_cast<int>(chunks),
          static_cast<int>(range_len), P.row_ptr, P.col_idx, P.row_order, X, Y, out_values,
          accumulate, partial, P.nnz);
    else
      ST_LAUNCH(grid, kThreads, 0, current_stream(), csr_sddmm_kernel<S, 1>)(
          P.rows, N, static_cast<int>(row_blocks), static_cast<int>(chunks),
          static_cast<int>(range_len), P.row_ptr, P.col_idx, P.row_order, X, Y, out_values,
          accumulate, partial, P.nnz);
    ST_CUDA_CHECK_LAUNCH();
    if (partial) {
      ST_LAUNCH(launch::blocks_for(P.nnz), launch::kThreads, 0, current_stream(),
                sum_ranges_kernel)(P.nnz, static_cast<int>(ranges), partial, out_values,
                                   accumulate);
      ST_CUDA_CHECK_LAUNCH();
      device_free(partial, partial_bytes);  // stream-ordered: the next user runs after the sum
    }
  });
}

void csr_spmm_xwt(const DeviceCsr& W, const float* x, int batch, float* y, float beta) {
  check_csr(W, "csr_spmm_xwt");
  if (batch <= 0 || W.rows == 0) return;
  rowdot(W, x, batch, y, beta);
}

void csr_spmm_dyw(const DeviceCsr& Wt, const float* dy, int batch, float* dx, float beta) {
  check_csr(Wt, "csr_spmm_dyw");
  if (batch <= 0 || Wt.rows == 0) return;
  rowdot(Wt, dy, batch, dx, beta);
}

void csr_sddmm_dyx(const DeviceCsr& W, const float* dy, const float* x, int batch,
                   float* dw_values, bool accumulate) {
  check_csr(W, "csr_sddmm_dyx");
  if (W.nnz == 0) return;
  with_lanes(lanes_for_rows(W), [&](auto lanes) {
    constexpr int S = decltype(lanes)::value;
    const int64_t row_blocks = ceil_div(W.rows, kThreads / S);
    const int64_t chunks = ceil_div(W.max_row_nnz, static_cast<int64_t>(S) * kRowDotUnroll);
    const int grid = to_grid(row_blocks * chunks, "csr_sddmm_dyx");
    ST_LAUNCH(grid, kThreads, 0, current_stream(), csr_sddmm_dyx_kernel<S>)(
        W.rows, W.cols, std::max(batch, 0), static_cast<int>(row_blocks), W.row_ptr, W.col_idx,
        W.row_order, dy, x, dw_values, accumulate);
    ST_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace st::cuda
