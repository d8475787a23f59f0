// kernels/sparse_cpu.cpp — CSR kernels for sparse layers (see kernels/sparse_cpu.h for shapes).
// Compiled once per instruction set (kernels/isa.h); VL is the vector width (16 floats with
// AVX-512, 8 with AVX2), figures below are for AVX-512 unless said.
//   csr_spmm:   one CSR row at a time; the row's slice of C (≤ 8 vectors: 128 floats in 8 zmm)
//               stays in registers while A's nonzeros stream by: broadcast value, FMA with B's
//               row. Wider N runs in such chunks (chunk outer, so B's slice is reused across
//               rows); N % VL != 0 ends in a masked vector. Short slices (≤ 4 vectors) keep 2–4
//               independent accumulator sets so FMA latency does not bound them.
//               B's rows are gathered at random, so the row of the nonzero 8 ahead is prefetched
//               (−25% at 90–99% sparsity, measured).
//   csr_spmm_xwt: the Linear forward in batch-major layout, x-stationary: 32 batch rows of x are
//               packed transposed into a tile (IN, 32) (128 B per k, in L2 up to IN = 4096); each
//               nonzero W[o, k] is one broadcast and 2 FMAs (4 with AVX2) with the tile's line k;
//               VL rows of W give VL×(32/VL) vectors that register transposes write straight into
//               y's rows. No transposed copy of x or y goes through memory (at 99% sparsity those
//               copies cost as much as the product). W is streamed once per tile. Small batches
//               take VL-row (or 16-row) tiles.
//               Threads take whole tiles when they divide evenly, else (tile, row chunk) units.
//               (The row-at-a-time kernel on a transposed x, below, was 1.3–1.7× slower.)
//   csr_spmm_t: C = Aᵀ·B scatters: for each row m of A, B's row (in registers) is added into the
//               C rows named by A's columns. Threads own disjoint column slices of C, so there
//               are no atomics and each C element is summed in A's row order.
//   csr_sddmm:  X's row (≤ 8 vectors) stays in registers; VL nonzeros at a time produce VL
//               partial-sum vectors that one transpose-add tree reduces into one vector of VL
//               dot products (3 ops per nonzero instead of a full horizontal sum each).
//   csr_sddmm_dyx: the same reduction on the xwt tiles: x packed into (IN, 32) tiles, rows walked
//               tile by tile (the gathered tile stays in L2), dy's VL×32 pieces transposed in
//               registers; outputs add the tiles' partials in tile order. Threads split the rows
//               (each packing every tile) or, at high sparsity on large layers, the tiles (each
//               packing only its own; later tiles' partials added afterwards in tile order).
//               A forward given x_tiles leaves its packs there; this kernel reads them instead
//               of packing where no thread would read another core's packs.
// Threads: contiguous row ranges of equal cost (nnz + 2·rows), found by binary search on row_ptr
// (static, deterministic, and the sum order of every output never depends on the split).
// Without AVX2 the portable loops at the end of the file run (transposed copies + row kernels).
// Reference: kernels/reference.cpp. Tests: tests/kernels/test_sparse.cpp.
// Bench: bench/bench_kernels.cpp.
#include "kernels/sparse_cpu.h"
#include "kernels/isa_table.h"
#include "kernels/parallel.h"
#include "kernels/simd.h"
#include "kernels/sparse_rows.h"

