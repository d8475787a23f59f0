// kernels/sparse_conv.h — layout helpers for a convolution run as one CSR product over the batch:
//   im2col_batch:  x (N, C, H, W)          -> cols (C·KH·KW, N·OH·OW)   column n·P + p, P = OH·OW
//   col2im_batch:  cols (C·KH·KW, N·OH·OW) -> dx (N, C, H, W)           overwrites dx
//   cnp_to_nchw:   a (OC, N·P) [+ bias (OC)] -> y (N, OC, P)
//   nchw_to_cnp:   y (N, OC, P)             -> a (OC, N·P)
// The sparse conv then is out (OC, N·P) = W_csr (OC, C·KH·KW) · cols (kernels/sparse_cpu.h csr_spmm),
// its input gradient dcols = Wᵀ · dy (csr_spmm on the transposed copy) and its weight gradient
// csr_sddmm(W, dy (OC, N·P), cols). One product over the whole batch keeps N wide enough for the
// SpMM kernels even on 8×8 maps. Parallel over images (im2col/col2im) or channels; deterministic.
// Tests: tests/core/test_sparse_ops.cpp (the sparse conv against the dense one).
#pragma once
#include "kernels/conv.h"

namespace st::kernels {

void im2col_batch(const Conv2dShape& s, const float* x, float* cols);
void col2im_batch(const Conv2dShape& s, const float* cols, float* dx);
void cnp_to_nchw(int C, int N, int P, const float* a, const float* bias, float* y);
void nchw_to_cnp(int C, int N, int P, const float* y, float* a);

}  // namespace st::kernels
