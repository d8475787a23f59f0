#include "pruning/pruner.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/csr_weight.h"
#include "pruning/distribution.h"
#include "pruning/granularity.h"
#include "pruning/schedule.h"

namespace st::pruning {

namespace {
bool structured(GranularityType g) { return g == GranularityType::Neuron || g == GranularityType::Filter; }
}  // namespace

Pruner::Pruner(PruningConfig config, models::Model& model, int train_epochs, uint64_t seed)
    : config_(std::move(config)), model_(model), train_epochs_(train_epochs),
      rng_(seed ^ 0x7f4a7c159e3779b9ULL) {
  layers_ = prunable_layers(model_);
  ST_CHECK(!layers_.empty(), "pruning: the model has no prunable (linear or conv2d) layer");
  eligible_.assign(layers_.size(), true);
  std::string names;
  for (const auto& L : layers_) names += (names.empty() ? "" : ", ") + L.name;
  const auto& keep = config_.distribution.keep_dense;
  for (size_t i = 0; i < keep.size(); ++i) {
    const std::string& k = keep[i];
    int found = -1;
    if (k == "first") found = 0;
    else if (k == "last") found = static_cast<int>(layers_.size()) - 1;
    for (size_t l = 0; l < layers_.size() && found < 0; ++l)
      if (layers_[l].name == k || layers_[l].weight->name == k) found = static_cast<int>(l);
    ST_CHECK(found >= 0, "pruning.distribution.keep_dense[", i, "] = \"", k,
             "\" is not a prunable layer of this model (its layers: ", names, ", or \"first\"/\"last\")");
    eligible_[found] = false;
  }
  const auto& g = config_.granularity;
  // Pruning the output layer's units would remove classes.
  if (structured(g.type)) eligible_.back() = false;
  for (size_t l = 0; l < layers_.size(); ++l) {
    if (!eligible_[l]) continue;
    const PrunableLayer& L = layers_[l];
    if (g.type == GranularityType::Neuron && L.conv)
      throw Error("pruning.granularity.type = \"neuron\" does not fit layer " + L.name +
                  " (conv2d): use \"filter\" (output units of conv2d and linear layers alike) or add it to "
                  "pruning.distribution.keep_dense");
    if (g.type == GranularityType::NM && L.cols % g.m != 0)
      throw Error("pruning.granularity.m = " + std::to_string(g.m) + " does not divide the fan-in of layer " +
                  L.name + " (" + std::to_string(L.cols) + " inputs per output); add it to "
                  "pruning.distribution.keep_dense or choose another m");
  }
  ST_CHECK(std::any_of(eligible_.begin(), eligible_.end(), [](bool b) { return b; }),
           "pruning.distribution.keep_dense: every prunable layer is kept dense",
           structured(g.type) ? " (the output layer is never pruned by neurons or filters)" : "");
}

void Pruner::set_optimizer(Optimizer* optimizer) { optimizer_ = optimizer; }

OptimizerState Pruner::optimizer_state() const {
  return optimizer_ ? optimizer_state_by_param(*optimizer_) : OptimizerState{};
}

double Pruner::sparsity() const {
  int64_t n = 0, kept = 0;
  for (const auto& L : layers_) {
    n += L.numel();
    kept += count_kept(*L.weight);
  }
  return n ? 1.0 - static_cast<double>(kept) / n : 0.0;
}

std::vector<std::vector<uint8_t>> Pruner::select(const std::vector<LayerScores>& scores, double target,
                                                 bool threshold) const {
  const auto& g = config_.granularity;
  const size_t L = layers_.size();
  std::vector<std::vector<uint8_t>> masks(L);
  if (g.type == GranularityType::NM) {
    for (size_t l = 0; l < L; ++l)
      if (eligible_[l]) masks[l] = nm_mask(scores[l].elem.data(), layers_[l].rows, layers_[l].cols, g.n, g.m);
    return masks;
  }
  std::vector<Groups> groups;
  std::vector<std::vector<double>> gs(L);
  for (size_t l = 0; l < L; ++l) {
    groups.emplace_back(g, layers_[l]);
    gs[l] = groups[l].reduce(scores[l].elem.data(), layers_[l].weight->mask_data(), scores[l].reduction);
  }
  std::vector<std::vector<uint8_t>> keep(L);
  if (threshold) {
    for (size_t l = 0; l < L; ++l) keep[l] = eligible_[l] ? select_threshold(gs[l], target) : select_lowest(gs[l], 0);
  } else if (config_.distribution.type == DistributionType::Global) {
    keep = select_global(gs, eligible_, target);
  } else {
    const auto t = layer_sparsities(config_.distribution.type, layers_, eligible_, target, config_.distribution.erk_power);
    for (size_t l = 0; l < L; ++l) keep[l] = select_lowest(gs[l], t[l]);
  }
  for (size_t l = 0; l < L; ++l)
    if (eligible_[l] || layers_[l].weight->mask.defined()) masks[l] = groups[l].expand(keep[l]);
  return masks;
}

void Pruner::install(const std::vector<std::vector<uint8_t>>& masks) {
  const OptimizerState state = optimizer_state();
  const OptimizerState* st = state.empty() ? nullptr : &state;
  for (size_t l = 0; l < layers_.size(); ++l) {
    if (masks[l].empty()) continue;
    const PrunableLayer& L = layers_[l];
    set_mask(*L.weight, masks[l], st);
    if (structured(config_.granularity.type) && L.bias) {
      // A removed unit must output exactly 0, so its bias goes with it (and compaction stays exact).
      std::vector<uint8_t> bm(L.rows, 0);
      for (int64_t r = 0; r < L.rows; ++r)
        for (int64_t c = 0; c < L.cols && !bm[r]; ++c) bm[r] = masks[l][r * L.cols + c];
      set_mask(*L.bias, bm, st);
    }
  }
}

void Pruner::prune_to(double sparsity, int64_t pass) {
  install(select(compute_scores(config_.criterion, model_, layers_, batches_, rng_, pass), sparsity, false));
}

void Pruner::prune_below(double threshold, int64_t pass) {
  install(select(compute_scores(config_.criterion, model_, layers_, batches_, rng_, pass), threshold, true));
}

void Pruner::set_update(double fraction) {
  const OptimizerState state = optimizer_state();
  const OptimizerState* st = state.empty() ? nullptr : &state;
  for (size_t l = 0; l < layers_.size(); ++l) {
    Parameter& p = *layers_[l].weight;
    if (!eligible_[l] || !p.mask.defined()) continue;
    const int64_t n = p.mask.numel();
    const float* w = p.var.value().f32();
    std::vector<uint8_t> m(p.mask.u8(), p.mask.u8() + n);
    std::vector<std::pair<double, int64_t>> active;
    for (int64_t i = 0; i < n; ++i)
      if (m[i]) active.emplace_back(std::abs(w[i]), i);
    const int64_t k = std::llround(fraction * active.size());
    if (k <= 0 || static_cast<int64_t>(active.size()) == n) continue;
    std::nth_element(active.begin(), active.begin() + (k - 1), active.end());
    for (int64_t i = 0; i < k; ++i) m[active[i].second] = 0;
    set_mask(p, m, st);  // drop
    std::vector<int64_t> inactive;
    for (int64_t i = 0; i < n; ++i)
      if (!m[i]) inactive.push_back(i);
    for (int64_t i = 0; i < k; ++i) {  // partial Fisher–Yates: k distinct positions
      const int64_t j = i + static_cast<int64_t>(rng_.below(inactive.size() - i));
      std::swap(inactive[i], inactive[j]);
      m[inactive[i]] = 1;
    }
    set_mask(p, m, st);  // regrow at weight 0, state 0
  }
}

void Pruner::rigl_update(double fraction) {
  const OptimizerState state = optimizer_state();
  const OptimizerState* st = state.empty() ? nullptr : &state;
  for (size_t l = 0; l < layers_.size(); ++l) {
    Parameter& p = *layers_[l].weight;
    if (!eligible_[l] || !p.mask.defined() || !p.var.has_grad()) continue;
    const int64_t n = p.mask.numel();
    const float* w = p.var.value().f32();
    const float* g = p.var.grad().f32();
    std::vector<uint8_t> m(p.mask.u8(), p.mask.u8() + n);
    std::vector<std::pair<double, int64_t>> active, grow;
    for (int64_t i = 0; i < n; ++i)
      if (m[i]) active.emplace_back(std::abs(w[i]), i);
    const int64_t k = std::llround(fraction * active.size());
    if (k <= 0 || static_cast<int64_t>(active.size()) == n) continue;
    std::nth_element(active.begin(), active.begin() + (k - 1), active.end());
    for (int64_t i = 0; i < k; ++i) m[active[i].second] = 0;
    set_mask(p, m, st);  // drop
    for (int64_t i = 0; i < n; ++i)
      if (!m[i]) grow.emplace_back(-std::abs(g[i]), i);  // largest |g| first
    std::nth_element(grow.begin(), grow.begin() + (k - 1), grow.end());
    for (int64_t i = 0; i < k; ++i) m[grow[i].second] = 1;
    set_mask(p, m, st);  // regrow at weight 0, state 0
  }
}

void Pruner::snapshot() {
  rewind_.clear();
  for (Parameter* p : model_.parameters()) rewind_.push_back(p->var.value().clone());
}

void Pruner::rewind() {
  const auto& params = model_.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    if (!rewind_[i].defined()) continue;
    sync_dense_weight(*params[i]);  // clears the stale flag: the rewound weights must not be overwritten
    params[i]->var.value().copy_from(rewind_[i]);
    apply_mask(*params[i]);
  }
  for (auto& [name, slots] : optimizer_state())
    for (Tensor* t : slots)
      if (t->defined()) t->zero_();
}

