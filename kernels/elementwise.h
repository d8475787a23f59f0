// kernels/elementwise.h — elementwise ops, bias handling, reductions and the fused softmax-cross-entropy.
// Shapes are stated per function. Activation gradients overwrite (=); bias gradients take
// `accumulate` (+= when true). All are OpenMP-parallel over the outer loop where it pays, and
// deterministic for a fixed thread count (reductions use fixed per-thread partials).
// Reference: kernels/reference.h. Tests: tests/kernels/test_elementwise.cpp.
#pragma once
#include <cstdint>

namespace st::kernels {

// y (n) = max(x, 0); x and y may alias.
void relu_forward(int64_t n, const float* x, float* y);
// dx (n) = dy where y > 0 else 0 (y is the forward output).
void relu_backward(int64_t n, const float* dy, const float* y, float* dx);

// out (n) = a + b; any may alias.
void add(int64_t n, const float* a, const float* b, float* out);
// y (n) += alpha · x
void axpy(int64_t n, float alpha, const float* x, float* y);
// y (n) = alpha · x  (x and y may alias)
void scale(int64_t n, float alpha, const float* x, float* y);
void fill(int64_t n, float value, float* y);

// y (rows, cols) += bias (cols), broadcast over rows — Linear bias.
void bias_add_rows(int rows, int cols, const float* bias, float* y);
// db (cols) (+)= Σ_rows dy (rows, cols)
void bias_grad_rows(int rows, int cols, const float* dy, float* db, bool accumulate);
// y (N, C, HW) += bias (C) — conv bias.
void bias_add_channels(int N, int C, int HW, const float* bias, float* y);
// db (C) (+)= Σ_{n,hw} dy (N, C, HW)
void bias_grad_channels(int N, int C, int HW, const float* dy, float* db, bool accumulate);

// y (n) = x · keep · scale, where keep (n) is 0/1 (inverted dropout: scale = 1/(1-p)).
// Backward is the same call on dy.
void dropout_apply(int64_t n, const float* x, const uint8_t* keep, float scale, float* y);

// Fused softmax + cross-entropy, mean over the batch.
//   logits (B, C), labels (B) in [0, C) -> probs (B, C) (softmax, kept for backward); returns the
//   mean loss, accumulated in double.
double softmax_xent_forward(int B, int C, const float* logits, const int32_t* labels, float* probs);
// dlogits (B, C) = (probs − onehot(labels)) · dloss / B   (overwrites)
void softmax_xent_backward(int B, int C, const float* probs, const int32_t* labels, float dloss,
                           float* dlogits);

// Σ x (n), in double.
double sum(int64_t n, const float* x);
// Index of the first NaN or ±Inf in x (n), or −1 when every value is finite.
int64_t first_non_finite(int64_t n, const float* x);
// out (rows) = argmax over cols of x (rows, cols); first maximum wins.
void argmax_rows(int rows, int cols, const float* x, int32_t* out);

}  // namespace st::kernels
