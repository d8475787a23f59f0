// kernels/conv_pn.cpp — the dense direct convolution in the batch-innermost layout (see
// kernels/conv_pn.h). Compiled once per instruction set (kernels/isa.h).
//   forward:  per (pixel, block of 5 output channels): 5 × NV vector accumulators; for each weight
//             column k, the NV input vectors at base(p) + off(k) are loaded once and multiplied by
//             the 5 weights w[oc, k] (from a (K, OC) packed copy, so they are adjacent): 5·NV FMAs
//             per NV loads. LeNet-5's 20→50 5×5 conv (batch 64) runs at ~370 GFLOP/s on 2 threads
//             (AVX-512, Zen 5), against ~125 for oneDNN's im2col + GEMM on the same shape.
//   dx:       per (pixel, block of 5 weight columns): the sum over output channels of
//             w[oc, k]·dy[oc, p, :] in 5 × NV accumulators, then added into dxp at base(p) + off(k).
//             Threads own whole input channels (disjoint rows of dxp), pixels in order.
//   dW:       per (block of output channels, block of 4 columns): VL accumulators of lane partial
//             sums over every pixel and lane, one dy and one x load per FMA row, reduced by hsum.
// Lanes beyond 4·VL (AVX-512) or 2·VL (AVX2) are done in further passes; a ragged last vector is
// masked. Without AVX2 each function's portable loop runs (the same sums, not the same order).
// Reference: kernels/reference.cpp (conv2d). Tests: tests/kernels/test_conv_pn.cpp.
#include "kernels/conv_pn.h"
#include "kernels/isa_table.h"
#include "kernels/parallel.h"
#include "kernels/simd.h"
#include "kernels/sparse_conv.h"
#include "kernels/sparse_rows.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace st::kernels::ST_ISA_NS {
namespace {
using namespace detail;

struct Geometry {
  int N, C, OC, K, P, OW, Hp, Wp, sh, sw, KH, KW;
  explicit Geometry(const Conv2dShape& s)
      : N(s.N), C(s.C), OC(s.OC), K(s.C * s.KH * s.KW), P(s.OH() * s.OW()), OW(s.OW()),
        Hp(padded_h(s)), Wp(padded_w(s)), sh(s.stride_h), sw(s.stride_w), KH(s.KH), KW(s.KW) {}
  // Window origin of output pixel p and position of weight column k, in input vectors.
  int64_t base(int p) const { return int64_t(p / OW) * sh * Wp + int64_t(p % OW) * sw; }
  int32_t off(int k) const {
    const int c = k / (KH * KW), r = k % (KH * KW);
    return (c * Hp + r / KW) * Wp + r % KW;
  }
};

// off[k] for every weight column, in a grow-only per-thread buffer.
const int32_t* offsets(const Geometry& g) {
  static thread_local std::vector<int32_t> buf;
  if (buf.size() < static_cast<size_t>(g.K)) buf.resize(g.K);
  for (int k = 0; k < g.K; ++k) buf[k] = g.off(k);
  return buf.data();
}

#if defined(ST_HAVE_SIMD)

constexpr int kBlock = 5;  // forward: output channels per register block; dx: weight columns
constexpr int kLaneVecs = VL == 16 ? 4 : 2;      // vectors of lanes per pass (register budget)
constexpr int kWOc = VL == 16 ? 4 : 2, kWK = 4;  // weight gradient block: kWOc·kWK = VL sums

// The instance K<NV, TAIL> for a pass of n in [1, kLaneVecs·VL] lanes.
template <template <int, bool> class Kn>
inline auto pick_lanes(int n) {
  const bool tail = n % VL != 0;
  switch ((n + VL - 1) / VL) {
    case 1: return tail ? Kn<1, true>::fn : Kn<1, false>::fn;
    case 2: return tail ? Kn<2, true>::fn : Kn<2, false>::fn;
#if defined(__AVX512F__)
    case 3: return tail ? Kn<3, true>::fn : Kn<3, false>::fn;
    default: return tail ? Kn<4, true>::fn : Kn<4, false>::fn;
#else
    default: return tail ? Kn<2, true>::fn : Kn<2, false>::fn;
#endif
  }
}

// acc[b][:] += w[b]·vec[:] for b < kBlock: one step of both register blocks below (a rank-1
// update of kBlock × NV vectors: one broadcast per row, the NV vectors loaded once by the caller).
template <int NV>
inline void rank1_update(const float* w, const vf* vec, vf (*acc)[NV]) {
#pragma GCC unroll 8
  for (int b = 0; b < kBlock; ++b) {
    const vf a = vset1(w[b]);
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[b][v] = vfmadd(a, vec[v], acc[b][v]);
  }
}

// y[o·ys + lanes] = Σ_k wt[k·ldw + o]·xb[off[k]·N + lanes] for o < no (≤ kBlock).
template <int NV, bool TAIL>
void forward_block(const float* wt, size_t ldw, const int32_t* off, int K, const float* xb,
                   size_t N, float* y, size_t ys, int no, vmask tail) {
  vf acc[kBlock][NV];
  for (int o = 0; o < kBlock; ++o)
    for (int v = 0; v < NV; ++v) acc[o][v] = vzero();
#pragma GCC unroll 1
  for (int k = 0; k < K; ++k) {
    const float* xr = xb + static_cast<size_t>(off[k]) * N;
    vf xv[NV];
    for (int v = 0; v < NV; ++v) xv[v] = load_v<NV, TAIL>(xr, v, tail);
    rank1_update<NV>(wt + k * ldw, xv, acc);
  }
  for (int o = 0; o < kBlock; ++o)
    if (o < no)
      for (int v = 0; v < NV; ++v) store_v<NV, TAIL>(y + o * ys, v, tail, acc[o][v]);
}
template <int NV, bool TAIL>
struct ForwardBlock {
  static constexpr auto fn = &forward_block<NV, TAIL>;
};

// xb[off[j]·N + lanes] += Σ_oc wk[oc·ldw + j]·dyb[oc·ys + lanes] for j < nk (≤ kBlock); wk has
// kBlock readable columns (zero past the last weight column).
template <int NV, bool TAIL>
void backward_data_block(const float* wk, size_t ldw, int OC, const float* dyb, size_t ys,
                         const int32_t* off, float* xb, size_t N, int nk, vmask tail) {
  vf acc[kBlock][NV];
  for (int j = 0; j < kBlock; ++j)
    for (int v = 0; v < NV; ++v) acc[j][v] = vzero();
#pragma GCC unroll 1
  for (int oc = 0; oc < OC; ++oc) {
    const float* d = dyb + oc * ys;
    vf dv[NV];
    for (int v = 0; v < NV; ++v) dv[v] = load_v<NV, TAIL>(d, v, tail);
    rank1_update<NV>(wk + oc * ldw, dv, acc);
  }
  for (int j = 0; j < kBlock; ++j)
    if (j < nk) {
      float* c = xb + static_cast<size_t>(off[j]) * N;
      for (int v = 0; v < NV; ++v)
        store_v<NV, TAIL>(c, v, tail, vadd(load_v<NV, TAIL>(c, v, tail), acc[j][v]));
    }
}
template <int NV, bool TAIL>
struct BackwardDataBlock {
  static constexpr auto fn = &backward_data_block<NV, TAIL>;
};

// out[i·kWK + j] = lane partial sums of Σ_p dr[i][p·N + lanes]·xp[base(p)·N + xo[j] + lanes]:
// pixels in order, a pixel's vectors in order (NV = 0: counted at run time, for batches past
// kLaneVecs vectors). xo[j] is column j's offset times N. The accumulators are a local array
// and the window origin advances by strides: with them behind a pointer and base(p) divided out
// per pixel, the same sums ran 1.1–2.1× slower (LeNet-5's 20→50 5×5 at batch 64: 1.34–1.41×;
// Intel Xeon, 1 and 2 threads, calls alternated in one process).
template <int NV, bool TAIL>
void dw_block(const Geometry& g, const float* const* dr, const float* xp, const size_t* xo,
              size_t N, vmask tail, vf* out) {
  const int nv = NV > 0 ? NV : static_cast<int>((N + VL - 1) / VL);
  vf acc[kWOc * kWK];  // local, so the compiler keeps it in registers
  for (int i = 0; i < kWOc * kWK; ++i) acc[i] = vzero();
  const float* drow[kWOc];
  for (int i = 0; i < kWOc; ++i) drow[i] = dr[i];
  // Pixels row by row: the window origin moves by whole strides (no division per pixel).
  const size_t row_step = static_cast<size_t>(g.sh) * g.Wp * N;
  const size_t col_step = static_cast<size_t>(g.sw) * N;
  const int OH = g.P / g.OW;
  for (int oh = 0; oh < OH; ++oh) {
    const float* xb = xp + oh * row_step;
    for (int ow = 0; ow < g.OW; ++ow, xb += col_step) {
      // Whole vectors, then the ragged one (the pixel's last vector, as in the sums' order).
#pragma GCC unroll 4
      for (int v = 0; v < nv - (TAIL ? 1 : 0); ++v) {
        vf dv[kWOc];
        for (int i = 0; i < kWOc; ++i) dv[i] = vloadu(drow[i] + VL * v);
        for (int j = 0; j < kWK; ++j) {
          const vf xv = vloadu(xb + xo[j] + VL * v);
          for (int i = 0; i < kWOc; ++i) acc[i * kWK + j] = vfmadd(dv[i], xv, acc[i * kWK + j]);
        }
      }
      if (TAIL) {
        const size_t l = static_cast<size_t>(VL) * (nv - 1);
        vf dv[kWOc];
        for (int i = 0; i < kWOc; ++i) dv[i] = vloadu(tail, drow[i] + l);
        for (int j = 0; j < kWK; ++j) {
          const vf xv = vloadu(tail, xb + xo[j] + l);
          for (int i = 0; i < kWOc; ++i) acc[i * kWK + j] = vfmadd(dv[i], xv, acc[i * kWK + j]);
        }
      }
      for (int i = 0; i < kWOc; ++i) drow[i] += N;
    }
  }
  for (int i = 0; i < kWOc * kWK; ++i) out[i] = acc[i];
}
template <int NV, bool TAIL>
struct DwBlock {
  static constexpr auto fn = &dw_block<NV, TAIL>;
};
// The instance for a batch of n lanes: unrolled up to kLaneVecs vectors, counted past that.
inline auto pick_dw(int n) {
  if ((n + VL - 1) / VL > kLaneVecs) return n % VL != 0 ? &dw_block<0, true> : &dw_block<0, false>;
  return pick_lanes<DwBlock>(n);
}

#endif  // ST_HAVE_SIMD

}  // namespace

