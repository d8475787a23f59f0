// core/parameter.h — a trainable tensor: a Variable (value + grad) with a stable name and an optional
// mask (u8, same shape, 1 = kept). The name is the checkpoint key, the config's layer name and the
// report's row. Masks are filled in by pruning; optimizers respect them (ARCHITECTURE invariant 1).
#pragma once
#include <string>

#include "core/variable.h"

namespace st {

struct Parameter {
  std::string name;  // "conv1.weight"
  Variable var;
  Tensor mask;        // undefined = dense
  bool prunable = false;  // weights of Linear/Conv layers; biases are not

  Parameter(std::string n, Tensor value, bool is_prunable)
      : name(std::move(n)), var(std::move(value), /*requires_grad=*/true), prunable(is_prunable) {}
  const uint8_t* mask_data() const { return mask.defined() ? mask.u8() : nullptr; }
};

}  // namespace st
