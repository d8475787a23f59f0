// kernels/pool.cpp — 2-D max and average pooling (NCHW), forward and backward.
//   max_pool2d_forward:  y (N, C, OH, OW) = window max of x (N, C, H, W); argmax = ih·W + iw in the plane
//   max_pool2d_backward: dx = scatter-add of dy at argmax                  (overwrites dx)
//   avg_pool2d_forward/backward: window mean, padded cells count in the divisor (count_include_pad)
// Each (n, c) plane is independent, so planes are split statically over OpenMP threads; a thread
// writes only its own planes, which keeps backward's scatter race-free and deterministic.
// Reference: kernels/reference.cpp. Tests: tests/kernels/test_pool.cpp.
#include "kernels/pool.h"
#include "kernels/parallel.h"

#include <algorithm>
#include <cassert>
#include <cstddef>

namespace st::kernels {
namespace {

// Parallel only when there is enough work to beat the fork/join cost.
constexpr long long kParallelMinElems = 1 << 15;

// Window rows/cols [lo, hi) of output position o that fall inside the unpadded input.
inline void window(int o, int stride, int pad, int k, int extent, int& lo, int& hi) {
  const int start = o * stride - pad;
  lo = std::max(start, 0);
  hi = std::min(start + k, extent);
}

}  // namespace

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int OH = s.OH(), OW = s.OW();
  const long long planes = static_cast<long long>(s.N) * s.C;
  const size_t in_plane = static_cast<size_t>(s.H) * s.W, out_plane = static_cast<size_t>(OH) * OW;
  parallel_for(planes, worth_parallel(planes * in_plane, kParallelMinElems), [=](int64_t p) {
    const float* in = x + p * in_plane;
    float* out = y + p * out_plane;
    int32_t* arg = argmax + p * out_plane;
    for (int oh = 0; oh < OH; ++oh) {
      int h0, h1;
      window(oh, s.stride_h, s.pad_h, s.KH, s.H, h0, h1);
      for (int ow = 0; ow < OW; ++ow) {
        int w0, w1;
        window(ow, s.stride_w, s.pad_w, s.KW, s.W, w0, w1);
        assert(h0 < h1 && w0 < w1 && "pooling window lies entirely in the padding");
        int best_idx = h0 * s.W + w0;
        float best = in[best_idx];
        for (int ih = h0; ih < h1; ++ih)
          for (int iw = w0; iw < w1; ++iw) {
            const float v = in[ih * s.W + iw];
            if (v > best) {  // strict: the first maximum (row-major scan) wins ties
              best = v;
              best_idx = ih * s.W + iw;
            }
          }
        out[oh * OW + ow] = best;
        arg[oh * OW + ow] = best_idx;
      }
    }
  });
}

void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx) {
  const int OH = s.OH(), OW = s.OW();
  const long long planes = static_cast<long long>(s.N) * s.C;
  const size_t in_plane = static_cast<size_t>(s.H) * s.W, out_plane = static_cast<size_t>(OH) * OW;
  parallel_for(planes, worth_parallel(planes * in_plane, kParallelMinElems), [=](int64_t p) {
    float* d = dx + p * in_plane;
    const float* g = dy + p * out_plane;
    const int32_t* arg = argmax + p * out_plane;
    std::fill(d, d + in_plane, 0.0f);
    for (size_t o = 0; o < out_plane; ++o) d[arg[o]] += g[o];
  });
}

void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y) {
  const int OH = s.OH(), OW = s.OW();
  const long long planes = static_cast<long long>(s.N) * s.C;
  const size_t in_plane = static_cast<size_t>(s.H) * s.W, out_plane = static_cast<size_t>(OH) * OW;
  const float inv_area = 1.0f / static_cast<float>(s.KH * s.KW);
  parallel_for(planes, worth_parallel(planes * in_plane, kParallelMinElems), [=](int64_t p) {
    const float* in = x + p * in_plane;
    float* out = y + p * out_plane;
    for (int oh = 0; oh < OH; ++oh) {
      int h0, h1;
      window(oh, s.stride_h, s.pad_h, s.KH, s.H, h0, h1);
      for (int ow = 0; ow < OW; ++ow) {
        int w0, w1;
        window(ow, s.stride_w, s.pad_w, s.KW, s.W, w0, w1);
        float acc = 0.0f;
        for (int ih = h0; ih < h1; ++ih)
          for (int iw = w0; iw < w1; ++iw) acc += in[ih * s.W + iw];
        out[oh * OW + ow] = acc * inv_area;
      }
    }
  });
}

void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx) {
  const int OH = s.OH(), OW = s.OW();
  const long long planes = static_cast<long long>(s.N) * s.C;
  const size_t in_plane = static_cast<size_t>(s.H) * s.W, out_plane = static_cast<size_t>(OH) * OW;
  const float inv_area = 1.0f / static_cast<float>(s.KH * s.KW);
  parallel_for(planes, worth_parallel(planes * in_plane, kParallelMinElems), [=](int64_t p) {
    float* d = dx + p * in_plane;
    const float* g = dy + p * out_plane;
    std::fill(d, d + in_plane, 0.0f);
    for (int oh = 0; oh < OH; ++oh) {
      int h0, h1;
      window(oh, s.stride_h, s.pad_h, s.KH, s.H, h0, h1);
      for (int ow = 0; ow < OW; ++ow) {
        int w0, w1;
        window(ow, s.stride_w, s.pad_w, s.KW, s.W, w0, w1);
        const float share = g[oh * OW + ow] * inv_area;
        for (int ih = h0; ih < h1; ++ih)
          for (int iw = w0; iw < w1; ++iw) d[ih * s.W + iw] += share;
      }
    }
  });
}

}  // namespace st::kernels