// Channel counts that are not multiples of oneDNN's channel block (VL: 16 on AVX-512, 8 on AVX2),
// which oneDNN 2.6 runs as im2col + GEMM. Measured with the layout changes included (2 threads,
// AVX-512, Zen 5, batch 64): LeNet-5's 20→50 5×5 conv 1.6–1.8× oneDNN's three passes; SimpleCNN's
// 32→64 3×3 (oneDNN blocked, near the machine's peak) 0.8–0.9×; first layers (C = 1) lose to the
// layout changes (0.45–1.1×).
bool pn_conv_fits(const Conv2dShape& s) {
#if defined(ST_HAVE_SIMD)
  return s.C >= 2 && (s.C % VL != 0 || s.OC % VL != 0);
#else
  (void)s;
  return false;
#endif
}

void pn_conv_forward(const Conv2dShape& s, const float* w, const float* xp, float* y) {
  const Geometry g(s);
  if (int64_t(g.OC) * g.P * g.N == 0) return;
  const int32_t* off = offsets(g);
  const int T = threads_for(int64_t(g.OC) * g.K * g.P * g.N);
#if defined(ST_HAVE_SIMD)
  const int blocks = (g.OC + kBlock - 1) / kBlock;
  const size_t ldw = static_cast<size_t>(blocks) * kBlock;
  static thread_local std::vector<float> wt_buf;  // (K, ldw): the block's weights adjacent
  float* wt = scratch(wt_buf, ldw * g.K);
  for (int k = 0; k < g.K; ++k)
    for (size_t oc = 0; oc < ldw; ++oc)
      wt[k * ldw + oc] = oc < static_cast<size_t>(g.OC) ? w[oc * g.K + k] : 0.0f;
  const int64_t units = int64_t(g.P) * blocks;
  const size_t N = g.N, ys = static_cast<size_t>(g.P) * N;
  parallel_region(T, [&](int t, int nt) {
    const int64_t u0 = units * t / nt, u1 = units * (t + 1) / nt;
    for (int n0 = 0; n0 < g.N; n0 += kLaneVecs * VL) {
      const int n = std::min(kLaneVecs * VL, g.N - n0);
      const auto fn = pick_lanes<ForwardBlock>(n);
      const vmask tail = lanes(n % VL);
      for (int64_t u = u0; u < u1; ++u) {
        const int p = static_cast<int>(u / blocks), b = static_cast<int>(u % blocks);
        fn(wt + b * kBlock, ldw, off, g.K, xp + g.base(p) * N + n0, N,
           y + (static_cast<size_t>(b) * kBlock * g.P + p) * N + n0, ys,
           std::min(kBlock, g.OC - b * kBlock), tail);
      }
    }
  });
#else
  const size_t N = g.N;
  parallel_region(T, [&](int t, int nt) {
    const int64_t units = int64_t(g.P) * g.OC;
    for (int64_t u = units * t / nt; u < units * (t + 1) / nt; ++u) {
      const int p = static_cast<int>(u / g.OC), oc = static_cast<int>(u % g.OC);
      float* c = y + (static_cast<size_t>(oc) * g.P + p) * N;
      const float* xb = xp + g.base(p) * N;
      for (size_t n = 0; n < N; ++n) c[n] = 0.0f;
      for (int k = 0; k < g.K; ++k) {
        const float a = w[static_cast<size_t>(oc) * g.K + k];
        const float* b = xb + static_cast<size_t>(off[k]) * N;
        for (size_t n = 0; n < N; ++n) c[n] += a * b[n];
      }
    }
  });
#endif
}