#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace st::kernels::ST_ISA_NS {
namespace {

using namespace detail;

#if defined(ST_HAVE_SIMD)

// Above this size of B the SpMM walks each row's column chunks in turn instead of chunk by chunk.
constexpr size_t kRowOuterBytes = size_t{16} << 20;

// Rows [r0, r1) of C = A·B + beta·C; c0 points at row r0 of C (leading dimension ldc).
void spmm_rows(const CsrMatrix& A, int r0, int r1, const float* B, int N, float* c0, size_t ldc,
               float beta) {
  const int32_t* rp = A.row_ptr.data();
  const int32_t* ci = A.col_idx.data();
  const float* va = A.values.data();
  const int32_t k_last = static_cast<int32_t>(std::max<int64_t>(A.nnz() - 1, 0));
  if (N > kChunk && static_cast<size_t>(A.cols) * N * sizeof(float) > kRowOuterBytes) {
    // B far larger than the caches: each row's chunks one after the other, so a gathered row of
    // B is read whole while its lines are fresh (chunk-outer passes gather every row again).
    for (int r = r0; r < r1; ++r)
      for (int n0 = 0; n0 < N; n0 += kChunk) {
        const int n = std::min(kChunk, N - n0);
        pick_spmm(n)(ci, va, rp[r], rp[r + 1], k_last, B + n0, static_cast<size_t>(N),
                     c0 + static_cast<size_t>(r - r0) * ldc + n0, beta, lanes(n % VL));
      }
    return;
  }
  for (int n0 = 0; n0 < N; n0 += kChunk) {
    const int n = std::min(kChunk, N - n0);
    const auto fn = pick_spmm(n);
    const vmask tail = lanes(n % VL);
    for (int r = r0; r < r1; ++r)
      fn(ci, va, rp[r], rp[r + 1], k_last, B + n0, static_cast<size_t>(N),
         c0 + static_cast<size_t>(r - r0) * ldc + n0, beta, tail);
  }
}

// Column blocks [cb0, cb1) (of 16 columns) of at (cols, rows) = a (rows, cols)ᵀ + beta·at.
// Each block walks down a's rows in VL×VL register transposes, so at's rows are written as
// sequential streams.
void transpose_blocks(int rows, int cols, const float* a, float* at, int cb0, int cb1,
                      float beta = 0.0f) {
  const vf bv = vset1(beta);
  // Walk along the shorter stride: a power-of-two stride of 4 KiB (e.g. 1024 floats) on the
  // strided side maps 16 lines into one L1 set and costs ~2× (measured on 1024-wide shapes).
  const bool rows_outer = rows < cols;
  const int r_blocks = (rows + VL - 1) / VL;
  const int c_lo = cb0 * 16, c_hi = std::min(cols, cb1 * 16);
  const int c_blocks = c_lo < c_hi ? (c_hi - c_lo + VL - 1) / VL : 0;
  const int n_outer = rows_outer ? r_blocks : c_blocks, n_inner = rows_outer ? c_blocks : r_blocks;
  for (int o = 0; o < n_outer; ++o) {
    for (int in = 0; in < n_inner; ++in) {
      const int r0 = VL * (rows_outer ? o : in), c0 = c_lo + VL * (rows_outer ? in : o);
      const int nr = std::min(VL, rows - r0);
      const int nc = std::min(VL, c_hi - c0);
      const vmask mc = lanes(nc);
      vf r[VL];
      for (int i = 0; i < VL; ++i) {
        const float* src = a + static_cast<size_t>(r0 + i) * cols + c0;
        r[i] = i >= nr ? vzero() : nc == VL ? vloadu(src) : vloadu(mc, src);
      }
      transpose(r);
      const vmask mr = lanes(nr);
      for (int j = 0; j < nc; ++j) {
        float* dst = at + static_cast<size_t>(c0 + j) * rows + r0;
        vf v = r[j];
        if (beta != 0.0f) v = vfmadd(bv, vloadu(mr, dst), v);
        if (nr == VL) vstoreu(dst, v);
        else vstoreu(dst, mr, v);
      }
    }
  }
}

// out[k] (+)= dot(xrow, Y[cols[k], :]) for k in [k0, k1); N = VL·NV (last vector masked if TAIL).
// VL nonzeros at a time give VL partial-sum vectors that one transpose-add tree reduces.
template <int NV, bool TAIL>
void sddmm_row(const int32_t* cols, int32_t k0, int32_t k1, int32_t k_last, const float* xrow,
               const float* Y, size_t ldy, float* out, bool accumulate, vmask tail) {
  vf xv[NV];
  for (int v = 0; v < NV; ++v) xv[v] = load_v<NV, TAIL>(xrow, v, tail);
  for (int32_t k = k0; k < k1; k += VL) {
    const int cnt = std::min<int32_t>(VL, k1 - k);
    vf d[VL];
    for (int i = 0; i < VL; ++i) {
      if (i < cnt) {
        const float* yr = Y + static_cast<size_t>(cols[k + i]) * ldy;
        if (kPrefetch > 0) {
          const float* p = Y + static_cast<size_t>(cols[std::min(k + i + kPrefetch, k_last)]) * ldy;
          for (int v = 0; v < NV; v += 64 / (4 * VL)) prefetch(p + VL * v);
        }
        vf s0 = vmul(xv[0], load_v<NV, TAIL>(yr, 0, tail));
        vf s1 = vzero();
        for (int v = 1; v < NV; ++v) {
          if (v & 1) s1 = vfmadd(xv[v], load_v<NV, TAIL>(yr, v, tail), s1);
          else s0 = vfmadd(xv[v], load_v<NV, TAIL>(yr, v, tail), s0);
        }
        d[i] = vadd(s0, s1);
      } else {
        d[i] = vzero();
      }
    }
    vf sums = hsum(d);
    const vmask m = lanes(cnt);
    if (accumulate) sums = vadd(vloadu(m, out + k), sums);
    vstoreu(out + k, m, sums);
  }
}

// The same for any N (X's row re-read from L1 per nonzero).
void sddmm_row_any(const int32_t* cols, int32_t k0, int32_t k1, const float* xrow,
                   const float* Y, int N, float* out, bool accumulate) {
  const int full = N / VL;
  const vmask tail = lanes(N % VL);
  for (int32_t k = k0; k < k1; k += VL) {
    const int cnt = std::min<int32_t>(VL, k1 - k);
    vf d[VL];
    for (int i = 0; i < VL; ++i) {
      vf s0 = vzero(), s1 = vzero();
      if (i < cnt) {
        const float* yr = Y + static_cast<size_t>(cols[k + i]) * N;
        int v = 0;
        for (; v + 2 <= full; v += 2) {
          s0 = vfmadd(vloadu(xrow + VL * v), vloadu(yr + VL * v), s0);
          s1 = vfmadd(vloadu(xrow + VL * v + VL), vloadu(yr + VL * v + VL), s1);
        }
        if (v < full) s0 = vfmadd(vloadu(xrow + VL * v), vloadu(yr + VL * v), s0);
        if (N % VL) s1 = vfmadd(vloadu(tail, xrow + VL * full), vloadu(tail, yr + VL * full), s1);
      }
      d[i] = vadd(s0, s1);
    }
    vf sums = hsum(d);
    const vmask m = lanes(cnt);
    if (accumulate) sums = vadd(vloadu(m, out + k), sums);
    vstoreu(out + k, m, sums);
  }
}

template <int NV, bool TAIL>
struct SddmmRow {
  static constexpr auto fn = &sddmm_row<NV, TAIL>;
};


// X points at row r0 (rows [r0, r1) of the dense left operand, N floats each).
void sddmm_rows(const CsrMatrix& P, int r0, int r1, const float* X, const float* Y, int N,
                float* out, bool accumulate) {
  const int32_t* rp = P.row_ptr.data();
  const int32_t* ci = P.col_idx.data();
  if (N > kChunk) {
    for (int r = r0; r < r1; ++r)
      sddmm_row_any(ci, rp[r], rp[r + 1], X + static_cast<size_t>(r - r0) * N, Y, N, out, accumulate);
    return;
  }
  const auto fn = pick_nv<SddmmRow>(N);
  const int32_t k_last = static_cast<int32_t>(std::max<int64_t>(P.nnz() - 1, 0));
  const vmask tail = lanes(N % VL);
  for (int r = r0; r < r1; ++r)
    if (rp[r] < rp[r + 1])
      fn(ci, rp[r], rp[r + 1], k_last, X + static_cast<size_t>(r - r0) * N, Y, static_cast<size_t>(N), out,
         accumulate, tail);
}


// C[:, n0:n1] += Aᵀ·B[:, n0:n1]
void scatter_cols(const CsrMatrix& A, const float* B, int N, float* C, int n0, int n1) {
  const int32_t* rp = A.row_ptr.data();
  const int32_t* ci = A.col_idx.data();
  const float* va = A.values.data();
  for (int c0 = n0; c0 < n1; c0 += kChunk) {
    const int n = std::min(kChunk, n1 - c0);
    const auto fn = pick_scatter(n);
    const vmask tail = lanes(n % VL);
    for (int m = 0; m < A.rows; ++m)
      if (rp[m] < rp[m + 1])
        fn(ci, va, rp[m], rp[m + 1], B + static_cast<size_t>(m) * N + c0, C + c0,
           static_cast<size_t>(N), tail);
  }
}


// ---- x-stationary tile kernel for the Linear layout (y (B, OUT) = x (B, IN) · Wᵀ) ----
// A tile of TB = VL·V batch rows of x is packed transposed, xtile (IN, TB): each nonzero W[o, k]
// then costs V broadcast-FMAs with the TB floats at xtile[k]. VL rows of W give VL×V vectors
// (y[b0 : b0 + TB, o] for VL o's) that register transposes turn into row pieces of y, so neither
// x nor y goes through a transposed copy in memory.

// xtile (IN, ld) columns [c0, c0 + VL) = x[b0 : b0 + nb, :]ᵀ, lanes past nb zero.
// Only k-blocks [kb0, kb1) (of VL) when given.
// The VL rows of x are VL streams read one line at a time; a layer's input is often fresh from
// memory (the first layer's batch) and the loads stalled: each row's line kPackPrefetch floats
// ahead is prefetched (pack's share of a CSR LeNet-300 step at 95%: 19% → 12–14% of the samples
// 64 floats ahead, 15% at 128; Zen 5).
constexpr int kPackPrefetch = 64;
void pack_tile(const float* x, int IN, int b0, int nb, float* xtile, int ld, int kb0 = 0,
               int kb1 = -1) {
  if (kb1 < 0) kb1 = (IN + VL - 1) / VL;
  for (int k0 = VL * kb0; k0 < std::min(IN, VL * kb1); k0 += VL) {
    const int nk = std::min(VL, IN - k0);
    const vmask mk = lanes(nk);
    vf r[VL];
    for (int i = 0; i < VL; ++i) {
      if (i >= nb) {
        r[i] = vzero();
        continue;
      }
      const float* row = x + static_cast<size_t>(b0 + i) * IN;
      if (k0 + kPackPrefetch < IN) prefetch(row + k0 + kPackPrefetch);
      r[i] = vloadu(mk, row + k0);
    }
    transpose(r);
    for (int j = 0; j < nk; ++j) vstore(xtile + static_cast<size_t>(k0 + j) * ld, r[j]);
  }
}

// out[v] = Σ_k vals[k]·xtile[cols[k], VL·v : VL·v + VL] over [k0, k1). Nonzero i goes to partial
// sum i % P; P·V = kChains independent FMA chains keep both FMA pipes busy through the 4-cycle
// latency; the partials are added in a fixed order.
#ifndef ST_SPMM_CHAINS
#define ST_SPMM_CHAINS 4
#endif
constexpr int kChains = ST_SPMM_CHAINS;
template <int V>
inline void tile_row(const int32_t* cols, const float* vals, int32_t k0, int32_t k1,
                     const float* xtile, vf* out) {
  constexpr int P = V >= kChains ? 1 : kChains / V;
  constexpr size_t ld = VL * V;
  vf p[P][V];
  for (int q = 0; q < P; ++q)
    for (int v = 0; v < V; ++v) p[q][v] = vzero();
  int32_t k = k0;
  for (; k + P <= k1; k += P)
    for (int q = 0; q < P; ++q) {
      const vf a = vset1(vals[k + q]);
      const float* xr = xtile + ld * static_cast<size_t>(cols[k + q]);
      for (int v = 0; v < V; ++v) p[q][v] = vfmadd(a, vload(xr + VL * v), p[q][v]);
    }
  for (int q = 0; k + q < k1; ++q) {
    const vf a = vset1(vals[k + q]);
    const float* xr = xtile + ld * static_cast<size_t>(cols[k + q]);
    for (int v = 0; v < V; ++v) p[q][v] = vfmadd(a, vload(xr + VL * v), p[q][v]);
  }
  for (int v = 0; v < V; ++v) {  // pairwise tree over the P partials
    for (int width = P / 2; width >= 1; width /= 2)
      for (int q = 0; q < width; ++q) p[q][v] = vadd(p[q][v], p[q + width][v]);
    out[v] = p[0][v];
  }
}

// y[b0 : b0 + nb, o0 : o1] = [relu]((W[o0 : o1, :] · xtileᵀ)ᵀ + beta·y [+ bias]); o0 is a
// multiple of VL. The bias and the relu are applied to each vector as it is stored, in the order
// bias_add_rows and relu_forward apply them to a stored y (the same bits). The pf_bytes at pf (the
// rows of x the caller packs next) are prefetched over the first half of the row groups.
template <int V>
void tile_rows(const CsrMatrix& Wm, int o0, int o1, const float* xtile, int b0, int nb, float* y,
               float beta, const float* bias, bool relu, const char* pf = nullptr,
               size_t pf_bytes = 0) {
  const size_t pf_lines = (pf_bytes + 63) / 64;
  const int groups = (o1 - o0 + VL - 1) / VL;
  const size_t pf_groups = std::max(1, groups / 2);
  const size_t pf_per_group = (pf_lines + pf_groups - 1) / pf_groups;
  size_t pf_next = 0;
  const int OUT = Wm.rows;
  const int32_t* rp = Wm.row_ptr.data();
  const int32_t* ci = Wm.col_idx.data();
  const float* va = Wm.values.data();
  const vf bv = vset1(beta);
  alignas(64) float rows_buf[V > 1 ? VL * V * VL : 1];
  for (int g = o0; g < o1; g += VL) {
    const int ng = std::min(VL, o1 - g);
    const vmask mo = lanes(ng);
    const vf bias_v = bias != nullptr ? vloadu(mo, bias + g) : vzero();
    for (const size_t e = std::min(pf_lines, pf_next + pf_per_group); pf_next < e; ++pf_next)
      prefetch(reinterpret_cast<const float*>(pf + 64 * pf_next));
    vf acc[VL];
    for (int v = 0; v < V; ++v) {
      if constexpr (V == 1) {
        for (int i = 0; i < VL; ++i)
          if (i < ng) tile_row<1>(ci, va, rp[g + i], rp[g + i + 1], xtile, &acc[i]);
          else acc[i] = vzero();
      } else {
        if (v == 0)
          for (int i = 0; i < VL; ++i) {
            vf r[V];
            if (i < ng) tile_row<V>(ci, va, rp[g + i], rp[g + i + 1], xtile, r);
            else for (int w = 0; w < V; ++w) r[w] = vzero();
            for (int w = 0; w < V; ++w) vstore(rows_buf + VL * (w * VL + i), r[w]);
          }
        for (int i = 0; i < VL; ++i) acc[i] = vload(rows_buf + VL * (v * VL + i));
      }
      transpose(acc);  // acc[j] = y[b0 + VL·v + j, g : g + VL]
      const int nbv = std::min(VL, nb - VL * v);
      for (int j = 0; j < nbv; ++j) {
        float* dst = y + static_cast<size_t>(b0 + VL * v + j) * OUT + g;
        vf val = acc[j];
        if (beta != 0.0f) val = vfmadd(bv, vloadu(mo, dst), val);
        if (bias != nullptr) val = vadd(val, bias_v);
        if (relu) val = vmax(val, vzero());  // NaN and -0 give +0, as relu_forward's x > 0 ? x : 0
        if (ng == VL) vstoreu(dst, val);
        else vstoreu(dst, mo, val);
      }
    }
  }
}

// 64-byte aligned view of a grow-only scratch buffer.
float* aligned_scratch(std::vector<float>& v, size_t n) {
  float* p = scratch(v, n + 16);
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~static_cast<uintptr_t>(63));
}

