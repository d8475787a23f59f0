// kernels/gemm.cpp — cache-blocked, register-blocked single-precision GEMM (BLIS-style loop nest).
//   sgemm: C (M, N) = alpha · op(A) (M, K) · op(B) (K, N) + beta · C     (row-major)
// Loop nest per thread tile:  jc (NC cols) → pc (KC depth, pack B) → ic (MC rows, pack A)
//                             → jr (NR-wide B micro-panel, stays in L1) → ir (MR-tall A micro-panel)
// Packing turns all four transpose cases into one layout, pads edges with zeros (so the
// micro-kernel never branches on shape inside its k loop) and keeps panels 64-byte aligned.
// Compiled once per instruction set (kernels/isa.h). Micro-kernel: AVX-512 (an 8×32 tile in 16
// zmm accumulators; packing transposes 16×16 blocks in registers), AVX2 (a 6×16 tile in 12 ymm;
// B packing transposes 8×8 blocks), or, for plain x86-64, a fixed-size loop nest that g++
// auto-vectorizes.
// Threads: C is cut into a tm×tn grid of tiles of whole micro-panels; each thread packs its own
// A and B panels (no barriers, no atomics). Every C element is summed over k in the same order
// (KC blocks in order, k in order inside a block) whatever the tiling, so results are bitwise
// identical for any thread count. A tiny C with a long K (M·N ≤ 4096, K ≥ 2048) is instead split
// over K in fixed 1024-deep chunks, added in chunk order (again independent of the thread count).
// Small problems (< 96³ multiply-adds) and calls from inside a parallel region run on one thread.
// Reference: kernels/reference.cpp (ref::sgemm). Tests: tests/kernels/test_gemm.cpp.
#include "kernels/gemm.h"
#include "kernels/isa_table.h"
#include "kernels/parallel.h"
#include "kernels/simd.h"

#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace st::kernels::ST_ISA_NS {
namespace {

#if defined(ST_HAVE_SIMD) && !defined(__AVX512F__)
// AVX2: 16 ymm registers hold a 6×16 tile (12 accumulators, 2 B vectors, 1 broadcast).
constexpr int MR = 6;    // micro-tile rows (A values broadcast per k)
constexpr int NR = 16;   // micro-tile cols (two 8-float vectors of B per k)
#define ST_GEMM_MC_DEFAULT 120
#else
constexpr int MR = 8;    // micro-tile rows (A values broadcast per k)
constexpr int NR = 32;   // micro-tile cols (two 16-float vectors of B per k)
#define ST_GEMM_MC_DEFAULT 128
#endif
#ifndef ST_GEMM_KC  // overridable only for tuning experiments
#define ST_GEMM_KC 256
#define ST_GEMM_MC ST_GEMM_MC_DEFAULT
#define ST_GEMM_NC 512
#endif
constexpr int KC = ST_GEMM_KC;  // depth of a packed block: B micro-panel KC×NR = 32 KiB fits L1
constexpr int MC = ST_GEMM_MC;  // rows of a packed A block: MC×KC = 128 KiB, L2-resident
constexpr int NC = ST_GEMM_NC;  // cols of a packed B block: KC×NC = 512 KiB, L2-resident
static_assert(MC % MR == 0 && NC % NR == 0, "blocks must hold whole micro-panels");

// Below this many multiply-adds a parallel region costs more than it saves.
constexpr double kParallelMinMacs = 96.0 * 96.0 * 96.0;

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};

// Per-thread packing buffers, allocated on first use and kept for the thread's life (OpenMP
// reuses its pool threads, so steady-state calls allocate nothing).
struct PackBuffers {
  std::unique_ptr<float, AlignedFree> a, b;
  PackBuffers() {
    a.reset(static_cast<float*>(std::aligned_alloc(64, sizeof(float) * MC * KC)));
    b.reset(static_cast<float*>(std::aligned_alloc(64, sizeof(float) * KC * NC)));
  }
};

PackBuffers& pack_buffers() {
  static thread_local PackBuffers buffers;
  return buffers;
}

