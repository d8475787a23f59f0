// pruning/methods/random.cpp — random pruning, the baseline of pruning papers (Liu et al. 2022, "The
// unreasonable effectiveness of random pruning"): prunes once, at the start of schedule.epoch, to
// the target at random (with the run's granularity and distribution), whatever the weights are.
// Tests: tests/pruning/test_random_method.cpp, tests/pruning/test_methods.cpp
#include "pruning/pruner.h"

namespace st::pruning::methods {

namespace {

class Random final : public PruningMethod {
 public:
  std::vector<std::string> schedule_keys() const override { return {"epoch"}; }

  MethodTraits traits() const override {
    MethodTraits t;
    t.default_criterion = CriterionType::Random;
    t.no_criterion = "it prunes at random";
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
    if (epoch != p.config().schedule.epoch) return {};
    const int64_t pass = p.step_of(epoch);
    return [&p, pass] { p.prune_at_random(p.config().target, pass); };
  }
};

}  // namespace

std::unique_ptr<PruningMethod> make_random() { return std::make_unique<Random>(); }

}  // namespace st::pruning::methods