constexpr int kDyxTile = 32;  // batch rows per tile of the weight gradient (and of x_tiles)
constexpr int kDyxParts = kDyxTile / VL;  // vectors per tile line

// xtile (IN, 32) = x[32·tile : 32·tile + 32, :]ᵀ, lanes past the batch zero.
void pack_dyx_tile(const float* x, int IN, int batch, int tile, float* xtile) {
  for (int h = 0; h < kDyxParts; ++h) {
    const int b0 = tile * kDyxTile + VL * h;
    pack_tile(x, IN, b0, std::max(0, std::min(VL, batch - b0)), xtile + VL * h, kDyxTile);
  }
}

// x_tiles (when given and TB is the weight gradient's 32): the thread that takes a tile's first
// row chunk packs it there instead of into its own buffer, so the weight gradient can reuse it.
template <int V>
void xwt_tiled(const CsrMatrix& Wm, const float* x, int batch, float* y, float beta,
               float* x_tiles, const float* bias, bool relu) {
  constexpr int TB = VL * V;
  static_assert(TB <= kDyxTile, "x_tiles holds 32-row tiles");
  const int OUT = Wm.rows, IN = Wm.cols;
  const int tiles = (batch + TB - 1) / TB;
  float* shared_tiles = TB == kDyxTile ? x_tiles : nullptr;
  const int T = threads_for((Wm.nnz() + OUT + IN) * static_cast<int64_t>(batch));
  parallel_region(T, [&](int t, int nt) {
    // Work units: (batch tile, row chunk), tile-major. Whole tiles per thread when they divide
    // evenly (each thread packs only its own tiles); otherwise every tile is split into nt row
    // chunks of equal nnz.
    const int chunks = tiles % nt == 0 ? 1 : nt;
    const int units = tiles * chunks;
    const int u0 = even_split(units, t, nt), u1 = even_split(units, t + 1, nt);
    static thread_local std::vector<float> tile_buf;
    float* xtile = aligned_scratch(tile_buf, static_cast<size_t>(IN) * TB);
    float* cur = xtile;
    int packed = -1;
    for (int u = u0; u < u1; ++u) {
      const int tile = u / chunks, chunk = u % chunks;
      const int b0 = tile * TB, nb = std::min(TB, batch - b0);
      const int r0 = std::min(OUT, VL * split_units(Wm.row_ptr, OUT, VL, chunk, chunks));
      const int r1 = std::min(OUT, VL * split_units(Wm.row_ptr, OUT, VL, chunk + 1, chunks));
      const bool share = shared_tiles != nullptr && chunk == 0;  // x_tiles must hold every tile
      if (r0 >= r1 && !share) continue;
      if (packed != tile) {  // a tile's first unit in this thread's range is its chunk 0 if any
        cur = share ? shared_tiles + static_cast<size_t>(tile) * IN * TB : xtile;
        for (int v = 0; v < V; ++v)
          pack_tile(x, IN, b0 + VL * v, std::max(0, std::min(VL, nb - VL * v)), cur + VL * v, TB);
        packed = tile;
      }
      // The next tile's rows of x, when this thread packs it next, come in meanwhile: the first
      // layer's batch is often fresh from memory, and packing it from there took 7–8 k cycles per
      // 16 rows of LeNet-300's input (Zen 5, in the training step), 2.6–4.2 k after this.
      const char* pf = nullptr;
      size_t pf_bytes = 0;
      if (u + 1 < u1 && (u + 1) / chunks != tile) {
        pf = reinterpret_cast<const char*>(x + static_cast<size_t>(b0 + TB) * IN);
        pf_bytes = static_cast<size_t>(std::min(TB, batch - b0 - TB)) * IN * sizeof(float);
      }
      if (r0 < r1) tile_rows<V>(Wm, r0, r1, cur, b0, nb, y, beta, bias, relu, pf, pf_bytes);
    }
  });
  if (x_tiles != nullptr && shared_tiles == nullptr)  // narrow tiles ran: pack the 32-row ones
    for (int tile = 0; tile < (batch + kDyxTile - 1) / kDyxTile; ++tile)
      pack_dyx_tile(x, IN, batch, tile, x_tiles + static_cast<size_t>(tile) * IN * kDyxTile);
}


