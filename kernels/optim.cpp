// kernels/optim.cpp — fused mask-aware SGD and Adam/AdamW steps (see kernels/optim.h for the math).
// One pass over memory per step; the mask is applied in the same pass, so a pruned weight and its
// state are zeroed without a second sweep. Tests: tests/kernels/test_optim.cpp.
#include "kernels/optim.h"
#include "kernels/parallel.h"

#include <cassert>
#include <cmath>

namespace st::kernels {
namespace {
constexpr int64_t kParallelMinElems = 1 << 15;
}

namespace {

// The loops over one share [i0, i1), in plain functions (see kernels/parallel.h, parallel_range).
void sgd_plain_range(int64_t i0, int64_t i1, float* w, const float* g, float lr, float weight_decay,
                     const uint8_t* mask, float* momentum_buf) {
  for (int64_t i = i0; i < i1; ++i) {
    if (mask && !mask[i]) {
      w[i] = 0.0f;
      if (momentum_buf) momentum_buf[i] = 0.0f;
      continue;
    }
    w[i] -= lr * (g[i] + weight_decay * w[i]);
  }
}

// Branch-free (the mask is a select, not a `continue`) so the masked loop vectorizes too; a select
// also keeps a pruned entry at exactly 0 even when its gradient is NaN.
void sgd_momentum_masked_range(int64_t i0, int64_t i1, float* w, const float* g, float* momentum_buf,
                               float lr, float momentum, float damp, float weight_decay,
                               bool nesterov, bool first_step, const uint8_t* mask) {
  for (int64_t i = i0; i < i1; ++i) {
    const bool keep = mask[i] != 0;
    const float gd = g[i] + weight_decay * w[i];
    const float buf = first_step ? gd : momentum * momentum_buf[i] + damp * gd;
    const float step = nesterov ? gd + momentum * buf : buf;
    momentum_buf[i] = keep ? buf : 0.0f;
    w[i] = keep ? w[i] - lr * step : 0.0f;
  }
}

void sgd_momentum_range(int64_t i0, int64_t i1, float* w, const float* g, float* momentum_buf,
                        float lr, float momentum, float damp, float weight_decay, bool nesterov,
                        bool first_step) {
  for (int64_t i = i0; i < i1; ++i) {
    const float gd = g[i] + weight_decay * w[i];
    const float buf = first_step ? gd : momentum * momentum_buf[i] + damp * gd;
    momentum_buf[i] = buf;
    const float step = nesterov ? gd + momentum * buf : buf;
    w[i] -= lr * step;
  }
}

// Branch-free like the masked SGD loop.
void adam_range(int64_t i0, int64_t i1, float* w, const float* g, float* m, float* v,
                const AdamConstants c, float beta1, float beta2, float eps, const uint8_t* mask) {
  for (int64_t i = i0; i < i1; ++i) {
    const bool keep = mask == nullptr || mask[i] != 0;
    const float wi = w[i] * c.decay;
    const float gi = g[i] + c.l2 * w[i];
    const float mi = beta1 * m[i] + c.one_minus_beta1 * gi;
    const float vi = beta2 * v[i] + c.one_minus_beta2 * gi * gi;
    m[i] = keep ? mi : 0.0f;
    v[i] = keep ? vi : 0.0f;
    w[i] = keep ? wi - c.step_size * mi / (std::sqrt(vi) * c.inv_sqrt_bias2 + eps) : 0.0f;
  }
}

}  // namespace

void sgd_update(int64_t n, float* w, const float* g, float* momentum_buf, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool first_step,
                const uint8_t* mask) {
  const bool parallel = worth_parallel(n, kParallelMinElems);
  if (momentum == 0.0f) {
    parallel_range(n, parallel, [&](int64_t i0, int64_t i1) {
      sgd_plain_range(i0, i1, w, g, lr, weight_decay, mask, momentum_buf);
    });
    return;
  }
  assert(momentum_buf != nullptr);
  const float damp = 1.0f - dampening;
  parallel_range(n, parallel, [&](int64_t i0, int64_t i1) {
    if (mask)
      sgd_momentum_masked_range(i0, i1, w, g, momentum_buf, lr, momentum, damp, weight_decay,
                                nesterov, first_step, mask);
    else
      sgd_momentum_range(i0, i1, w, g, momentum_buf, lr, momentum, damp, weight_decay, nesterov,
                         first_step);
  });
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
  parallel_range(n, worth_parallel(n, kParallelMinElems), [&](int64_t i0, int64_t i1) {
    adam_range(i0, i1, w, g, m, v, c, beta1, beta2, eps, mask);
  });
}

}  // namespace st::kernels
