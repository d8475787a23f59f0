// pruning/methods/admm.cpp — ADMM pruning (Zhang et al. 2018): from start_epoch, every step adds
// ρ(W − Z + U) to the gradient, where Z = Π_S(W + U) is the projection on the target's sparse set
// (by magnitude, with the run's granularity and distribution); every `every` epochs Z is projected
// again and U += W − Z. At the start of end_epoch it prunes to the target by magnitude and stops.
// Tests: tests/pruning/test_pruner.cpp, tests/pruning/test_methods.cpp
#include <cmath>

#include "core/check.h"
#include "pruning/pruner.h"

namespace st::pruning::methods {

namespace {

class Admm final : public PruningMethod {
 public:
  std::vector<std::string> schedule_keys() const override { return {"start_epoch", "end_epoch", "every"}; }

  void default_schedule(const std::string& key, PruningConfig& c, int) const override {
    if (key == "end_epoch") fail_missing_schedule_key(c, "end_epoch", ": the hard-pruning epoch");
  }

  void check(const PruningConfig& c, int train_epochs) const override {
    if (c.criterion.type != CriterionType::Magnitude)
      throw Error("pruning.criterion.type = \"" + std::string(to_string(c.criterion.type)) +
                  "\": method \"admm\" projects by magnitude (use \"magnitude\")");
    check_end_after_start(c.schedule);
    check_within_run("end_epoch", c.schedule.end_epoch, c, train_epochs);
  }

  Action epoch_begin(Pruner& p, int epoch) override {
    const PruningConfig& c = p.config();
    const bool begin = epoch == c.schedule.start_epoch, end = epoch == c.schedule.end_epoch;
    if (!begin && !end) return {};
    const int64_t pass = p.step_of(epoch);
    return [this, &p, &c, begin, end, pass] {
      if (begin) {
        z_.clear();
        u_.clear();
        for (const auto& L : p.layers()) {
          z_.push_back(Tensor::zeros(L.weight->shape));
          u_.push_back(Tensor::zeros(L.weight->shape));
        }
        project(p);
      }
      if (end) {
        p.prune_to(c.target, pass);  // hard prune by magnitude, then fine-tune
        z_.clear();
        u_.clear();
      }
    };
  }

  Action step(Pruner& p, int epoch, int64_t) override {
    if (!active(p, epoch)) return {};
    return [this, &p] {
      const float rho = static_cast<float>(p.config().admm.rho);
      const auto& layers = p.layers();
      for (size_t l = 0; l < layers.size(); ++l) {
        Variable& w = layers[l].weight->var;
        if (!w.has_grad()) continue;
        const float* wp = w.value().f32();
        const float* z = z_[l].f32();
        const float* u = u_[l].f32();
        float* g = w.grad().f32();
        for (int64_t i = 0, n = layers[l].numel(); i < n; ++i) g[i] += rho * (wp[i] - z[i] + u[i]);
      }
    };
  }

  Action epoch_end(Pruner& p, int epoch) override {
    if (!active(p, epoch) || (epoch - p.config().schedule.start_epoch + 1) % p.config().schedule.every != 0)
      return {};
    return [this, &p] {
      project(p);
      const auto& layers = p.layers();
      for (size_t l = 0; l < layers.size(); ++l) {
        const float* w = layers[l].weight->var.value().f32();
        const float* z = z_[l].f32();
        float* u = u_[l].f32();
        for (int64_t i = 0, n = layers[l].numel(); i < n; ++i) u[i] += w[i] - z[i];
      }
    };
  }

  // Z and U, per prunable layer, interleaved.
  std::vector<StateTensor> state_tensors(Pruner& p) override {
    std::vector<StateTensor> out;
    const auto& layers = p.layers();
    if (z_.empty()) z_.resize(layers.size()), u_.resize(layers.size());
    for (size_t l = 0; l < layers.size(); ++l) {
      const Shape& s = layers[l].weight->shape;
      out.push_back({"pruning.admm_z." + layers[l].weight->name, &z_[l], s});
      out.push_back({"pruning.admm_u." + layers[l].weight->name, &u_[l], s});
    }
    return out;
  }

 private:
  // Between start_epoch and end_epoch, with Z and U in place (from start_epoch or a checkpoint).
  bool active(const Pruner& p, int epoch) const {
    const ScheduleConfig& s = p.config().schedule;
    return !z_.empty() && z_[0].defined() && epoch >= s.start_epoch && epoch < s.end_epoch;
  }

  // Z = Π_S(W + U).
  void project(Pruner& p) {
    const auto& layers = p.layers();
    std::vector<LayerScores> scores(layers.size());
    std::vector<std::vector<float>> v(layers.size());
    for (size_t l = 0; l < layers.size(); ++l) {
      const float* w = layers[l].weight->var.value().f32();
      const float* u = u_[l].f32();
      v[l].resize(layers[l].numel());
      scores[l].elem.resize(v[l].size());
      for (size_t i = 0; i < v[l].size(); ++i) {
        v[l][i] = w[i] + u[i];
        scores[l].elem[i] = std::abs(v[l][i]);
      }
    }
    const auto masks = p.select(scores, p.config().target, false);
    for (size_t l = 0; l < layers.size(); ++l) {
      float* z = z_[l].f32();
      for (size_t i = 0; i < v[l].size(); ++i) z[i] = masks[l].empty() || masks[l][i] ? v[l][i] : 0.f;
    }
  }

  std::vector<Tensor> z_, u_;  // per prunable layer
};

}  // namespace

std::unique_ptr<PruningMethod> make_admm() { return std::make_unique<Admm>(); }

}  // namespace st::pruning::methods
