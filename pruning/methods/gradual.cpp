// pruning/methods/gradual.cpp — gradual magnitude pruning (Zhu & Gupta 2017): the sparsity follows
// the cubic gradual_sparsity (pruning/schedule.h) from initial_sparsity at start_epoch to the target
// at end_epoch, stepped at epoch starts, or every every_steps steps (then the target is reached at
// the start of end_epoch).
// Tests: tests/pruning/test_pruner.cpp, tests/pruning/test_methods.cpp
#include "core/check.h"
#include "pruning/pruner.h"
#include "pruning/schedule.h"

namespace st::pruning::methods {

namespace {

class Gradual final : public PruningMethod {
 public:
  std::vector<std::string> schedule_keys() const override {
    return {"start_epoch", "end_epoch", "every_steps", "initial_sparsity"};
  }

  void default_schedule(const std::string& key, PruningConfig& c, int) const override {
    if (key == "end_epoch") fail_missing_schedule_key(c, "end_epoch");
  }

  void check(const PruningConfig& c, int train_epochs) const override {
    const ScheduleConfig& s = c.schedule;
    check_end_after_start(s);
    check_within_run("end_epoch", s.end_epoch, c, train_epochs);
    if (s.initial_sparsity > c.target)
      throw Error("pruning.schedule.initial_sparsity = " + number_text(s.initial_sparsity) +
                  " must not exceed pruning.target = " + number_text(c.target));
  }

  Action epoch_begin(Pruner& p, int epoch) override {
    const PruningConfig& c = p.config();
    const ScheduleConfig& s = c.schedule;
    const int64_t pass = p.step_of(epoch);
    if (s.every_steps == 0 && epoch >= s.start_epoch && epoch <= s.end_epoch) {
      const double sparsity = gradual_sparsity(epoch, s.start_epoch, s.end_epoch, s.initial_sparsity, c.target);
      return [&p, sparsity, pass] { p.prune_to(sparsity, pass); };
    }
    if (s.every_steps > 0 && epoch == s.end_epoch) return [&p, &c, pass] { p.prune_to(c.target, pass); };
    return {};
  }

  Action step(Pruner& p, int, int64_t step) override {
    const PruningConfig& c = p.config();
    const ScheduleConfig& s = c.schedule;
    if (s.every_steps == 0) return {};
    const int64_t t0 = p.step_of(s.start_epoch), t_end = p.step_of(s.end_epoch);
    if (step < t0 || step >= t_end || (step - t0) % s.every_steps != 0) return {};
    const double sparsity = gradual_sparsity(static_cast<double>(step), static_cast<double>(t0),
                                             static_cast<double>(t_end), s.initial_sparsity, c.target);
    return [&p, sparsity, step] { p.prune_to(sparsity, step); };
  }
};

}  // namespace

std::unique_ptr<PruningMethod> make_gradual() { return std::make_unique<Gradual>(); }

}  // namespace st::pruning::methods
