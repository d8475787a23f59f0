// core/parameter.h — a trainable tensor: a Variable (value + grad) with a stable name and an optional
// mask (u8, same shape, 1 = kept). The name is the checkpoint key, the config's layer name and the
// report's row. Masks are filled in by pruning; optimizers respect them (docs/architecture.md invariant 1).
// `csr` is set while the layer executes in CSR (core/csr_weight.h); between CSR steps on the CPU its
// values are the live weights and the dense value may be stale: sync_dense_weight (csr_weight.h)
// before reading or editing it outside the trainer's sync points. `mask_version` counts mask
// changes, so the CSR switch rebuilds only what changed.
// The value and grad live on the model's device; the mask is always a host tensor (pruning reads and
// edits it there); the optimizer keeps a device copy, re-uploaded when mask_version changes.
#pragma once
#include <memory>
#include <string>

#include "core/variable.h"

namespace st {

struct CsrWeight;

struct Parameter {
  std::string name;  // "conv1.weight"
  Variable var;
  Tensor mask;        // undefined = dense
  bool prunable = false;  // weights of Linear/Conv layers; biases are not
  std::shared_ptr<CsrWeight> csr;  // null = dense execution
  bool csr_suspended = false;      // true: execute densely for now (the CSR state is kept)
  int64_t mask_version = 0;        // bumped by every mask change

  Parameter(std::string n, Tensor value, bool is_prunable)
      : name(std::move(n)), var(std::move(value), /*requires_grad=*/true), prunable(is_prunable) {}
  const uint8_t* mask_data() const { return mask.defined() ? mask.u8() : nullptr; }
  bool csr_active() const { return csr != nullptr && !csr_suspended; }
};

}  // namespace st