void pn_conv_backward_data(const Conv2dShape& s, const float* w, const float* dy, float* dxp) {
  const Geometry g(s);
  const size_t N = g.N, plane = static_cast<size_t>(g.Hp) * g.Wp * N, ys = static_cast<size_t>(g.P) * N;
  if (plane * g.C == 0) return;
  const int32_t* off = offsets(g);
  const int KK = g.KH * g.KW;
  const int T = std::min(g.C, threads_for(int64_t(g.OC) * g.K * g.P * g.N));
#if defined(ST_HAVE_SIMD)
  const size_t ldw = static_cast<size_t>(g.K) + kBlock;  // zero past the last column
  static thread_local std::vector<float> wk_buf;
  float* wk = scratch(wk_buf, ldw * g.OC);
  for (int oc = 0; oc < g.OC; ++oc) {
    std::memcpy(wk + oc * ldw, w + static_cast<size_t>(oc) * g.K, sizeof(float) * g.K);
    std::fill(wk + oc * ldw + g.K, wk + (oc + 1) * ldw, 0.0f);
  }
#endif
  parallel_region(T, [&](int t, int nt) {
    const int c0 = even_split(g.C, t, nt), c1 = even_split(g.C, t + 1, nt);
    if (c0 >= c1) return;
    std::fill(dxp + c0 * plane, dxp + c1 * plane, 0.0f);
    const int k0 = c0 * KK, k1 = c1 * KK;
    if (g.OC == 0) return;
#if defined(ST_HAVE_SIMD)
    for (int n0 = 0; n0 < g.N; n0 += kLaneVecs * VL) {
      const int n = std::min(kLaneVecs * VL, g.N - n0);
      const auto fn = pick_lanes<BackwardDataBlock>(n);
      const vmask tail = lanes(n % VL);
      for (int p = 0; p < g.P; ++p) {
        float* xb = dxp + g.base(p) * N + n0;
        for (int k = k0; k < k1; k += kBlock)
          fn(wk + k, ldw, g.OC, dy + p * N + n0, ys, off + k, xb, N, std::min(kBlock, k1 - k), tail);
      }
    }
#else
    for (int p = 0; p < g.P; ++p) {
      float* xb = dxp + g.base(p) * N;
      for (int k = k0; k < k1; ++k) {
        float* c = xb + static_cast<size_t>(off[k]) * N;
        for (int oc = 0; oc < g.OC; ++oc) {
          const float a = w[static_cast<size_t>(oc) * g.K + k];
          const float* d = dy + oc * ys + p * N;
          for (size_t n = 0; n < N; ++n) c[n] += a * d[n];
        }
      }
    }
#endif
  });
}