// out[k] (+)= Σ_lanes dyrow · xtile[cols[k]] over [k0, k1), for one tile of TB = 32 batch rows:
// VL nonzeros give VL partial vectors that one transpose-add tree reduces (as csr_sddmm does).
inline void sddmm_tile_row(const int32_t* cols, int32_t k0, int32_t k1, const float* dyrow,
                           const float* xtile, float* out, bool add) {
  vf dv[kDyxParts];
  for (int h = 0; h < kDyxParts; ++h) dv[h] = vload(dyrow + VL * h);
  for (int32_t k = k0; k < k1; k += VL) {
    const int cnt = std::min<int32_t>(VL, k1 - k);
    vf d[VL];
    for (int i = 0; i < VL; ++i) {
      if (i < cnt) {
        const float* xr = xtile + kDyxTile * static_cast<size_t>(cols[k + i]);
        vf s = vmul(dv[0], vload(xr));
        for (int h = 1; h < kDyxParts; ++h) s = vfmadd(dv[h], vload(xr + VL * h), s);
        d[i] = s;
      } else {
        d[i] = vzero();
      }
    }
    vf sums = hsum(d);
    const vmask m = lanes(cnt);
    if (add) sums = vadd(vloadu(m, out + k), sums);
    vstoreu(out + k, m, sums);
  }
}