#if defined(ST_HAVE_SIMD)
// dst[kk·ld_dst + i] = rows[i][k0 + kk] for i < STORE_ROWS (VL, or 8 of AVX-512's 16), kk < VL:
// a VL×VL transpose in registers, so packing reads whole cache lines and writes whole vectors
// instead of scalar scatters. With STORE_ROWS == 8 only rows 0..7 are stored (an A micro-panel is
// 8 rows tall).
template <int STORE_ROWS>
inline void transpose_store(const float* const* rows, int k0, float* dst, int ld_dst) {
  vf r[VL];
  for (int i = 0; i < VL; ++i) r[i] = vloadu(rows[i] + k0);
  transpose(r);
  for (int kk = 0; kk < VL; ++kk) {
    float* d = dst + kk * ld_dst;
    if constexpr (STORE_ROWS == VL) {
      vstore(d, r[kk]);
    } else {
#if defined(__AVX512F__)
      static_assert(STORE_ROWS == 8, "a zmm or its lower ymm half");
      _mm256_store_ps(d, _mm512_castps512_ps256(r[kk]));
#endif
    }
  }
}
#endif

// Rows past the matrix edge read from here, so edge panels pack through the same code path.
alignas(64) const float kZeros[KC] = {};

// Packs op(A)[i0 : i0+mc, p0 : p0+kc] as MR-row micro-panels: Ap[panel][k][i], zero-padded rows.
void pack_a(bool trans_a, const float* A, int lda, int i0, int mc, int p0, int kc, float* Ap) {
  for (int ip = 0; ip < mc; ip += MR) {
    const int mr = std::min(MR, mc - ip);
    float* dst = Ap + static_cast<size_t>(ip) * kc;
    if (!trans_a) {  // op(A)[i][k] = A[i·lda + k]: rows are contiguous in k
      const float* src[16];
      for (int i = 0; i < MR; ++i)
        src[i] = i < mr ? A + static_cast<size_t>(i0 + ip + i) * lda + p0 : kZeros;
      int k = 0;
#if defined(__AVX512F__)
      static_assert(MR == 8, "the transpose stores 8-row panels");
      for (int i = MR; i < 16; ++i) src[i] = src[i - MR];  // loaded, then discarded
      for (; k + 16 <= kc; k += 16) transpose_store<8>(src, k, dst + k * MR, MR);
#endif
      for (; k < kc; ++k)
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = src[i][k];
    } else {  // op(A)[i][k] = A[k·lda + i]: each k is a contiguous run of rows
      for (int k = 0; k < kc; ++k) {
        const float* src = A + static_cast<size_t>(p0 + k) * lda + i0 + ip;
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = i < mr ? src[i] : 0.0f;
      }
    }
  }
}


// Packs op(B)[p0 : p0+kc, j0 : j0+nc] as NR-col micro-panels: Bp[panel][k][j], zero-padded cols.
void pack_b(bool trans_b, const float* B, int ldb, int j0, int nc, int p0, int kc, float* Bp) {
  for (int jp = 0; jp < nc; jp += NR) {
    const int nr = std::min(NR, nc - jp);
    float* dst = Bp + static_cast<size_t>(jp) * kc;
    if (!trans_b) {  // op(B)[k][j] = B[k·ldb + j]: contiguous rows of j
      for (int k = 0; k < kc; ++k) {
        const float* src = B + static_cast<size_t>(p0 + k) * ldb + j0 + jp;
        float* d = dst + k * NR;
        if (nr == NR) {
          for (int j = 0; j < NR; ++j) d[j] = src[j];
        } else {
          for (int j = 0; j < NR; ++j) d[j] = j < nr ? src[j] : 0.0f;
        }
      }
    } else {  // op(B)[k][j] = B[j·ldb + k]: each output column is a contiguous run of k
      const float* src[NR];
      for (int j = 0; j < NR; ++j)
        src[j] = j < nr ? B + static_cast<size_t>(j0 + jp + j) * ldb + p0 : kZeros;
      int k = 0;
#if defined(ST_HAVE_SIMD)
      static_assert(NR % VL == 0, "whole vectors per micro-panel row");
      for (; k + VL <= kc; k += VL)
        for (int jb = 0; jb < NR; jb += VL) transpose_store<VL>(src + jb, k, dst + k * NR + jb, NR);
#endif
      for (; k < kc; ++k)
        for (int j = 0; j < NR; ++j) dst[k * NR + j] = src[j][k];
    }
  }
}

