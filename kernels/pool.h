// kernels/pool.h — 2-D max and average pooling on the CPU (NCHW), forward and backward.
//   max_pool2d_forward:  y (N, C, OH, OW) = max over each window of x; argmax holds the index into
//                        the (H·W) plane of the winner (first maximum wins on ties)
//   max_pool2d_backward: dx (N, C, H, W) = scatter of dy to the argmax positions (overwrites dx)
//   avg_pool2d_forward/backward: mean over the window; padded cells count in the divisor
//                        (PyTorch's count_include_pad=True); backward overwrites dx.
// Reference: kernels/reference.h. Tests: tests/kernels/test_pool.cpp.
#pragma once
#include <cstdint>

#include "kernels/host_device.h"

namespace st::kernels {

struct Pool2dShape {
  int N = 1, C = 1, H = 1, W = 1;
  int KH = 2, KW = 2, stride_h = 2, stride_w = 2, pad_h = 0, pad_w = 0;
  int OH() const { return (H + 2 * pad_h - KH) / stride_h + 1; }
  int OW() const { return (W + 2 * pad_w - KW) / stride_w + 1; }
};

// Shared by the CPU and CUDA pooling kernels:
// rows (or cols) [lo, hi) of output position o's window that fall inside the unpadded input.
ST_HD void pool_window(int o, int stride, int pad, int k, int extent, int& lo, int& hi) {
  const int start = o * stride - pad;
  lo = start > 0 ? start : 0;
  hi = start + k < extent ? start + k : extent;
}
// The maximum of a non-empty window [h0, h1) × [w0, w1) of a plane with W columns, and in best_idx
// its index in the plane: the first maximum of a row-major scan wins ties (strict >).
ST_HD float window_max(const float* in, int W, int h0, int h1, int w0, int w1, int& best_idx) {
  best_idx = h0 * W + w0;
  float best = in[best_idx];
  for (int ih = h0; ih < h1; ++ih)
    for (int iw = w0; iw < w1; ++iw) {
      const float v = in[ih * W + iw];
      if (v > best) {
        best = v;
        best_idx = ih * W + iw;
      }
    }
  return best;
}

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax);
void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx);
void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y);
void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx);

}  // namespace st::kernels
