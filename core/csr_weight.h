// core/csr_weight.h — the sparse representation of a weight (docs/architecture.md invariants 3, 4) and
// the conversions between a Parameter's dense and sparse forms (core/parameter.h).
//   make_csr_weight:     from a CSR matrix (sparse initialization, checkpoints, pattern changes) or
//                        from a dense weight + u8 mask (pattern = the mask)
//   to_sparse / to_dense: switch a Parameter's representation; the old form is freed
//   dense_value:         a dense copy of any parameter (export, timing): O(numel), temporary
//   sync_csr_copies:     after the optimizer wrote W's values: mirror them into `values` (and Wt,
//                        on the cpu when next read through transposed())
//   move_csr_weight:     to another device
//   download_csr_values: make the host copy's values current (checkpoints, tests)
// A sparse weight stores, per nonzero: W's value and column (8 B), Wt's value and column (8 B), the
// permutation between them (4 B), and the `values` Variable's value and gradient (8 B): 28 bytes,
// plus the optimizer's compact state (4 B per slot: SGD momentum, or Adam's two moments) — 32 B with
// momentum, 36 B with Adam — and O(rows + cols) for the row offsets and orders. No dense array of
// the weight's shape exists while it is sparse.
// Per step the work is O(nnz): the forward and both backward products run on W / Wt, the weight
// gradient is the nnz-sized grad of `values`, and the optimizer updates W's values in place.
// A pattern change builds a new object (the optimizer carries its state over: core/optim.h).
// Devices: the CsrWeight lives on one device. On cuda it has a device mirror (dw, dwt, dperm:
// cuda::DeviceCsr and arrays from st::cuda::device_alloc, uploaded when the object is built or moved,
// freed with it) that the kernels and the optimizer use; `values` is a cuda tensor; the host w / wt
// keep the structure, their values current only after download_csr_values.
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
  kernels::CsrMatrix wt;        // (cols, rows), for the input gradient: read it through transposed()
  std::vector<int32_t> perm;    // wt.values[p] = w.values[perm[p]]
  bool wt_current = true;       // false between an optimizer step and the next transposed() (cpu)
  Variable values;              // (nnz): value mirrors w.values; grad = dL/dW at the nonzeros
  // The device mirror (device == cuda only).
  Device device = Device::cpu;
  cuda::DeviceCsr dw, dwt;      // W and Wt on the device; dw.values are the live weights there
  int32_t* dperm = nullptr;     // perm (nnz)
  // Conv weights on the host: the direct sparse conv's position offsets (kernels/sparse_conv.h)
  // for the last padded input size (Hp, Wp) seen; a new pattern is a new CsrWeight.
  struct ConvOffsets {
    int Hp = -1, Wp = -1;
    std::shared_ptr<const std::vector<int32_t>> off;
  };
  ConvOffsets conv_offsets;
  // The factors of the dense gradient dyᵀ·x of a Linear weight, for a step that regrows by
  // gradient (RigL on a sparse layer, pruning::Pruner): while `capture` is set, every CPU backward
  // appends its input x (rows × cols) and output gradient dy (rows × this->rows) in call order
  // (micro-batch parts in order). Cleared when the regrowth has used them.
  struct GradientFactors {
    bool capture = false;
    int64_t rows = 0;
    std::vector<float> x, dy;
  };
  GradientFactors factors;

  CsrWeight() = default;
  CsrWeight(const CsrWeight&) = delete;  // owns the device mirror
  CsrWeight& operator=(const CsrWeight&) = delete;
  ~CsrWeight();
  int64_t nnz() const { return w.nnz(); }
  double sparsity() const { return rows && cols ? 1.0 - double(nnz()) / (double(rows) * cols) : 0.0; }
  // Bytes held (host and device), as listed in the header comment, without optimizer state.
  int64_t bytes() const;
};

// From a CSR matrix over the (rows = shape[0], cols = numel / rows) view, values included; on `device`.
std::shared_ptr<CsrWeight> make_csr_weight(kernels::CsrMatrix w, const Shape& shape, Device device);
// From a dense weight and its mask (host, may be null: every entry kept, zeros included). The result
// lives on dense's device (a cuda weight is downloaded to build the structure: O(numel)).
std::shared_ptr<CsrWeight> make_csr_weight(const Tensor& dense, const uint8_t* mask);
// Dense -> sparse: the pattern is p's mask (every entry without one); frees p's value, grad and mask.
// A gradient present goes along (gathered at the pattern), so a step whose gradient was computed
// densely still updates the weight after the switch, exactly as a masked dense step would.
void to_sparse(Parameter& p);
// Sparse -> dense: the value scattered into zeros, a mask of the pattern, the gradient (if any)
// scattered likewise; frees p's CSR state.
void to_dense(Parameter& p);
// The weight as a dense tensor on p's device, whatever the representation (a copy when sparse).
Tensor dense_value(const Parameter& p);
// After the optimizer wrote w.values (dw.values on cuda): mirror them into `values` (O(nnz)); on
// the cpu Wt's values are refreshed when next read (transposed), on cuda now.
void sync_csr_copies(CsrWeight& c);
// Wt with values current (an O(nnz) gather if an optimizer step came since the last call). A layer
// whose input gradient is never wanted (the first) never pays for it.
const kernels::CsrMatrix& transposed(CsrWeight& c);
// Moves c to `device`: uploads the structure and values (cpu -> cuda), or brings the values back
// and frees the mirror (cuda -> cpu). values' gradient is dropped (moves happen between steps).
void move_csr_weight(CsrWeight& c, Device device);
// cuda: copies dw.values into the host w.values (and wt). cpu: nothing to do.
void download_csr_values(CsrWeight& c);

// Between a pattern's compact arrays and dense layouts (host arrays, O(nnz) + the dense size):
// out[k] = dense[row(k), col(k)] / dense[row(k), col(k)] = in[k].
void gather_at_pattern(const kernels::CsrMatrix& pattern, const float* dense, float* out);
void scatter_at_pattern(const kernels::CsrMatrix& pattern, const float* in, float* dense);
// Compact values of pattern `from` moved to pattern `to` by position: entries of `to` absent from
// `from` get 0 (a merge of the two sorted rows, O(nnz)).
void carry_by_position(const kernels::CsrMatrix& from, const float* in, const kernels::CsrMatrix& to, float* out);

}  // namespace st