// One tile's pass of the weight gradient over row groups [r0, r1) (r0 a multiple of VL):
// out[k] (+)= Σ_{b in tile} dy[b, row(k)]·x[b, col(k)]. dy's VL-row × 32-batch pieces are
// transposed in registers on the way; xtile is the tile's (IN, 32) pack.
void sddmm_tile_rows(const CsrMatrix& Wm, int r0, int r1, const float* dy, int batch, int tile,
                     const float* xtile, float* out, bool add) {
  constexpr int TB = kDyxTile;
  const int OUT = Wm.rows;
  const int32_t* rp = Wm.row_ptr.data();
  const int32_t* ci = Wm.col_idx.data();
  alignas(64) float dyblk[VL * TB];
  for (int g = r0; g < r1; g += VL) {
    const int ng = std::min(VL, r1 - g);
    if (rp[g] == rp[g + ng]) continue;
    const vmask mg = lanes(ng);
    for (int h = 0; h < kDyxParts; ++h) {  // dyblk[i][VL·h + j] = dy[b0 + j, g + i]
      const int b0 = tile * TB + VL * h, nb = std::max(0, std::min(VL, batch - b0));
      vf r[VL];
      for (int i = 0; i < VL; ++i)
        r[i] = i < nb ? vloadu(mg, dy + static_cast<size_t>(b0 + i) * OUT + g) : vzero();
      transpose(r);
      for (int i = 0; i < VL; ++i) vstore(dyblk + TB * i + VL * h, r[i]);
    }
    for (int i = 0; i < ng; ++i)
      sddmm_tile_row(ci, rp[g + i], rp[g + i + 1], dyblk + TB * i, xtile, out, add);
  }
}

