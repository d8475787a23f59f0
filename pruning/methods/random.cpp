// pruning/methods/random.cpp — random pruning, the baseline of pruning papers (Liu et al. 2022, "The
// unreasonable effectiveness of random pruning"): prunes once, at the start of schedule.epoch, to
// the target at random (with the run's granularity and distribution), whatever the weights are.
// Tests: tests/pruning/test_random_method.cpp, tests/pruning/test_methods.cpp
#include "pruning/pruner.h"

namespace st::pruning::methods {

namespace {

class Random final : public PrunesOnceAtEpoch {
 public:
  MethodTraits traits() const override {
    MethodTraits t;
    t.default_criterion = CriterionType::Random;
    t.no_criterion = "it prunes at random";
    return t;
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
