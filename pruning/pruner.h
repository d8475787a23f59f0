// pruning/pruner.h — composes Criterion → scores, Granularity → groups, Distribution → per-layer
// targets, the method (pruning/method.h: when and how much) and the L1 term (pruning/l1.h), and
// owns the masks (in Parameter::mask) and the pruning Rng (seeded from the config seed). The method
// holds its own state (the rewind snapshot, ADMM's Z and U).
// Each hook is planned first: plan_*() returns the Action the hook takes, empty where it does
// nothing. The trainer runs them through pruning/hooks.h, in order:
//   plan_start()                  fresh runs only, before epoch 0: static/SET/RigL masks, rewind-to-init snapshot
//   plan_epoch_begin(e)           one-shot, iterative rounds (+ rewinding), gradual at epoch starts,
//                                 ADMM start and hard prune
//   plan_step(e, t)               after backward, before optimizer.step (t = optimizer steps done so far):
//                                 L1 and ADMM gradient terms, gradual every ΔT steps, RigL every ΔT steps
//   plan_epoch_end(e)             SET drop/regrow, ADMM Z/U updates
// on_*() plan and run a hook at once (tests and tools that hold no device or CSR state).
// Every mask change is applied at once (w ⊙ mask, optimizer state zeroed at masked and regrown entries;
// regrown weights start at 0). All epochs are 0-based and count train then fine-tune epochs.
// Tests: tests/pruning/test_pruner.cpp, tests/pruning/test_methods.cpp, tests/experiment/test_pruning_trainer.cpp
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/csr_weight.h"
#include "core/optim.h"
#include "core/rng.h"
#include "models/builder.h"
#include "models/model.h"
#include "pruning/config.h"
#include "pruning/criterion.h"
#include "pruning/layers.h"
#include "pruning/method.h"

namespace st::pruning {

// True when the run's masks can be drawn without a dense weight: a sparse-from-start method (static
// with the random criterion, set, rigl), element granularity and a per-layer distribution (erk, er,
// uniform, layerwise). Such a run builds its pruned layers directly in the sparse form
// (Pruner::start_sparse); any other combination starts dense and prunes.
bool starts_sparse(const PruningConfig& c);

class Pruner {
 public:
  // Checks everything that depends on the layers (granularity vs layer type, N:M vs fan-in,
  // keep_dense names) and throws st::Error naming the key.
  Pruner(PruningConfig config, models::Model& model, uint64_t seed);

  void set_batch_source(BatchSource* source) { batches_ = source; }
  void set_optimizer(Optimizer* optimizer);
  void set_steps_per_epoch(int64_t steps) { steps_per_epoch_ = steps; }

  // Sparse start (fresh runs of a starts_sparse config, on a model built without weights): gives
  // each eligible layer a uniformly random pattern with the distribution's density (exactly the
  // nonzero count prune_to keeps) and its initial values, in the sparse form: no dense matrix of the
  // layer is ever allocated. Values follow `init` by each unit's actual fan-in when
  // config.fan_in_init, else by the dense layer's fan-in (as models::initialize draws them); a
  // layer's bias follows the same rule. Layers it leaves unset (kept dense, density 1) are for
  // models::initialize. plan_start() then has nothing left to do.
  void start_sparse(models::Init init, Rng& init_rng);
  bool started_sparse() const { return started_sparse_; }

  // What each hook does at this point of the run; empty where the pruner does nothing.
  Action plan_start();
  Action plan_epoch_begin(int epoch);
  Action plan_step(int epoch, int64_t step);
  Action plan_epoch_end(int epoch);
  void on_start() { run(plan_start()); }
  void on_epoch_begin(int epoch) { run(plan_epoch_begin(epoch)); }
  void on_step(int epoch, int64_t step) { run(plan_step(epoch, step)); }
  void on_epoch_end(int epoch) { run(plan_epoch_end(epoch)); }

  // The building blocks the methods use (public for tests).
  // Prunes each eligible layer (or all together for "global") to `sparsity` by the criterion;
  // masks only shrink. `pass` picks the batches of data-dependent criteria.
  void prune_to(double sparsity, int64_t pass);
  void prune_at_random(double sparsity, int64_t pass);  // prune_to with the random criterion
  void prune_below(double threshold, int64_t pass);  // absolute-threshold target
  void set_update(double drop_fraction);   // SET: drop smallest |w|, regrow at random
  void rigl_update(double drop_fraction);  // RigL: drop smallest |w|, regrow largest |grad|
  // RigL on sparse layers without making them dense: allowed by the trainer when the run is on
  // the CPU in one process (set_sparse_regrowth), and possible when every eligible sparse layer is
  // a Linear weight. A step that regrows so first calls capture_gradient_factors(): the backward
  // then keeps each such layer's x and dy (CsrWeight::factors), from which rigl_update computes the
  // dense gradient a panel of rows at a time. Otherwise the step runs densely (pruning/hooks.h).
  // On several ranks each holds the rows of its own parts; `exchange` (set by the trainer) makes
  // every rank's factors the whole batch's, rows in part order, so all ranks (and one process with
  // the same micro-batches) regrow the same entries. Called once per layer on every rank alike.
  using FactorExchange = std::function<void(CsrWeight::GradientFactors& f, int in, int out)>;
  void set_sparse_regrowth(bool allowed, FactorExchange exchange = nullptr) {
    sparse_regrowth_ = allowed;
    exchange_ = std::move(exchange);
  }
  bool regrows_on_sparse() const;
  void capture_gradient_factors();
  // Per layer, the mask that keeps the groups of `scores` the run's granularity and distribution
  // keep at `sparsity` (with `threshold`: the groups scoring at least `sparsity`, read as a
  // threshold); empty for a layer left alone.
  std::vector<std::vector<uint8_t>> select(const std::vector<LayerScores>& scores, double sparsity,
                                           bool threshold) const;
  // The optimizer's state by parameter, fetched afresh for each use: Optimizer::state() brings its
  // dense slots up to date (CSR steps keep a compact copy), so its pointers are not kept across steps.
  OptimizerState optimizer_state() const;
  // The first optimizer step of `epoch`.
  int64_t step_of(int epoch) const { return static_cast<int64_t>(epoch) * steps_per_epoch_; }

  const PruningConfig& config() const { return config_; }
  models::Model& model() { return model_; }
  const std::vector<PrunableLayer>& layers() const { return layers_; }
  const std::vector<bool>& eligible() const { return eligible_; }
  // Sparsity over the prunable weights (from the masks).
  double sparsity() const;

  // Checkpoint state beside the masks (the method's) and the Rng.
  std::vector<StateTensor> state_tensors() { return method_->state_tensors(*this); }
  Rng& rng() { return rng_; }

 private:
  static void run(const Action& action) {
    if (action) action();
  }
  void install(const std::vector<std::vector<uint8_t>>& keep);
  void prune_by(const CriterionConfig& criterion, double sparsity, int64_t pass);

  const PruningConfig config_;
  models::Model& model_;
  std::vector<PrunableLayer> layers_;
  std::vector<bool> eligible_;
  Rng rng_;
  std::unique_ptr<PruningMethod> method_;
  BatchSource* batches_ = nullptr;
  Optimizer* optimizer_ = nullptr;
  int64_t steps_per_epoch_ = 1;
  bool started_sparse_ = false;
  bool sparse_regrowth_ = false;
  FactorExchange exchange_;
};

}  // namespace st::pruning
