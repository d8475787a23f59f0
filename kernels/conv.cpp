// kernels/conv.cpp — 2-D convolution by im2col/col2im + sgemm (NCHW activations, OIHW weights).
//   conv2d_forward:          y_n (OC, OH·OW)     = w (OC, C·KH·KW) · cols_n (C·KH·KW, OH·OW) + b
//   conv2d_backward_data:    cols_n              = wᵀ (C·KH·KW, OC) · dy_n (OC, OH·OW); dx_n = col2im
//   conv2d_backward_weights: dw (OC, C·KH·KW)   (+)= Σ_n dy_n · cols_nᵀ ; db (OC) (+)= Σ dy
// Batch parallelism: images are split statically over threads, each thread with its own column
// buffer and (for weights) its own partial dw/db, reduced in thread order afterwards — so results
// are deterministic for a fixed thread count. With a single image the sgemm itself goes parallel.
// Work and partials are indexed by chunk (0..nt-1), not by the thread that happens to run them.
// A 1×1, stride-1, unpadded convolution skips im2col (the input already is its column matrix).
// The weight gradient of a layer with few input channels (C <= 4, stride 1) runs a direct kernel
// instead, on the vector instruction sets (direct_backward_weights below).
// The workspace is sized for omp_get_max_threads(): query conv2d_workspace_floats again if the
// thread count grows.
// Reference: kernels/reference.cpp. Tests: tests/kernels/test_conv.cpp.
#include "kernels/conv.h"
#include "kernels/isa_table.h"
#include "kernels/parallel.h"
#include "kernels/simd.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

namespace st::kernels {
namespace {
// The direct weight gradient's shapes (below) and the width of its zero-padded input rows: a row
// holds every column a VL-wide load can reach (OW rounded up to 16, the widest VL, plus KW − 1).
bool direct_weight_grad_shape(const Conv2dShape& s) {
  return s.C <= 4 && s.stride_h == 1 && s.stride_w == 1;
}
int direct_padded_width(const Conv2dShape& s) { return (s.OW() + 15) / 16 * 16 + s.KW - 1; }
}  // namespace
}  // namespace st::kernels

