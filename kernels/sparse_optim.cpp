// kernels/sparse_optim.cpp — SGD and Adam/AdamW at a CSR weight's nonzeros (see sparse_optim.h).
#include "kernels/sparse_optim.h"
#include "kernels/optim.h"

#include <cassert>
#include <cmath>

namespace st::kernels {
namespace {
constexpr int64_t kParallelMinElems = 1 << 15;
}

void sgd_update_at(int64_t nnz, const int64_t* index, float* w, const float* g, float* momentum_buf,
                   float lr, float momentum, float dampening, float weight_decay, bool nesterov,
                   bool first_step, float* values) {
  if (momentum == 0.0f) {
#pragma omp parallel for schedule(static) if (nnz >= kParallelMinElems)
    for (int64_t k = 0; k < nnz; ++k) {
      const int64_t i = index[k];
      w[i] -= lr * (g[k] + weight_decay * w[i]);
      values[k] = w[i];
    }
    return;
  }
  assert(momentum_buf != nullptr);
  const float damp = 1.0f - dampening;
#pragma omp parallel for schedule(static) if (nnz >= kParallelMinElems)
  for (int64_t k = 0; k < nnz; ++k) {
    const int64_t i = index[k];
    const float gd = g[k] + weight_decay * w[i];
    const float buf = first_step ? gd : momentum * momentum_buf[i] + damp * gd;
    momentum_buf[i] = buf;
    const float step = nesterov ? gd + momentum * buf : buf;
    w[i] -= lr * step;
    values[k] = w[i];
  }
}

void adam_update_at(int64_t nnz, const int64_t* index, float* w, const float* g, float* m, float* v,
                    float lr, float beta1, float beta2, float eps, float weight_decay, bool decoupled,
                    int64_t step, float* values) {
  const AdamConstants c = adam_constants(lr, beta1, beta2, weight_decay, decoupled, step);
  const float step_size = c.step_size, inv_sqrt_bias2 = c.inv_sqrt_bias2, decay = c.decay, l2 = c.l2;
  const float one_minus_beta1 = c.one_minus_beta1, one_minus_beta2 = c.one_minus_beta2;
#pragma omp parallel for schedule(static) if (nnz >= kParallelMinElems)
  for (int64_t k = 0; k < nnz; ++k) {
    const int64_t i = index[k];
    const float wi = w[i] * decay;
    const float gi = g[k] + l2 * w[i];
    const float mi = beta1 * m[i] + one_minus_beta1 * gi;
    const float vi = beta2 * v[i] + one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = wi - step_size * mi / (std::sqrt(vi) * inv_sqrt_bias2 + eps);
    values[k] = w[i];
  }
}

}  // namespace st::kernels
