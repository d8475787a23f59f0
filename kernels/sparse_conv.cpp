// kernels/sparse_conv.cpp — the direct sparse convolution in the PN layout (see sparse_conv.h),
// its layout changes, and the batch im2col helpers of the CUDA path.
//   forward:  every (oc, p) is spmm_row (kernels/sparse_rows.h) over the N-wide input vectors at
//             base(p) + off(k): a row's slice of y (≤ 128 floats) stays in registers (no
//             software prefetch: the window is already in L1/L2).
//   dx:       scatter_row: dy's vector at (oc, p) is added into dxp at base(p) + off(k); threads
//             own disjoint input channels.
//   dW:       16 nonzeros of a row at a time keep 16 vector partial sums over all pixels and
//             lanes (one FMA per loaded input vector), reduced once by hsum (kernels/simd.h).
// Pixel-major order (every output channel of one pixel, then the next pixel): one pixel's window
// (C·KH·KW positions) stays in L1/L2 for all output channels, and the next pixel's window overlaps
// it. Channel-major order swept the whole input (2 MB on SimpleCNN's conv2) once per output
// channel: pixel-major made SimpleCNN's CSR step 1.3× faster. The padded input is KH·KW times
// smaller than im2col's columns.
#include "kernels/sparse_conv.h"
#include "kernels/isa_table.h"
#include "kernels/parallel.h"
#include "kernels/simd.h"
#include "kernels/sparse_cpu.h"
#include "kernels/sparse_rows.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace st::kernels::ST_ISA_NS {
namespace {
constexpr int64_t kParallelMinElems = 1 << 15;
using namespace detail;

// Window origin of output pixel p, in input positions (units of N floats).
struct PixelBase {
  int OW, sh, sw, Wp;
  explicit PixelBase(const Conv2dShape& s)
      : OW(s.OW()), sh(s.stride_h), sw(s.stride_w), Wp(padded_w(s)) {}
  int64_t operator()(int p) const {
    const int oh = p / OW, ow = p % OW;
    return int64_t(oh) * sh * Wp + int64_t(ow) * sw;
  }
};

// Start of thread t's share of the rows [0, P·OC), pixel-major (u = p·OC + oc), of about equal cost
// nnz + kRowCost per row; t == T gives P·OC.
int64_t split_pixel_rows(const std::vector<int32_t>& rp, int OC, int P, int t, int T) {
  const int64_t units = int64_t(OC) * P;
  if (t <= 0) return 0;
  if (t >= T) return units;
  const int64_t per_pixel = int64_t(rp[OC]) + kRowCost * OC;
  auto cost = [&](int64_t u) {
    const int64_t p = u / OC, oc = u % OC;
    return p * per_pixel + rp[oc] + kRowCost * oc;
  };
  return first_reaching(units, cost(units) * t / T, cost);
}

// The conv output's gradient, row (oc, p), lanes [n0, n0 + n): stored (OC, P, N), or read through
// the max pool that followed the conv (the conv-pool node): g (OC, PH, PW, N) in the lanes whose
// window winner (code) is this pixel, 0 elsewhere (rows and columns past the last window too).
// The pooled rows are built in `tmp` where they are used, so the conv output's gradient (4× g on
// 2×2 windows) never goes through memory; the values are the same either way, and so are the bits
// of everything computed from them.
struct GradRows {
  const float* dy = nullptr;  // stored; null: pooled
  const float* g = nullptr;
  const int32_t* code = nullptr;
  const int32_t* window = nullptr;  // pooled: per pixel, its window's index ph·PW + pw (-1: none),
  const int32_t* winner = nullptr;  //         its code, (oh % KH)·KW + ow % KW,
  const int32_t* at = nullptr;      //         and its window's place in g's channel 0 (border)
  int P = 0, PP = 0, YP = 0;        // YP: g's channel size, its border included
  size_t N = 0;
  GradRows(const Conv2dShape& s, const float* stored)
      : dy(stored), P(s.OH() * s.OW()), N(static_cast<size_t>(s.N)) {}
  // `pixels` holds 3·P ints for the tables, filled here.
  GradRows(const Conv2dShape& s, const PoolPnShape& ps, const float* pooled, const int32_t* winners,
           int32_t* pixels)
      : g(pooled), code(winners), window(pixels), winner(pixels + s.OH() * s.OW()),
        at(pixels + 2 * s.OH() * s.OW()), P(s.OH() * s.OW()), PP(ps.PH() * ps.PW()),
        YP(ps.YH() * ps.YW()), N(static_cast<size_t>(s.N)) {
    for (int oh = 0, p = 0; oh < s.OH(); ++oh)
      for (int ow = 0; ow < s.OW(); ++ow, ++p) {
        const int ph = oh / ps.KH, pw = ow / ps.KW;
        const bool in = ph < ps.PH() && pw < ps.PW();
        pixels[p] = in ? ph * ps.PW() + pw : -1;
        pixels[P + p] = (oh % ps.KH) * ps.KW + ow % ps.KW;
        pixels[2 * P + p] = in ? static_cast<int32_t>(ps.y_at(0, ph, pw)) : -1;
      }
  }
  static size_t table_ints(const Conv2dShape& s) { return 3 * size_t(s.OH()) * s.OW(); }
  const float* row(int oc, int p, int n0, int n, float* tmp) const {
    if (dy) return dy + (static_cast<size_t>(oc) * P + p) * N + n0;
    if (window[p] < 0) {
      std::fill_n(tmp, n, 0.0f);
      return tmp;
    }
    const size_t q = (static_cast<size_t>(oc) * PP + window[p]) * N + n0;
    const int32_t j = winner[p];
    const float* __restrict gq = g + (static_cast<size_t>(oc) * YP + at[p]) * N + n0;
    const int32_t* __restrict cq = code + q;
    float* __restrict out = tmp;
    // g where the code matches, else +0. g is loaded unconditionally, so the select compiles to a
    // vector compare and masked move, not a branch per element.
    for (int i = 0; i < n; ++i) {
      const float v = gq[i];
      out[i] = cq[i] == j ? v : 0.0f;
    }
    return tmp;
  }
};

#if defined(ST_HAVE_SIMD)

void forward_rows(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off, const float* xp,
                  float* y, int64_t u0, int64_t u1) {
  const int N = s.N, P = s.OH() * s.OW();
  const PixelBase base(s);
  const int32_t* rp = W.row_ptr.data();
  const float* va = W.values.data();
  const int32_t k_last = static_cast<int32_t>(std::max<int64_t>(W.nnz() - 1, 0));
  for (int n0 = 0; n0 < N; n0 += kChunk) {
    const int n = std::min(kChunk, N - n0);
    const auto fn = pick_spmm_no_prefetch(n);
    const vmask tail = lanes(n % VL);
    for (int64_t u = u0; u < u1; ++u) {
      const int p = static_cast<int>(u / W.rows), oc = static_cast<int>(u % W.rows);
      fn(off, va, rp[oc], rp[oc + 1], k_last, xp + base(p) * N + n0, static_cast<size_t>(N),
         y + (int64_t(oc) * P + p) * N + n0, 0.0f, tail);
    }
  }
}

// dxp += the scatter of every (oc, p) row's nonzeros kb[oc] .. ke[oc] (one thread's channels).
void backward_data_rows(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                        const GradRows& dy, float* dxp, const int32_t* kb, const int32_t* ke) {
  const int N = s.N, P = s.OH() * s.OW();
  const PixelBase base(s);
  const float* va = W.values.data();
  alignas(64) float tmp[kChunk];
  for (int c0 = 0; c0 < N; c0 += kChunk) {
    const int n = std::min(kChunk, N - c0);
    const auto fn = pick_scatter(n);
    const vmask tail = lanes(n % VL);
    for (int p = 0; p < P; ++p) {
      float* dst = dxp + base(p) * N + c0;
      for (int oc = 0; oc < W.rows; ++oc)
        if (kb[oc] < ke[oc])
          fn(off, va, kb[oc], ke[oc], dy.row(oc, p, c0, n, tmp), dst, static_cast<size_t>(N), tail);
    }
  }
}

// d[i] += Σ_p Σ_lanes dy[oc, p, lanes]·xp[base(p) + off[i], lanes] for i < cnt (≤ VL); one chunk
// of n ≤ kChunk lanes from n0 (xp0 points at the chunk's first lane; rows are N floats apart).
template <int NV, bool TAIL>
void wgrad_chunk(const int32_t* off, int cnt, const GradRows& dy, int oc, int n0, int n,
                 const PixelBase& base, const float* xp0, size_t N, vf* d, vmask tail) {
  alignas(64) float tmp[kChunk];
  vf acc[VL];
  for (int i = 0; i < VL; ++i) acc[i] = d[i];
  for (int p = 0; p < dy.P; ++p) {
    const float* dyr = dy.row(oc, p, n0, n, tmp);
    const float* xb = xp0 + static_cast<size_t>(base(p)) * N;
    vf xv[NV];
    for (int v = 0; v < NV; ++v) xv[v] = load_v<NV, TAIL>(dyr, v, tail);
    for (int i = 0; i < VL; ++i) {
      if (i < cnt) {
        const float* xr = xb + static_cast<size_t>(off[i]) * N;
        for (int v = 0; v < NV; ++v) acc[i] = vfmadd(xv[v], load_v<NV, TAIL>(xr, v, tail), acc[i]);
      }
    }
  }
  for (int i = 0; i < VL; ++i) d[i] = acc[i];
}

template <int NV, bool TAIL>
struct WgradChunk {
  static constexpr auto fn = &wgrad_chunk<NV, TAIL>;
};

void backward_weights_rows(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                           const GradRows& dy, const float* xp, float* dw, bool accumulate, int r0,
                           int r1) {
  const int N = s.N;
  const PixelBase base(s);
  const int32_t* rp = W.row_ptr.data();
  for (int oc = r0; oc < r1; ++oc) {
    for (int32_t k = rp[oc]; k < rp[oc + 1]; k += VL) {
      const int cnt = std::min<int32_t>(VL, rp[oc + 1] - k);
      vf d[VL];
      for (int i = 0; i < VL; ++i) d[i] = vzero();
      for (int n0 = 0; n0 < N; n0 += kChunk) {
        const int n = std::min(kChunk, N - n0);
        const auto fn = pick_nv<WgradChunk>(n);
        fn(off + k, cnt, dy, oc, n0, n, base, xp + n0, static_cast<size_t>(N), d, lanes(n % VL));
      }
      vf sums = hsum(d);
      const vmask m = lanes(cnt);
      if (accumulate) sums = vadd(vloadu(m, dw + k), sums);
      vstoreu(dw + k, m, sums);
    }
  }
}

#else  // portable loops, same partition and contracts

void forward_rows(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off, const float* xp,
                  float* y, int64_t u0, int64_t u1) {
  const int N = s.N, P = s.OH() * s.OW();
  const PixelBase base(s);
  for (int64_t u = u0; u < u1; ++u) {
    const int p = static_cast<int>(u / W.rows), oc = static_cast<int>(u % W.rows);
    float* c = y + (int64_t(oc) * P + p) * N;
    for (int n = 0; n < N; ++n) c[n] = 0.0f;
    for (int32_t k = W.row_ptr[oc]; k < W.row_ptr[oc + 1]; ++k) {
      const float a = W.values[k];
      const float* b = xp + (base(p) + off[k]) * N;
      for (int n = 0; n < N; ++n) c[n] += a * b[n];
    }
  }
}

void backward_data_rows(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                        const GradRows& dy, float* dxp, const int32_t* kb, const int32_t* ke) {
  const int N = s.N, P = s.OH() * s.OW();
  const PixelBase base(s);
  static thread_local std::vector<float> tmp;
  tmp.resize(N);
  for (int p = 0; p < P; ++p)
    for (int oc = 0; oc < W.rows; ++oc) {
      if (kb[oc] == ke[oc]) continue;
      const float* g = dy.row(oc, p, 0, N, tmp.data());
      for (int32_t k = kb[oc]; k < ke[oc]; ++k) {
        const float a = W.values[k];
        float* c = dxp + (base(p) + off[k]) * N;
        for (int n = 0; n < N; ++n) c[n] += a * g[n];
      }
    }
}

void backward_weights_rows(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                           const GradRows& dy, const float* xp, float* dw, bool accumulate, int r0,
                           int r1) {
  const int N = s.N, P = s.OH() * s.OW();
  const PixelBase base(s);
  static thread_local std::vector<float> tmp;
  tmp.resize(N);
  for (int oc = r0; oc < r1; ++oc)
    for (int32_t k = W.row_ptr[oc]; k < W.row_ptr[oc + 1]; ++k) {
      float sum = 0.0f;
      for (int p = 0; p < P; ++p) {
        const float* g = dy.row(oc, p, 0, N, tmp.data());
        const float* x = xp + (base(p) + off[k]) * N;
        for (int n = 0; n < N; ++n) sum += g[n] * x[n];
      }
      dw[k] = accumulate ? dw[k] + sum : sum;
    }
}

#endif

void check_weight(const Conv2dShape& s, const CsrMatrix& W, const char* fn) {
  if (W.rows != s.OC || W.cols != s.C * s.KH * s.KW)
    throw std::invalid_argument(std::string(fn) + ": CSR weight " + std::to_string(W.rows) + "x" +
                                std::to_string(W.cols) + " does not match OC=" +
                                std::to_string(s.OC) + ", C·KH·KW=" +
                                std::to_string(s.C * s.KH * s.KW));
}

void backward_data(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                   const GradRows& dy, float* dxp) {
  const int N = s.N, P = s.OH() * s.OW(), KK = s.KH * s.KW;
  const int64_t plane = int64_t(padded_h(s)) * padded_w(s) * N;  // one channel of dxp
  if (N == 0 || plane * s.C == 0) return;
  // Threads own disjoint input channels (whole planes of dxp), split by nonzero count: a row's
  // nonzeros are ordered by column (c, kh, kw), so a channel range is one slice kb[oc] .. ke[oc] of
  // each row. Every dxp element is summed by one thread, in the one-thread order (p, oc, k).
  // Splitting the batch lanes instead (threads writing alternate 128-byte pieces of every
  // position) ran 2.4x slower on 2 threads than on 1 (SimpleCNN's conv2, Zen 5).
  const int T = std::min(threads_for((W.nnz() + W.rows) * int64_t(P) * N), s.C);
  static thread_local std::vector<int32_t> buf;
  const size_t need = size_t(s.C) + 1 + 2 * size_t(W.rows) * T;
  if (buf.size() < need) buf.resize(need);
  int32_t* before = buf.data();  // before[c]: nonzeros in channels < c
  std::fill_n(before, s.C + 1, 0);
  for (int32_t k = 0; k < W.nnz(); ++k) ++before[W.col_idx[k] / KK + 1];
  for (int c = 0; c < s.C; ++c) before[c + 1] += before[c];
  int32_t* ranges = before + s.C + 1;
  parallel_region(T, [&](int t, int nt) {
    auto split = [&](int u) {
      if (u >= nt) return s.C;
      return static_cast<int>(first_reaching(s.C, int64_t(before[s.C]) * u / nt,
                                             [&](int64_t c) { return int64_t(before[c]); }));
    };
    const int c0 = t == 0 ? 0 : split(t), c1 = split(t + 1);
    if (c0 >= c1) return;
    std::memset(dxp + c0 * plane, 0, sizeof(float) * size_t(c1 - c0) * plane);
    int32_t* kb = ranges + 2 * size_t(W.rows) * t;
    int32_t* ke = kb + W.rows;
    for (int oc = 0; oc < W.rows; ++oc) {
      const int32_t* b = W.col_idx.data() + W.row_ptr[oc];
      const int32_t* e = W.col_idx.data() + W.row_ptr[oc + 1];
      kb[oc] = W.row_ptr[oc] + int32_t(std::lower_bound(b, e, c0 * KK) - b);
      ke[oc] = W.row_ptr[oc] + int32_t(std::lower_bound(b, e, c1 * KK) - b);
    }
    backward_data_rows(s, W, off, dy, dxp, kb, ke);
  });
}

void backward_weights(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                      const GradRows& dy, const float* xp, float* dw_values, bool accumulate) {
  if (W.nnz() == 0) return;
  const int P = s.OH() * s.OW();
  if (P == 0 || s.N == 0) {
    if (!accumulate) std::fill_n(dw_values, W.nnz(), 0.0f);
    return;
  }
  const int T = threads_for((W.nnz() + W.rows) * int64_t(P) * s.N);
  parallel_region(T, [&](int t, int nt) {
    const int r0 = split_units(W.row_ptr, W.rows, 1, t, nt);
    const int r1 = split_units(W.row_ptr, W.rows, 1, t + 1, nt);
    if (r0 < r1) backward_weights_rows(s, W, off, dy, xp, dw_values, accumulate, r0, r1);
  });
}

void check_pool(const Conv2dShape& s, const PoolPnShape& ps, const char* fn) {
  if (ps.C != s.OC || ps.OH != s.OH() || ps.OW != s.OW() || ps.N != s.N || ps.KH < 1 || ps.KW < 1)
    throw std::invalid_argument(std::string(fn) + ": pool shape does not match the conv output");
  if (ps.pad_h < 0 || ps.pad_w < 0)
    throw std::invalid_argument(std::string(fn) + ": negative border on the pooled output");
}

}  // namespace