namespace st::kernels::ST_ISA_NS {
namespace {

bool is_pointwise(const Conv2dShape& s) {
  return s.KH == 1 && s.KW == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
}
size_t col_rows(const Conv2dShape& s) { return static_cast<size_t>(s.C) * s.KH * s.KW; }
size_t col_cols(const Conv2dShape& s) { return static_cast<size_t>(s.OH()) * s.OW(); }

// Threads used over the batch: the workspace is sized for omp_get_max_threads() of them.
int batch_threads(const Conv2dShape& s) {
  if (omp_in_parallel()) return 1;
  return std::max(1, std::min(omp_get_max_threads(), s.N));
}

// First and one-past-last image of thread t out of nt (static, contiguous chunks).
inline int chunk_begin(int n, int t, int nt) { return static_cast<int>(static_cast<long long>(n) * t / nt); }

inline int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Output columns [ow_lo, ow_hi) whose input column iw = ow·stride − pad + kw lies inside [0, W).
inline void valid_ow_range(const Conv2dShape& s, int kw, int& ow_lo, int& ow_hi) {
  const int OW = s.OW();
  ow_lo = std::min(OW, std::max(0, -floor_div(kw - s.pad_w, s.stride_w)));
  ow_hi = std::max(ow_lo, std::min(OW, floor_div(s.W - 1 + s.pad_w - kw, s.stride_w) + 1));
}

// ---- Direct weight gradient for convolutions with few input channels ----------------------------
// A first layer (C = 1 for MNIST) has C·KH·KW = 9–25 taps: im2col makes a 25-row matrix out of a
// 3 KB image and the GEMM's inner dimension is tiny, and oneDNN's blocked kernels pad C to a whole
// channel block. Here dw[oc][c,kh,kw] = Σ_n Σ_oh Σ_ow dy[n][oc][oh][ow] · xpad[n][c][oh+kh][ow+kw]
// runs straight off NCHW: each output row of dy is read VL columns at a time, multiplied with the
// matching (shifted) row of the zero-padded input and added into a register block of OB output
// channels × TB taps of one kernel row. 64×(1→20, 5×5, 28²), 2 threads, Zen 2: 0.50 ms against
// oneDNN's 1.6 ms (im2col + GEMM) and 2.4 ms (blocked, plus reorders).
// The batch is cut into kDirectChunks fixed chunks whose partial sums are added in chunk order, so
// the result does not depend on the number of threads.
constexpr int kDirectChunks = 4;
constexpr int kDirectOB = 4;

#if defined(ST_HAVE_SIMD)
// Taps of a kernel row per register block: a whole 5-wide row on AVX-512 (4 × 5 accumulators of
// its 32 registers), so each dy row is read once per kernel row instead of twice; 3 on AVX2, whose
// 16 registers hold 4 × 3. LeNet-5's first conv (1→20, 5×5, batch 64): 1.17× (2 threads) and
// 1.48× (1 thread) faster with 5 than with 3 on AVX-512; 5 on AVX2 was 0.72–0.89× (Intel Xeon).
constexpr int kDirectTB = VL == 16 ? 5 : 3;
struct DirectGeom {
  int OH, OW, Hp, Wp, taps, chunks, oc_blocks, kw_blocks;
};
DirectGeom direct_geom(const Conv2dShape& s) {
  DirectGeom g;
  g.OH = s.OH(), g.OW = s.OW();
  g.Hp = s.H + 2 * s.pad_h;
  g.Wp = direct_padded_width(s);
  g.taps = s.C * s.KH * s.KW;
  g.chunks = std::min(s.N, kDirectChunks);
  g.oc_blocks = (s.OC + kDirectOB - 1) / kDirectOB;
  g.kw_blocks = (s.KW + kDirectTB - 1) / kDirectTB;
  return g;
}

// The lanes of v added in lane order.
float lane_sum(vf v) {
  alignas(64) float lane[VL];
  vstore(lane, v);
  float sum = 0.f;
  for (int i = 0; i < VL; ++i) sum += lane[i];
  return sum;
}

// out[o·TB + t] = Σ over images [n0, n1) of the row products for channel oc0 + o and tap
// (c, kh, kw0 + t). Lanes past OW read dy as 0 (masked), so the padded x beyond them adds nothing.
template <int OB, int TB>
void direct_dw_block(const DirectGeom& g, int C, int OC, const float* xpad, const float* dy, int n0,
                     int n1, int oc0, int c, int kh, int kw0, float* out) {
  vf acc[OB][TB];
  for (int o = 0; o < OB; ++o)
    for (int t = 0; t < TB; ++t) acc[o][t] = vzero();
  const int full = g.OW / VL * VL;
  const vmask tail = lanes(g.OW - full);
  for (int n = n0; n < n1; ++n)
    for (int oh = 0; oh < g.OH; ++oh) {
      const float* xr = xpad + ((static_cast<size_t>(n) * C + c) * g.Hp + oh + kh) * g.Wp + kw0;
      const float* d[OB];
      for (int o = 0; o < OB; ++o)
        d[o] = dy + ((static_cast<size_t>(n) * OC + oc0 + o) * g.OH + oh) * g.OW;
      int v = 0;
      for (; v < full; v += VL) {
        vf dv[OB];
        for (int o = 0; o < OB; ++o) dv[o] = vloadu(d[o] + v);
        for (int t = 0; t < TB; ++t) {
          const vf xv = vloadu(xr + v + t);
          for (int o = 0; o < OB; ++o) acc[o][t] = vfmadd(dv[o], xv, acc[o][t]);
        }
      }
      if (v < g.OW) {
        vf dv[OB];
        for (int o = 0; o < OB; ++o) dv[o] = vloadu(tail, d[o] + v);
        for (int t = 0; t < TB; ++t) {
          const vf xv = vloadu(xr + v + t);
          for (int o = 0; o < OB; ++o) acc[o][t] = vfmadd(dv[o], xv, acc[o][t]);
        }
      }
    }
  for (int o = 0; o < OB; ++o)
    for (int t = 0; t < TB; ++t) out[o * TB + t] = lane_sum(acc[o][t]);
}

template <int OB>
void direct_dw_block_tb(int tb, const DirectGeom& g, int C, int OC, const float* xpad,
                        const float* dy, int n0, int n1, int oc0, int c, int kh, int kw0, float* out) {
  switch (tb) {
#if defined(__AVX512F__)
    case 5: return direct_dw_block<OB, 5>(g, C, OC, xpad, dy, n0, n1, oc0, c, kh, kw0, out);
    case 4: return direct_dw_block<OB, 4>(g, C, OC, xpad, dy, n0, n1, oc0, c, kh, kw0, out);
#endif
    case 3: return direct_dw_block<OB, 3>(g, C, OC, xpad, dy, n0, n1, oc0, c, kh, kw0, out);
    case 2: return direct_dw_block<OB, 2>(g, C, OC, xpad, dy, n0, n1, oc0, c, kh, kw0, out);
    default: return direct_dw_block<OB, 1>(g, C, OC, xpad, dy, n0, n1, oc0, c, kh, kw0, out);
  }
}

// ---- All-taps blocks: every tap of channel c's KH × KW kernel for OB output channels at once.
// Each dy row is then read once per block of channels, where the row blocks above read it once per
// kernel row (block). The same sums in the same order (each accumulator still takes the images,
// rows and lanes in turn), so the same bits.

// One vector of lanes of a dy row for every tap: acc[o][t] += dy[o][v + lanes]·x[t's shift].
// Inlined, so that the accumulators stay in registers.
template <int OB, int KH, int KW, bool MASKED>
__attribute__((always_inline)) inline void taps_step(const float* const (&d)[OB], const float* xr,
                                                     int Wp, int v, vmask tail,
                                                     vf (&acc)[OB][KH * KW]) {
  vf dv[OB];
#pragma GCC unroll 4
  for (int o = 0; o < OB; ++o) dv[o] = MASKED ? vloadu(tail, d[o] + v) : vloadu(d[o] + v);
#pragma GCC unroll 8
  for (int kh = 0; kh < KH; ++kh)
#pragma GCC unroll 8
    for (int kw = 0; kw < KW; ++kw) {
      const vf xv = vloadu(xr + static_cast<size_t>(kh) * Wp + v + kw);
#pragma GCC unroll 4
      for (int o = 0; o < OB; ++o) acc[o][kh * KW + kw] = vfmadd(dv[o], xv, acc[o][kh * KW + kw]);
    }
}

// out[o·KH·KW + t] over images [n0, n1). NV: vectors per output row when the row fits 2 (the last
// one masked if TAIL), unrolled so that the accumulators stay in registers from row to row; 0:
// counted at run time.
template <int OB, int KH, int KW, int NV, bool TAIL>
void direct_dw_taps(const DirectGeom& g, int C, int OC, const float* xpad, const float* dy, int n0,
                    int n1, int oc0, int c, float* out) {
  constexpr int T = KH * KW;
  vf acc[OB][T];
  for (int o = 0; o < OB; ++o)
    for (int t = 0; t < T; ++t) acc[o][t] = vzero();
  const int full = g.OW / VL * VL;
  const vmask tail = lanes(g.OW - full);
  // One loop over (image, row) pairs: with two nested loops GCC stored every accumulator to the
  // stack after each row.
  for (int row = n0 * g.OH; row < n1 * g.OH; ++row) {
    const int n = row / g.OH, oh = row % g.OH;
    const float* xr = xpad + ((static_cast<size_t>(n) * C + c) * g.Hp + oh) * g.Wp;
    const float* d[OB];
    for (int o = 0; o < OB; ++o)
      d[o] = dy + ((static_cast<size_t>(n) * OC + oc0 + o) * g.OH + oh) * g.OW;
    if constexpr (NV > 0) {
#pragma GCC unroll 4
      for (int i = 0; i < NV - (TAIL ? 1 : 0); ++i)
        taps_step<OB, KH, KW, false>(d, xr, g.Wp, VL * i, tail, acc);
      if (TAIL) taps_step<OB, KH, KW, true>(d, xr, g.Wp, VL * (NV - 1), tail, acc);
    } else {
      int v = 0;
      for (; v < full; v += VL) taps_step<OB, KH, KW, false>(d, xr, g.Wp, v, tail, acc);
      if (v < g.OW) taps_step<OB, KH, KW, true>(d, xr, g.Wp, v, tail, acc);
    }
  }
  for (int o = 0; o < OB; ++o)
    for (int t = 0; t < T; ++t) out[o * T + t] = lane_sum(acc[o][t]);
}
template <int OB>
void direct_dw_taps_ob(const DirectGeom& g, int C, int OC, const float* xpad, const float* dy,
                       int n0, int n1, int oc0, int c, float* out) {
  const bool tail = g.OW % VL != 0;
  auto* fn = &direct_dw_taps<OB, 3, 3, 0, false>;
  switch ((g.OW + VL - 1) / VL) {
    case 1:
      fn = tail ? &direct_dw_taps<OB, 3, 3, 1, true> : &direct_dw_taps<OB, 3, 3, 1, false>;
      break;
    case 2:
      fn = tail ? &direct_dw_taps<OB, 3, 3, 2, true> : &direct_dw_taps<OB, 3, 3, 2, false>;
      break;
    default: break;
  }
  fn(g, C, OC, xpad, dy, n0, n1, oc0, c, out);
}
// The kernel sizes with an all-taps block, and its channels per block: 3 × 9 accumulators for
// 3 × 3 in AVX-512's 32 registers (none on AVX2's 16); 0: none. SimpleCNN's first conv (1→32,
// 3×3, 28², batch 64), weight and bias gradient: 2.4× (2 threads) and 1.7× (1 thread) faster than
// the row blocks with their separate bias pass (Intel Xeon, calls alternated in one process).
// 1 × 25 for 5 × 5 measured 0.73–0.92× the row blocks of 5 (LeNet-5's first conv): one x load
// per multiply-add.
constexpr int kTapsChannels = 3;
int taps_block_channels(const Conv2dShape& s) {
#if defined(__AVX512F__)
  if (s.KH == 3 && s.KW == 3) return kTapsChannels;
#endif
  (void)s;
  return 0;
}

void direct_dw_taps_any(int obn, const Conv2dShape& s, const DirectGeom& g, const float* xpad,
                        const float* dy, int n0, int n1, int oc0, int c, float* out) {
#if defined(__AVX512F__)
  switch (obn) {
    case 3: return direct_dw_taps_ob<3>(g, s.C, s.OC, xpad, dy, n0, n1, oc0, c, out);
    case 2: return direct_dw_taps_ob<2>(g, s.C, s.OC, xpad, dy, n0, n1, oc0, c, out);
    default: return direct_dw_taps_ob<1>(g, s.C, s.OC, xpad, dy, n0, n1, oc0, c, out);
  }
#else
  (void)obn, (void)s, (void)g, (void)xpad, (void)dy, (void)n0, (void)n1, (void)oc0, (void)c;
  (void)out;
#endif
}

// out[o] = Σ over images [n0, n1) of channel oc0 + o's dy plane, for o < no: one accumulator per
// channel, each taking the plane's vectors in order (the channels' chains interleave).
template <int NO>
void direct_db(const float* dy, int OC, int P, int n0, int n1, int oc0, float* out) {
  vf acc[NO];
  for (int o = 0; o < NO; ++o) acc[o] = vzero();
  for (int n = n0; n < n1; ++n) {
    const float* row = dy + (static_cast<size_t>(n) * OC + oc0) * P;
    for (int p = 0; p < P; p += VL) {
      const vmask m = lanes(P - p);
      for (int o = 0; o < NO; ++o)
        acc[o] = vadd(acc[o], vloadu(m, row + static_cast<size_t>(o) * P + p));
    }
  }
  for (int o = 0; o < NO; ++o) out[o] = lane_sum(acc[o]);
}
void direct_db_any(int no, const float* dy, int OC, int P, int n0, int n1, int oc0, float* out) {
  switch (no) {
    case 4: return direct_db<4>(dy, OC, P, n0, n1, oc0, out);
    case 3: return direct_db<3>(dy, OC, P, n0, n1, oc0, out);
    case 2: return direct_db<2>(dy, OC, P, n0, n1, oc0, out);
    default: return direct_db<1>(dy, OC, P, n0, n1, oc0, out);
  }
}

void direct_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                             float* db, bool accumulate, float* workspace) {
  const DirectGeom g = direct_geom(s);
  const size_t plane = static_cast<size_t>(g.Hp) * g.Wp;
  float* xpad = workspace;
  float* partial_dw = xpad + static_cast<size_t>(s.N) * s.C * plane;  // [chunk][oc][tap]
  float* partial_db = partial_dw + static_cast<size_t>(g.chunks) * s.OC * g.taps;  // [chunk][oc]
  const int64_t planes = static_cast<int64_t>(s.N) * s.C;
  parallel_for(planes, worth_parallel(planes * plane, 1 << 14), [=](int64_t i) {
    float* dst = xpad + i * plane;
    std::fill(dst, dst + plane, 0.f);
    const float* src = x + i * s.H * s.W;
    for (int h = 0; h < s.H; ++h)
      std::copy(src + static_cast<size_t>(h) * s.W, src + static_cast<size_t>(h + 1) * s.W,
                dst + static_cast<size_t>(h + s.pad_h) * g.Wp + s.pad_w);
  });
  // Units: (oc block, chunk, c, kh, kw block), or (oc block, chunk, c) with all-taps blocks; every
  // unit writes its own partials, and the first of each (oc block, chunk) also the bias sums of its
  // channels, while their dy planes are in cache (the same sums in the same order as a pass of its
  // own over dy, which read all of dy again).
  const int tbc = taps_block_channels(s);
  const int64_t dw_units =
      tbc > 0 ? static_cast<int64_t>((s.OC + tbc - 1) / tbc) * g.chunks * s.C
              : static_cast<int64_t>(g.oc_blocks) * g.chunks * s.C * s.KH * g.kw_blocks;
  const int64_t work = static_cast<int64_t>(s.N) * s.OC * g.taps * g.OH * g.OW;
  parallel_for(dw_units, worth_parallel(work, 1 << 16), [=](int64_t u) {
    const int OH = g.OH, OW = g.OW;
    if (tbc > 0) {
      const int c = static_cast<int>(u % s.C);
      const int chunk = static_cast<int>(u / s.C % g.chunks);
      const int oc0 = static_cast<int>(u / s.C / g.chunks) * tbc, obn = std::min(tbc, s.OC - oc0);
      const int n0 = chunk_begin(s.N, chunk, g.chunks), n1 = chunk_begin(s.N, chunk + 1, g.chunks);
      const int T = s.KH * s.KW;
      float out[kTapsChannels * 9];
      direct_dw_taps_any(obn, s, g, xpad, dy, n0, n1, oc0, c, out);
      for (int o = 0; o < obn; ++o)
        for (int t = 0; t < T; ++t)
          partial_dw[(static_cast<size_t>(chunk) * s.OC + oc0 + o) * g.taps +
                     static_cast<size_t>(c) * T + t] = out[o * T + t];
      if (db && c == 0)
        direct_db_any(obn, dy, s.OC, OH * OW, n0, n1, oc0,
                      partial_db + static_cast<size_t>(chunk) * s.OC + oc0);
      return;
    }
    int64_t r = u;
    const int kb = static_cast<int>(r % g.kw_blocks);
    r /= g.kw_blocks;
    const int kh = static_cast<int>(r % s.KH);
    r /= s.KH;
    const int c = static_cast<int>(r % s.C);
    r /= s.C;
    const int chunk = static_cast<int>(r % g.chunks);
    const int ob = static_cast<int>(r / g.chunks);
    const int oc0 = ob * kDirectOB, obn = std::min(kDirectOB, s.OC - oc0);
    const int kw0 = kb * kDirectTB, tb = std::min(kDirectTB, s.KW - kw0);
    const int n0 = chunk_begin(s.N, chunk, g.chunks), n1 = chunk_begin(s.N, chunk + 1, g.chunks);
    float out[kDirectOB * kDirectTB];
    switch (obn) {
      case 4: direct_dw_block_tb<4>(tb, g, s.C, s.OC, xpad, dy, n0, n1, oc0, c, kh, kw0, out); break;
      case 3: direct_dw_block_tb<3>(tb, g, s.C, s.OC, xpad, dy, n0, n1, oc0, c, kh, kw0, out); break;
      case 2: direct_dw_block_tb<2>(tb, g, s.C, s.OC, xpad, dy, n0, n1, oc0, c, kh, kw0, out); break;
      default: direct_dw_block_tb<1>(tb, g, s.C, s.OC, xpad, dy, n0, n1, oc0, c, kh, kw0, out);
    }
    for (int o = 0; o < obn; ++o)
      for (int t = 0; t < tb; ++t)
        partial_dw[(static_cast<size_t>(chunk) * s.OC + oc0 + o) * g.taps +
                   (static_cast<size_t>(c) * s.KH + kh) * s.KW + kw0 + t] = out[o * tb + t];
    if (db && c == 0 && kh == 0 && kb == 0)
      direct_db_any(obn, dy, s.OC, OH * OW, n0, n1, oc0,
                    partial_db + static_cast<size_t>(chunk) * s.OC + oc0);
  });
  // Chunk-order reduction: dw = (dw) + p0 + p1 + ...
  const int64_t dw_size = static_cast<int64_t>(s.OC) * g.taps;
  for (int64_t i = 0; i < dw_size; ++i) {
    float acc = accumulate ? dw[i] : 0.f;
    for (int chunk = 0; chunk < g.chunks; ++chunk) acc += partial_dw[chunk * dw_size + i];
    dw[i] = acc;
  }
  if (db)
    for (int oc = 0; oc < s.OC; ++oc) {
      float acc = accumulate ? db[oc] : 0.f;
      for (int chunk = 0; chunk < g.chunks; ++chunk) acc += partial_db[chunk * s.OC + oc];
      db[oc] = acc;
    }
}
#endif

}  // namespace

