// pruning/methods/one_shot.cpp — one-shot: prunes once, at the start of schedule.epoch, to the
// target (or below the threshold).
// Tests: tests/pruning/test_pruner.cpp, tests/pruning/test_methods.cpp
#include "pruning/pruner.h"

namespace st::pruning::methods {

namespace {

class OneShot final : public PrunesOnceAtEpoch {
 public:
  MethodTraits traits() const override {
    MethodTraits t;
    t.takes_threshold = true;
    return t;
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
