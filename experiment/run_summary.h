// experiment/run_summary.h — the closing summary of a finished run: what the user just got.
// Computed from the run's metrics.jsonl lines (every epoch, also those before a resume), so a
// resumed run summarises the whole run. Printed by the trainer after the last epoch (a few lines;
// nothing with --quiet) and stored in summary.json. Tests: tests/experiment/test_trainer.cpp
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace st::experiment {

// A sparsity (or any fraction) as a percentage with one decimal, or as many more (up to 6) as it
// takes not to round a fraction below 1 up to "100%": "95.0%", "99.98%", "99.9984%".
std::string sparsity_text(double fraction);

struct CsrLayer {
  std::string weight;  // "fc1.weight"
  int from_epoch = 0;  // 1-based: in CSR at the end of this epoch and of every epoch after it
};

struct RunSummary {
  int epochs = 0;
  double test_accuracy = 0;
  double sparsity = 0;                 // over the prunable weights
  int64_t weights = 0, nonzeros = 0;   // prunable weights: all of them, and those kept
  std::vector<CsrLayer> csr_layers;    // the layers that end the run in CSR, by parameter name (metrics.jsonl keeps no model order)
  std::vector<std::string> dense_layers;  // the prunable layers that end the run dense
  // Median training seconds of the epochs that ran with no layer in CSR, and of those that ran
  // whole (started and ended) with every layer of csr_layers in CSR; -1 when there is none.
  double dense_epoch_seconds = -1, csr_epoch_seconds = -1;
  int64_t checkpoint_bytes = -1;       // -1: no checkpoint
  // The largest peak resident memory the epochs recorded (over every process of a resumed run);
  // -1: none recorded.
  int64_t peak_resident_bytes = -1;
  std::string run_dir;

  nlohmann::json to_json() const;       // the fields summary.json adds
  std::string to_text() const;          // the lines printed at the end of a run
};

// `metrics`: the run's metrics.jsonl lines, in epoch order (at least one).
RunSummary summarize_run(const std::vector<nlohmann::json>& metrics, const std::string& run_dir,
                         int64_t checkpoint_bytes);

}  // namespace st::experiment