bool conv2d_direct_weight_grad(const Conv2dShape& s) {
#if defined(ST_HAVE_SIMD)
  return direct_weight_grad_shape(s);
#else
  (void)s;
  return false;
#endif
}

void im2col(const Conv2dShape& s, const float* in, float* cols, size_t ld) {
  const int OH = s.OH(), OW = s.OW();
  if (ld == 0) ld = static_cast<size_t>(OH) * OW;
  for (int c = 0; c < s.C; ++c)
    for (int kh = 0; kh < s.KH; ++kh)
      for (int kw = 0; kw < s.KW; ++kw) {
        float* row = cols + ((static_cast<size_t>(c) * s.KH + kh) * s.KW + kw) * ld;
        const float* plane = in + static_cast<size_t>(c) * s.H * s.W;
        int ow_lo, ow_hi;
        valid_ow_range(s, kw, ow_lo, ow_hi);
#if defined(ST_HAVE_SIMD)
        const vmask row_lanes = lanes(0, OW), row_valid = lanes(std::max(ow_lo, 0), std::min(ow_hi, OW));
#endif
        for (int oh = 0; oh < OH; ++oh) {
          float* out = row + static_cast<size_t>(oh) * OW;
          const int ih = oh * s.stride_h - s.pad_h + kh;
          if (ih < 0 || ih >= s.H) {
            std::fill(out, out + OW, 0.0f);
            continue;
          }
          const float* src = plane + static_cast<size_t>(ih) * s.W - s.pad_w + kw;
#if defined(ST_HAVE_SIMD)
          if (s.stride_w == 1 && OW <= VL) {  // the common small-map case: one masked vector
            vstoreu(out, row_lanes, vloadu(row_valid, src));
            continue;
          }
          if (s.stride_w == 1) {  // rows are short (8–28 floats): masked vectors, no libc calls
            for (int ow = 0; ow < OW; ow += VL) {
              const vmask all = lanes(OW - ow);
              const vmask valid = lanes(std::max(ow_lo - ow, 0), std::min(ow_hi, OW) - ow);
              vstoreu(out + ow, all, vloadu(valid, src + ow));
            }
            continue;
          }
#endif
          for (int ow = 0; ow < OW; ++ow)
            out[ow] = (ow >= ow_lo && ow < ow_hi) ? src[ow * s.stride_w] : 0.0f;
        }
      }
}

