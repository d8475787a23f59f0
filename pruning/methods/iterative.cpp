// pruning/methods/iterative.cpp — iterative pruning: `rounds` rounds every `every` epochs from
// start_epoch, round r pruning to iterative_sparsity(r) (pruning/schedule.h) or below the
// threshold; with rewinding, each round then resets the surviving weights to a snapshot taken at
// start ("init") or at the start of rewind_epoch ("epoch", lottery-ticket style) and zeroes the
// optimizer state.
// Tests: tests/pruning/test_pruner.cpp, tests/pruning/test_methods.cpp
#include <algorithm>

#include "core/check.h"
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

  MethodTraits traits() const override {
    MethodTraits t;
    t.takes_threshold = true;
    return t;
  }

  // Defaults fit any run length: from epoch 1 (0 on a 1-epoch run), up to 3 rounds that end by the
  // last epoch.
  void default_schedule(const std::string& key, PruningConfig& c, int train_epochs) const override {
    ScheduleConfig& s = c.schedule;
    const int last = total_epochs(c, train_epochs) - 1;
    if (key == "start_epoch") s.start_epoch = std::min(1, last);
    if (key == "rounds") s.rounds = std::clamp((last - s.start_epoch) / s.every + 1, 1, 3);
  }

  void check(const PruningConfig& c, int train_epochs) const override {
    const ScheduleConfig& s = c.schedule;
    check_within_run("start_epoch", s.start_epoch, c, train_epochs);
    if (s.start_epoch + int64_t(s.rounds - 1) * s.every > total_epochs(c, train_epochs) - 1)
      throw Error("pruning.schedule.rounds = " + std::to_string(s.rounds) + " with pruning.schedule.every = " +
                  std::to_string(s.every) + " from pruning.schedule.start_epoch = " + std::to_string(s.start_epoch) +
                  " runs past the last epoch (" + run_length_text(c, train_epochs) + ")");
    if (s.rewind == RewindType::Epoch && s.rewind_epoch > s.start_epoch)
      throw Error("pruning.schedule.rewind_epoch = " + std::to_string(s.rewind_epoch) +
                  " must not be after pruning.schedule.start_epoch = " + std::to_string(s.start_epoch));
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
      out.push_back({"pruning.rewind." + params[i]->name, &snapshot_[i], params[i]->shape});
    return out;
  }

 private:
  bool has_snapshot() const { return !snapshot_.empty() && snapshot_[0].defined(); }

  void snapshot(Pruner& p) {
    snapshot_.clear();
    for (Parameter* prm : p.model().parameters()) snapshot_.push_back(dense_value(*prm).clone());
  }

  void rewind(Pruner& p) {
    const auto& params = p.model().parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      if (!snapshot_[i].defined()) continue;
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
