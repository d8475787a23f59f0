// Sparse from the first step (pruning/pruner.h starts_sparse, Pruner::start_sparse) and SET's update
// on the sparse form: no dense matrix of a pruned layer is allocated, the nonzero counts are the ones
// pruning from dense keeps, values follow the fan-in rule, and SET keeps layers sparse with their
// survivors' values and optimizer state.
#include <doctest/doctest.h>

#include <cmath>

#include "core/csr_weight.h"
#include "core/optim.h"
#include "experiment/pruning_keys.h"
#include "models/builder.h"
#include "pruning/pruner.h"
#include "gradcheck.h"

using namespace st;
using namespace st::pruning;
using st::experiment::parse_pruning_config;
using nlohmann::json;

namespace {

PruningConfig cfg(const char* text, int epochs = 10) { return parse_pruning_config(json::parse(text), epochs); }

models::ModelSpec mlp_spec() {
  models::ModelSpec s;
  s.arch = models::Arch::mlp;
  s.hidden = {37, 23};
  s.init = models::Init::pytorch;
  return s;
}

}  // namespace

TEST_CASE("sparse start: which configs start sparse") {
  CHECK(starts_sparse(cfg(R"({"method": "static", "target": 0.9})")));
  CHECK(starts_sparse(cfg(R"({"method": "set", "target": 0.9, "distribution": {"type": "er"}})")));
  CHECK(starts_sparse(cfg(R"({"method": "rigl", "target": 0.9, "distribution": {"type": "layerwise"}})")));
  CHECK_FALSE(starts_sparse(cfg(R"({"method": "static", "target": 0.9, "criterion": {"type": "magnitude"}})")));
  CHECK_FALSE(starts_sparse(cfg(R"({"method": "set", "target": 0.9, "distribution": {"type": "global"}})")));
  CHECK_FALSE(starts_sparse(cfg(R"({"method": "gradual", "target": 0.9, "schedule": {"end_epoch": 2}})")));
  CHECK_FALSE(starts_sparse(cfg(R"({"method": "one_shot", "target": 0.9})")));
}

TEST_CASE("sparse start: the pruned layers are sparse from the start, with the counts pruning from dense keeps") {
  for (const char* text : {R"({"method": "static", "target": 0.8})",
                           R"({"method": "set", "target": 0.9, "distribution": {"type": "er"}})",
                           R"({"method": "static", "target": 0.7, "distribution": {"type": "uniform"}})"}) {
    CAPTURE(text);
    const PruningConfig c = cfg(text);
    auto sparse = models::build_model(mlp_spec(), {1, 6, 5}, 4, 3, /*allocate=*/false);
    Pruner ps(c, *sparse, 3);
    Rng init(3);
    ps.start_sparse(models::Init::pytorch, init);
    models::initialize(*sparse, models::Init::pytorch, init);
    CHECK_FALSE(static_cast<bool>(ps.plan_start()));  // nothing left to do at start
    auto dense = models::build_model(mlp_spec(), {1, 6, 5}, 4, 3);
    Pruner pd(c, *dense, 3);
    pd.on_start();
    const auto ls = prunable_layers(*sparse), ld = prunable_layers(*dense);
    for (size_t l = 0; l < ls.size(); ++l) {
      CAPTURE(ls[l].name);
      const Parameter& w = *ls[l].weight;
      CHECK_FALSE(w.unset());
      CHECK(w.kept() == count_kept(*ld[l].weight));
      if (!w.sparse()) {  // a layer this distribution keeps dense: initialized densely, no mask
        CHECK_FALSE(w.mask.defined());
        continue;
      }
      CHECK_FALSE(w.var.value().defined());  // no dense matrix, ever
      CHECK_FALSE(w.mask.defined());
      // pytorch init by the row's own fan-in: |w| <= 1/sqrt(nnz in the row); the bias likewise.
      const kernels::CsrMatrix& m = w.csr->w;
      const Tensor& b = ls[l].bias->var.value();
      for (int r = 0; r < m.rows; ++r) {
        const int n = m.row_ptr[r + 1] - m.row_ptr[r];
        const float bound = 1.f / std::sqrt(static_cast<float>(std::max(n, 1)));
        for (int32_t k = m.row_ptr[r]; k < m.row_ptr[r + 1]; ++k) CHECK(std::abs(m.values[k]) <= bound);
        CHECK(std::abs(b.f32()[r]) <= bound);
      }
    }
  }
}

