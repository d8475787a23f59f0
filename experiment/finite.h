// experiment/finite.h — NaN and ±Inf are refused where they would enter or spread through a run:
// in the tensors a checkpoint loads (experiment/checkpoint.cpp) and in the parameters after each
// optimizer step (experiment/trainer.cpp). A non-finite weight need not show in the loss (a ReLU or a
// max-pool can drop it), so the loss check alone lets a run train on with NaN weights and state.
// Tests: tests/experiment/test_finite.cpp
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/parameter.h"

namespace st::experiment {

// Throws st::Error "training diverged: parameter "<name>" is <value> at index <i> ... <when>" for the
// first parameter holding a non-finite value, saying whether its gradient holds one too. Reads only
// the values a step writes: a CSR layer's nonzeros, not its dense weight. Parameters on a device are
// downloaded (a model-sized copy).
void check_parameters_finite(const std::vector<Parameter*>& params, const std::string& when);

// True when every value a step writes is finite: the per-step check, which builds no message (and
// allocates nothing) unless it fails: `if (!parameters_finite(p)) check_parameters_finite(p, when)`.
bool parameters_finite(const std::vector<Parameter*>& params);

}  // namespace st::experiment
