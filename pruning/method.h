// pruning/method.h — a pruning method as an object: what the config needs to know about it (its
// schedule keys, their defaults, its own checks, its traits) and, in training, when it acts and what
// it does, each written once. One file per method under pruning/methods/, each listed
// once in pruning/method_list.h; the registry
// (pruning/methods/registry.cpp) maps each pruning::Method to its factory. The Pruner
// (pruning/pruner.h) composes the method with the criterion, granularity, distribution and the L1
// term, and offers the building blocks methods call (prune_to, set_update, rigl_update, ...).
// Each hook returns an Action: empty where the method does nothing at that point, otherwise what it
// does there. The caller runs a non-empty Action or skips the hook (and, on a device, the transfers
// around it), so "whether it acts" and "what it acts" are one decision. Planning an Action changes
// nothing; only running it does. A method holds its own state (the rewind snapshot, ADMM's Z and U)
// and names it for checkpoints. Epochs are 0-based over train then fine-tune epochs; steps are
// optimizer steps since the start of the run.
// Tests: tests/pruning/test_methods.cpp, tests/pruning/test_pruner.cpp
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "pruning/config.h"

namespace st::pruning {

class Pruner;

// What a hook does at one point of the run; empty where it does nothing. By default it reads and
// edits weights densely (dense values, masks, dense gradients), so sparse weights are made dense
// around it (pruning/hooks.h); an Action made by on_sparse() works on sparse weights as they are.
class Action {
 public:
  Action() = default;
  Action(std::nullptr_t) {}  // NOLINT: "no action", as for std::function
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Action> &&
                                              std::is_invocable_v<F&>>>
  Action(F f, bool on_sparse = false) : run_(std::move(f)), on_sparse_(on_sparse) {}  // NOLINT
  explicit operator bool() const { return static_cast<bool>(run_); }
  void operator()() const { run_(); }
  bool needs_dense() const { return !on_sparse_; }

 private:
  std::function<void()> run_;
  bool on_sparse_ = false;
};

// An Action that works on sparse and dense weights alike, in their own form.
template <class F>
Action on_sparse(F f) {
  return Action(std::move(f), /*on_sparse=*/true);
}

// A tensor of pruning state saved in checkpoints beside the masks (undefined while not in use; a
// loader allocates it with `shape` when the checkpoint holds it). The names are in checkpoints on
// disk: they never change.
struct StateTensor {
  std::string name;
  Tensor* tensor;
  Shape shape;
};

// What the config's generic rules (pruning/config.cpp) ask of a method.
struct MethodTraits {
  // Sparse training: the masks exist from the start; element granularity only, and the distribution
  // defaults to "erk".
  bool sparse_from_start = false;
  // pruning.threshold may stand in for pruning.target.
  bool takes_threshold = false;
  CriterionType default_criterion = CriterionType::Magnitude;
  // Set when the method takes no pruning.criterion: why, for the error ("it drops by magnitude ...").
  const char* no_criterion = nullptr;
};

class PruningMethod {
 public:
  virtual ~PruningMethod() = default;

  // What the config reads, before any training (pruning/config.cpp).
  // The pruning.schedule keys this method reads (docs/pruning.md, "Methods and their schedule keys").
  virtual std::vector<std::string> schedule_keys() const = 0;
  virtual MethodTraits traits() const { return {}; }
  // Integer schedule keys whose given value has a higher minimum than the shared one
  // (docs/pruning.md), with that minimum; a default may lie below it.
  virtual std::vector<std::pair<std::string, int>> schedule_minimums() const { return {}; }
  // Sets the default of schedule key `key` (one of schedule_keys()) that the config leaves out;
  // ScheduleConfig's initializer stands where this sets nothing. Keys are resolved in the order of
  // pruning::kScheduleKeys, so a default may depend on the keys before it, and on c.finetune.
  virtual void default_schedule(const std::string& /*key*/, PruningConfig& /*c*/, int /*train_epochs*/) const {}
  // The method's own rules over the resolved config; throws st::Error naming the key path.
  virtual void check(const PruningConfig& /*c*/, int /*train_epochs*/) const {}

  // Training.
  // Fresh runs only, before epoch 0 (initial masks, the rewind-to-init snapshot).
  virtual Action start(Pruner&) { return {}; }
  // At the start of `epoch`.
  virtual Action epoch_begin(Pruner&, int /*epoch*/) { return {}; }
  // After backward, before optimizer.step; `step` = optimizer steps done so far.
  virtual Action step(Pruner&, int /*epoch*/, int64_t /*step*/) { return {}; }
  // After the last step of `epoch`.
  virtual Action epoch_end(Pruner&, int /*epoch*/) { return {}; }
  virtual std::vector<StateTensor> state_tensors(Pruner&) { return {}; }
};

// The schedule of a method that prunes once, at the start of pruning.schedule.epoch (one_shot,
// random): by default when training ends if there are fine-tune epochs (then fine-tune), else at
// initialization.
class PrunesOnceAtEpoch : public PruningMethod {
 public:
  std::vector<std::string> schedule_keys() const override { return {"epoch"}; }
  void default_schedule(const std::string&, PruningConfig& c, int train_epochs) const override {
    c.schedule.epoch = c.finetune.epochs > 0 ? train_epochs : 0;
  }
  void check(const PruningConfig& c, int train_epochs) const override {
    check_within_run("epoch", c.schedule.epoch, c, train_epochs);
  }
};

// The registry (pruning/methods/registry.cpp): the method for `method`, with no state yet.
std::unique_ptr<PruningMethod> make_method(Method method);
// Every method the registry holds, in pruning::Method order.
std::vector<Method> registered_methods();

}  // namespace st::pruning
