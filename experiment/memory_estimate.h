// experiment/memory_estimate.h — the memory a config will need, worked out from its sizes before
// anything is allocated: a model, batch or dataset too big for the machine is refused naming the
// keys responsible and the bytes, instead of ending in std::bad_alloc (or the OOM killer) later.
// Tests: tests/experiment/test_config.cpp, tests/experiment/test_run_summary.cpp
#pragma once
#include <cstdint>
#include <string>

#include "experiment/config.h"

namespace st::experiment {

// Lower bounds (what certainly gets allocated), so that a config that fits is never refused.
// A sparse weight costs this many bytes per nonzero besides its optimizer state (core/csr_weight.h:
// W's value and column, Wt's value and column, the permutation, the values' gradient).
constexpr double kCsrBytesPerNonzero = 28;

struct MemoryEstimate {
  double parameters = 0;      // parameter count
  double weights = 0;         // of which weights of linear and conv2d layers (the prunable ones)
  double parameter_bytes = 0; // weights, gradients and optimizer state, as the run holds them: the
                              // pruned layers sparse when the run starts sparse (pruning::starts_sparse)
  double dense_parameter_bytes = 0;  // the same, every layer dense
  double activation_bytes = 0;  // one batch's layer outputs and their gradients (and CSR Linear
                                // layers' packed inputs)
  double dataset_bytes = 0;   // the train and test images and labels
  double total() const { return parameter_bytes + activation_bytes + dataset_bytes; }
};

MemoryEstimate estimate_memory(const Config& c);

// "705.4 kB", "1.23 GB": decimal units, as the summary and the memory errors print them.
std::string bytes_text(double bytes);

// The peak resident memory of this process so far (bytes), -1 when the system does not say.
int64_t peak_resident_bytes();

// Bytes this process can still allocate: MemAvailable from /proc/meminfo, else physical memory.
double available_memory();

// Throws ConfigError naming the config, the keys behind the largest part of the estimate and the
// bytes, when the estimate exceeds `available` bytes.
void check_memory(const Config& c, double available = available_memory());

}  // namespace st::experiment