#if !defined(ST_HAVE_SIMD)
// C[0:mr, 0:nr] = alpha · acc + beta · C   (beta == 0: C is not read).
inline void store_tile_scalar(const float* acc, int mr, int nr, float alpha, float beta, float* C,
                              int ldc) {
  for (int i = 0; i < mr; ++i) {
    float* c = C + static_cast<size_t>(i) * ldc;
    const float* a = acc + i * NR;
    if (beta == 0.0f) {
      for (int j = 0; j < nr; ++j) c[j] = alpha * a[j];
    } else {
      for (int j = 0; j < nr; ++j) c[j] = alpha * a[j] + beta * c[j];
    }
  }
}

// Portable micro-kernel: fixed trip counts so g++ keeps acc in vector registers.
void micro_kernel_generic(int kc, const float* __restrict Ap, const float* __restrict Bp, int mr,
                          int nr, float alpha, float beta, float* C, int ldc) {
  alignas(64) float acc[MR * NR] = {};
  for (int k = 0; k < kc; ++k) {
    const float* a = Ap + k * MR;
    const float* b = Bp + k * NR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i * NR + j] += a[i] * b[j];
  }
  store_tile_scalar(acc, mr, nr, alpha, beta, C, ldc);
}

#endif

#if defined(__AVX512F__)
// MR×32 tile in 16 zmm accumulators; A values are broadcast from the packed panel.
void micro_kernel_avx512(int kc, const float* __restrict Ap, const float* __restrict Bp, int mr,
                         int nr, float alpha, float beta, float* C, int ldc) {
  __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps();
  __m512 c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
  __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps();
  __m512 c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
  __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps();
  __m512 c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
  __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps();
  __m512 c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(Bp);
    const __m512 b1 = _mm512_load_ps(Bp + 16);
    __m512 a;
    a = _mm512_set1_ps(Ap[0]); c00 = _mm512_fmadd_ps(a, b0, c00); c01 = _mm512_fmadd_ps(a, b1, c01);
    a = _mm512_set1_ps(Ap[1]); c10 = _mm512_fmadd_ps(a, b0, c10); c11 = _mm512_fmadd_ps(a, b1, c11);
    a = _mm512_set1_ps(Ap[2]); c20 = _mm512_fmadd_ps(a, b0, c20); c21 = _mm512_fmadd_ps(a, b1, c21);
    a = _mm512_set1_ps(Ap[3]); c30 = _mm512_fmadd_ps(a, b0, c30); c31 = _mm512_fmadd_ps(a, b1, c31);
    a = _mm512_set1_ps(Ap[4]); c40 = _mm512_fmadd_ps(a, b0, c40); c41 = _mm512_fmadd_ps(a, b1, c41);
    a = _mm512_set1_ps(Ap[5]); c50 = _mm512_fmadd_ps(a, b0, c50); c51 = _mm512_fmadd_ps(a, b1, c51);
    a = _mm512_set1_ps(Ap[6]); c60 = _mm512_fmadd_ps(a, b0, c60); c61 = _mm512_fmadd_ps(a, b1, c61);
    a = _mm512_set1_ps(Ap[7]); c70 = _mm512_fmadd_ps(a, b0, c70); c71 = _mm512_fmadd_ps(a, b1, c71);
    Ap += MR;
    Bp += NR;
  }
  const __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                             {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
  const __m512 valpha = _mm512_set1_ps(alpha);
  const __m512 vbeta = _mm512_set1_ps(beta);
  const __mmask16 m0 = nr >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << nr) - 1u);
  const __mmask16 m1 = nr >= 32 ? __mmask16(0xFFFF)
                       : nr <= 16 ? __mmask16(0)
                                  : __mmask16((1u << (nr - 16)) - 1u);
  for (int i = 0; i < mr; ++i) {
    float* c = C + static_cast<size_t>(i) * ldc;
    __m512 r0 = _mm512_mul_ps(valpha, acc[i][0]);
    __m512 r1 = _mm512_mul_ps(valpha, acc[i][1]);
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(m0, c), r0);
      r1 = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(m1, c + 16), r1);
    }
    _mm512_mask_storeu_ps(c, m0, r0);
    _mm512_mask_storeu_ps(c + 16, m1, r1);
  }
}
#endif