// Z = Π_S(W + U): the sparse set of the schedule's target, by magnitude, with the run's granularity
// and distribution.
void Pruner::admm_project() {
  std::vector<LayerScores> scores(layers_.size());
  std::vector<std::vector<float>> v(layers_.size());
  for (size_t l = 0; l < layers_.size(); ++l) {
    const float* w = layers_[l].weight->var.value().f32();
    const float* u = admm_u_[l].f32();
    v[l].resize(layers_[l].numel());
    scores[l].elem.resize(v[l].size());
    for (size_t i = 0; i < v[l].size(); ++i) {
      v[l][i] = w[i] + u[i];
      scores[l].elem[i] = std::abs(v[l][i]);
    }
  }
  const auto masks = select(scores, config_.target, false);
  for (size_t l = 0; l < layers_.size(); ++l) {
    float* z = admm_z_[l].f32();
    for (size_t i = 0; i < v[l].size(); ++i) z[i] = masks[l].empty() || masks[l][i] ? v[l][i] : 0.f;
  }
}

void Pruner::on_start() {
  const auto& s = config_.schedule;
  switch (config_.method) {
    case Method::Static: prune_to(config_.target, 0); break;
    case Method::Set:
    case Method::Rigl: {
      const CriterionConfig saved = config_.criterion;
      config_.criterion.type = CriterionType::Random;
      prune_to(config_.target, 0);
      config_.criterion = saved;
      break;
    }
    case Method::Iterative:
      if (s.rewind == RewindType::Init) snapshot();
      break;
    default: break;
  }
}

