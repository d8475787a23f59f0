// experiment/export.h — `sparsetrain export --compact`: a checkpoint of a neuron/filter-pruned model
// -> a checkpoint of a physically smaller dense model (pruning/compact.h) whose saved config has
// model.arch "layers" with the reduced sizes, so `sparsetrain eval` and --init-from read it as any
// other run. Test: tests/experiment/test_pruning_trainer.cpp
#pragma once
#include <string>

namespace st::experiment {

struct ExportResult {
  int64_t params_before = 0, params_after = 0;
  int64_t macs_before = 0, macs_after = 0;  // dense MACs per sample
};

// `target`: a checkpoint file or a run folder. `out_path` may be a new file or an earlier export, never
// the input itself nor a run's own file (experiment/run_folder.h): a run's checkpoint holds the
// optimizer state and masks a compact export drops.
ExportResult export_compact(const std::string& target, const std::string& out_path);

}  // namespace st::experiment
