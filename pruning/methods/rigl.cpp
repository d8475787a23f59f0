// pruning/methods/rigl.cpp — RigL (Evci et al. 2020): random masks before training; every
// every_steps steps before epoch end_epoch, drops the smallest active weights and regrows as many
// where the dense gradient is largest, the fraction decaying by cosine_drop (pruning/schedule.h).
// Tests: tests/pruning/test_pruner.cpp, tests/pruning/test_methods.cpp
#include <algorithm>
#include <cmath>

#include "pruning/pruner.h"
#include "pruning/schedule.h"

namespace st::pruning::methods {

namespace {

class Rigl final : public PruningMethod {
 public:
  std::vector<std::string> schedule_keys() const override { return {"every_steps", "end_epoch", "drop_fraction"}; }

  MethodTraits traits() const override {
    MethodTraits t;
    t.sparse_from_start = true;
    t.no_criterion = "it drops by magnitude and regrows by gradient";
    return t;
  }

  // Updates every 100 steps for the first 75% of training (Evci et al.).
  void default_schedule(const std::string& key, PruningConfig& c, int train_epochs) const override {
    if (key == "every_steps") c.schedule.every_steps = 100;
    if (key == "end_epoch") c.schedule.end_epoch = std::max(1, static_cast<int>(std::lround(0.75 * train_epochs)));
  }

  // Updates stop at the first step of epoch end_epoch: end_epoch = the run's length (updates until
  // the end) is valid, and so is the default on 1- and 2-epoch runs.
  std::vector<std::pair<std::string, int>> schedule_minimums() const override {
    return {{"every_steps", 1}, {"end_epoch", 1}};
  }

  void check(const PruningConfig& c, int train_epochs) const override {
    check_at_most_run_end("end_epoch", c.schedule.end_epoch, c, train_epochs);
  }

  Action start(Pruner& p) override {
    return [&p] { p.prune_at_random(p.config().target, 0); };
  }

  Action step(Pruner& p, int, int64_t step) override {
    const ScheduleConfig& s = p.config().schedule;
    const int64_t t_end = p.step_of(s.end_epoch);
    if (step <= 0 || step % s.every_steps != 0 || step >= t_end) return {};
    const double fraction = cosine_drop(static_cast<double>(step), static_cast<double>(t_end), s.drop_fraction);
    if (p.regrows_on_sparse()) {  // sparse layers stay sparse: their backward keeps x and dy
      p.capture_gradient_factors();
      return on_sparse([&p, fraction] { p.rigl_update(fraction); });
    }
    return [&p, fraction] { p.rigl_update(fraction); };  // the step runs densely
  }
};

}  // namespace

std::unique_ptr<PruningMethod> make_rigl() { return std::make_unique<Rigl>(); }

}  // namespace st::pruning::methods