void csr_conv_forward(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                      const float* xp, float* y) {
  check_weight(s, W, "csr_conv_forward");
  const int P = s.OH() * s.OW();
  if (s.OC == 0 || P == 0 || s.N == 0) return;
  const int T = threads_for((W.nnz() + W.rows) * int64_t(P) * s.N);
  parallel_region(T, [&](int t, int nt) {
    const int64_t u0 = split_pixel_rows(W.row_ptr, s.OC, P, t, nt);
    const int64_t u1 = split_pixel_rows(W.row_ptr, s.OC, P, t + 1, nt);
    if (u0 < u1) forward_rows(s, W, off, xp, y, u0, u1);
  });
}

void csr_conv_backward_data(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                            const float* dy, float* dxp) {
  check_weight(s, W, "csr_conv_backward_data");
  backward_data(s, W, off, GradRows(s, dy), dxp);
}

void csr_conv_backward_weights(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                               const float* dy, const float* xp, float* dw_values,
                               bool accumulate) {
  check_weight(s, W, "csr_conv_backward_weights");
  backward_weights(s, W, off, GradRows(s, dy), xp, dw_values, accumulate);
}

void csr_conv_pool_backward_data(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                                 const PoolPnShape& ps, const float* g, const int32_t* code,
                                 float* dxp) {
  check_weight(s, W, "csr_conv_pool_backward_data");
  check_pool(s, ps, "csr_conv_pool_backward_data");
  static thread_local std::vector<int32_t> pixels;
  pixels.resize(GradRows::table_ints(s));
  backward_data(s, W, off, GradRows(s, ps, g, code, pixels.data()), dxp);
}