void Pruner::on_epoch_begin(int epoch) {
  const auto& s = config_.schedule;
  const int64_t pass = step_of(epoch);
  switch (config_.method) {
    case Method::OneShot:
      if (epoch == s.epoch) {
        if (config_.has_threshold) prune_below(config_.threshold, pass);
        else prune_to(config_.target, pass);
      }
      break;
    case Method::Iterative: {
      if (s.rewind == RewindType::Epoch && epoch == s.rewind_epoch && !has_snapshot()) snapshot();
      const int d = epoch - s.start_epoch;
      if (d >= 0 && d % s.every == 0 && d / s.every < s.rounds) {
        const int round = d / s.every + 1;
        if (config_.has_threshold) prune_below(config_.threshold, pass);
        else prune_to(iterative_sparsity(round, s.rounds, config_.target), pass);
        if (s.rewind != RewindType::None && has_snapshot()) rewind();
      }
      break;
    }
    case Method::Gradual:
      if (s.every_steps == 0 && epoch >= s.start_epoch && epoch <= s.end_epoch)
        prune_to(gradual_sparsity(epoch, s.start_epoch, s.end_epoch, s.initial_sparsity, config_.target), pass);
      else if (s.every_steps > 0 && epoch == s.end_epoch)
        prune_to(config_.target, pass);
      break;
    case Method::Admm:
      if (epoch == s.start_epoch) {
        admm_z_.clear();
        admm_u_.clear();
        for (const auto& L : layers_) {
          admm_z_.push_back(Tensor::zeros(L.weight->var.value().shape()));
          admm_u_.push_back(Tensor::zeros(L.weight->var.value().shape()));
        }
        admm_project();
      }
      if (epoch == s.end_epoch) {
        prune_to(config_.target, pass);  // hard prune by magnitude, then fine-tune
        admm_z_.clear();
        admm_u_.clear();
      }
      break;
    default: break;
  }
}

