// cuda/conv.h — convolution layout kernels and pooling on the GPU: the device twins of
// kernels/conv.h, kernels/sparse_conv.h and kernels/pool.h (same shapes structs, same argument
// orders and contracts; every pointer is a device pointer).
//   im2col / col2im:             one image, in (C, H, W) <-> cols (C·KH·KW, OH·OW)
//   im2col_batch / col2im_batch: x (N, C, H, W) <-> cols (C·KH·KW, N·OH·OW), column n·P + p
//   cnp_to_nchw / nchw_to_cnp:   a (C, N·P) [+ bias (C)] <-> y (N, C, P)
//   conv2d_forward / backward_data / backward_weights: the dense conv as one SGEMM over the whole
//       batch (im2col_batch + cuda::sgemm + reorder); `workspace` holds
//       conv2d_workspace_floats(shape) floats of device memory.
//   max_pool2d_* / avg_pool2d_*: NCHW pooling; argmax is the int32 index into the (H·W) plane,
//       first maximum wins; avg counts padded cells in the divisor (count_include_pad).
// col2im and the pooling backwards overwrite their output and gather (each input pixel sums the
// outputs that read it) instead of scattering with atomics: deterministic, and the pooling
// backwards add in the CPU's order (max pooling matches the CPU bitwise, im2col and the reorders
// too; col2im and avg pooling's backward to float rounding, the conv GEMMs to float tolerance).
// All calls are asynchronous on st::cuda::stream(). Kernels: cuda/conv.cu.
// Tests: tests/cuda/test_conv.cpp (under the emulator).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/conv.h"
#include "kernels/pool.h"

namespace st::cuda {

using kernels::Conv2dShape;
using kernels::Pool2dShape;

void im2col(const Conv2dShape& s, const float* in, float* cols);
void col2im(const Conv2dShape& s, const float* cols, float* in);
void im2col_batch(const Conv2dShape& s, const float* x, float* cols);
void col2im_batch(const Conv2dShape& s, const float* cols, float* dx);
void cnp_to_nchw(int C, int N, int P, const float* a, const float* bias, float* y);
void nchw_to_cnp(int C, int N, int P, const float* y, float* a);

// y (N, OC, OH, OW) = conv(x (N, C, H, W), w (OC, C, KH, KW)) + b (OC; may be null)
// dx (N, C, H, W) = convᵀ(dy, w)                                   (overwrites dx)
// dw (OC, C, KH, KW) (+)= Σ_n dy ⋆ x ; db (OC) (+)= Σ dy           (db may be null)
size_t conv2d_workspace_floats(const Conv2dShape& s);
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y,
                    float* workspace);
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          float* workspace);
void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                             float* db, bool accumulate, float* workspace);

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax);
void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx);
void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y);
void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx);

}  // namespace st::cuda