void csr_conv_pool_backward_weights(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                                    const PoolPnShape& ps, const float* g, const int32_t* code,
                                    const float* xp, float* dw_values, bool accumulate) {
  check_weight(s, W, "csr_conv_pool_backward_weights");
  check_pool(s, ps, "csr_conv_pool_backward_weights");
  static thread_local std::vector<int32_t> pixels;
  pixels.resize(GradRows::table_ints(s));
  backward_weights(s, W, off, GradRows(s, ps, g, code, pixels.data()), xp, dw_values, accumulate);
}

void pool_pn_bias_grad(const PoolPnShape& s, const float* g, const int32_t* code, float* db,
                       bool accumulate) {
  const int64_t per_channel = int64_t(s.PH()) * s.PW() * s.N;
  // g's rows of PW·N floats, its border skipped (one run when there is none).
  const int64_t run = s.pad_w == 0 && s.pad_h == 0 ? per_channel : int64_t(s.PW()) * s.N;
  parallel_for(s.C, worth_parallel(s.C * per_channel, kParallelMinElems), [=](int64_t c) {
    const int32_t* cc = code + c * per_channel;
    // 16 independent double sums (one vector chain each) instead of one chain of dependent adds;
    // element i of the channel goes to sum i % 16 whatever the border.
    double part[16] = {};
    for (int64_t i0 = 0; i0 < per_channel; i0 += run) {
      const int ph = static_cast<int>(i0 / (int64_t(s.PW()) * s.N));
      const float* gr = g + s.y_at(static_cast<int>(c), ph, 0) * s.N;  // element i0 of the channel
      const int64_t end = i0 + run;
      int64_t i = i0;
      for (; i < end && i % 16 != 0; ++i) part[i % 16] += cc[i] >= 0 ? double(gr[i - i0]) : 0.0;
      for (; i + 16 <= end; i += 16)
        for (int l = 0; l < 16; ++l) {
          // g where code >= 0, else +0, as a bit mask (the sign of code): a branch per element
          // mispredicted on random winners and kept the loop scalar.
          uint32_t bits;
          std::memcpy(&bits, gr + (i - i0) + l, sizeof bits);
          bits &= ~static_cast<uint32_t>(cc[i + l] >> 31);
          float v;
          std::memcpy(&v, &bits, sizeof v);
          part[l] += static_cast<double>(v);
        }
      for (; i < end; ++i) part[i % 16] += cc[i] >= 0 ? double(gr[i - i0]) : 0.0;
    }
    double acc = 0.0;
    for (int l = 0; l < 16; ++l) acc += part[l];
    db[c] = static_cast<float>(accumulate ? db[c] + acc : acc);
  });
}

