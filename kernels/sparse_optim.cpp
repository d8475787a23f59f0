// kernels/sparse_optim.cpp — SGD and Adam/AdamW at a CSR weight's nonzeros (see sparse_optim.h).
#include "kernels/sparse_optim.h"
#include "kernels/parallel.h"
#include "kernels/optim.h"

#include <cassert>
#include <cmath>

namespace st::kernels {
namespace {
constexpr int64_t kParallelMinElems = 1 << 15;

// The loops over one share [k0, k1) of the nonzeros, in plain functions (kernels/parallel.h).
void sgd_at_range(int64_t k0, int64_t k1, const int64_t* index, float* w, const float* g,
                  float* momentum_buf, float lr, float momentum, float damp, float weight_decay,
                  bool nesterov, bool first_step, float* values) {
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t i = index[k];
    const float gd = g[k] + weight_decay * w[i];
    const float buf = first_step ? gd : momentum * momentum_buf[i] + damp * gd;
    momentum_buf[i] = buf;
    const float step = nesterov ? gd + momentum * buf : buf;
    w[i] -= lr * step;
    values[k] = w[i];
  }
}

void sgd_plain_at_range(int64_t k0, int64_t k1, const int64_t* index, float* w, const float* g,
                        float lr, float weight_decay, float* values) {
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t i = index[k];
    w[i] -= lr * (g[k] + weight_decay * w[i]);
    values[k] = w[i];
  }
}

void adam_at_range(int64_t k0, int64_t k1, const int64_t* index, float* w, const float* g, float* m,
                   float* v, const AdamConstants c, float beta1, float beta2, float eps,
                   float* values) {
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t i = index[k];
    const float wi = w[i] * c.decay;
    const float gi = g[k] + c.l2 * w[i];
    const float mi = beta1 * m[i] + c.one_minus_beta1 * gi;
    const float vi = beta2 * v[i] + c.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = wi - c.step_size * mi / (std::sqrt(vi) * c.inv_sqrt_bias2 + eps);
    values[k] = w[i];
  }
}

}  // namespace

void sgd_update_at(int64_t nnz, const int64_t* index, float* w, const float* g, float* momentum_buf,
                   float lr, float momentum, float dampening, float weight_decay, bool nesterov,
                   bool first_step, float* values) {
  const bool parallel = worth_parallel(nnz, kParallelMinElems);
  if (momentum == 0.0f) {
    parallel_range(nnz, parallel, [&](int64_t k0, int64_t k1) {
      sgd_plain_at_range(k0, k1, index, w, g, lr, weight_decay, values);
    });
    return;
  }
  assert(momentum_buf != nullptr);
  const float damp = 1.0f - dampening;
  parallel_range(nnz, parallel, [&](int64_t k0, int64_t k1) {
    sgd_at_range(k0, k1, index, w, g, momentum_buf, lr, momentum, damp, weight_decay, nesterov,
                 first_step, values);
  });
}

void adam_update_at(int64_t nnz, const int64_t* index, float* w, const float* g, float* m, float* v,
                    float lr, float beta1, float beta2, float eps, float weight_decay, bool decoupled,
                    int64_t step, float* values) {
  const AdamConstants c = adam_constants(lr, beta1, beta2, weight_decay, decoupled, step);
  parallel_range(nnz, worth_parallel(nnz, kParallelMinElems), [&](int64_t k0, int64_t k1) {
    adam_at_range(k0, k1, index, w, g, m, v, c, beta1, beta2, eps, values);
  });
}

}  // namespace st::kernels
