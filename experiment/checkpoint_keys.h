// experiment/checkpoint_keys.h — the names inside a checkpoint file, for the code that writes it
// (experiment/checkpoint.cpp) and the code that reads it (`sparsetrain info`). What each holds is
// listed in experiment/checkpoint.h. Checkpoints already written load only while these stay as they are.
// Tests: tests/experiment/test_checkpoint_keys.cpp
#pragma once
#include <string>

namespace st::experiment {

// "mask.<param>": the U8 pruning mask of a parameter.
std::string mask_key(const std::string& param);

// "optimizer.<state>": an optimizer state tensor, named as Optimizer::state() names it
// ("<param>.momentum_buffer", "<param>.exp_avg", ...).
std::string optimizer_key(const std::string& state);

// "<param>.csr.row_ptr|col_idx|values": the CSR form of a weight executing in CSR.
struct CsrKeys {
  std::string prefix;  // "<param>.csr.", as error messages name the three ("<param>.csr.*")
  std::string row_ptr, col_idx, values;
};
CsrKeys csr_keys(const std::string& param);

// Metadata keys.
inline constexpr const char kFormatKey[] = "format";                  // kCheckpointFormat
inline constexpr const char kEpochKey[] = "epoch";                    // epochs completed
inline constexpr const char kOptimizerStepsKey[] = "optimizer_steps";
inline constexpr const char kDropoutRngKey[] = "dropout_rng";         // 4 words
inline constexpr const char kConfigKey[] = "config";                  // the resolved config (JSON)
inline constexpr const char kPruningRngKey[] = "pruning_rng";         // 4 words, with a pruner

// The value of kFormatKey.
inline constexpr const char kCheckpointFormat[] = "sparsetrain-checkpoint-1";

}  // namespace st::experiment