void nchw_to_pn_padded(const Conv2dShape& s, const float* x, float* xp) {
  const int N = s.N, C = s.C, H = s.H, W = s.W;
  if (s.pad_h == 0 && s.pad_w == 0) {
    transpose_dense(N, C * H * W, x, xp);
    return;
  }
  static thread_local std::vector<float> buf;
  float* t = scratch(buf, static_cast<size_t>(C) * H * W * N);
  transpose_dense(N, C * H * W, x, t);
  st::kernels::pn_to_pn_padded(s, t, xp);
}

void pn_padded_to_nchw(const Conv2dShape& s, const float* xp, float* x) {
  const int N = s.N, C = s.C, H = s.H, W = s.W;
  if (s.pad_h == 0 && s.pad_w == 0) {
    transpose_dense(C * H * W, N, xp, x);
    return;
  }
  static thread_local std::vector<float> buf;
  float* t = scratch(buf, static_cast<size_t>(C) * H * W * N);
  st::kernels::pn_padded_to_pn(s, xp, t);
  transpose_dense(C * H * W, N, t, x);
}

void pn_to_nchw(int C, int N, int P, const float* a, const float* bias, float* y) {
  transpose_dense(C * P, N, a, y);
  if (!bias) return;
  parallel_for(int64_t(N) * C, worth_parallel(int64_t(N) * C * P, kParallelMinElems), [=](int64_t nc) {
    const float b = bias[nc % C];
    float* dst = y + nc * P;
    for (int p = 0; p < P; ++p) dst[p] += b;
  });
}