// dW at W's nonzeros (+)= (dyᵀ · x) there, in tiles of 32 batch rows (the SpMM's x-stationary
// layout). Every output adds the tiles' partial sums in tile order (out = ((p0 + p1) + p2) + …,
// each pᵢ complete before it is added), whatever the split: the same bits for any thread count.
// Two splits, each thread packing its own tiles into its own buffer (a pack shared by the team
// put half of every thread's gathers in the other core's L2: 2× slower at 99% on 1024²). Given
// x_tiles (the forward's packs, kept by the layer for its backward), nothing is packed where each
// thread would read only tiles its own core packed: on one thread, and in the tile split when the
// forward's threads took whole tiles (the same ones). Elsewhere the row split packs as without
// them: reading the other core's packs made forward + dW 0.74–0.85× as fast (1024² at 90% and
// 1000² batch 64 at 95%, 2 threads, alternating calls).
//   rows:  each thread takes rows of equal nnz and walks them tile by tile, so the tile it
//          gathers from (128 KiB at IN = 1024) stays in L2; every thread packs every tile.
//   tiles: each thread takes whole tiles for all rows and packs only those; thread 0 adds its
//          tiles into the output, the others write each tile's partials to a buffer of nnz
//          floats, added afterwards in tile order. Taken where the buffers' traffic
//          (nnz per extra tile) is below the pack it saves (IN·batch) and that pack is large
//          enough to pay for the extra barrier: at 95–99% on 1024² (batch 128) the row split
//          spent ~40% of its time packing, and 2 threads ran it barely faster than 1. On LeNet's
//          layers (IN·batch ≤ 51 K) the tile split was up to 10% slower; at 90% on 1024² and
//          4096² it lost to the row split (measured side by side, 2 threads, AVX-512).
constexpr int64_t kTileSplitMinPack = int64_t{1} << 17;
void sddmm_dyx_tiled(const CsrMatrix& Wm, const float* dy, const float* x, int batch,
                     float* dw_values, bool accumulate, const float* x_tiles) {
  constexpr int TB = kDyxTile;
  const int OUT = Wm.rows, IN = Wm.cols;
  const int tiles = (batch + TB - 1) / TB;
  const size_t tile_size = static_cast<size_t>(IN) * TB;
  const int64_t nnz = Wm.nnz();
  const int T = threads_for((nnz + OUT + IN) * static_cast<int64_t>(batch));
  const int first = even_split(tiles, 1, T);  // thread 0's tiles in the tile split
  const int64_t pack = static_cast<int64_t>(IN) * batch;
  const bool by_tiles =
      T > 1 && tiles >= T && nnz * (tiles - first) < pack && pack >= kTileSplitMinPack;
  // The forward's packs are read where no thread reads another's: one thread, or the tile split
  // when the forward's threads took whole tiles (tiles % T == 0: the same tiles as here).
  const float* packed =
      x_tiles != nullptr && (T == 1 || (by_tiles && tiles % T == 0)) ? x_tiles : nullptr;
  float* parts = nullptr;
  if (by_tiles) {
    static thread_local std::vector<float> parts_buf;
    parts = scratch(parts_buf, static_cast<size_t>(nnz) * (tiles - first));
  }
  parallel_region(T, [&](int t, int nt) {
    static thread_local std::vector<float> tile_buf;
    float* xtile = aligned_scratch(tile_buf, tile_size);
    if (by_tiles) {
      for (int tile = even_split(tiles, t, nt); tile < even_split(tiles, t + 1, nt); ++tile) {
        const float* xt = xtile;
        if (packed != nullptr) xt = packed + static_cast<size_t>(tile) * tile_size;
        else pack_dyx_tile(x, IN, batch, tile, xtile);
        if (tile < first)
          sddmm_tile_rows(Wm, 0, OUT, dy, batch, tile, xt, dw_values, accumulate || tile > 0);
        else
          sddmm_tile_rows(Wm, 0, OUT, dy, batch, tile, xt,
                          parts + static_cast<size_t>(tile - first) * nnz, false);
      }
#pragma omp barrier
      const int64_t k0 = nnz * t / nt, k1 = nnz * (t + 1) / nt;
      for (int p = 0; p < tiles - first; ++p) {
        const float* src = parts + static_cast<size_t>(p) * nnz;
        for (int64_t k = k0; k < k1; ++k) dw_values[k] += src[k];
      }
      return;
    }
    const int r0 = std::min(OUT, VL * split_units(Wm.row_ptr, OUT, VL, t, nt));
    const int r1 = std::min(OUT, VL * split_units(Wm.row_ptr, OUT, VL, t + 1, nt));
    if (r0 >= r1) return;
    for (int tile = 0; tile < tiles; ++tile) {
      const float* xt = xtile;
      if (packed != nullptr) xt = packed + static_cast<size_t>(tile) * tile_size;
      else pack_dyx_tile(x, IN, batch, tile, xtile);
      sddmm_tile_rows(Wm, r0, r1, dy, batch, tile, xt, dw_values, accumulate || tile > 0);
    }
  });
}

