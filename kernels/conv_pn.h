// kernels/conv_pn.h — the dense direct convolution in the batch-innermost ("PN") layout of the
// sparse conv (kernels/sparse_conv.h): activations (C, Hp, Wp, N) zero-padded, the batch index
// contiguous. Output pixel p reads the input vector at base(p) + off(k) for every weight column
// k = (c, kh, kw), so each pixel is a small GEMM whose B rows are gathered by offset (an implicit
// im2col: no column matrix is built).
//   pn_conv_forward:          y (OC, P, N) = w (OC, C·KH·KW) ⊛ xp                   P = OH·OW
//   pn_conv_backward_data:    dxp (C, Hp, Wp, N) = wᵀ ⊛ dy (overwrites dxp, borders too)
//   pn_conv_backward_weights: dw (OC, C·KH·KW) (+)= Σ_p Σ_n dy[oc, p, n]·xp[base(p) + off(k), n]
//   pn_conv_fits:             whether the CPU dense conv (core/ops.cpp) runs these kernels for s on
//                             the active instruction set: where they were measured faster than
//                             oneDNN's and the native im2col + GEMM (see kernels/conv_pn.cpp).
// Register blocks: forward 5 output channels × 64 lanes (AVX-512; 16 lanes on AVX2), input
// gradient 5 weight columns × 64 lanes, weight gradient 4 × 4 (2 × 4 on AVX2) (oc, k) pairs of
// lane partial sums reduced by one transpose-add tree.
// Threads: forward (pixel, channel block) units, input gradient whole input channels, weight
// gradient (channel block, column block) units; every output element is summed by one thread in a
// fixed order, so results do not depend on the thread count.
// Tests: tests/kernels/test_conv_pn.cpp (against the reference convolution), tests/core/test_ops.cpp
// (conv2d's finite-difference gradients run through them).
#pragma once
#include "kernels/conv.h"

namespace st::kernels {

bool pn_conv_fits(const Conv2dShape& s);
void pn_conv_forward(const Conv2dShape& s, const float* w, const float* xp, float* y);
void pn_conv_backward_data(const Conv2dShape& s, const float* w, const float* dy, float* dxp);
void pn_conv_backward_weights(const Conv2dShape& s, const float* dy, const float* xp, float* dw,
                              bool accumulate);

}  // namespace st::kernels