void nchw_to_pn(int C, int N, int P, const float* y, float* a) { transpose_dense(N, C * P, y, a); }

namespace {
// One pooled output (lanes [0, n)) from the KK = KH·KW window rows at t, t + ld, ...: bias as
// pn_to_nchw adds it (a + b; no addition without a bias), relu as relu_forward, then the window's
// first maximum in row-major order (strict >, as max_pool2d_forward); relu's backward passes the
// gradient where its output is > 0, so at the winner iff the maximum is (else code -1).
template <bool BIAS, bool RELU>
void pool_lanes(const float* t, size_t ld, int KK, int n, float b, float* __restrict yy,
                int32_t* __restrict cc) {
#if defined(ST_HAVE_SIMD)
  // In registers: a compiler-vectorized loop kept yy and cc in memory with masked stores, which
  // stall the next iteration's loads (a quarter of SimpleCNN's CSR step on AMD Zen 2).
  const vf bias = vset1(b), zero = vzero();
  for (int i = 0; i < n; i += VL) {
    const int cnt = std::min(VL, n - i);
    const vmask m = lanes(cnt);
    auto value = [&](int j) {
      vf v = vloadu(m, t + j * ld + i);
      if (BIAS) v = vadd(v, bias);
      if (RELU) v = vmax(v, zero);  // v > 0 ? v : 0, NaN -> 0, as relu_forward
      return v;
    };
    vf best = value(0);
    vi code = vizero();
    for (int j = 1; j < KK; ++j) {
      const vf v = value(j);
      const vcmp gt = vcmpgt(v, best);
      best = vselect(gt, v, best);
      code = viselect(gt, viset1(j), code);
    }
    if (RELU) code = viselect(vcmpgt(best, zero), code, viset1(-1));
    if (cnt == VL) {
      vstoreu(yy + i, best);
      vistoreu(cc + i, code);
    } else {
      vstoreu(yy + i, m, best);
      vistoreu(cc + i, m, code);
    }
  }
#else
  for (int j = 0; j < KK; ++j) {
    const float* __restrict src = t + j * ld;
    if (j == 0) {
      for (int i = 0; i < n; ++i) {
        float v = BIAS ? src[i] + b : src[i];
        if (RELU) v = v > 0.0f ? v : 0.0f;
        yy[i] = v;
        cc[i] = 0;
      }
    } else {
      for (int i = 0; i < n; ++i) {
        float v = BIAS ? src[i] + b : src[i];
        if (RELU) v = v > 0.0f ? v : 0.0f;
        const float best = yy[i];
        const int32_t code_i = cc[i];
        yy[i] = v > best ? v : best;
        cc[i] = v > best ? j : code_i;
      }
    }
  }
  // relu's backward passes the gradient where its output is > 0: at the winner, iff the max is.
  if (RELU)
    for (int i = 0; i < n; ++i) cc[i] = yy[i] > 0.0f ? cc[i] : -1;
#endif
}
using PoolLanesFn = decltype(&pool_lanes<true, true>);

// Zeros y's border in channels [c0, c1): whole rows above and below the interior, pad_w pixels
// left and right of each interior row.
void zero_border(const PoolPnShape& ps, float* y, int64_t c0, int64_t c1) {
  const size_t N = static_cast<size_t>(ps.N), YW = static_cast<size_t>(ps.YW());
  const size_t side = static_cast<size_t>(ps.pad_w) * N;
  for (int64_t c = c0; c < c1; ++c) {
    float* yc = y + static_cast<size_t>(c) * ps.YH() * YW * N;
    std::fill_n(yc, ps.pad_h * YW * N, 0.0f);
    std::fill_n(yc + (ps.YH() - ps.pad_h) * YW * N, ps.pad_h * YW * N, 0.0f);
    for (int ph = 0; ph < ps.PH() && side > 0; ++ph) {
      float* row = yc + (ph + ps.pad_h) * YW * N;
      std::fill_n(row, side, 0.0f);
      std::fill_n(row + (YW - ps.pad_w) * N, side, 0.0f);
    }
  }
}

// Pooled units [u0, u1) (u = q·OC + oc over pooled pixels q, pixel-major): each window pixel's
// conv row goes to the buffer `t` (KK rows of kChunk floats) exactly as forward_rows computes it,
// and is pooled from there; the conv output never reaches memory.
void conv_pool_rows(const Conv2dShape& s, const PoolPnShape& ps, const CsrMatrix& W,
                    const int32_t* off, const float* xp, const float* bias, bool relu,
                    PoolLanesFn pool, float* y, int32_t* code, int64_t u0, int64_t u1, float* t) {
  const int N = s.N, OW = s.OW(), PW = ps.PW(), PP = ps.PH() * PW, KK = ps.KH * ps.KW;
  const PixelBase base(s);
  const int32_t* rp = W.row_ptr.data();
  const float* va = W.values.data();
  for (int n0 = 0; n0 < N; n0 += kChunk) {
    const int n = std::min(kChunk, N - n0);
#if defined(ST_HAVE_SIMD)
    const int32_t k_last = static_cast<int32_t>(std::max<int64_t>(W.nnz() - 1, 0));
    const auto fn = pick_spmm_no_prefetch(n);
    const vmask tail = lanes(n % VL);
#endif
    for (int64_t u = u0; u < u1; ++u) {
      const int q = static_cast<int>(u / W.rows), oc = static_cast<int>(u % W.rows);
      const int ph = q / PW, pw = q % PW;
      const size_t o = (static_cast<size_t>(oc) * PP + q) * N + n0;
      const size_t oy = static_cast<size_t>(ps.y_at(oc, ph, pw)) * N + n0;
      if (rp[oc] == rp[oc + 1]) {  // an empty row: every window value is 0 (+ bias), tied
        float v = bias ? 0.0f + bias[oc] : 0.0f;
        if (relu) v = v > 0.0f ? v : 0.0f;
        std::fill_n(y + oy, n, v);
        std::fill_n(code + o, n, relu && !(v > 0.0f) ? -1 : 0);
        continue;
      }
      for (int kh = 0; kh < ps.KH; ++kh)
        for (int kw = 0; kw < ps.KW; ++kw) {
          const int p = (ph * ps.KH + kh) * OW + pw * ps.KW + kw;
          float* c = t + (kh * ps.KW + kw) * kChunk;
#if defined(ST_HAVE_SIMD)
          fn(off, va, rp[oc], rp[oc + 1], k_last, xp + base(p) * N + n0, static_cast<size_t>(N),
             c, 0.0f, tail);
#else
          for (int i = 0; i < n; ++i) c[i] = 0.0f;
          for (int32_t k = rp[oc]; k < rp[oc + 1]; ++k) {
            const float a = va[k];
            const float* b = xp + (base(p) + off[k]) * N + n0;
            for (int i = 0; i < n; ++i) c[i] += a * b[i];
          }
#endif
        }
      pool(t, kChunk, KK, n, bias ? bias[oc] : 0.0f, y + oy, code + o);
    }
  }
}
}  // namespace

