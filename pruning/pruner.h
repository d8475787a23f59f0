// pruning/pruner.h — composes Criterion → scores, Granularity → groups, Distribution → per-layer
// targets and the method's Schedule → when and how much, and owns the pruning state: the masks (in
// Parameter::mask), the rewind snapshot, ADMM's Z and U, and its Rng (seeded from the config seed).
// The trainer calls, in order:
//   on_start()                    fresh runs only, before epoch 0: static/SET/RigL masks, rewind-to-init snapshot
//   on_epoch_begin(e)             one-shot, iterative rounds (+ rewinding), gradual at epoch starts,
//                                 ADMM start and hard prune
//   on_step(e, t)                 after backward, before optimizer.step (t = optimizer steps done so far):
//                                 L1 and ADMM gradient terms, gradual every ΔT steps, RigL every ΔT steps
//   on_epoch_end(e)               SET drop/regrow, ADMM Z/U updates
// Every mask change is applied at once (w ⊙ mask, optimizer state zeroed at masked and regrown entries;
// regrown weights start at 0). All epochs are 0-based and count train then fine-tune epochs.
// Tests: tests/pruning/test_pruner.cpp, tests/experiment/test_pruning_trainer.cpp
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/optim.h"
#include "core/rng.h"
#include "models/model.h"
#include "pruning/config.h"
#include "pruning/criterion.h"
#include "pruning/layers.h"

namespace st::pruning {

class Pruner {
 public:
  // Checks everything that depends on the layers (granularity vs layer type, N:M vs fan-in,
  // keep_dense names) and throws st::Error naming the key.
  Pruner(PruningConfig config, models::Model& model, int train_epochs, uint64_t seed);

  void set_batch_source(BatchSource* source) { batches_ = source; }
  void set_optimizer(Optimizer* optimizer);
  void set_steps_per_epoch(int64_t steps) { steps_per_epoch_ = steps; }

  void on_start();
  void on_epoch_begin(int epoch);
  void on_step(int epoch, int64_t step);
  void on_epoch_end(int epoch);
  // Whether on_step(epoch, step) will read or change weights, gradients or masks (L1 and ADMM terms,
  // a gradual or RigL update): the trainer runs such steps densely (RigL needs the dense gradient).
  bool acts_on_step(int epoch, int64_t step) const;
  // Whether on_epoch_begin(epoch) / on_epoch_end(epoch) will read or change anything: the trainer
  // brings a device model's weights to the host only for hooks that act. (A hook that acts while
  // these say no would read a cuda tensor on the host, which asserts: never silently wrong.)
  bool acts_on_epoch_begin(int epoch) const;
  bool acts_on_epoch_end(int epoch) const;

  // The building blocks the schedules use (public for tests).
  // Prunes each eligible layer (or all together for "global") to `sparsity` by the criterion;
  // masks only shrink. `pass` picks the batches of data-dependent criteria.
  void prune_to(double sparsity, int64_t pass);
  void prune_below(double threshold, int64_t pass);  // absolute-threshold target
  void set_update(double drop_fraction);   // SET: drop smallest |w|, regrow at random
  void rigl_update(double drop_fraction);  // RigL: drop smallest |w|, regrow largest |grad|

  const PruningConfig& config() const { return config_; }
  const std::vector<PrunableLayer>& layers() const { return layers_; }
  const std::vector<bool>& eligible() const { return eligible_; }
  // Sparsity over the prunable weights (from the masks).
  double sparsity() const;

  // Checkpoint state beside the masks: named tensors (undefined while not in use; a loader
  // allocates them with `shape` when the checkpoint holds them) and the Rng.
  struct StateTensor {
    std::string name;
    Tensor* tensor;
    Shape shape;
  };
  std::vector<StateTensor> state_tensors();
  Rng& rng() { return rng_; }

 private:
  std::vector<std::vector<uint8_t>> select(const std::vector<LayerScores>& scores, double sparsity,
                                           bool threshold) const;
  void install(const std::vector<std::vector<uint8_t>>& keep);
  void snapshot();
  void rewind();
  void admm_project();
  bool has_snapshot() const { return !rewind_.empty() && rewind_[0].defined(); }
  bool admm_active() const { return !admm_z_.empty() && admm_z_[0].defined(); }
  int64_t step_of(int epoch) const { return static_cast<int64_t>(epoch) * steps_per_epoch_; }

  PruningConfig config_;
  models::Model& model_;
  int train_epochs_;
  std::vector<PrunableLayer> layers_;
  std::vector<bool> eligible_;
  Rng rng_;
  BatchSource* batches_ = nullptr;
  Optimizer* optimizer_ = nullptr;
  // The optimizer's state by parameter, fetched afresh for each use: Optimizer::state() brings its
  // dense slots up to date (CSR steps keep a compact copy), so its pointers are not kept across steps.
  OptimizerState optimizer_state() const;
  int64_t steps_per_epoch_ = 1;
  std::vector<Tensor> rewind_;           // per model parameter
  std::vector<Tensor> admm_z_, admm_u_;  // per prunable layer
};

}  // namespace st::pruning