void Pruner::on_step(int epoch, int64_t step) {
  const auto& s = config_.schedule;
  if (config_.l1.enabled && epoch >= config_.l1.start_epoch && epoch < config_.l1.end_epoch) {
    const float lambda = static_cast<float>(config_.l1.lambda);
    for (const auto& L : layers_) {
      Variable& w = L.weight->var;
      if (!w.has_grad()) continue;
      const float* wp = w.value().f32();
      float* g = w.grad().f32();
      for (int64_t i = 0, n = L.numel(); i < n; ++i) g[i] += lambda * static_cast<float>((wp[i] > 0) - (wp[i] < 0));
    }
  }
  switch (config_.method) {
    case Method::Admm:
      if (admm_active() && epoch >= s.start_epoch && epoch < s.end_epoch) {
        const float rho = static_cast<float>(config_.admm.rho);
        for (size_t l = 0; l < layers_.size(); ++l) {
          Variable& w = layers_[l].weight->var;
          if (!w.has_grad()) continue;
          const float* wp = w.value().f32();
          const float* z = admm_z_[l].f32();
          const float* u = admm_u_[l].f32();
          float* g = w.grad().f32();
          for (int64_t i = 0, n = layers_[l].numel(); i < n; ++i) g[i] += rho * (wp[i] - z[i] + u[i]);
        }
      }
      break;
    case Method::Gradual:
      if (s.every_steps > 0) {
        const int64_t t0 = step_of(s.start_epoch), t_end = step_of(s.end_epoch);
        if (step >= t0 && step < t_end && (step - t0) % s.every_steps == 0)
          prune_to(gradual_sparsity(static_cast<double>(step), static_cast<double>(t0), static_cast<double>(t_end),
                                    s.initial_sparsity, config_.target),
                   step);
      }
      break;
    case Method::Rigl: {
      const int64_t t_end = step_of(s.end_epoch);
      if (step > 0 && step % s.every_steps == 0 && step < t_end)
        rigl_update(cosine_drop(static_cast<double>(step), static_cast<double>(t_end), s.drop_fraction));
      break;
    }
    default: break;
  }
}

