// kernels/sparse_conv.h — the CSR convolution on the CPU: a direct sparse convolution in the
// batch-innermost layout, and (for the CUDA path and its tests) the batch im2col helpers.
//
// Direct sparse convolution ("PN" layout: activations (C, Hp, Wp, N), the batch index contiguous,
// the input zero-padded to Hp = H + 2·pad_h, Wp = W + 2·pad_w). Output pixel p = (oh, ow) reads
// the input vector at position base(p) + off(k) for each nonzero k = W[oc, (c, kh, kw)], where
//   base(p) = oh·stride_h·Wp + ow·stride_w,    off(k) = (c·Hp + kh)·Wp + kw   (units of N floats).
// So every (oc, p) is one CSR row times N-wide input vectors — the SpMM row kernel with the
// column indices replaced by offsets — and no im2col matrix (KH·KW times the input) is built.
//   conv_offsets:               off (nnz) for W (OC, C·KH·KW) and a padded input of s
//   csr_conv_forward:           y (OC, P, N) = W ⊛ xp                       P = OH·OW
//   csr_conv_backward_data:     dxp (C, Hp, Wp, N) = Wᵀ ⊛ dy (scatter; overwrites dxp, borders too)
//   csr_conv_backward_weights:  dw_values (nnz) (+)= Σ_p Σ_n dy[oc, p, n]·xp[base(p) + off(k), n]
//   nchw_to_pn_padded / pn_padded_to_nchw: x (N, C, H, W) <-> xp (C, Hp, Wp, N) (crops the padding)
//   pn_to_pn_padded / pn_padded_to_pn: x (C, H, W, N) <-> xp (C, Hp, Wp, N) (zero borders / crops),
//                               steps of the two above (a conv-pool node feeding
//                               another writes its output padded instead: PoolPnShape's border)
//   pn_to_nchw / nchw_to_pn:    a (C, P, N) [+ bias (C)] <-> y (N, C, P)
//   csr_conv_pool_forward:      the conv output (+ bias) [-> relu] pooled by KH×KW windows of stride
//                               (KH, KW), no padding, without storing it: y (OC, PH, PW, N) (with
//                               PoolPnShape's border: (OC, PH + 2·pad_h, PW + 2·pad_w, N)) and code
//                               (OC, PH, PW, N), the window index kh·KW + kw of the first maximum
//                               (row-major scan, strict >, as max_pool2d_forward), -1 where the
//                               gradient is 0 (with relu: the maximum is not > 0). Each window
//                               pixel's conv row is computed as csr_conv_forward computes it, so the
//                               values and winners are those of csr_conv_forward, bias, relu and
//                               max_pool2d in NCHW, bit for bit.
//   csr_conv_pool_backward_data / _weights: csr_conv_backward_data / _weights of the conv whose
//                               output csr_conv_pool_forward pooled, from the pooled gradient g
//                               (OC, PH, PW, N) and `code`: the conv output's gradient is g at each
//                               window's winner, 0 elsewhere (rows and columns past the last
//                               window too), built a row at a time where it is used and never
//                               stored; the same values, bit for bit, as from that gradient stored
//   pool_pn_bias_grad:          db (C) (+)= the sum of g (C, PH, PW, N) where code >= 0 (the bias
//                               gradient of the pooled conv), summed in double
// Threads: the forward and the weight gradient split (p, oc) rows / oc rows by nonzero count; the
// input gradient splits the input channels by nonzero count, so every output element is summed by
// one thread in a fixed order: deterministic for any thread count, no atomics.
//
// Batch im2col (the CUDA sparse conv's layout; these CPU versions are its test references):
//   im2col_batch:  x (N, C, H, W)          -> cols (C·KH·KW, N·OH·OW)   column n·P + p
//   col2im_batch:  cols (C·KH·KW, N·OH·OW) -> dx (N, C, H, W)           overwrites dx
//   cnp_to_nchw:   a (OC, N·P) [+ bias (OC)] -> y (N, OC, P)
//   nchw_to_cnp:   y (N, OC, P)             -> a (OC, N·P)
// Tests: tests/kernels/test_sparse_conv.cpp (against the dense reference convolution),
// tests/core/test_sparse_ops.cpp (the sparse conv op against the dense one).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/conv.h"
#include "kernels/csr.h"

namespace st::kernels {

inline int padded_h(const Conv2dShape& s) { return s.H + 2 * s.pad_h; }
inline int padded_w(const Conv2dShape& s) { return s.W + 2 * s.pad_w; }

void conv_offsets(const Conv2dShape& s, const CsrMatrix& W, std::vector<int32_t>& off);
void csr_conv_forward(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                      const float* xp, float* y);
void csr_conv_backward_data(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                            const float* dy, float* dxp);
void csr_conv_backward_weights(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                               const float* dy, const float* xp, float* dw_values,
                               bool accumulate);

void nchw_to_pn_padded(const Conv2dShape& s, const float* x, float* xp);
void pn_padded_to_nchw(const Conv2dShape& s, const float* xp, float* x);
void pn_to_pn_padded(const Conv2dShape& s, const float* x, float* xp);
void pn_padded_to_pn(const Conv2dShape& s, const float* xp, float* x);
void pn_to_nchw(int C, int N, int P, const float* a, const float* bias, float* y);
void nchw_to_pn(int C, int N, int P, const float* y, float* a);

// A conv output (C, OH, OW, N) pooled by non-overlapping KH×KW windows (PH = OH / KH, PW = OW / KW).
// y and g may carry a zero border of pad_h rows and pad_w columns: (C, PH + 2·pad_h,
// PW + 2·pad_w, N), the next conv's padded input exactly as that conv reads it, so the pooled
// output needs no copy to be padded and the next conv's input gradient none to be cropped. The
// forward writes the border's zeros; the backward reads only the interior of g. `code` has no
// border: (C, PH, PW, N).
struct PoolPnShape {
  int C = 1, OH = 1, OW = 1, N = 1, KH = 2, KW = 2;
  int pad_h = 0, pad_w = 0;
  int PH() const { return OH / KH; }
  int PW() const { return OW / KW; }
  int YH() const { return PH() + 2 * pad_h; }  // y's and g's height and width, border included
  int YW() const { return PW() + 2 * pad_w; }
  // Where pooled pixel (c, ph, pw) sits in y and g, in units of N floats.
  int64_t y_at(int c, int ph, int pw) const {
    return (static_cast<int64_t>(c) * YH() + ph + pad_h) * YW() + pw + pad_w;
  }
};
void csr_conv_pool_forward(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                           const float* xp, const float* bias, bool relu, const PoolPnShape& ps,
                           float* y, int32_t* code);
void csr_conv_pool_backward_data(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                                 const PoolPnShape& ps, const float* g, const int32_t* code,
                                 float* dxp);
void csr_conv_pool_backward_weights(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                                    const PoolPnShape& ps, const float* g, const int32_t* code,
                                    const float* xp, float* dw_values, bool accumulate);
void pool_pn_bias_grad(const PoolPnShape& s, const float* g, const int32_t* code, float* db,
                       bool accumulate);

void im2col_batch(const Conv2dShape& s, const float* x, float* cols);
void col2im_batch(const Conv2dShape& s, const float* cols, float* dx);
void cnp_to_nchw(int C, int N, int P, const float* a, const float* bias, float* y);
void nchw_to_cnp(int C, int N, int P, const float* y, float* a);

}  // namespace st::kernels