void col2im(const Conv2dShape& s, const float* cols, float* in, size_t ld) {
  const int OH = s.OH(), OW = s.OW();
  if (ld == 0) ld = static_cast<size_t>(OH) * OW;
  std::fill(in, in + static_cast<size_t>(s.C) * s.H * s.W, 0.0f);
#if defined(ST_HAVE_SIMD)
  if (s.stride_w == 1 && s.W <= VL && OW <= VL) {
    // Small maps: each input row is one vector; sum its KW shifted column rows in a register and
    // store once. (Accumulating row by row in memory would reload what was just stored with a
    // one-float shift, which defeats store-to-load forwarding.) Same (kh, kw) order as below.
    const int Wd = s.W;
    for (int c = 0; c < s.C; ++c)
      for (int kh = 0; kh < s.KH; ++kh)
        for (int oh = 0; oh < OH; ++oh) {
          const int ih = oh * s.stride_h - s.pad_h + kh;
          if (ih < 0 || ih >= s.H) continue;
          float* dst = in + (static_cast<size_t>(c) * s.H + ih) * s.W;
          vf acc = vloadu(lanes(Wd), dst);
          for (int kw = 0; kw < s.KW; ++kw) {
            const float* src = cols + ((static_cast<size_t>(c) * s.KH + kh) * s.KW + kw) * ld +
                               static_cast<size_t>(oh) * OW;
            const int shift = s.pad_w - kw;  // input column iw reads output column iw + shift
            const vmask m = lanes(std::max(-shift, 0), std::min(Wd, OW - shift));
            acc = vadd(acc, vloadu(m, src + shift));
          }
          vstoreu(dst, lanes(Wd), acc);
        }
    return;
  }
#endif
  for (int c = 0; c < s.C; ++c)
    for (int kh = 0; kh < s.KH; ++kh)
      for (int kw = 0; kw < s.KW; ++kw) {
        const float* row = cols + ((static_cast<size_t>(c) * s.KH + kh) * s.KW + kw) * ld;
        float* plane = in + static_cast<size_t>(c) * s.H * s.W;
        int ow_lo, ow_hi;
        valid_ow_range(s, kw, ow_lo, ow_hi);
        for (int oh = 0; oh < OH; ++oh) {
          const int ih = oh * s.stride_h - s.pad_h + kh;
          if (ih < 0 || ih >= s.H) continue;
          const float* src = row + static_cast<size_t>(oh) * OW;
          float* dst = plane + static_cast<size_t>(ih) * s.W - s.pad_w + kw;
#if defined(ST_HAVE_SIMD)
          if (s.stride_w == 1) {
            for (int ow = ow_lo; ow < ow_hi; ow += VL) {
              const vmask m = lanes(ow_hi - ow);
              vstoreu(dst + ow, m, vadd(vloadu(m, dst + ow), vloadu(m, src + ow)));
            }
            continue;
          }
#endif
          for (int ow = ow_lo; ow < ow_hi; ++ow) dst[ow * s.stride_w] += src[ow];
        }
      }
}

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y,
                    float* workspace) {
  const int K = static_cast<int>(col_rows(s)), P = static_cast<int>(col_cols(s));
  const size_t x_image = static_cast<size_t>(s.C) * s.H * s.W, y_image = static_cast<size_t>(s.OC) * P;
  const size_t cols_size = is_pointwise(s) ? 0 : static_cast<size_t>(K) * P;
  const int nt = batch_threads(s);
  // A team smaller than asked for (OMP_DYNAMIC, thread limits) still covers every chunk.
  parallel_region(nt, [&](int first, int team) {
    for (int t = first; t < nt; t += team) {  // chunk t of nt
      float* cols = workspace + t * cols_size;
      for (int n = chunk_begin(s.N, t, nt); n < chunk_begin(s.N, t + 1, nt); ++n) {
        const float* xn = x + n * x_image;
        float* yn = y + n * y_image;
        const float* colsn = xn;
        if (cols_size) {
          ST_ISA_NS::im2col(s, xn, cols, 0);
          colsn = cols;
        }
        sgemm(false, false, s.OC, P, K, 1.0f, w, K, colsn, P, 0.0f, yn, P);
        if (b) {
          for (int oc = 0; oc < s.OC; ++oc) {
            float* row = yn + static_cast<size_t>(oc) * P;
            for (int p = 0; p < P; ++p) row[p] += b[oc];
          }
        }
      }
    }
  });
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          float* workspace) {
  const int K = static_cast<int>(col_rows(s)), P = static_cast<int>(col_cols(s));
  const size_t x_image = static_cast<size_t>(s.C) * s.H * s.W, y_image = static_cast<size_t>(s.OC) * P;
  const size_t cols_size = is_pointwise(s) ? 0 : static_cast<size_t>(K) * P;
  const int nt = batch_threads(s);
  // A team smaller than asked for (OMP_DYNAMIC, thread limits) still covers every chunk.
  parallel_region(nt, [&](int first, int team) {
    for (int t = first; t < nt; t += team) {  // chunk t of nt
      float* cols = workspace + t * cols_size;
      for (int n = chunk_begin(s.N, t, nt); n < chunk_begin(s.N, t + 1, nt); ++n) {
        float* dxn = dx + n * x_image;
        float* colsn = cols_size ? cols : dxn;
        sgemm(true, false, K, P, s.OC, 1.0f, w, K, dy + n * y_image, P, 0.0f, colsn, P);
        if (cols_size) ST_ISA_NS::col2im(s, cols, dxn, 0);
      }
    }
  });
}

