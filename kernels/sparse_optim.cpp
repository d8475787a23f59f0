// kernels/sparse_optim.cpp — SGD and Adam/AdamW at a CSR weight's nonzeros (see sparse_optim.h).
#include "kernels/sparse_optim.h"
#include "kernels/parallel.h"
#include "kernels/optim.h"

#include <cassert>

namespace st::kernels {
namespace {
constexpr int64_t kParallelMinElems = 1 << 15;

// The loops over one share [k0, k1) of the nonzeros, in plain functions (kernels/parallel.h), with
// the rules of the dense updates (kernels/optim_rule.h).
void sgd_at_range(int64_t k0, int64_t k1, const int64_t* index, float* w, const float* g,
                  float* momentum_buf, const SgdRule r, float* values) {
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t i = index[k];
    values[k] = w[i] = r.with_momentum(w[i], g[k], momentum_buf[k]);
  }
}

void sgd_plain_at_range(int64_t k0, int64_t k1, const int64_t* index, float* w, const float* g,
                        const SgdRule r, float* values) {
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t i = index[k];
    values[k] = w[i] = r.plain(w[i], g[k]);
  }
}

void adam_at_range(int64_t k0, int64_t k1, const int64_t* index, float* w, const float* g, float* m,
                   float* v, const AdamRule r, float* values) {
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t i = index[k];
    values[k] = w[i] = r.step(w[i], g[k], m[k], v[k]);
  }
}

}  // namespace

void sgd_update_at(int64_t nnz, const int64_t* index, float* w, const float* g, float* momentum_buf,
                   float lr, float momentum, float dampening, float weight_decay, bool nesterov,
                   bool first_step, float* values) {
  const bool parallel = worth_parallel(nnz, kParallelMinElems);
  const SgdRule r{lr, momentum, 1.0f - dampening, weight_decay, nesterov, first_step};
  if (momentum == 0.0f) {
    parallel_range(nnz, parallel, [&](int64_t k0, int64_t k1) {
      sgd_plain_at_range(k0, k1, index, w, g, r, values);
    });
    return;
  }
  assert(nnz == 0 || momentum_buf != nullptr);
  parallel_range(nnz, parallel, [&](int64_t k0, int64_t k1) {
    sgd_at_range(k0, k1, index, w, g, momentum_buf, r, values);
  });
}

void adam_update_at(int64_t nnz, const int64_t* index, float* w, const float* g, float* m, float* v,
                    float lr, float beta1, float beta2, float eps, float weight_decay, bool decoupled,
                    int64_t step, float* values) {
  const AdamRule r{adam_constants(lr, beta1, beta2, weight_decay, decoupled, step), beta1, beta2, eps};
  parallel_range(nnz, worth_parallel(nnz, kParallelMinElems), [&](int64_t k0, int64_t k1) {
    adam_at_range(k0, k1, index, w, g, m, v, r, values);
  });
}

}  // namespace st::kernels
