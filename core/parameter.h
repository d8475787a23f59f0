// core/parameter.h — a trainable tensor with a stable name. The name is the checkpoint key, the
// config's layer name and the report's row.
// A weight has one representation at a time (docs/architecture.md invariant 3):
//   dense   `var` holds the value (and its grad) and `mask` (u8, same shape, 1 = kept) says which
//           entries pruning kept; undefined mask = every entry kept. `csr` is null.
//   sparse  `csr` (core/csr_weight.h) holds the structure and the live values (and the gradient at
//           the nonzeros); there is no dense value, no dense grad and no mask: the pattern is the mask.
//   unset   neither (a model built without weights, about to be loaded or sparsely initialized).
// core/csr_weight.h converts between the first two (to_sparse, to_dense); the CSR switch
// (pruning/csr_switch.h) decides which a prunable weight uses. `shape` is the dense shape in every
// representation. `mask_version` counts pattern changes, so the CSR switch re-decides only what changed.
// Devices: the value and grad (or the CSR state) live on the model's device; the mask is always a
// host tensor (pruning reads and edits it there); the optimizer keeps a device copy.
#pragma once
#include <memory>
#include <string>

#include "core/variable.h"

namespace st {

struct CsrWeight;

struct Parameter {
  std::string name;  // "conv1.weight"
  Shape shape;       // the dense shape, whatever the representation
  Variable var;      // dense: value + grad; its value is undefined while sparse or unset
  Tensor mask;       // dense only; undefined = every entry kept
  bool prunable = false;  // weights of Linear/Conv layers; biases are not
  std::shared_ptr<CsrWeight> csr;  // sparse: the only storage of the weight
  int64_t mask_version = 0;        // bumped by every pattern change

  Parameter(std::string n, Tensor value, bool is_prunable)
      : name(std::move(n)), shape(value.shape()), var(std::move(value), /*requires_grad=*/true),
        prunable(is_prunable) {}
  // Without storage (unset): a weight that a checkpoint or a sparse initialization will fill.
  Parameter(std::string n, Shape s, bool is_prunable)
      : name(std::move(n)), shape(std::move(s)), var(Tensor(), /*requires_grad=*/true), prunable(is_prunable) {}
  const uint8_t* mask_data() const { return mask.defined() ? mask.u8() : nullptr; }
  bool sparse() const { return csr != nullptr; }
  bool dense() const { return csr == nullptr && var.value().defined(); }
  bool unset() const { return csr == nullptr && !var.value().defined(); }
  int64_t numel() const { return shape_numel(shape); }
  // Entries kept: nonzeros of the pattern when sparse, mask ones when masked, numel otherwise.
  int64_t kept() const;
  // Bytes held: value, grad, mask (dense) or the CSR state (sparse); optimizer state not included.
  int64_t bytes() const;
};

}  // namespace st