#else  // portable fallbacks (auto-vectorized loops), same contracts and sum orders per element

void spmm_rows(const CsrMatrix& A, int r0, int r1, const float* B, int N, float* c0, size_t ldc,
               float beta) {
  for (int r = r0; r < r1; ++r) {
    float* c = c0 + static_cast<size_t>(r - r0) * ldc;
    for (int n = 0; n < N; ++n) c[n] = beta == 0.0f ? 0.0f : beta * c[n];
    std::vector<float> acc(N, 0.0f);
    for (int32_t k = A.row_ptr[r]; k < A.row_ptr[r + 1]; ++k) {
      const float a = A.values[k];
      const float* b = B + static_cast<size_t>(A.col_idx[k]) * N;
      for (int n = 0; n < N; ++n) acc[n] += a * b[n];
    }
    for (int n = 0; n < N; ++n) c[n] += acc[n];
  }
}

void transpose_blocks(int rows, int cols, const float* a, float* at, int cb0, int cb1,
                      float beta = 0.0f) {
  for (int c = cb0 * 16; c < std::min(cols, cb1 * 16); ++c)
    for (int r = 0; r < rows; ++r) {
      float& dst = at[static_cast<size_t>(c) * rows + r];
      dst = a[static_cast<size_t>(r) * cols + c] + (beta == 0.0f ? 0.0f : beta * dst);
    }
}

void sddmm_rows(const CsrMatrix& P, int r0, int r1, const float* X, const float* Y, int N,
                float* out, bool accumulate) {
  for (int r = r0; r < r1; ++r) {
    const float* x = X + static_cast<size_t>(r - r0) * N;
    for (int32_t k = P.row_ptr[r]; k < P.row_ptr[r + 1]; ++k) {
      const float* y = Y + static_cast<size_t>(P.col_idx[k]) * N;
      float s = 0.0f;
      for (int n = 0; n < N; ++n) s += x[n] * y[n];
      out[k] = accumulate ? out[k] + s : s;
    }
  }
}

void scatter_cols(const CsrMatrix& A, const float* B, int N, float* C, int n0, int n1) {
  for (int m = 0; m < A.rows; ++m)
    for (int32_t k = A.row_ptr[m]; k < A.row_ptr[m + 1]; ++k) {
      const float a = A.values[k];
      float* c = C + static_cast<size_t>(A.col_idx[k]) * N;
      const float* b = B + static_cast<size_t>(m) * N;
      for (int n = n0; n < n1; ++n) c[n] += a * b[n];
    }
}

#endif


}  // namespace

void transpose_dense(int rows, int cols, const float* a, float* at) {
  if (rows == 0 || cols == 0) return;
  const int cblocks = (cols + 15) / 16;
  // Two threads pay from 128 Ki elements (a copy, not multiply-adds): the sparse conv's layout
  // changes on LeNet-5 (0.2–0.7 M elements) ran serial at 4 M and made its CSR step 17% slower.
  const int T = threads_for(static_cast<int64_t>(rows) * cols * 8);
  parallel_region(T, [&](int t, int nt) {
    transpose_blocks(rows, cols, a, at, even_split(cblocks, t, nt), even_split(cblocks, t + 1, nt));
  });
}

void csr_spmm(const CsrMatrix& A, const float* B, int N, float* C, float beta) {
  if (A.rows == 0 || N == 0) return;
  const int T = threads_for((A.nnz() + A.rows) * N);
  parallel_region(T, [&](int t, int nt) {
    const int r0 = split_units(A.row_ptr, A.rows, 1, t, nt);
    const int r1 = split_units(A.row_ptr, A.rows, 1, t + 1, nt);
    if (r0 < r1) spmm_rows(A, r0, r1, B, N, C + static_cast<size_t>(r0) * N, N, beta);
  });
}

void csr_spmm_t(const CsrMatrix& A, const float* B, int N, float* C, float beta) {
  const int K = A.cols;
  if (K == 0 || N == 0) return;
  const int vecs = (N + 15) / 16;
  const int T = std::min(threads_for((A.nnz() + K) * N), vecs);
  parallel_region(T, [&](int t, int nt) {
    const int n0 = std::min(N, 16 * even_split(vecs, t, nt));
    const int n1 = std::min(N, 16 * even_split(vecs, t + 1, nt));
    if (n0 < n1) {
      for (int k = 0; k < K; ++k) {
        float* c = C + static_cast<size_t>(k) * N;
        for (int n = n0; n < n1; ++n) c[n] = beta == 0.0f ? 0.0f : beta * c[n];
      }
      scatter_cols(A, B, N, C, n0, n1);
    }
  });
}

