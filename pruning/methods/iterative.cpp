// pruning/methods/iterative.cpp — iterative pruning: `rounds` rounds every `every` epochs from
// start_epoch, round r pruning to iterative_sparsity(r) (pruning/schedule.h) or below the
// threshold; with rewinding, each round then resets the surviving weights to a snapshot taken at
// start ("init") or at the start of rewind_epoch ("epoch", lottery-ticket style) and zeroes the
// optimizer state.
// Tests: tests/pruning/test_pruner.cpp, tests/pruning/test_methods.cpp
#include "core/csr_weight.h"
#include "pruning/pruner.h"
#include "pruning/schedule.h"

namespace st::pruning::methods {

namespace {

class Iterative final : public PruningMethod {
 public:
  std::vector<std::string> schedule_keys() const override {
    return {"start_epoch", "rounds", "every", "rewind", "rewind_epoch"};
  }

  Action start(Pruner& p) override {
    if (p.config().schedule.rewind != RewindType::Init) return {};
    return [this, &p] { snapshot(p); };
  }

  Action epoch_begin(Pruner& p, int epoch) override {
    const PruningConfig& c = p.config();
    const ScheduleConfig& s = c.schedule;
    const bool take_snapshot = s.rewind == RewindType::Epoch && epoch == s.rewind_epoch && !has_snapshot();
    const int d = epoch - s.start_epoch;
    const bool round = d >= 0 && d % s.every == 0 && d / s.every < s.rounds;
    if (!take_snapshot && !round) return {};
    const int number = round ? d / s.every + 1 : 0;  // 1-based
    const int64_t pass = p.step_of(epoch);
    return [this, &p, &c, take_snapshot, number, pass] {
      if (take_snapshot) snapshot(p);
      if (number == 0) return;
      if (c.has_threshold) p.prune_below(c.threshold, pass);
      else p.prune_to(iterative_sparsity(number, c.schedule.rounds, c.target), pass);
      if (c.schedule.rewind != RewindType::None && has_snapshot()) rewind(p);
    };
  }

  // The snapshot, one tensor per model parameter, when the schedule rewinds.
  std::vector<StateTensor> state_tensors(Pruner& p) override {
    std::vector<StateTensor> out;
    if (p.config().schedule.rewind == RewindType::None) return out;
    const auto& params = p.model().parameters();
    if (snapshot_.empty()) snapshot_.resize(params.size());
    for (size_t i = 0; i < params.size(); ++i)
      out.push_back({"pruning.rewind." + params[i]->name, &snapshot_[i], params[i]->var.value().shape()});
    return out;
  }

 private:
  bool has_snapshot() const { return !snapshot_.empty() && snapshot_[0].defined(); }

  void snapshot(Pruner& p) {
    snapshot_.clear();
    for (Parameter* prm : p.model().parameters()) snapshot_.push_back(prm->var.value().clone());
  }

  void rewind(Pruner& p) {
    const auto& params = p.model().parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      if (!snapshot_[i].defined()) continue;
      sync_dense_weight(*params[i]);  // clears the stale flag: the rewound weights must not be overwritten
      params[i]->var.value().copy_from(snapshot_[i]);
      apply_mask(*params[i]);
    }
    for (auto& [name, slots] : p.optimizer_state())
      for (Tensor* t : slots)
        if (t->defined()) t->zero_();
  }

  std::vector<Tensor> snapshot_;  // per model parameter
};

}  // namespace

std::unique_ptr<PruningMethod> make_iterative() { return std::make_unique<Iterative>(); }

}  // namespace st::pruning::methods
