// core/ops.h — the differentiable ops. Each returns its output Variable with a Node that knows its
// backward and saves only what that needs. This is the one place that chooses a device and a dense
// backend (`switch`), so a new backend touches this file and one new folder.
//   linear                x (B, IN), w (OUT, IN), b (OUT) | undefined  -> (B, OUT)
//   conv2d                x (N, C, H, W), w (OC, C, KH, KW), b (OC)     -> (N, OC, OH, OW)
//   sparse_linear         as linear, the weight in CSR (core/csr_weight.h): y = x·Wᵀ + b by SpMM,
//                         dx by the transposed product, dW only at the nonzeros (SDDMM)
//   sparse_conv2d         as conv2d, the weight (OC, C·KH·KW) in CSR times the batch's im2col columns
//   max_pool2d/avg_pool2d x (N, C, H, W)                                -> (N, C, OH, OW)
//   relu, dropout         any shape
//   flatten               (N, ...) -> (N, prod(...))
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
DenseBackend parse_dense_backend(const std::string& name);  // "native" | "onednn"
const char* dense_backend_name(DenseBackend b);

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
Variable sparse_linear(const Variable& x, const std::shared_ptr<CsrWeight>& w, const Variable& b);
Variable sparse_conv2d(const Variable& x, const std::shared_ptr<CsrWeight>& w, const Variable& b,
                       const Conv2dOptions& opt);
Variable max_pool2d(const Variable& x, const Pool2dOptions& opt);
Variable avg_pool2d(const Variable& x, const Pool2dOptions& opt);
Variable relu(const Variable& x);
// Inverted dropout; identity (and no RNG draw) when !training or p == 0.
Variable dropout(const Variable& x, float p, bool training, Rng& rng);
Variable flatten(const Variable& x);
Variable add(const Variable& a, const Variable& b);
Variable softmax_cross_entropy(const Variable& logits, const Tensor& labels);
// teacher_logits is a plain tensor (no gradient flows to the teacher).
Variable distillation_loss(const Variable& logits, const Tensor& labels, const Tensor& teacher_logits,
                           float temperature, float alpha);

// Loss value and accuracy helpers on plain tensors (no graph).
int64_t count_correct(const Tensor& logits, const Tensor& labels);

}  // namespace st
