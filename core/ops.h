// core/ops.h — the differentiable ops. Each returns its output Variable with a Node that knows its
// backward and saves only what that needs. This is the one place that chooses a device and a dense
// backend (`switch`), so a new backend touches this file and one new folder.
// Every op runs on its inputs' device (all on one device, else st::Error): cpu tensors go to
// kernels/ (native or oneDNN), cuda tensors to st::cuda (cuda/*.h; the CSR products to our kernels
// or cuSPARSE by sparse_impl). The output, the saved state and the gradients stay on that device;
// only scalars come back (a loss value is read with Tensor::item()).
//   linear                x (B, IN), w (OUT, IN), b (OUT) | undefined  -> (B, OUT)
//   conv2d                x (N, C, H, W), w (OC, C, KH, KW), b (OC)     -> (N, OC, OH, OW)
//   sparse_linear         as linear, the weight in CSR (core/csr_weight.h): y = x·Wᵀ + b by SpMM,
//                         dx by the transposed product, dW only at the nonzeros (SDDMM); optionally
//                         with the relu after it in the same node
//   sparse_conv2d         as conv2d, the weight (OC, C·KH·KW) in CSR: on the cpu a direct sparse
//                         convolution over the zero-padded batch-innermost input (kernels/sparse_conv.h,
//                         no im2col matrix), on cuda the CSR weight times the batch's im2col columns
//   max_pool2d/avg_pool2d x (N, C, H, W)                                -> (N, C, OH, OW)
//   relu, dropout         any shape
//   flatten               (N, ...) -> (N, prod(...))
//   transpose2d           x (R, C) -> (C, R) (cpu)
//   sparse_linear_fm      the feature-major sparse Linear (cpu): xt (IN, B) -> yt (OUT, B) = W·xt + b,
//                         batch innermost, so the CSR products gather xt's rows directly (no packed
//                         copy of x, no transposed output); values are sparse_linear's transposed, to
//                         float tolerance (the products sum in another order)
//   add                   a, b of the same shape
//   softmax_cross_entropy logits (B, C), labels i32 (B)                 -> scalar mean loss
//   distillation_loss     logits (B, C), labels i32 (B), teacher (B, C)  -> scalar mean loss
//                         α·T²·KL(softmax(teacher/T) ‖ softmax(logits/T)) + (1 − α)·CE(logits, labels)
//                         (Hinton et al. 2015; the T² keeps the soft term's gradient scale T-free)
// Finite-difference gradient checks: tests/core/test_ops.cpp.
#pragma once
#include <memory>

#include "core/csr_weight.h"
#include "core/rng.h"
#include "core/variable.h"

namespace st {

enum class DenseBackend { native, onednn };
// The dense CPU path (config key "backend"). Both give the same results to float tolerance.
void set_dense_backend(DenseBackend b);
DenseBackend dense_backend();
const char* dense_backend_name(DenseBackend b);

enum class SparseImpl { native, cusparse };
// The CSR products on the cuda device (config key "sparse.impl"): our kernels (cuda/sparse.h) or
// NVIDIA cuSPARSE (cuda/cusparse.h, a real GPU only). The cpu always runs kernels/sparse_cpu.h.
void set_sparse_impl(SparseImpl impl);
SparseImpl sparse_impl();

struct Conv2dOptions {
  int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};
struct Pool2dOptions {
  int kernel_h = 2, kernel_w = 2, stride_h = 2, stride_w = 2, pad_h = 0, pad_w = 0;
};

Variable linear(const Variable& x, const Variable& w, const Variable& b);
Variable conv2d(const Variable& x, const Variable& w, const Variable& b, const Conv2dOptions& opt);
// CSR execution (core/sparse_ops.cpp). The weight's gradient goes to w->values (nnz-sized); the
// bias stays dense. Same results as linear/conv2d with the masked dense weight, to float tolerance.
// With `relu`, relu(sparse_linear(x, w, b)) as one node, bit for bit: on the cpu the bias and the
// relu are applied as the SpMM stores y (docs/design.md, "CSR execution").
Variable sparse_linear(const Variable& x, const std::shared_ptr<CsrWeight>& w, const Variable& b,
                       bool relu = false);
Variable sparse_conv2d(const Variable& x, const std::shared_ptr<CsrWeight>& w, const Variable& b,
                       const Conv2dOptions& opt);
// sparse_conv2d, then relu when `relu`, then max_pool2d, as one cpu node: the conv output is
// pooled as the direct conv computes it (batch innermost), so it is neither stored nor made NCHW;
// the backward rebuilds its gradient in that layout from the winners. The same values and gradients as the separate ops, bit for bit. Needs
// sparse_conv2d_pool_fits(pool): windows that do not overlap (stride == window) and no padding.
// Batch innermost, the layout the node computes in: with out_pn the output is
// (OC, PH + 2·out_pad_h, PW + 2·out_pad_w, N), zero outside (PH, PW), and with in_pn the input is
// (C, H + 2·pad_h, W + 2·pad_w, N), read as this conv's padded input as it is (its border is
// taken as given, normally zeros; its gradient covers the border too). Two such nodes in a row,
// the first's out_pad the second's padding, pass their activations and gradients that way: no
// transposes to and from NCHW, no padding copy and no cropping between them (same numbers).
bool sparse_conv2d_pool_fits(const Pool2dOptions& pool);
Variable sparse_conv2d_pool(const Variable& x, const std::shared_ptr<CsrWeight>& w,
                            const Variable& b, const Conv2dOptions& opt, bool relu,
                            const Pool2dOptions& pool, bool in_pn = false, bool out_pn = false,
                            int out_pad_h = 0, int out_pad_w = 0);
// The feature-major sparse Linear (see the table above). RigL's captured factors stay batch-major.
Variable sparse_linear_fm(const Variable& xt, const std::shared_ptr<CsrWeight>& w, const Variable& b);
Variable max_pool2d(const Variable& x, const Pool2dOptions& opt);
Variable avg_pool2d(const Variable& x, const Pool2dOptions& opt);
Variable relu(const Variable& x);
// Inverted dropout; identity (and no RNG draw) when !training or p == 0. On the cpu the mask takes
// one rng.uniform() per element; on cuda one rng.next_u64() seeds the counter-based device mask
// (cuda::dropout_mask), so the two devices draw different masks from the same stream.
Variable dropout(const Variable& x, float p, bool training, Rng& rng);
Variable flatten(const Variable& x);
Variable transpose2d(const Variable& x);
Variable add(const Variable& a, const Variable& b);
// labels may be on the cpu while logits are on cuda (they are uploaded).
Variable softmax_cross_entropy(const Variable& logits, const Tensor& labels);
// teacher_logits is a plain tensor (no gradient flows to the teacher). On cuda the (B, C) logits
// come to the host, the loss and its gradient are computed there and the gradient goes back.
Variable distillation_loss(const Variable& logits, const Tensor& labels, const Tensor& teacher_logits,
                           float temperature, float alpha);

// Loss value and accuracy helpers on plain tensors (no graph). logits on either device, labels on
// either (on cuda only the B argmax indices come back).
int64_t count_correct(const Tensor& logits, const Tensor& labels);

}  // namespace st