void csr_sddmm(const CsrMatrix& P, const float* X, const float* Y, int N, float* out_values,
               bool accumulate) {
  if (P.nnz() == 0) return;
  if (N == 0) {
    if (!accumulate) std::fill_n(out_values, P.nnz(), 0.0f);
    return;
  }
  const int T = threads_for((P.nnz() + P.rows) * N);
  parallel_region(T, [&](int t, int nt) {
    const int r0 = split_units(P.row_ptr, P.rows, 1, t, nt);
    const int r1 = split_units(P.row_ptr, P.rows, 1, t + 1, nt);
    sddmm_rows(P, r0, r1, X + static_cast<size_t>(r0) * N, Y, N, out_values, accumulate);
  });
}

void csr_spmm_xwt(const CsrMatrix& W, const float* x, int batch, float* y, float beta,
                  float* x_tiles, const float* bias, bool relu) {
  if (batch == 0 || W.rows == 0) return;
#if defined(ST_HAVE_SIMD)
  // 32-row tiles: one index/broadcast per 2 zmm FMAs (4 ymm) and the tile (IN × 128 B) still fits
  // L2 at IN = 4096; 16- and 64-row tiles measured slower at 1024² and 4096² (90–99% sparsity).
  // Small batches take the narrowest tile that holds them.
  if (batch > 16) xwt_tiled<32 / VL>(W, x, batch, y, beta, x_tiles, bias, relu);
  else if (VL == 8 && batch > 8) xwt_tiled<2>(W, x, batch, y, beta, x_tiles, bias, relu);
  else xwt_tiled<1>(W, x, batch, y, beta, x_tiles, bias, relu);
#else
  (void)x_tiles;
  const int OUT = W.rows, IN = W.cols;
  static thread_local std::vector<float> xt_buf, yt_buf;
  float* xt = scratch(xt_buf, static_cast<size_t>(IN) * batch);
  float* yt = scratch(yt_buf, static_cast<size_t>(OUT) * batch);
  const int T = threads_for((W.nnz() + OUT + IN) * static_cast<int64_t>(batch));
  parallel_region(T, [&](int t, int nt) {
    const int ib = (IN + 15) / 16, bb = (batch + 15) / 16;
    transpose_blocks(batch, IN, x, xt, even_split(ib, t, nt), even_split(ib, t + 1, nt));
#pragma omp barrier
    const int r0 = split_units(W.row_ptr, OUT, 1, t, nt);
    const int r1 = split_units(W.row_ptr, OUT, 1, t + 1, nt);
    if (r0 < r1) spmm_rows(W, r0, r1, xt, batch, yt + static_cast<size_t>(r0) * batch, batch, 0.0f);
#pragma omp barrier
    transpose_blocks(OUT, batch, yt, y, even_split(bb, t, nt), even_split(bb, t + 1, nt), beta);
  });
  if (bias != nullptr) ST_ISA_NS::bias_add_rows(batch, OUT, bias, y);
  if (relu) ST_ISA_NS::relu_forward(static_cast<int64_t>(batch) * OUT, y, y);
#endif
}

void csr_spmm_dyw(const CsrMatrix& Wt, const float* dy, int batch, float* dx, float beta) {
  ST_ISA_NS::csr_spmm_xwt(Wt, dy, batch, dx, beta, nullptr, nullptr, false);
}

void csr_sddmm_dyx(const CsrMatrix& W, const float* dy, const float* x, int batch,
                   float* dw_values, bool accumulate, const float* x_tiles) {
  if (W.nnz() == 0) return;
  if (batch == 0) {
    if (!accumulate) std::fill_n(dw_values, W.nnz(), 0.0f);
    return;
  }
#if defined(ST_HAVE_SIMD)
  sddmm_dyx_tiled(W, dy, x, batch, dw_values, accumulate, x_tiles);
#else
  (void)x_tiles;
  const int OUT = W.rows, IN = W.cols;
  static thread_local std::vector<float> dyt_buf, xt_buf;
  float* dyt = scratch(dyt_buf, static_cast<size_t>(OUT) * batch);
  float* xt = scratch(xt_buf, static_cast<size_t>(IN) * batch);
  const int T = threads_for((W.nnz() + OUT + IN) * static_cast<int64_t>(batch));
  parallel_region(T, [&](int t, int nt) {
    const int ob = (OUT + 15) / 16, ib = (IN + 15) / 16;
    // One split over both transposes' column blocks keeps the threads' shares even.
    const int b0 = even_split(ob + ib, t, nt), b1 = even_split(ob + ib, t + 1, nt);
    transpose_blocks(batch, OUT, dy, dyt, std::min(b0, ob), std::min(b1, ob));
    transpose_blocks(batch, IN, x, xt, std::max(b0 - ob, 0), std::max(b1 - ob, 0));
#pragma omp barrier
    const int r0 = split_units(W.row_ptr, OUT, 1, t, nt);
    const int r1 = split_units(W.row_ptr, OUT, 1, t + 1, nt);
    sddmm_rows(W, r0, r1, dyt + static_cast<size_t>(r0) * batch, xt, batch, dw_values, accumulate);
  });
#endif
}

}  // namespace st::kernels::ST_ISA_NS
