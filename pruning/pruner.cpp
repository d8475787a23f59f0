#include "pruning/pruner.h"

#include <algorithm>
#include <climits>
#include <cmath>

#include "core/csr_weight.h"
#include "kernels/gemm.h"
#include "pruning/distribution.h"
#include "pruning/granularity.h"
#include "pruning/l1.h"
#include "pruning/select.h"
#include "pruning/sparse_pattern.h"

namespace st::pruning {

namespace {
bool structured(GranularityType g) { return g == GranularityType::Neuron || g == GranularityType::Filter; }
}  // namespace

Pruner::Pruner(PruningConfig config, models::Model& model, uint64_t seed)
    : config_(std::move(config)), model_(model), rng_(seed ^ 0x7f4a7c159e3779b9ULL),
      method_(make_method(config_.method)) {
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

void Pruner::prune_by(const CriterionConfig& criterion, double sparsity, int64_t pass) {
  install(select(compute_scores(criterion, model_, layers_, batches_, rng_, pass), sparsity, false));
}

void Pruner::prune_to(double sparsity, int64_t pass) { prune_by(config_.criterion, sparsity, pass); }

void Pruner::prune_at_random(double sparsity, int64_t pass) {
  CriterionConfig random = config_.criterion;
  random.type = CriterionType::Random;
  prune_by(random, sparsity, pass);
}

void Pruner::prune_below(double threshold, int64_t pass) {
  install(select(compute_scores(config_.criterion, model_, layers_, batches_, rng_, pass), threshold, true));
}

namespace {

// The drop half of SET and RigL: removes from `m` (p's mask) the round(fraction x active) active
// weights of smallest |w| and installs it (weights and optimizer state zeroed there). Returns how
// many it dropped, 0 when the layer has no active weight to drop or no inactive one to regrow into
// (then nothing changes).
int64_t drop_smallest(Parameter& p, std::vector<uint8_t>& m, double fraction, const OptimizerState* st) {
  const int64_t n = p.mask.numel();
  const float* w = p.var.value().f32();
  int64_t active = 0;
  for (int64_t i = 0; i < n; ++i) active += m[i] != 0;
  const int64_t k = std::llround(fraction * static_cast<double>(active));
  if (k <= 0 || active == n) return 0;
  std::vector<int64_t> dropped;
  dropped.reserve(static_cast<size_t>(k));
  select_k(n, k, /*largest=*/false, [&](int64_t i) { return w[i]; }, [&](int64_t i) { return m[i] != 0; },
           [&](int64_t i) { dropped.push_back(i); });
  for (int64_t i : dropped) m[i] = 0;
  set_mask(p, m, st);
  return k;
}

}  // namespace

void Pruner::set_update(double fraction) {
  for (size_t l = 0; l < layers_.size(); ++l) {
    Parameter& p = *layers_[l].weight;
    if (!eligible_[l] || !p.sparse()) continue;
    // A sparse layer changes its pattern in the sparse form (O(nnz)): the new CsrWeight keeps the
    // surviving values, and the optimizer carries their state; regrown entries start at 0, state 0.
    if (optimizer_) optimizer_->state();  // the state follows the current pattern before it changes
    PatternChange change = drop_and_regrow_random(p.csr->w, fraction, rng_);
    if (change.dropped == 0) continue;
    ST_ASSERT(p.csr->device == Device::cpu, "set_update: pruner hooks run on the host");
    p.csr = make_csr_weight(std::move(change.w), p.shape, Device::cpu);
    ++p.mask_version;
    if (optimizer_) optimizer_->carry(p, change.source);
  }
  const OptimizerState state = optimizer_state();
  const OptimizerState* st = state.empty() ? nullptr : &state;
  for (size_t l = 0; l < layers_.size(); ++l) {
    Parameter& p = *layers_[l].weight;
    if (!eligible_[l] || !p.mask.defined()) continue;  // dense and masked: the same update on the mask
    const int64_t n = p.mask.numel();
    std::vector<uint8_t> m(p.mask.u8(), p.mask.u8() + n);
    const int64_t k = drop_smallest(p, m, fraction, st);
    if (k == 0) continue;
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

bool Pruner::regrows_on_sparse() const {
  if (!sparse_regrowth_) return false;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Parameter& p = *layers_[l].weight;
    if (eligible_[l] && p.sparse() && (p.shape.size() != 2 || p.csr->device != Device::cpu)) return false;
  }
  return true;
}

void Pruner::capture_gradient_factors() {
  for (size_t l = 0; l < layers_.size(); ++l) {
    Parameter& p = *layers_[l].weight;
    if (!eligible_[l] || !p.sparse()) continue;
    p.csr->factors = {};
    p.csr->factors.capture = true;
  }
}

namespace {

// Rows per panel of a layer's dense gradient in RigL's sparse regrowth: at most 4 Mi floats (16 MB)
// and at least one row.
constexpr int64_t kRegrowPanelFloats = int64_t{1} << 22;

// RigL's update of one sparse Linear weight from the factors its backward captured: drop the
// smallest |w|, regrow where |dyᵀ·x| is largest (panels of rows, pruning/sparse_pattern.h). The new
// weight carries the kept values, the step's gradient (kept entries keep theirs, grown entries get
// the dense gradient there, as on a dense mask) and, through the optimizer, the kept state.
void rigl_update_sparse(Parameter& p, double fraction, Optimizer* optimizer, const Pruner::FactorExchange& exchange) {
  CsrWeight& cw = *p.csr;
  CsrWeight::GradientFactors f = std::move(cw.factors);
  cw.factors = {};
  if (!f.capture) return;  // not captured for this step (every rank alike)
  if (exchange) exchange(f, cw.cols, cw.rows);
  if (f.rows == 0) return;  // no backward ran since the capture: nothing to regrow by
  const int OUT = cw.rows, IN = cw.cols, B = static_cast<int>(f.rows);
  const int panel_rows = static_cast<int>(std::clamp<int64_t>(kRegrowPanelFloats / std::max(IN, 1), 1, std::max(OUT, 1)));
  auto gradient = [&](int r0, int r1, float* out) {  // rows [r0, r1) of dyᵀ·x
    kernels::sgemm(true, false, r1 - r0, IN, B, 1.0f, f.dy.data() + r0, OUT, f.x.data(), IN, 0.0f, out, IN);
  };
  if (optimizer) optimizer->state();  // the state follows the current pattern before it changes
  std::vector<float> grown;
  PatternChange change = drop_and_regrow_by_gradient(cw.w, fraction, panel_rows, gradient, &grown);
  if (change.dropped == 0) return;
  ST_ASSERT(cw.device == Device::cpu, "rigl_update: pruner hooks run on the host");
  Tensor grad;
  if (cw.values.has_grad()) {
    grad = Tensor({static_cast<int64_t>(change.source.size())});
    carry_over(change.source, cw.values.grad().f32(), grad.f32());
    size_t next = 0;
    for (size_t i = 0; i < change.source.size(); ++i)
      if (change.source[i] < 0) grad.f32()[i] = grown[next++];
  }
  p.csr = make_csr_weight(std::move(change.w), p.shape, Device::cpu);
  if (grad.defined()) p.csr->values.grad() = std::move(grad);
  ++p.mask_version;
  if (optimizer) optimizer->carry(p, change.source);
}

}  // namespace

void Pruner::rigl_update(double fraction) {
  for (size_t l = 0; l < layers_.size(); ++l) {
    Parameter& p = *layers_[l].weight;
    if (eligible_[l] && p.sparse()) rigl_update_sparse(p, fraction, optimizer_, exchange_);
  }
  const OptimizerState state = optimizer_state();
  const OptimizerState* st = state.empty() ? nullptr : &state;
  for (size_t l = 0; l < layers_.size(); ++l) {
    Parameter& p = *layers_[l].weight;
    if (!eligible_[l] || !p.mask.defined() || !p.var.has_grad()) continue;
    const int64_t n = p.mask.numel();
    const float* g = p.var.grad().f32();
    std::vector<uint8_t> m(p.mask.u8(), p.mask.u8() + n);
    const int64_t k = drop_smallest(p, m, fraction, st);
    if (k == 0) continue;
    std::vector<int64_t> grow;  // the k largest |g| where nothing is kept now
    grow.reserve(static_cast<size_t>(k));
    select_k(n, k, /*largest=*/true, [&](int64_t i) { return g[i]; }, [&](int64_t i) { return m[i] == 0; },
             [&](int64_t i) { grow.push_back(i); });
    for (int64_t i : grow) m[i] = 1;
    set_mask(p, m, st);  // regrow at weight 0, state 0
  }
}

bool starts_sparse(const PruningConfig& c) {
  // SET and RigL always draw their first masks at random; static by its criterion (random by default).
  const bool random_start = c.method != Method::Static || c.criterion.type == CriterionType::Random;
  return make_method(c.method)->traits().sparse_from_start && random_start &&
         c.granularity.type == GranularityType::Element && c.distribution.type != DistributionType::Global &&
         !c.has_threshold;
}

namespace {

// The dense scheme's distribution (models::initialize: fan-in = the layer's columns) at the
// pattern's entries, drawn in CSR order; the bias (may be null) as that scheme initializes it.
void init_as_dense(kernels::CsrMatrix& w, const PrunableLayer& L, models::Init init, Rng& rng, float* bias) {
  for (float& v : w.values) v = models::init_draw(init, L.cols, L.rows * L.area, rng);
  if (!bias || init != models::Init::pytorch) return;
  const float bound = 1.f / std::sqrt(static_cast<float>(L.cols));
  for (int64_t r = 0; r < L.rows; ++r) bias[r] = rng.uniform(-bound, bound);
}

}  // namespace

void Pruner::start_sparse(models::Init init, Rng& init_rng) {
  ST_ASSERT(starts_sparse(config_), "start_sparse: the config does not start sparse");
  const auto t = layer_sparsities(config_.distribution.type, layers_, eligible_, config_.target,
                                  config_.distribution.erk_power);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const PrunableLayer& L = layers_[l];
    Parameter& w = *L.weight;
    if (!eligible_[l] || t[l] <= 0) continue;  // dense: models::initialize
    ST_ASSERT(w.unset(), "start_sparse: ", w.name, " already has a weight");
    ST_CHECK(L.rows <= INT32_MAX && L.cols <= INT32_MAX,
             "layer ", L.name, " (", L.rows, " x ", L.cols, ") is too large for 32-bit CSR indices");
    const int64_t n = L.numel();
    const int64_t nnz = n - std::llround(t[l] * static_cast<double>(n));  // as select_lowest keeps
    ST_CHECK(nnz < INT32_MAX, "layer ", L.name, ": ", nnz, " nonzeros exceed 32-bit CSR offsets (at most ",
             INT32_MAX, "); raise pruning.target");
    kernels::CsrMatrix m = sample_pattern(static_cast<int>(L.rows), static_cast<int>(L.cols), nnz, rng_);
    Tensor bias = L.bias ? Tensor::zeros({L.rows}) : Tensor();
    float* b = bias.defined() ? bias.f32() : nullptr;
    if (config_.fan_in_init)
      init_by_fan_in(m, init, init_rng, b);
    else
      init_as_dense(m, L, init, init_rng, b);
    w.csr = make_csr_weight(std::move(m), w.shape, Device::cpu);
    ++w.mask_version;
    if (L.bias) L.bias->var.value() = bias;
  }
  started_sparse_ = true;
}

Action Pruner::plan_start() {
  if (started_sparse_) return {};  // the patterns exist: start_sparse drew them
  return method_->start(*this);
}

Action Pruner::plan_epoch_begin(int epoch) { return method_->epoch_begin(*this, epoch); }

// The L1 term first, then the method's own step.
Action Pruner::plan_step(int epoch, int64_t step) {
  Action l1 = l1_term(config_.l1, layers_, epoch);
  Action method = method_->step(*this, epoch, step);
  if (!l1) return method;
  if (!method) return l1;
  const bool sparse = !l1.needs_dense() && !method.needs_dense();
  return Action([l1 = std::move(l1), method = std::move(method)] {
    l1();
    method();
  }, sparse);
}

Action Pruner::plan_epoch_end(int epoch) { return method_->epoch_end(*this, epoch); }

}  // namespace st::pruning