void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                             float* db, bool accumulate, float* workspace) {
#if defined(ST_HAVE_SIMD)
  if (direct_weight_grad_shape(s)) return direct_backward_weights(s, x, dy, dw, db, accumulate, workspace);
#endif
  const int K = static_cast<int>(col_rows(s)), P = static_cast<int>(col_cols(s));
  const size_t x_image = static_cast<size_t>(s.C) * s.H * s.W, y_image = static_cast<size_t>(s.OC) * P;
  const size_t cols_size = is_pointwise(s) ? 0 : static_cast<size_t>(K) * P;
  const size_t dw_size = static_cast<size_t>(s.OC) * K;
  const int max_threads = std::max(1, omp_get_max_threads());
  float* partial_dw = workspace + max_threads * cols_size;
  float* partial_db = partial_dw + max_threads * dw_size;
  const int nt = batch_threads(s);
  // A team smaller than asked for (OMP_DYNAMIC, thread limits) still covers every chunk.
  parallel_region(nt, [&](int first, int team) {
    for (int t = first; t < nt; t += team) {  // chunk t of nt
      float* cols = workspace + t * cols_size;
      float* pdw = partial_dw + t * dw_size;
      float* pdb = partial_db + t * s.OC;
      const int n0 = chunk_begin(s.N, t, nt), n1 = chunk_begin(s.N, t + 1, nt);
      std::fill(pdb, pdb + s.OC, 0.0f);
      if (n0 == n1) std::fill(pdw, pdw + dw_size, 0.0f);
      for (int n = n0; n < n1; ++n) {
        const float* xn = x + n * x_image;
        const float* dyn = dy + n * y_image;
        const float* colsn = xn;
        if (cols_size) {
          ST_ISA_NS::im2col(s, xn, cols, 0);
          colsn = cols;
        }
        sgemm(false, true, s.OC, K, P, 1.0f, dyn, P, colsn, P, n == n0 ? 0.0f : 1.0f, pdw, K);
        if (db) {
          for (int oc = 0; oc < s.OC; ++oc) {
            const float* row = dyn + static_cast<size_t>(oc) * P;
            double acc = 0.0;
            for (int p = 0; p < P; ++p) acc += row[p];
            pdb[oc] += static_cast<float>(acc);
          }
        }
      }
    }
  });
  // Fixed-order reduction over the per-thread partials: dw = (dw) + p0 + p1 + ...
  const bool par = nt > 1 && dw_size >= 4096;
  parallel_for(static_cast<int64_t>(dw_size), par, [=](int64_t i) {
    float acc = accumulate ? dw[i] : 0.0f;
    for (int t = 0; t < nt; ++t) acc += partial_dw[t * dw_size + i];
    dw[i] = acc;
  });
  if (db) {
    for (int oc = 0; oc < s.OC; ++oc) {
      float acc = accumulate ? db[oc] : 0.0f;
      for (int t = 0; t < nt; ++t) acc += partial_db[t * s.OC + oc];
      db[oc] = acc;
    }
  }
}

}  // namespace st::kernels::ST_ISA_NS

#if defined(ST_ISA_GENERIC)  // no vector code: defined once, in the generic copy
namespace st::kernels {

size_t conv2d_workspace_floats(const Conv2dShape& s) {
  const size_t threads = static_cast<size_t>(std::max(1, omp_get_max_threads()));
  const size_t cols = ST_ISA_NS::is_pointwise(s) ? 0 : ST_ISA_NS::col_rows(s) * ST_ISA_NS::col_cols(s);
  const size_t partial_dw = static_cast<size_t>(s.OC) * ST_ISA_NS::col_rows(s);
  const size_t partial_db = static_cast<size_t>(s.OC);
  size_t floats = threads * (cols + partial_dw + partial_db);
  if (direct_weight_grad_shape(s)) {  // padded input, per-chunk partial dw and db
    const size_t padded = static_cast<size_t>(s.N) * s.C * (s.H + 2 * s.pad_h) * direct_padded_width(s);
    const size_t chunks = static_cast<size_t>(std::min(s.N, ST_ISA_NS::kDirectChunks));
    floats = std::max(floats, padded + chunks * s.OC * (ST_ISA_NS::col_rows(s) + 1));
  }
  return floats;
}

}  // namespace st::kernels
#endif
