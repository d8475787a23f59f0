// kernels/optim.h — fused, mask-aware optimizer updates on raw parameter arrays (CPU).
//   sgd_update:  w (n), g (n), momentum_buf (n)          — torch.optim.SGD semantics
//   adam_update: w (n), g (n), m (n), v (n)               — torch.optim.Adam / AdamW semantics
// mask (n) is nullptr for a dense parameter; where mask[i] == 0 the weight and all its optimizer
// state are set to exactly 0 (design invariant 1), whatever the gradient says.
// OpenMP-parallel over elements (each element is independent, so results do not depend on the
// thread count). Reference: kernels/reference.h. Tests: tests/kernels/test_optim.cpp.
#pragma once
#include <cstdint>

#include "kernels/optim_rule.h"  // SgdRule, AdamRule, AdamConstants: the per-element rules

namespace st::kernels {

// g' = g + weight_decay·w
// buf = first_step ? g' : momentum·buf + (1 − dampening)·g'      (skipped when momentum == 0;
//                                                                 momentum_buf may then be null)
// step = momentum == 0 ? g' : nesterov ? g' + momentum·buf : buf
// w -= lr·step
void sgd_update(int64_t n, float* w, const float* g, float* momentum_buf, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool first_step,
                const uint8_t* mask);

// decoupled (AdamW): w *= 1 − lr·weight_decay;  else (Adam): g' = g + weight_decay·w
// m = β1·m + (1 − β1)·g';  v = β2·v + (1 − β2)·g'²
// w -= lr / (1 − β1^step) · m / (sqrt(v) / sqrt(1 − β2^step) + eps)        step is 1-based
// The per-step constants of an Adam/AdamW update (bias corrections in double: β^step underflows
// gracefully and 1 − β^step keeps its digits), for AdamRule (kernels/optim_rule.h).
AdamConstants adam_constants(float lr, float beta1, float beta2, float weight_decay, bool decoupled,
                             int64_t step);

void adam_update(int64_t n, float* w, const float* g, float* m, float* v, float lr, float beta1,
                 float beta2, float eps, float weight_decay, bool decoupled, int64_t step,
                 const uint8_t* mask);

}  // namespace st::kernels