void csr_conv_pool_forward(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                           const float* xp, const float* bias, bool relu, const PoolPnShape& ps,
                           float* y, int32_t* code) {
  check_weight(s, W, "csr_conv_pool_forward");
  check_pool(s, ps, "csr_conv_pool_forward");
  const int PP = ps.PH() * ps.PW();
  if (int64_t(s.OC) * PP * s.N == 0) return;
  const PoolLanesFn pool = bias ? (relu ? &pool_lanes<true, true> : &pool_lanes<true, false>)
                                : (relu ? &pool_lanes<false, true> : &pool_lanes<false, false>);
  const int KK = ps.KH * ps.KW;
  const int T = threads_for((W.nnz() + W.rows) * int64_t(PP) * KK * s.N);
  parallel_region(T, [&](int t, int nt) {
    static thread_local std::vector<float> buf;
    float* tile = scratch(buf, static_cast<size_t>(KK) * kChunk);
    if (ps.pad_h > 0 || ps.pad_w > 0)
      zero_border(ps, y, int64_t(s.OC) * t / nt, int64_t(s.OC) * (t + 1) / nt);
    const int64_t u0 = split_pixel_rows(W.row_ptr, s.OC, PP, t, nt);
    const int64_t u1 = split_pixel_rows(W.row_ptr, s.OC, PP, t + 1, nt);
    if (u0 < u1) conv_pool_rows(s, ps, W, off, xp, bias, relu, pool, y, code, u0, u1, tile);
  });
}

