// pruning/methods/set.cpp — SET (Mocanu et al. 2018): random masks before training; at the end of
// every `every`-th epoch up to end_epoch, drops drop_fraction of the active weights by magnitude and
// regrows as many at random.
// Tests: tests/pruning/test_pruner.cpp, tests/pruning/test_methods.cpp
#include "pruning/pruner.h"

namespace st::pruning::methods {

namespace {

class Set final : public PruningMethod {
 public:
  std::vector<std::string> schedule_keys() const override { return {"every", "end_epoch", "drop_fraction"}; }

  MethodTraits traits() const override {
    MethodTraits t;
    t.sparse_from_start = true;
    t.no_criterion = "it drops by magnitude and regrows at random";
    return t;
  }

  // Updates until the last epoch.
  void default_schedule(const std::string& key, PruningConfig& c, int train_epochs) const override {
    if (key == "end_epoch") c.schedule.end_epoch = total_epochs(c, train_epochs) - 1;
  }

  std::vector<std::pair<std::string, int>> schedule_minimums() const override { return {{"end_epoch", 1}}; }

  void check(const PruningConfig& c, int train_epochs) const override {
    check_within_run("end_epoch", c.schedule.end_epoch, c, train_epochs);
  }

  Action start(Pruner& p) override {
    return [&p] { p.prune_at_random(p.config().target, 0); };
  }

  Action epoch_end(Pruner& p, int epoch) override {
    const ScheduleConfig& s = p.config().schedule;
    if (epoch + 1 > s.end_epoch || (epoch + 1) % s.every != 0) return {};
    return on_sparse([&p, &s] { p.set_update(s.drop_fraction); });  // sparse layers stay sparse
  }
};

}  // namespace

std::unique_ptr<PruningMethod> make_set() { return std::make_unique<Set>(); }

}  // namespace st::pruning::methods