#if defined(__AVX2__) && !defined(__AVX512F__)
// MR×16 tile (6×16) in 12 ymm accumulators; A values are broadcast from the packed panel.
void micro_kernel_avx2(int kc, const float* __restrict Ap, const float* __restrict Bp, int mr,
                       int nr, float alpha, float beta, float* C, int ldc) {
  __m256 c[MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) c[i][0] = c[i][1] = _mm256_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(Bp), b1 = _mm256_load_ps(Bp + 8);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(Ap + i);
      c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
      c[i][1] = _mm256_fmadd_ps(a, b1, c[i][1]);
    }
    Ap += MR;
    Bp += NR;
  }
  const __m256 valpha = _mm256_set1_ps(alpha), vbeta = _mm256_set1_ps(beta);
  const vmask m0 = lanes(nr), m1 = lanes(nr - 8);
  for (int i = 0; i < mr; ++i) {
    float* cr = C + static_cast<size_t>(i) * ldc;
    __m256 r0 = _mm256_mul_ps(valpha, c[i][0]), r1 = _mm256_mul_ps(valpha, c[i][1]);
    if (beta != 0.0f) {
      r0 = _mm256_fmadd_ps(vbeta, vloadu(m0, cr), r0);
      r1 = _mm256_fmadd_ps(vbeta, vloadu(m1, cr + 8), r1);
    }
    if (nr == NR) {
      _mm256_storeu_ps(cr, r0);
      _mm256_storeu_ps(cr + 8, r1);
    } else {
      vstoreu(cr, m0, r0);
      vstoreu(cr + 8, m1, r1);
    }
  }
}
#endif

using MicroKernel = void (*)(int, const float*, const float*, int, int, float, float, float*, int);

// One thread's share: C[m0:m1, n0:n1] (whole micro-panels except at the matrix edge).
void gemm_tile(MicroKernel kernel, bool trans_a, bool trans_b, int m0, int m1, int n0, int n1,
               int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta,
               float* C, int ldc) {
  PackBuffers& buf = pack_buffers();
  float* Ap = buf.a.get();
  float* Bp = buf.b.get();
  // Equal KC blocks (rounded to 8) instead of KC, KC, ..., small tail: the tail wastes less.
  const int kblocks = (K + KC - 1) / KC;
  const int kc_even = std::min(KC, ((K + kblocks - 1) / kblocks + 7) / 8 * 8);
  for (int jc = n0; jc < n1; jc += NC) {
    const int nc = std::min(NC, n1 - jc);
    for (int pc = 0; pc < K; pc += kc_even) {
      const int kc = std::min(kc_even, K - pc);
      const float beta_block = pc == 0 ? beta : 1.0f;
      pack_b(trans_b, B, ldb, jc, nc, pc, kc, Bp);
      for (int ic = m0; ic < m1; ic += MC) {
        const int mc = std::min(MC, m1 - ic);
        pack_a(trans_a, A, lda, ic, mc, pc, kc, Ap);
        for (int jr = 0; jr < nc; jr += NR) {
          const int nr = std::min(NR, nc - jr);
          const float* bp = Bp + static_cast<size_t>(jr) * kc;
          for (int ir = 0; ir < mc; ir += MR) {
            const int mr = std::min(MR, mc - ir);
            float* c = C + static_cast<size_t>(ic + ir) * ldc + jc + jr;
            kernel(kc, Ap + static_cast<size_t>(ir) * kc, bp, mr, nr, alpha, beta_block, c, ldc);
          }
        }
      }
    }
  }
}

// C = beta · C without reading C when beta == 0 (alpha == 0 or K == 0).
void scale_c(int M, int N, float beta, float* C, int ldc) {
  for (int i = 0; i < M; ++i) {
    float* c = C + static_cast<size_t>(i) * ldc;
    if (beta == 0.0f) {
      std::memset(c, 0, sizeof(float) * N);
    } else if (beta != 1.0f) {
      for (int j = 0; j < N; ++j) c[j] *= beta;
    }
  }
}

// Split-K for a tiny C and a long K (e.g. a conv weight gradient over a whole batch: 20×25×36864):
// there are too few C tiles to share, so K is cut into fixed chunks whose partial products are
// added in chunk order. The chunking depends only on the shape, never on the thread count, so the
// bits stay the same for any number of threads.
constexpr int kSplitKChunk = 1024;
bool use_split_k(int M, int N, int K) {
  return static_cast<long long>(M) * N <= 64 * 64 && K >= 2 * kSplitKChunk;
}