void im2col_batch(const Conv2dShape& s, const float* x, float* cols) {
  const int64_t P = int64_t(s.OH()) * s.OW(), K = int64_t(s.C) * s.KH * s.KW, NP = P * s.N;
  const int64_t in_sz = int64_t(s.C) * s.H * s.W;
  parallel_for(s.N, worth_parallel(K * NP, kParallelMinElems), [=](int64_t n) {
    ST_ISA_NS::im2col(s, x + n * in_sz, cols + n * P, static_cast<size_t>(NP));
  });
}

void col2im_batch(const Conv2dShape& s, const float* cols, float* dx) {
  const int64_t P = int64_t(s.OH()) * s.OW(), K = int64_t(s.C) * s.KH * s.KW, NP = P * s.N;
  const int64_t in_sz = int64_t(s.C) * s.H * s.W;
  parallel_for(s.N, worth_parallel(K * NP, kParallelMinElems), [=](int64_t n) {
    ST_ISA_NS::col2im(s, cols + n * P, dx + n * in_sz, static_cast<size_t>(NP));
  });
}

void cnp_to_nchw(int C, int N, int P, const float* a, const float* bias, float* y) {
  parallel_for(int64_t(N) * C, worth_parallel(int64_t(N) * C * P, kParallelMinElems), [=](int64_t nc) {
    const int64_t n = nc / C, c = nc % C;
    const float* src = a + (int64_t(c) * N + n) * P;
    float* dst = y + (int64_t(n) * C + c) * P;
    const float b = bias ? bias[c] : 0.f;
    if (bias)
      for (int p = 0; p < P; ++p) dst[p] = src[p] + b;
    else
      std::memcpy(dst, src, sizeof(float) * P);
  });
}

