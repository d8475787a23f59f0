// kernels/conv.cpp — 2-D convolution by im2col/col2im + sgemm (NCHW activations, OIHW weights).
//   conv2d_forward:          y_n (OC, OH·OW)     = w (OC, C·KH·KW) · cols_n (C·KH·KW, OH·OW) + b
//   conv2d_backward_data:    cols_n              = wᵀ (C·KH·KW, OC) · dy_n (OC, OH·OW); dx_n = col2im
//   conv2d_backward_weights: dw (OC, C·KH·KW)   (+)= Σ_n dy_n · cols_nᵀ ; db (OC) (+)= Σ dy
// Batch parallelism: images are split statically over threads, each thread with its own column
// buffer and (for weights) its own partial dw/db, reduced in thread order afterwards — so results
// are deterministic for a fixed thread count. With a single image the sgemm itself goes parallel.
// Work and partials are indexed by chunk (0..nt-1), not by the thread that happens to run them.
// A 1×1, stride-1, unpadded convolution skips im2col (the input already is its column matrix).
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

}  // namespace

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
  return threads * (cols + partial_dw + partial_db);
}

}  // namespace st::kernels
#endif