TEST_CASE("sparse start: same seed, same model; fan_in_init false draws by the dense fan-in") {
  auto build = [](const char* text) {
    auto m = models::build_model(mlp_spec(), {1, 6, 5}, 4, 9, /*allocate=*/false);
    Pruner p(cfg(text), *m, 9);
    Rng init(9);
    p.start_sparse(models::Init::pytorch, init);
    models::initialize(*m, models::Init::pytorch, init);
    std::vector<std::vector<float>> out;
    for (Parameter* q : m->parameters()) out.push_back(dense_value(*q).to_vector());
    return out;
  };
  const auto a = build(R"({"method": "static", "target": 0.9})"), b = build(R"({"method": "static", "target": 0.9})");
  CHECK(a == b);
  const auto c = build(R"({"method": "static", "target": 0.9, "fan_in_init": false})");
  // fc1 has 30 inputs: the dense bound is 1/sqrt(30); at 10% density the fan-in rule's is larger.
  float max_a = 0, max_c = 0;
  for (float v : a[0]) max_a = std::max(max_a, std::abs(v));
  for (float v : c[0]) max_c = std::max(max_c, std::abs(v));
  CHECK(max_c <= 1.f / std::sqrt(30.f));
  CHECK(max_a > 1.f / std::sqrt(30.f));
}

TEST_CASE("SET on sparse layers: the pattern changes in CSR, survivors keep value and state") {
  const PruningConfig c = cfg(R"({"method": "set", "target": 0.8, "distribution": {"type": "layerwise"}})");
  auto m = models::build_model(mlp_spec(), {1, 6, 5}, 4, 5, /*allocate=*/false);
  Pruner p(c, *m, 5);
  Rng init(5);
  p.start_sparse(models::Init::pytorch, init);
  models::initialize(*m, models::Init::pytorch, init);
  OptimizerOptions o;
  o.type = OptimizerType::adam;
  Optimizer opt(m->parameters(), o);
  p.set_optimizer(&opt);
  // A step so that the state is nonzero.
  for (Parameter* q : m->parameters()) {
    if (q->sparse()) q->csr->values.grad() = test::random_tensor({q->csr->nnz()}, 7);
    else q->var.grad() = test::random_tensor(q->shape, 8);
  }
  opt.step(0.01f);
  Parameter& w = *prunable_layers(*m)[0].weight;
  REQUIRE(w.sparse());
  const auto old = w.csr;
  const std::vector<int64_t> old_pos = test::pattern_positions(old->w);
  std::map<int64_t, std::pair<float, float>> before;  // position -> (value, exp_avg)
  for (auto& [name, t] : opt.state())
    if (name == w.name + ".exp_avg")
      for (size_t k = 0; k < old_pos.size(); ++k) before[old_pos[k]] = {old->w.values[k], t->f32()[k]};
  const int64_t version = w.mask_version;
  p.set_update(0.3);
  REQUIRE(w.sparse());
  CHECK(w.csr != old);
  CHECK(w.mask_version == version + 1);
  CHECK(w.csr->nnz() == old->nnz());
  const std::vector<int64_t> pos = test::pattern_positions(w.csr->w);
  int64_t kept = 0, grown = 0;
  for (auto& [name, t] : opt.state()) {
    if (name != w.name + ".exp_avg") continue;
    REQUIRE(t->numel() == w.csr->nnz());
    for (size_t k = 0; k < pos.size(); ++k) {
      auto it = before.find(pos[k]);
      if (it == before.end()) {
        ++grown;
        CHECK(w.csr->w.values[k] == 0.f);
        CHECK(t->f32()[k] == 0.f);
      } else {
        ++kept;
        CHECK(w.csr->w.values[k] == it->second.first);
        CHECK(t->f32()[k] == it->second.second);
      }
    }
  }
  CHECK(grown == std::llround(0.3 * old->nnz()));
  CHECK(kept + grown == w.csr->nnz());
}
