// kernels/conv.h — 2-D convolution on the CPU by im2col/col2im + sgemm (NCHW activations, OIHW weights);
// the weight gradient of layers with few input channels by a direct kernel (conv2d_direct_weight_grad).
//   conv2d_forward:          y (N, OC, OH, OW) = conv(x (N, C, H, W), w (OC, C, KH, KW)) + b (OC)
//   conv2d_backward_data:    dx (N, C, H, W)  = convᵀ(dy, w)                        (overwrites dx)
//   conv2d_backward_weights: dw (OC, C, KH, KW) (+)= Σ_n dy ⋆ x ; db (OC) (+)= Σ dy  (accumulate if
//                            `accumulate`, else overwrite; db may be null)
// `workspace` must hold conv2d_workspace_floats(shape) floats (im2col columns, per-thread partials).
// Deterministic for a fixed thread count. Reference: kernels/reference.h. Tests: tests/kernels/test_conv.cpp.
#pragma once
#include <cstddef>

namespace st::kernels {

struct Conv2dShape {
  int N = 1, C = 1, H = 1, W = 1;  // input
  int OC = 1, KH = 1, KW = 1;      // weight
  int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int OH() const { return (H + 2 * pad_h - KH) / stride_h + 1; }
  int OW() const { return (W + 2 * pad_w - KW) / stride_w + 1; }
};

// One image: in (C, H, W) -> cols (C·KH·KW, OH·OW); padding reads as 0. `ld`: the distance between
// rows of cols (0: OH·OW) — a batch's columns (C·KH·KW, N·OH·OW) take image n at cols + n·OH·OW.
void im2col(const Conv2dShape& s, const float* in, float* cols, size_t ld = 0);
// One image: cols (C·KH·KW, OH·OW) -> in (C, H, W); overlapping patches add up; overwrites `in`.
void col2im(const Conv2dShape& s, const float* cols, float* in, size_t ld = 0);

size_t conv2d_workspace_floats(const Conv2dShape& s);
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y,
                    float* workspace);
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          float* workspace);
// True when conv2d_backward_weights runs its direct kernel for `s` on the active instruction set
// (few input channels, C <= 4, stride 1, a vector set): no im2col, and the result does not depend
// on the thread count. Faster there than oneDNN's, which is why the oneDNN backend calls it too.
bool conv2d_direct_weight_grad(const Conv2dShape& s);
void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                             float* db, bool accumulate, float* workspace);

}  // namespace st::kernels
