// pruning/csr_switch.h — the CSR switch policy: which prunable weights are sparse (stored and executed
// in CSR, core/csr_weight.h) and which are dense. A weight becomes sparse once its sparsity (from its
// mask or pattern) reaches the threshold, and dense again when a regrowth lowers it below; each
// switch converts it (core/csr_weight.h to_sparse / to_dense) and frees the old form. With `timed` ("threshold": "auto") the layer instead times
// dense and CSR (forward + backward at the training batch size, on its own shapes) and takes the
// faster; the decision is cached per (layer, sparsity in whole percent), so timing happens once per
// sparsity level, never per step. update() is called after every mask change (the pruner's hooks)
// and at start; it re-decides only layers whose pattern changed (Parameter::mask_version), and
// gives every layer its decided form.
// suspend(true) makes every sparse weight dense for a while (pruner hooks that read and edit dense
// weights, masks or gradients, RigL update steps: O(numel) each time); update() then makes them
// sparse again from their (possibly edited) dense weight and mask. Hooks that work on the sparse
// form (SET) run without it: pruning/hooks.h decides, from the Action.
// Devices: CSR states are built on the weights' device (the structure from the host mask), and
// "auto" times the layer on that device; the trainer picks the threshold per device
// (config sparse.threshold / sparse.threshold_cuda).
// Tests: tests/experiment/test_csr_trainer.cpp, tests/core/test_sparse_ops.cpp.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "models/model.h"
#include "pruning/layers.h"

namespace st::pruning {

// The default thresholds (config sparse.threshold, sparse.threshold_cuda): on the cpu CSR pays from
// 70% sparsity; on a GPU the dense SGEMM is harder to beat.
constexpr double kCsrThresholdCpu = 0.7;
constexpr double kCsrThresholdCuda = 0.9;

struct CsrSwitchOptions {
  bool enabled = true;
  double threshold = kCsrThresholdCpu;  // in [0, 1]; ignored when timed
  bool timed = false;      // "auto": time both on the layer's shapes
  int batch_size = 64;     // for timing
};

struct CsrSwitchEvent {
  std::string layer;  // "fc1"
  bool to_csr = false;
  double sparsity = 0;
  std::string why;    // "threshold 0.70" | "auto: dense 1.20 ms, csr 0.31 ms"
  // "[csr] fc1: dense -> csr at sparsity 95.0% (threshold 0.70)"
  std::string message() const;
};

class CsrSwitch {
 public:
  CsrSwitch(CsrSwitchOptions options, models::Model& model);
  // Re-decides the layers whose pattern changed since the last call (every layer on the first
  // call) and, unless suspended, converts every layer to its decided form; returns the switches made.
  std::vector<CsrSwitchEvent> update();
  // Keeps the forms the layers have now (e.g. restored from a checkpoint) as the decided ones.
  void adopt();
  // on: every sparse weight becomes dense (with a mask of its pattern) until update().
  void suspend(bool on);
  const std::vector<PrunableLayer>& layers() const { return layers_; }
  const CsrSwitchOptions& options() const { return options_; }
  // "dense" | "csr" per prunable layer name: the decided forms.
  std::vector<std::pair<std::string, std::string>> modes() const;

 private:
  bool decide(size_t l, double sparsity, std::string& why);
  std::pair<double, double> time_layer(size_t l);  // (dense ms, csr ms) per forward + backward

  CsrSwitchOptions options_;
  models::Model& model_;
  std::vector<PrunableLayer> layers_;
  std::vector<Shape> input_shapes_;  // per-sample input of each prunable layer
  std::vector<int64_t> seen_version_;
  std::vector<bool> csr_;  // the decided form of each layer
  std::map<std::pair<size_t, int>, bool> timed_choice_;
  bool suspended_ = false;
};

}  // namespace st::pruning
