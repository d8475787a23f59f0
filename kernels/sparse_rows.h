// kernels/sparse_rows.h — row-level CSR building blocks shared by the CPU sparse kernels
// (kernels/sparse_cpu.cpp: the matrix products; kernels/sparse_conv.cpp: the direct convolution).
//   threads_for / split_units / even_split: the static, deterministic thread partition
//   spmm_row<NV, TAIL, PF>: c (VL·NV floats) = Σ_k vals[k]·B[cols[k]·ldb : +VL·NV] + beta·c
//                          (PF: prefetch B's row kPrefetch nonzeros ahead)
//   scatter_row<NV, TAIL>: C[cols[k]·ldc : +VL·NV] += vals[k]·brow
// VL is the vector width of the instruction set being compiled (kernels/simd.h): 16 floats for
// AVX-512, 8 for AVX2; a row slice of up to kChunk = 8·VL floats stays in registers.
// Internal to kernels/, compiled once per instruction set (kernels/isa.h).
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/simd.h"

namespace st::kernels::ST_ISA_NS::detail {

// Multiply-adds below which one thread wins. Measured on the 2-vCPU machine: with 1 << 15 a sparse
// LeNet-300 step (fc1 at 95%: 0.75 M) ran 2x slower on 2 threads than on 1; 1 << 21 also kept
// (1024, 1024, 128) at 99% (1.3 M) on one thread, at half the speed of two.
constexpr int64_t kParallelMinWork = 1 << 20;
constexpr int64_t kRowCost = 2;                // per-row overhead, in nonzeros, for the split
#if defined(ST_HAVE_SIMD)
constexpr int kChunk = 8 * VL;                  // most columns of C held in registers per row pass
#else
constexpr int kChunk = 128;
#endif

inline int threads_for(int64_t work) {
  if (omp_in_parallel() || work < kParallelMinWork) return 1;
  return omp_get_max_threads();
}

// The first u in [0, units] with cost(u) >= target, for a non-decreasing cost (binary search).
template <class Cost>
inline int64_t first_reaching(int64_t units, int64_t target, Cost cost) {
  int64_t lo = 0, hi = units;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (cost(mid) < target) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// Start of thread t's share of [0, units) where a unit is g consecutive rows; shares have about
// equal cost nnz + kRowCost·rows. t == T gives `units`.
inline int split_units(const std::vector<int32_t>& row_ptr, int rows, int g, int t, int T) {
  const int units = (rows + g - 1) / g;
  if (t <= 0) return 0;
  if (t >= T) return units;
  auto cost = [&](int u) {
    const int r = std::min(u * g, rows);
    return static_cast<int64_t>(row_ptr[r]) + kRowCost * r;
  };
  return static_cast<int>(first_reaching(units, cost(units) * t / T, cost));
}

// Thread t's share of [0, units) split evenly (for dense work such as transposes).
inline int even_split(int units, int t, int T) {
  return static_cast<int>(static_cast<int64_t>(units) * t / T);
}

// Grow-only buffer owned by the calling (or pool) thread: steady-state calls allocate nothing.
inline float* scratch(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.assign(n, 0.0f);
  return v.data();
}

#if defined(ST_HAVE_SIMD)

template <int NV, bool TAIL>
inline vf load_v(const float* p, int v, vmask tail) {
  if (TAIL && v == NV - 1) return vloadu(tail, p + VL * v);
  return vloadu(p + VL * v);
}

template <int NV, bool TAIL>
inline void store_v(float* p, int v, vmask tail, vf x) {
  if (TAIL && v == NV - 1) vstoreu(p + VL * v, tail, x);
  else vstoreu(p + VL * v, x);
}

// The instance of a row kernel K<NV, TAIL> (a struct whose static `fn` points at the function
// template's instance) for a slice of n in [1, 8·VL] columns: NV = ⌈n / VL⌉ vectors, the last one
// masked when n is not a multiple of VL. Every CSR kernel dispatches its row width through this.
template <template <int, bool> class K>
inline std::remove_const_t<decltype(K<1, false>::fn)> pick_nv(int n) {
  const bool tail = n % VL != 0;
  switch ((n + VL - 1) / VL) {
    case 1: return tail ? K<1, true>::fn : K<1, false>::fn;
    case 2: return tail ? K<2, true>::fn : K<2, false>::fn;
    case 3: return tail ? K<3, true>::fn : K<3, false>::fn;
    case 4: return tail ? K<4, true>::fn : K<4, false>::fn;
    case 5: return tail ? K<5, true>::fn : K<5, false>::fn;
    case 6: return tail ? K<6, true>::fn : K<6, false>::fn;
    case 7: return tail ? K<7, true>::fn : K<7, false>::fn;
    default: return tail ? K<8, true>::fn : K<8, false>::fn;
  }
}

// c (VL·NV floats, the last vector masked by `tail` when TAIL) = Σ_k vals[k]·B[cols[k], :] + beta·c
// With PF, the B row of the nonzero kPrefetch ahead is prefetched: csr_spmm gathers rows of a B
// far larger than the caches (−25% at 90–99% sparsity, measured). The direct sparse conv reads
// a pixel's window, which the previous pixels brought into L1/L2: there the prefetches only
// took load slots (its forward on SimpleCNN's conv2 at 95% ran 1.17–1.23× faster without them,
// 1 thread, AVX-512).
#ifndef ST_SPMM_PREFETCH
#define ST_SPMM_PREFETCH 8
#endif
constexpr int kPrefetch = ST_SPMM_PREFETCH;  // nonzeros ahead whose B row is prefetched (0: off)

template <int NV, bool TAIL, bool PF = true>
inline void spmm_row(const int32_t* cols, const float* vals, int32_t k0, int32_t k1, int32_t k_last,
              const float* B, size_t ldb, float* c, float beta, vmask tail) {
  constexpr int S = NV <= 2 ? 4 : NV <= 4 ? 2 : 1;  // independent accumulator sets
  vf acc[S][NV];
  for (int s = 0; s < S; ++s)
    for (int v = 0; v < NV; ++v) acc[s][v] = vzero();
  int32_t k = k0;
  for (; k + S <= k1; k += S) {
    for (int s = 0; s < S; ++s) {
      const float* b = B + static_cast<size_t>(cols[k + s]) * ldb;
      if (PF && kPrefetch > 0) {  // B's rows are scattered: the hardware prefetcher cannot guess them
        const float* p = B + static_cast<size_t>(cols[std::min(k + s + kPrefetch, k_last)]) * ldb;
        for (int v = 0; v < NV; v += 64 / (4 * VL)) prefetch(p + VL * v);
      }
      const vf a = vset1(vals[k + s]);
      for (int v = 0; v < NV; ++v)
        acc[s][v] = vfmadd(a, load_v<NV, TAIL>(b, v, tail), acc[s][v]);
    }
  }
  for (; k < k1; ++k) {
    const float* b = B + static_cast<size_t>(cols[k]) * ldb;
    if (PF && kPrefetch > 0) {
      const float* p = B + static_cast<size_t>(cols[std::min(k + kPrefetch, k_last)]) * ldb;
      for (int v = 0; v < NV; v += 64 / (4 * VL)) prefetch(p + VL * v);
    }
    const vf a = vset1(vals[k]);
    for (int v = 0; v < NV; ++v)
      acc[0][v] = vfmadd(a, load_v<NV, TAIL>(b, v, tail), acc[0][v]);
  }
  for (int s = 1; s < S; ++s)
    for (int v = 0; v < NV; ++v) acc[0][v] = vadd(acc[0][v], acc[s][v]);
  if (beta == 0.0f) {
    for (int v = 0; v < NV; ++v) store_v<NV, TAIL>(c, v, tail, acc[0][v]);
  } else {
    const vf bv = vset1(beta);
    for (int v = 0; v < NV; ++v)
      store_v<NV, TAIL>(c, v, tail, vfmadd(bv, load_v<NV, TAIL>(c, v, tail), acc[0][v]));
  }
}

template <int NV, bool TAIL>
struct SpmmRow {
  static constexpr auto fn = &spmm_row<NV, TAIL>;
};
inline auto pick_spmm(int n) { return pick_nv<SpmmRow>(n); }
template <int NV, bool TAIL>
struct SpmmRowNoPrefetch {
  static constexpr auto fn = &spmm_row<NV, TAIL, false>;
};
inline auto pick_spmm_no_prefetch(int n) { return pick_nv<SpmmRowNoPrefetch>(n); }

// C[cols[k], :] += vals[k]·brow for k in [k0, k1) (VL·NV columns, last vector masked if TAIL).
template <int NV, bool TAIL>
inline void scatter_row(const int32_t* cols, const float* vals, int32_t k0, int32_t k1,
                 const float* brow, float* C, size_t ldc, vmask tail) {
  vf bv[NV];
  for (int v = 0; v < NV; ++v) bv[v] = load_v<NV, TAIL>(brow, v, tail);
  for (int32_t k = k0; k < k1; ++k) {
    float* c = C + static_cast<size_t>(cols[k]) * ldc;
    const vf a = vset1(vals[k]);
    for (int v = 0; v < NV; ++v)
      store_v<NV, TAIL>(c, v, tail, vfmadd(a, bv[v], load_v<NV, TAIL>(c, v, tail)));
  }
}

template <int NV, bool TAIL>
struct ScatterRow {
  static constexpr auto fn = &scatter_row<NV, TAIL>;
};
inline auto pick_scatter(int n) { return pick_nv<ScatterRow>(n); }

#endif  // ST_HAVE_SIMD

}  // namespace st::kernels::ST_ISA_NS::detail
