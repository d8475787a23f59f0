// pruning/methods/rigl.cpp — RigL (Evci et al. 2020): random masks before training; every
// every_steps steps before epoch end_epoch, drops the smallest active weights and regrows as many
// where the dense gradient is largest, the fraction decaying by cosine_drop (pruning/schedule.h).
// Tests: tests/pruning/test_pruner.cpp, tests/pruning/test_methods.cpp
#include "pruning/pruner.h"
#include "pruning/schedule.h"

namespace st::pruning::methods {

namespace {

class Rigl final : public PruningMethod {
 public:
  std::vector<std::string> schedule_keys() const override { return {"every_steps", "end_epoch", "drop_fraction"}; }

  Action start(Pruner& p) override {
    return [&p] { p.prune_at_random(p.config().target, 0); };
  }

  Action step(Pruner& p, int, int64_t step) override {
    const ScheduleConfig& s = p.config().schedule;
    const int64_t t_end = p.step_of(s.end_epoch);
    if (step <= 0 || step % s.every_steps != 0 || step >= t_end) return {};
    const double fraction = cosine_drop(static_cast<double>(step), static_cast<double>(t_end), s.drop_fraction);
    return [&p, fraction] { p.rigl_update(fraction); };
  }
};

}  // namespace

std::unique_ptr<PruningMethod> make_rigl() { return std::make_unique<Rigl>(); }

}  // namespace st::pruning::methods
