// kernels/optim.cpp — fused mask-aware SGD and Adam/AdamW steps (see kernels/optim.h for the math).
// One pass over memory per step; the mask is applied in the same pass, so a pruned weight and its
// state are zeroed without a second sweep. Tests: tests/kernels/test_optim.cpp.
#include "kernels/optim.h"

#include <cassert>
#include <cmath>

namespace st::kernels {
namespace {
constexpr int64_t kParallelMinElems = 1 << 15;
}

void sgd_update(int64_t n, float* w, const float* g, float* momentum_buf, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool first_step,
                const uint8_t* mask) {
  if (momentum == 0.0f) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
    for (int64_t i = 0; i < n; ++i) {
      if (mask && !mask[i]) {
        w[i] = 0.0f;
        if (momentum_buf) momentum_buf[i] = 0.0f;
        continue;
      }
      w[i] -= lr * (g[i] + weight_decay * w[i]);
    }
    return;
  }
  assert(momentum_buf != nullptr);
  const float damp = 1.0f - dampening;
  if (mask) {
    // Branch-free (the mask is a select, not a `continue`) so the masked loop vectorizes too; a
    // select also keeps a pruned entry at exactly 0 even when its gradient is NaN.
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
    for (int64_t i = 0; i < n; ++i) {
      const bool keep = mask[i] != 0;
      const float gd = g[i] + weight_decay * w[i];
      const float buf = first_step ? gd : momentum * momentum_buf[i] + damp * gd;
      const float step = nesterov ? gd + momentum * buf : buf;
      momentum_buf[i] = keep ? buf : 0.0f;
      w[i] = keep ? w[i] - lr * step : 0.0f;
    }
    return;
  }
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) {
    const float gd = g[i] + weight_decay * w[i];
    const float buf = first_step ? gd : momentum * momentum_buf[i] + damp * gd;
    momentum_buf[i] = buf;
    const float step = nesterov ? gd + momentum * buf : buf;
    w[i] -= lr * step;
  }
}

AdamConstants adam_constants(float lr, float beta1, float beta2, float weight_decay, bool decoupled,
                             int64_t step) {
  assert(step >= 1);
  const double bias1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double bias2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  AdamConstants c;
  c.step_size = static_cast<float>(lr / bias1);
  c.inv_sqrt_bias2 = static_cast<float>(1.0 / std::sqrt(bias2));
  c.decay = decoupled ? 1.0f - lr * weight_decay : 1.0f;
  c.l2 = decoupled ? 0.0f : weight_decay;
  c.one_minus_beta1 = 1.0f - beta1;
  c.one_minus_beta2 = 1.0f - beta2;
  return c;
}

void adam_update(int64_t n, float* w, const float* g, float* m, float* v, float lr, float beta1,
                 float beta2, float eps, float weight_decay, bool decoupled, int64_t step,
                 const uint8_t* mask) {
  const AdamConstants c = adam_constants(lr, beta1, beta2, weight_decay, decoupled, step);
  const float step_size = c.step_size, inv_sqrt_bias2 = c.inv_sqrt_bias2, decay = c.decay, l2 = c.l2;
  const float one_minus_beta1 = c.one_minus_beta1, one_minus_beta2 = c.one_minus_beta2;
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) {
    if (mask && !mask[i]) {
      w[i] = 0.0f;
      m[i] = 0.0f;
      v[i] = 0.0f;
      continue;
    }
    const float wi = w[i] * decay;
    const float gi = g[i] + l2 * w[i];
    const float mi = beta1 * m[i] + one_minus_beta1 * gi;
    const float vi = beta2 * v[i] + one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = wi - step_size * mi / (std::sqrt(vi) * inv_sqrt_bias2 + eps);
  }
}

}  // namespace st::kernels