void sgemm_split_k(MicroKernel kernel, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                   const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  const int chunks = (K + kSplitKChunk - 1) / kSplitKChunk;
  const size_t mn = static_cast<size_t>(M) * N;
  // Owned by the calling thread, shared with its team for the duration of this call.
  static thread_local std::vector<float> partials;
  if (partials.size() < mn * chunks) partials.resize(mn * chunks);
  float* P = partials.data();
  const bool parallel = !omp_in_parallel() && omp_get_max_threads() > 1;
  parallel_for(chunks, parallel, [=](int64_t c) {
    const int k0 = static_cast<int>(c) * kSplitKChunk, kc = std::min(kSplitKChunk, K - k0);
    const float* a = trans_a ? A + static_cast<size_t>(k0) * lda : A + k0;
    const float* b = trans_b ? B + k0 : B + static_cast<size_t>(k0) * ldb;
    gemm_tile(kernel, trans_a, trans_b, 0, M, 0, N, kc, 1.0f, a, lda, b, ldb, 0.0f, P + c * mn, N);
  });
  for (int i = 0; i < M; ++i) {
    float* crow = C + static_cast<size_t>(i) * ldc;
    for (int j = 0; j < N; ++j) {
      float acc = 0.0f;
      for (int c = 0; c < chunks; ++c) acc += P[c * mn + static_cast<size_t>(i) * N + j];
      crow[j] = beta == 0.0f ? alpha * acc : alpha * acc + beta * crow[j];
    }
  }
}

// Rows tm of the tm × (threads / tm) tile grid that minimizes the largest tile's padded work plus
// the duplicated packing (each column of tiles packs all its A rows, each row all its B columns);
// 0 when no factorization of `threads` fits the panel counts.
int grid_rows(int threads, int m_panels, int n_panels, int K) {
  int best_tm = 0;
  double best_cost = 0.0;
  for (int tm = 1; tm <= threads; ++tm) {
    const int tn = threads / tm;
    if (threads % tm != 0 || tm > m_panels || tn > n_panels) continue;
    const double tile_m = static_cast<double>((m_panels + tm - 1) / tm) * MR;
    const double tile_n = static_cast<double>((n_panels + tn - 1) / tn) * NR;
    const double cost = tile_m * tile_n * K + 4.0 * (tile_m + tile_n) * K;
    if (best_tm == 0 || cost < best_cost) {
      best_cost = cost;
      best_tm = tm;
    }
  }
  return best_tm;
}

void sgemm_impl(MicroKernel kernel, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  assert(M >= 0 && N >= 0 && K >= 0);
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  if (use_split_k(M, N, K)) {
    sgemm_split_k(kernel, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const int m_panels = (M + MR - 1) / MR;
  const int n_panels = (N + NR - 1) / NR;
  const double macs = static_cast<double>(M) * N * K;
  int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (macs < kParallelMinMacs) threads = 1;
  threads = std::min(threads, m_panels * n_panels);
  // If no tile grid fits the panel counts (say 3 threads, 2×2 panels), use fewer threads.
  int tm = 0;
  while (threads > 1 && (tm = grid_rows(threads, m_panels, n_panels, K)) == 0) --threads;
  if (threads <= 1) {
    gemm_tile(kernel, trans_a, trans_b, 0, M, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const int tn = threads / tm;
#pragma omp parallel num_threads(threads)
  // A team smaller than asked for (OMP_DYNAMIC, thread limits) still covers every tile.
  for (int t = omp_get_thread_num(); t < threads; t += omp_get_num_threads()) {
    const int ti = t / tn, tj = t % tn;
    const int m0 = std::min(M, static_cast<int>(static_cast<long long>(m_panels) * ti / tm) * MR);
    const int m1 = std::min(M, static_cast<int>(static_cast<long long>(m_panels) * (ti + 1) / tm) * MR);
    const int n0 = std::min(N, static_cast<int>(static_cast<long long>(n_panels) * tj / tn) * NR);
    const int n1 = std::min(N, static_cast<int>(static_cast<long long>(n_panels) * (tj + 1) / tn) * NR);
    if (m0 < m1 && n0 < n1)
      gemm_tile(kernel, trans_a, trans_b, m0, m1, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc) {
#if defined(__AVX512F__)
  sgemm_impl(micro_kernel_avx512, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#elif defined(__AVX2__)
  sgemm_impl(micro_kernel_avx2, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
  sgemm_impl(micro_kernel_generic, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

}  // namespace st::kernels::ST_ISA_NS
