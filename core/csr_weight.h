// core/csr_weight.h — the CSR execution state of a pruned weight (docs/architecture.md invariants 3 and 4).
//   make_csr_weight:     dense weight (rows, cols) view + u8 mask -> CsrWeight (pattern = the mask)
//   refresh_csr_values:  after the dense weight changed (a dense step): gather the live values again
//   sync_csr_copies:     after the optimizer wrote W's values: mirror them into `values` and Wt
//   move_csr_weight:     to another device (with the dense weight it belongs to)
//   download_csr_values: make the host copy's values current (checkpoints, tests)
//   sync_dense_weight:   write the live values back into the dense weight if a CSR step left it stale
// Between CSR steps on the CPU, W's values are the live weights and the dense tensor may be stale
// (`dense_stale`): writing it at the nonzeros every step touched ~80% of the cache lines of a
// 90%-sparse weight (1 − 0.9^16) and, with the dense-layout state, cost ~30% of a LeNet-300 step.
// sync_dense_weight writes it back (O(nnz)), and every reader of a CSR layer's dense weight runs
// after one: CsrSwitch::suspend(true) (pruner hooks and dense steps), the optimizer's dense branch,
// Model::to, save_checkpoint and the trainer's end of each epoch (eval, reports). Code that
// refreshes W from the dense weight asserts it is not stale. On cuda the optimizer writes the dense
// weight each step (not measured on a GPU).
// Per step the work is O(nnz): the forward and both backward products run on W / Wt, and the weight
// gradient is the nnz-sized grad of `values`.
// A mask change rebuilds the whole object (O(numel), only at mask changes): the structure, the index
// into the dense weight and the values; the optimizer state lives at dense positions, so it is
// remapped by construction (pruned entries were zeroed by the pruner, kept ones keep theirs).
// Devices: the CsrWeight lives on its dense weight's device. On cuda it has a device mirror (dw, dwt,
// dperm, dindex: cuda::DeviceCsr and arrays from st::cuda::device_alloc, uploaded when the object is
// built or moved, freed with it) that the kernels and the optimizer use; `values` is a cuda tensor;
// the host w / wt keep the structure (built on the host, the mask is a host array) but their values
// are current only after download_csr_values.
// Ops on it: core/ops.h (sparse_linear, sparse_conv2d). Tests: tests/core/test_sparse_ops.cpp,
// tests/core/test_cuda_ops.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/parameter.h"
#include "core/variable.h"
#include "cuda/sparse.h"
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
  // The device mirror (device == cuda only).
  Device device = Device::cpu;
  cuda::DeviceCsr dw, dwt;      // W and Wt on the device; dw.values are the live weights there
  int32_t* dperm = nullptr;     // perm (nnz)
  int64_t* dindex = nullptr;    // index (nnz)
  // Conv weights on the host: the direct sparse conv's position offsets (kernels/sparse_conv.h)
  // for the last padded input size (Hp, Wp) seen; a new pattern is a new CsrWeight.
  struct ConvOffsets {
    int Hp = -1, Wp = -1;
    std::shared_ptr<const std::vector<int32_t>> off;
  };
  ConvOffsets conv_offsets;
  // True after a CPU CSR optimizer step: the dense weight misses it until sync_dense_weight.
  bool dense_stale = false;

  CsrWeight() = default;
  CsrWeight(const CsrWeight&) = delete;  // owns the device mirror
  CsrWeight& operator=(const CsrWeight&) = delete;
  ~CsrWeight();
  int64_t nnz() const { return w.nnz(); }
  double sparsity() const { return rows && cols ? 1.0 - double(nnz()) / (double(rows) * cols) : 0.0; }
};

// mask (host, may be null: every entry kept). The result lives on dense's device (a cuda dense
// weight is downloaded to build the structure: O(numel), at mask changes only).
std::shared_ptr<CsrWeight> make_csr_weight(const Tensor& dense, const uint8_t* mask);
// w.values, values and wt.values from `dense` (on c's device) at the pattern (O(nnz)).
void refresh_csr_values(CsrWeight& c, const Tensor& dense);
// The host form (cpu CsrWeight only): dense is a host array.
void refresh_csr_values(CsrWeight& c, const float* dense);
// After the optimizer wrote w.values (dw.values on cuda): mirror them into `values` and Wt (O(nnz)).
void sync_csr_copies(CsrWeight& c);
// Moves c to `device`: uploads the structure and values (cpu -> cuda), or brings the values back
// and frees the mirror (cuda -> cpu). values' gradient is dropped (moves happen between steps).
void move_csr_weight(CsrWeight& c, Device device);
// cuda: copies dw.values into the host w.values (and wt). cpu: nothing to do.
void download_csr_values(CsrWeight& c);
// If a CSR step left the dense weight stale: dense[index[k]] = w.values[k] (O(nnz)), and no longer
// stale. Safe to call any time; a no-op for a dense or up-to-date parameter.
void sync_dense_weight(Parameter& p);
void sync_dense_weights(const std::vector<Parameter*>& params);

}  // namespace st
