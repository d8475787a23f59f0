#include "experiment/checkpoint_keys.h"

namespace st::experiment {

std::string mask_key(const std::string& param) { return "mask." + param; }

std::string optimizer_key(const std::string& state) { return "optimizer." + state; }

CsrKeys csr_keys(const std::string& param) {
  const std::string prefix = param + ".csr.";
  return {prefix, prefix + "row_ptr", prefix + "col_idx", prefix + "values"};
}

}  // namespace st::experiment