bool Pruner::acts_on_step(int epoch, int64_t step) const {
  const auto& s = config_.schedule;
  if (config_.l1.enabled && epoch >= config_.l1.start_epoch && epoch < config_.l1.end_epoch) return true;
  switch (config_.method) {
    case Method::Admm: return admm_active() && epoch >= s.start_epoch && epoch < s.end_epoch;
    case Method::Gradual:
      if (s.every_steps > 0) {
        const int64_t t0 = step_of(s.start_epoch), t_end = step_of(s.end_epoch);
        return step >= t0 && step < t_end && (step - t0) % s.every_steps == 0;
      }
      return false;
    case Method::Rigl: {
      const int64_t t_end = step_of(s.end_epoch);
      return step > 0 && step % s.every_steps == 0 && step < t_end;
    }
    default: return false;
  }
}

bool Pruner::acts_on_epoch_begin(int epoch) const {
  const auto& s = config_.schedule;
  switch (config_.method) {
    case Method::OneShot: return epoch == s.epoch;
    case Method::Iterative: {
      if (s.rewind == RewindType::Epoch && epoch == s.rewind_epoch && !has_snapshot()) return true;
      const int d = epoch - s.start_epoch;
      return d >= 0 && d % s.every == 0 && d / s.every < s.rounds;
    }
    case Method::Gradual:
      return (s.every_steps == 0 && epoch >= s.start_epoch && epoch <= s.end_epoch) ||
             (s.every_steps > 0 && epoch == s.end_epoch);
    case Method::Admm: return epoch == s.start_epoch || epoch == s.end_epoch;
    default: return false;
  }
}

bool Pruner::acts_on_epoch_end(int epoch) const {
  const auto& s = config_.schedule;
  if (config_.method == Method::Set) return epoch + 1 <= s.end_epoch && (epoch + 1) % s.every == 0;
  if (config_.method == Method::Admm)
    return admm_active() && epoch >= s.start_epoch && epoch < s.end_epoch &&
           (epoch - s.start_epoch + 1) % s.every == 0;
  return false;
}

void Pruner::on_epoch_end(int epoch) {
  const auto& s = config_.schedule;
  if (config_.method == Method::Set && epoch + 1 <= s.end_epoch && (epoch + 1) % s.every == 0)
    set_update(s.drop_fraction);
  if (config_.method == Method::Admm && admm_active() && epoch >= s.start_epoch && epoch < s.end_epoch &&
      (epoch - s.start_epoch + 1) % s.every == 0) {
    admm_project();
    for (size_t l = 0; l < layers_.size(); ++l) {
      const float* w = layers_[l].weight->var.value().f32();
      const float* z = admm_z_[l].f32();
      float* u = admm_u_[l].f32();
      for (int64_t i = 0, n = layers_[l].numel(); i < n; ++i) u[i] += w[i] - z[i];
    }
  }
}

std::vector<Pruner::StateTensor> Pruner::state_tensors() {
  std::vector<StateTensor> out;
  const auto& params = model_.parameters();
  if (config_.method == Method::Iterative && config_.schedule.rewind != RewindType::None) {
    if (rewind_.empty()) rewind_.resize(params.size());
    for (size_t i = 0; i < params.size(); ++i)
      out.push_back({"pruning.rewind." + params[i]->name, &rewind_[i], params[i]->var.value().shape()});
  }
  if (config_.method == Method::Admm) {
    if (admm_z_.empty()) admm_z_.resize(layers_.size()), admm_u_.resize(layers_.size());
    for (size_t l = 0; l < layers_.size(); ++l) {
      const Shape& s = layers_[l].weight->var.value().shape();
      out.push_back({"pruning.admm_z." + layers_[l].weight->name, &admm_z_[l], s});
      out.push_back({"pruning.admm_u." + layers_[l].weight->name, &admm_u_[l], s});
    }
  }
  return out;
}

}  // namespace st::pruning
