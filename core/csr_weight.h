// core/csr_weight.h — the CSR execution state of a pruned weight (ARCHITECTURE invariants 3 and 4).
//   make_csr_weight:    dense weight (rows, cols) view + u8 mask -> CsrWeight (pattern = the mask)
//   refresh_csr_values: after the dense weight changed (a dense step): gather the live values again
// The Parameter's dense tensor stays the source of truth: in CSR mode the optimizer writes it at the
// nonzeros only (`index`), together with W's values, so eval, checkpoints, reports and the pruner
// read correct dense weights with no sync. Per step the work is O(nnz): the forward and both
// backward products run on W / Wt, and the weight gradient is the nnz-sized grad of `values`.
// A mask change rebuilds the whole object (O(numel), only at mask changes): the structure, the index
// into the dense weight and the values; the optimizer state lives at dense positions, so it is
// remapped by construction (pruned entries were zeroed by the pruner, kept ones keep theirs).
// Ops on it: core/ops.h (sparse_linear, sparse_conv2d). Tests: tests/core/test_sparse_ops.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/variable.h"
#include "kernels/csr.h"

namespace st {

struct CsrWeight {
  Shape shape;                  // the dense weight's shape: (OUT, IN) or (OC, C, KH, KW)
  int rows = 0, cols = 0;       // matrix view: out units × fan-in
  kernels::CsrMatrix w;         // (rows, cols), values = the live weights at the nonzeros
  kernels::CsrMatrix wt;        // (cols, rows), for the input gradient
  std::vector<int32_t> perm;    // wt.values[p] = w.values[perm[p]]
  std::vector<int64_t> index;   // dense offset (row-major) of each nonzero of w, in w's order
  Variable values;              // (nnz): value mirrors w.values; grad = dL/dW at the nonzeros
  int64_t nnz() const { return w.nnz(); }
  double sparsity() const { return rows && cols ? 1.0 - double(nnz()) / (double(rows) * cols) : 0.0; }
};

// mask may be null (every entry kept).
std::shared_ptr<CsrWeight> make_csr_weight(const Tensor& dense, const uint8_t* mask);
// w.values, values and wt.values from `dense` at the pattern (O(nnz)).
void refresh_csr_values(CsrWeight& c, const float* dense);
// After the optimizer wrote w.values: mirror them into `values` and wt (O(nnz)).
void sync_csr_copies(CsrWeight& c);

}  // namespace st
