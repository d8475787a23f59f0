// kernels/optim.cpp — fused mask-aware SGD and Adam/AdamW steps (see kernels/optim.h for the math).
// One pass over memory per step; the mask is applied in the same pass, so a pruned weight and its
// state are zeroed without a second sweep. Tests: tests/kernels/test_optim.cpp.
#include "kernels/optim.h"
#include "kernels/isa_table.h"
#include "kernels/parallel.h"

#include <cassert>
#include <cmath>

namespace st::kernels::ST_ISA_NS {
namespace {
constexpr int64_t kParallelMinElems = 1 << 15;
}

namespace {

// The loops over one share [i0, i1), in plain functions (see kernels/parallel.h, parallel_range);
// the rules (kernels/optim_rule.h) come by value so the loops vectorize.
void sgd_plain_range(int64_t i0, int64_t i1, float* w, const float* g, const SgdRule r,
                     const uint8_t* mask, float* momentum_buf) {
  for (int64_t i = i0; i < i1; ++i) {
    if (mask && !mask[i]) {
      w[i] = 0.0f;
      if (momentum_buf) momentum_buf[i] = 0.0f;
      continue;
    }
    w[i] = r.plain(w[i], g[i]);
  }
}

// Branch-free (the mask is a select, not a `continue`) so the masked loop vectorizes too; a select
// also keeps a pruned entry at exactly 0 even when its gradient is NaN.
void sgd_momentum_masked_range(int64_t i0, int64_t i1, float* w, const float* g, float* momentum_buf,
                               const SgdRule r, const uint8_t* mask) {
  for (int64_t i = i0; i < i1; ++i) {
    const bool keep = mask[i] != 0;
    float buf = momentum_buf[i];
    const float wn = r.with_momentum(w[i], g[i], buf);
    momentum_buf[i] = keep ? buf : 0.0f;
    w[i] = keep ? wn : 0.0f;
  }
}

void sgd_momentum_range(int64_t i0, int64_t i1, float* w, const float* g, float* momentum_buf,
                        const SgdRule r) {
  for (int64_t i = i0; i < i1; ++i) w[i] = r.with_momentum(w[i], g[i], momentum_buf[i]);
}

// Branch-free like the masked SGD loop.
void adam_range(int64_t i0, int64_t i1, float* w, const float* g, float* m, float* v,
                const AdamRule r, const uint8_t* mask) {
  for (int64_t i = i0; i < i1; ++i) {
    const bool keep = mask == nullptr || mask[i] != 0;
    float mi = m[i], vi = v[i];
    const float wn = r.step(w[i], g[i], mi, vi);
    m[i] = keep ? mi : 0.0f;
    v[i] = keep ? vi : 0.0f;
    w[i] = keep ? wn : 0.0f;
  }
}

}  // namespace

void sgd_update(int64_t n, float* w, const float* g, float* momentum_buf, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool first_step,
                const uint8_t* mask) {
  const bool parallel = worth_parallel(n, kParallelMinElems);
  const SgdRule r{lr, momentum, 1.0f - dampening, weight_decay, nesterov, first_step};
  if (momentum == 0.0f) {
    parallel_range(n, parallel, [&](int64_t i0, int64_t i1) {
      sgd_plain_range(i0, i1, w, g, r, mask, momentum_buf);
    });
    return;
  }
  assert(momentum_buf != nullptr);
  parallel_range(n, parallel, [&](int64_t i0, int64_t i1) {
    if (mask)
      sgd_momentum_masked_range(i0, i1, w, g, momentum_buf, r, mask);
    else
      sgd_momentum_range(i0, i1, w, g, momentum_buf, r);
  });
}

void adam_update(int64_t n, float* w, const float* g, float* m, float* v, float lr, float beta1,
                 float beta2, float eps, float weight_decay, bool decoupled, int64_t step,
                 const uint8_t* mask) {
  const AdamRule r{adam_constants(lr, beta1, beta2, weight_decay, decoupled, step), beta1, beta2, eps};
  parallel_range(n, worth_parallel(n, kParallelMinElems), [&](int64_t i0, int64_t i1) {
    adam_range(i0, i1, w, g, m, v, r, mask);
  });
}

}  // namespace st::kernels::ST_ISA_NS

#if defined(ST_ISA_GENERIC)  // no vector code: defined once, in the generic copy
namespace st::kernels {

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

}  // namespace st::kernels
#endif
