// pruning/methods/one_shot.cpp — one-shot: prunes once, at the start of schedule.epoch, to the
// target (or below the threshold).
// Tests: tests/pruning/test_pruner.cpp, tests/pruning/test_methods.cpp
#include "pruning/pruner.h"

namespace st::pruning::methods {

namespace {

class OneShot final : public PruningMethod {
 public:
  std::vector<std::string> schedule_keys() const override { return {"epoch"}; }

  MethodTraits traits() const override {
    MethodTraits t;
    t.takes_threshold = true;
    return t;
  }

  // With fine-tune epochs, prune when training ends (then fine-tune); else at initialization.
  void default_schedule(const std::string&, PruningConfig& c, int train_epochs) const override {
    c.schedule.epoch = c.finetune.epochs > 0 ? train_epochs : 0;
  }

  void check(const PruningConfig& c, int train_epochs) const override {
    check_within_run("epoch", c.schedule.epoch, c, train_epochs);
  }

  Action epoch_begin(Pruner& p, int epoch) override {
    const PruningConfig& c = p.config();
    if (epoch != c.schedule.epoch) return {};
    const int64_t pass = p.step_of(epoch);
    if (c.has_threshold) return [&p, &c, pass] { p.prune_below(c.threshold, pass); };
    return [&p, &c, pass] { p.prune_to(c.target, pass); };
  }
};

}  // namespace

std::unique_ptr<PruningMethod> make_one_shot() { return std::make_unique<OneShot>(); }

}  // namespace st::pruning::methods