void pn_conv_backward_weights(const Conv2dShape& s, const float* dy, const float* xp, float* dw,
                              bool accumulate) {
  const Geometry g(s);
  if (int64_t(g.OC) * g.K == 0) return;
  const size_t N = g.N, ys = static_cast<size_t>(g.P) * N;
  if (int64_t(g.P) * g.N == 0) {
    if (!accumulate) std::fill_n(dw, static_cast<size_t>(g.OC) * g.K, 0.0f);
    return;
  }
  const int32_t* off = offsets(g);
  const int T = threads_for(int64_t(g.OC) * g.K * g.P * g.N);
#if defined(ST_HAVE_SIMD)
  const int ob = (g.OC + kWOc - 1) / kWOc, kb = (g.K + kWK - 1) / kWK;
  const int64_t units = int64_t(ob) * kb;
  const vmask tail = lanes(g.N % VL);  // a ragged last vector of lanes is masked
  const auto dw_fn = pick_dw(g.N);
  parallel_region(T, [&](int t, int nt) {
    for (int64_t u = units * t / nt; u < units * (t + 1) / nt; ++u) {
      const int oc0 = static_cast<int>(u / kb) * kWOc, k0 = static_cast<int>(u % kb) * kWK;
      const int no = std::min(kWOc, g.OC - oc0), nk = std::min(kWK, g.K - k0);
      // Rows past the last channel or column repeat the last one; their sums are not stored.
      const float* dr[kWOc];
      size_t xo[kWK];
      for (int i = 0; i < kWOc; ++i) dr[i] = dy + (oc0 + std::min(i, no - 1)) * ys;
      for (int j = 0; j < kWK; ++j) xo[j] = static_cast<size_t>(off[k0 + std::min(j, nk - 1)]) * N;
      vf acc[kWOc * kWK];
      dw_fn(g, dr, xp, xo, N, tail, acc);
      alignas(64) float sums[VL];
      vstore(sums, hsum(acc));
      for (int i = 0; i < no; ++i)
        for (int j = 0; j < nk; ++j) {
          float& d = dw[static_cast<size_t>(oc0 + i) * g.K + k0 + j];
          d = accumulate ? d + sums[i * kWK + j] : sums[i * kWK + j];
        }
    }
  });
#else
  parallel_region(T, [&](int t, int nt) {
    const int64_t units = int64_t(g.OC) * g.K;
    for (int64_t u = units * t / nt; u < units * (t + 1) / nt; ++u) {
      const int oc = static_cast<int>(u / g.K), k = static_cast<int>(u % g.K);
      float sum = 0.0f;
      for (int p = 0; p < g.P; ++p) {
        const float* d = dy + oc * ys + static_cast<size_t>(p) * N;
        const float* x = xp + (g.base(p) + off[k]) * N;
        for (size_t n = 0; n < N; ++n) sum += d[n] * x[n];
      }
      dw[u] = accumulate ? dw[u] + sum : sum;
    }
  });
#endif
}

}  // namespace st::kernels::ST_ISA_NS