void nchw_to_cnp(int C, int N, int P, const float* y, float* a) {
  parallel_for(int64_t(C) * N, worth_parallel(int64_t(N) * C * P, kParallelMinElems), [=](int64_t cn) {
    const int64_t c = cn / N, n = cn % N;
    std::memcpy(a + (c * N + n) * P, y + (n * C + c) * P, sizeof(float) * P);
  });
}

}  // namespace st::kernels::ST_ISA_NS

#if defined(ST_ISA_GENERIC)  // no vector code: defined once, in the generic copy
namespace st::kernels {

void conv_offsets(const Conv2dShape& s, const CsrMatrix& W, std::vector<int32_t>& off) {
  ST_ISA_NS::check_weight(s, W, "conv_offsets");
  const int Hp = padded_h(s), Wp = padded_w(s), khw = s.KH * s.KW;
  off.resize(static_cast<size_t>(W.nnz()));
  for (int64_t k = 0; k < W.nnz(); ++k) {
    const int col = W.col_idx[k], c = col / khw, kh = (col % khw) / s.KW, kw = col % s.KW;
    off[k] = (c * Hp + kh) * Wp + kw;
  }
}

// Row copies (no vector code of their own): each padded row is written once, zeros for the
// padding and the image row between them.
void pn_to_pn_padded(const Conv2dShape& s, const float* x, float* xp) {
  const int N = s.N, C = s.C, H = s.H, W = s.W, Hp = padded_h(s), Wp = padded_w(s);
  const size_t row = static_cast<size_t>(W) * N, left = static_cast<size_t>(s.pad_w) * N;
  const size_t right = static_cast<size_t>(Wp - W - s.pad_w) * N;
  for (int c = 0; c < C; ++c)
    for (int hp = 0; hp < Hp; ++hp) {
      float* dst = xp + (static_cast<size_t>(c) * Hp + hp) * Wp * N;
      const int h = hp - s.pad_h;
      if (h < 0 || h >= H) {
        std::memset(dst, 0, sizeof(float) * Wp * N);
        continue;
      }
      std::memset(dst, 0, sizeof(float) * left);
      std::memcpy(dst + left, x + (static_cast<size_t>(c) * H + h) * row, sizeof(float) * row);
      std::memset(dst + left + row, 0, sizeof(float) * right);
    }
}

void pn_padded_to_pn(const Conv2dShape& s, const float* xp, float* x) {
  const int N = s.N, C = s.C, H = s.H, W = s.W, Hp = padded_h(s), Wp = padded_w(s);
  const size_t row = static_cast<size_t>(W) * N;
  for (int c = 0; c < C; ++c)
    for (int h = 0; h < H; ++h)
      std::memcpy(x + (static_cast<size_t>(c) * H + h) * row,
                  xp + ((static_cast<size_t>(c) * Hp + h + s.pad_h) * Wp + s.pad_w) * N,
                  sizeof(float) * row);
}

}  // namespace st::kernels
#endif
