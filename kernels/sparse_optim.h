// kernels/sparse_optim.h — optimizer steps at the nonzeros of a CSR weight (O(nnz), no dense sweep).
//   sgd_update_at:  for k < nnz, i = index[k]: the sgd_update rule on w[i], buf[k] with g[k]
//   adam_update_at: for k < nnz, i = index[k]: the adam_update rule on w[i], m[k], v[k] with g[k]
// w stays in the dense layout (index maps the k-th nonzero to its dense offset); the optimizer state
// is compact, nnz entries in the CSR order (core/optim.cpp gathers it from and scatters it back to
// the dense slots). Why: with the state at dense offsets a 90%-sparse LeNet-300 fc1 step touched
// ~85% of the cache lines of a weight-sized buffer, and this update was ~30% of the CSR step.
// The new weight is also written to values[k] (the CSR copy the kernels read). Entries outside the
// index are not touched: they are pruned, and the pruner zeroed them and their state.
// (cuda/sparse.h's versions keep the state at dense offsets: not measured on a GPU yet.)
// The per-element rules are the dense updates' (kernels/optim_rule.h), so results equal the masked
// dense step.
// Tests: tests/core/test_sparse_ops.cpp (against the dense masked update).
#pragma once
#include <cstdint>

namespace st::kernels {

void sgd_update_at(int64_t nnz, const int64_t* index, float* w, const float* g, float* momentum_buf,
                   float lr, float momentum, float dampening, float weight_decay, bool nesterov,
                   bool first_step, float* values);

void adam_update_at(int64_t nnz, const int64_t* index, float* w, const float* g, float* m, float* v,
                    float lr, float beta1, float beta2, float eps, float weight_decay, bool decoupled,
                    int64_t step, float* values);

}  // namespace st::kernels
