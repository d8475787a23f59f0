// The Pruner end to end on hand-made models: distributions, granularities, layer checks, schedules,
// SET/RigL counts, L1/ADMM terms, rewinding, and invariant 1 with SGD momentum and Adam.
#include <doctest/doctest.h>

#include <numeric>

#include "core/check.h"
#include "core/csr_weight.h"
#include "core/optim.h"
#include "experiment/pruning_keys.h"
#include "pruning/pruner.h"
#include "pruning/report.h"
#include "pruning_test_util.h"

using namespace st;
using namespace st::pruning;
using st::experiment::parse_pruning_config;
using namespace st::test;
using nlohmann::json;

namespace {
PruningConfig cfg(const char* text, int epochs = 10) { return parse_pruning_config(json::parse(text), epochs); }

// fc1: 2 → 4 with weights 1..8 (|w| ranks by index), fc2: 4 → 2 with weights 10..80 step 10.
std::unique_ptr<models::Model> ranked() {
  auto m = mlp(2, 4, 2);
  set_values(*m->parameters()[0], {1, 2, 3, 4, 5, 6, 7, 8});
  set_values(*m->parameters()[1], {0.1f, 0.2f, 0.3f, 0.4f});
  set_values(*m->parameters()[2], {10, 20, 30, 40, 50, 60, 70, 80});
  return m;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no error>";
}

int64_t kept(const Parameter& p) { return count_kept(p); }

// A batch of 3 samples for an mlp(2, 4, 2), and a training step.
void train_step(models::Model& m, Optimizer& opt, Pruner* pr, int epoch, int64_t step) {
  const int64_t in = m.input_shape()[0];
  std::vector<float> xv(3 * in);
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<float>((i * 7) % 5) - 2.f + 0.1f * step;
  Tensor x = Tensor::from_vector({3, in}, xv);
  Tensor y = Tensor::from_vector({3}, std::vector<int32_t>{0, 1, 1});
  opt.zero_grad();
  softmax_cross_entropy(m.forward(Variable(x)), y).backward();
  if (pr) pr->on_step(epoch, step);
  opt.step(0.1f);
}
}  // namespace

TEST_CASE("pruner: one-shot magnitude, layerwise and global, element granularity") {
  auto m = ranked();
  Pruner p(cfg(R"({"method": "one_shot", "target": 0.5})"), *m, 1);
  p.on_epoch_begin(0);
  CHECK(mask_of(*m->parameters()[0]) == std::vector<uint8_t>{0, 0, 0, 0, 1, 1, 1, 1});
  CHECK(mask_of(*m->parameters()[2]) == std::vector<uint8_t>{0, 0, 0, 0, 1, 1, 1, 1});
  CHECK(m->parameters()[0]->var.value().f32()[0] == 0.f);
  CHECK(m->parameters()[0]->var.value().f32()[4] == 5.f);
  CHECK_FALSE(m->parameters()[1]->mask.defined());  // biases are not pruned
  CHECK(p.sparsity() == 0.5);

  auto g = ranked();
  Pruner pg(cfg(R"({"method": "one_shot", "target": 0.5, "distribution": {"type": "global"}})"), *g, 1);
  pg.on_epoch_begin(0);
  CHECK(kept(*g->parameters()[0]) == 0);  // fc1's weights are all smaller than fc2's
  CHECK(kept(*g->parameters()[2]) == 8);

  auto t = ranked();
  Pruner pt(cfg(R"({"method": "one_shot", "threshold": 6.5})"), *t, 1);
  pt.on_epoch_begin(0);
  CHECK(mask_of(*t->parameters()[0]) == std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 1, 1});
  CHECK(kept(*t->parameters()[2]) == 8);

  auto u = ranked();  // uniform keeps first and last dense: here nothing is left to prune
  CHECK(error_of([&] { Pruner(cfg(R"({"method": "one_shot", "target": 0.5, "distribution": {"type": "uniform"}})"), *u, 1); })
            .find("pruning.distribution.keep_dense") != std::string::npos);
  auto k = ranked();
  Pruner pk(cfg(R"({"method": "one_shot", "target": 0.5, "distribution": {"keep_dense": ["fc1"]}})"), *k, 1);
  pk.on_epoch_begin(0);
  CHECK_FALSE(k->parameters()[0]->mask.defined());
  CHECK(kept(*k->parameters()[2]) == 4);
  // Nothing happens at other epochs.
  auto o = ranked();
  Pruner po(cfg(R"({"method": "one_shot", "target": 0.5, "schedule": {"epoch": 2}})"), *o, 1);
  po.on_epoch_begin(1);
  CHECK(po.sparsity() == 0);
  po.on_epoch_begin(2);
  CHECK(po.sparsity() == 0.5);
}

TEST_CASE("pruner: structured neuron pruning takes the bias along; blocks; N:M; channels") {
  auto m = ranked();
  Pruner p(cfg(R"({"method": "one_shot", "target": 0.5, "granularity": {"type": "neuron"}})"), *m, 1);
  CHECK_FALSE(p.eligible()[1]);  // the output layer keeps its classes
  p.on_epoch_begin(0);
  // fc1 rows: (1,2), (3,4), (5,6), (7,8): L1 sums 3, 7, 11, 15 → rows 0 and 1 go.
  CHECK(mask_of(*m->parameters()[0]) == std::vector<uint8_t>{0, 0, 0, 0, 1, 1, 1, 1});
  CHECK(mask_of(*m->parameters()[1]) == std::vector<uint8_t>{0, 0, 1, 1});
  CHECK(m->parameters()[1]->var.value().f32()[0] == 0.f);
  CHECK_FALSE(m->parameters()[2]->mask.defined());

  auto b = ranked();
  Pruner pb(cfg(R"({"method": "one_shot", "target": 0.5, "granularity": {"type": "block", "block": [2, 2]},
                   "distribution": {"keep_dense": ["fc1"]}})"), *b, 1);
  pb.on_epoch_begin(0);
  // fc2 (2×4) in 2×2 tiles: {10,20,50,60} = 140, {30,40,70,80} = 220 → the first tile goes.
  CHECK(mask_of(*b->parameters()[2]) == std::vector<uint8_t>{0, 0, 1, 1, 0, 0, 1, 1});

  auto n = ranked();
  set_values(*n->parameters()[2], {1, 4, 3, 2, -5, 1, 0, 6});
  Pruner pn(cfg(R"({"method": "one_shot", "granularity": {"type": "nm", "n": 2, "m": 4},
                   "distribution": {"keep_dense": ["fc1"]}})"), *n, 1);
  pn.on_epoch_begin(0);
  CHECK(mask_of(*n->parameters()[2]) == std::vector<uint8_t>{0, 1, 1, 0, 1, 0, 0, 1});

  auto c = ranked();
  Pruner pc(cfg(R"({"method": "one_shot", "target": 0.5, "granularity": {"type": "channel"},
                   "distribution": {"keep_dense": ["fc1"]}})"), *c, 1);
  pc.on_epoch_begin(0);
  // fc2 input columns: {10,50}, {20,60}, {30,70}, {40,80} → columns 0 and 1 go.
  CHECK(mask_of(*c->parameters()[2]) == std::vector<uint8_t>{0, 0, 1, 1, 0, 0, 1, 1});
}

TEST_CASE("pruner: layer-dependent config errors name the key") {
  auto m = ranked();
  CHECK(error_of([&] { Pruner(cfg(R"({"method": "one_shot", "granularity": {"type": "nm", "n": 1, "m": 3}})"), *m, 1); })
            .find("pruning.granularity.m") != std::string::npos);
  CHECK(error_of([&] { Pruner(cfg(R"({"method": "one_shot", "target": 0.5, "distribution": {"keep_dense": ["fc9"]}})"), *m, 1); })
            .find("pruning.distribution.keep_dense[0]") != std::string::npos);
  auto c = std::make_unique<models::Model>(Shape{1, 4, 4}, 1);
  c->add(std::make_unique<models::Conv2d>("conv1", 1, 2, 3, 3, Conv2dOptions{}, true));
  c->add(std::make_unique<models::Flatten>("flatten1"));
  c->add(std::make_unique<models::Linear>("fc1", 8, 2, true));
  CHECK(error_of([&] { Pruner(cfg(R"({"method": "one_shot", "target": 0.5, "granularity": {"type": "neuron"}})"), *c, 1); })
            .find("pruning.granularity.type") != std::string::npos);
  CHECK(error_of([&] { Pruner(cfg(R"({"method": "one_shot", "target": 0.5, "granularity": {"type": "filter"}})"), *c, 1); }) ==
        "<no error>");
}

TEST_CASE("pruner: masked weights and their SGD momentum / Adam state stay exactly 0 (invariant 1)") {
  for (OptimizerType type : {OptimizerType::sgd, OptimizerType::adam}) {
    CAPTURE(static_cast<int>(type));
    auto m = ranked();
    OptimizerOptions o;
    o.type = type;
    o.momentum = 0.9f;
    Optimizer opt(m->parameters(), o);
    for (int s = 0; s < 3; ++s) train_step(*m, opt, nullptr, 0, s);  // state becomes nonzero
    Pruner p(cfg(R"({"method": "one_shot", "target": 0.5, "granularity": {"type": "neuron"}})"), *m, 1);
    p.set_optimizer(&opt);
    p.on_epoch_begin(0);
    for (int s = 0; s < 5; ++s) train_step(*m, opt, &p, 0, 3 + s);
    const auto state = optimizer_state_by_param(opt);
    for (Parameter* prm : m->parameters()) {
      if (!prm->mask.defined()) continue;
      for (int64_t i = 0; i < prm->mask.numel(); ++i) {
        if (prm->mask.u8()[i]) continue;
        CHECK(prm->var.value().f32()[i] == 0.f);
        for (Tensor* t : state.at(prm->name)) CHECK(t->f32()[i] == 0.f);
      }
    }
  }
}

TEST_CASE("pruner: gradual follows the cubic curve at epoch starts and every ΔT steps") {
  auto m = mlp(10, 10, 10);
  Pruner p(cfg(R"({"method": "gradual", "target": 0.8, "schedule": {"start_epoch": 0, "end_epoch": 4}})"), *m, 1);
  const double want[] = {0, 0.8 - 0.8 * 27 / 64.0, 0.8 - 0.8 / 8, 0.8 - 0.8 / 64, 0.8};
  for (int e = 0; e <= 4; ++e) {
    p.on_epoch_begin(e);
    CHECK(p.sparsity() == doctest::Approx(want[e]).epsilon(0.006));
  }
  auto s = mlp(10, 10, 10);
  Pruner ps(cfg(R"({"method": "gradual", "target": 0.5, "schedule": {"start_epoch": 1, "end_epoch": 2, "every_steps": 5}})"), *s, 1);
  ps.set_steps_per_epoch(10);
  ps.on_step(0, 9);
  CHECK(ps.sparsity() == 0);
  ps.on_step(1, 15);  // t0 = 10, t_end = 20: (15 − 10)/10 = 0.5 → 0.5 − 0.5/8
  CHECK(ps.sparsity() == doctest::Approx(0.5 - 0.5 / 8).epsilon(0.01));
  ps.on_epoch_begin(2);
  CHECK(ps.sparsity() == doctest::Approx(0.5));
}

TEST_CASE("pruner: iterative rounds prune p of the remaining and rewind to initialization") {
  auto m = mlp(8, 8, 8);
  Optimizer opt(m->parameters(), OptimizerOptions{});
  Pruner p(cfg(R"({"method": "iterative", "target": 0.875, "schedule": {"start_epoch": 1, "rounds": 3, "every": 2, "rewind": "init"}})"),
           *m, 1);
  p.set_optimizer(&opt);
  p.on_start();
  std::vector<std::vector<float>> init;
  for (Parameter* prm : m->parameters()) init.push_back(prm->var.value().to_vector());
  for (int s = 0; s < 3; ++s) train_step(*m, opt, &p, 0, s);
  const double want[] = {0.5, 0.75, 0.875};
  for (int r = 0; r < 3; ++r) {
    p.on_epoch_begin(1 + 2 * r);
    CHECK(p.sparsity() == doctest::Approx(want[r]));
    const auto& params = m->parameters();
    for (size_t i = 0; i < params.size(); ++i)
      for (int64_t j = 0; j < params[i]->var.value().numel(); ++j) {
        const bool on = !params[i]->mask.defined() || params[i]->mask.u8()[j];
        CHECK(params[i]->var.value().f32()[j] == (on ? init[i][j] : 0.f));
      }
    for (auto& [name, slots] : optimizer_state_by_param(opt))
      for (Tensor* t : slots)
        for (float v : t->to_vector()) CHECK(v == 0.f);
    for (int s = 0; s < 2; ++s) train_step(*m, opt, &p, 2 + 2 * r, 10 + s);
  }
  p.on_epoch_begin(2);  // not a round
  CHECK(p.sparsity() == doctest::Approx(0.875));
}

TEST_CASE("pruner: SET and RigL keep the nonzero count; regrown weights and state start at 0") {
  for (const char* method : {"set", "rigl"}) {
    CAPTURE(method);
    auto m = mlp(8, 8, 4);
    OptimizerOptions o;
    o.momentum = 0.9f;
    Optimizer opt(m->parameters(), o);
    Pruner p(cfg((std::string(R"({"method": ")") + method + R"(", "target": 0.5, "distribution": {"type": "layerwise"}})").c_str(), 10),
             *m, 7);
    p.set_optimizer(&opt);
    p.on_start();
    CHECK(p.sparsity() == doctest::Approx(0.5));
    for (int s = 0; s < 4; ++s) train_step(*m, opt, &p, 0, s + 1);  // momentum builds up
    const auto before0 = mask_of(*m->parameters()[0]);
    const int64_t nnz0 = kept(*m->parameters()[0]), nnz2 = kept(*m->parameters()[2]);
    // Run the update (RigL needs a fresh gradient: the step below provides it).
    Tensor x = Tensor::from_vector({3, 8}, std::vector<float>(24, 0.5f));
    Tensor y = Tensor::from_vector({3}, std::vector<int32_t>{0, 1, 2});
    opt.zero_grad();
    softmax_cross_entropy(m->forward(Variable(x)), y).backward();
    if (std::string(method) == "set") p.set_update(0.25);
    else p.rigl_update(0.25);
    CHECK(kept(*m->parameters()[0]) == nnz0);
    CHECK(kept(*m->parameters()[2]) == nnz2);
    const auto after0 = mask_of(*m->parameters()[0]);
    CHECK(after0 != before0);
    int changed = 0;
    const auto state = optimizer_state_by_param(opt);
    for (size_t i = 0; i < after0.size(); ++i) {
      if (after0[i] && !before0[i]) {
        ++changed;
        CHECK(m->parameters()[0]->var.value().f32()[i] == 0.f);
        CHECK(state.at("fc1.weight")[0]->f32()[i] == 0.f);
      }
    }
    // k = 8 positions regrow; one dropped and regrown in the same update is not "changed".
    CHECK(changed >= 1);
    CHECK(changed <= std::llround(0.25 * nnz0));
  }
}

TEST_CASE("pruner: RigL regrows where the gradient is largest") {
  auto m = mlp(2, 2, 2);
  set_values(*m->parameters()[2], {1, 2, 3, 4});
  Pruner p(cfg(R"({"method": "rigl", "target": 0.5, "distribution": {"type": "layerwise", "keep_dense": ["fc1"]}})"), *m, 1);
  std::vector<uint8_t> mask = {0, 1, 0, 1};  // active: 2, 4
  set_mask(*m->parameters()[2], mask, nullptr);
  m->parameters()[2]->var.grad() = Tensor::from_vector({2, 2}, std::vector<float>{0.1f, 0, -5, 0});
  p.rigl_update(0.5);  // drop 1 (|2|), grow 1: the largest |g| among inactive {0, 1, 2} → index 2
  CHECK(mask_of(*m->parameters()[2]) == std::vector<uint8_t>{0, 0, 1, 1});
  CHECK(m->parameters()[2]->var.value().f32()[2] == 0.f);
}

namespace {

// Small integers: dyᵀ·x sums them exactly in any order, so a dense and a panel-wise gradient agree
// to the bit and so do the entries RigL picks.
std::vector<float> small_ints(size_t n, uint64_t seed) {
  Rng r(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(static_cast<int>(r.below(7)) - 3);
  return v;
}

// dyᵀ·x (OUT × IN) from dy (B × OUT) and x (B × IN).
std::vector<float> dense_gradient(const std::vector<float>& dy, const std::vector<float>& x, int B, int OUT, int IN) {
  std::vector<float> g(static_cast<size_t>(OUT) * IN, 0.f);
  for (int b = 0; b < B; ++b)
    for (int o = 0; o < OUT; ++o)
      for (int i = 0; i < IN; ++i) g[size_t(o) * IN + i] += dy[size_t(b) * OUT + o] * x[size_t(b) * IN + i];
  return g;
}

}  // namespace

TEST_CASE("pruner: RigL on a sparse Linear regrows, keeps values, gradient and state as on its dense mask") {
  auto a = mlp(6, 10, 4), b = mlp(6, 10, 4);
  for (size_t i = 0; i < a->parameters().size(); ++i)
    set_values(*b->parameters()[i], a->parameters()[i]->var.value().to_vector());
  OptimizerOptions o;
  o.momentum = 0.9f;
  Optimizer oa(a->parameters(), o), ob(b->parameters(), o);
  const char* text = R"({"method": "rigl", "target": 0.6, "distribution": {"type": "layerwise"}})";
  Pruner pa(cfg(text), *a, 3), pb(cfg(text), *b, 3);
  pa.set_optimizer(&oa);
  pb.set_optimizer(&ob);
  pa.on_start();
  pb.on_start();
  for (int s = 0; s < 3; ++s) {  // momentum builds up, identically
    train_step(*a, oa, nullptr, 0, s);
    train_step(*b, ob, nullptr, 0, s);
  }
  const int B = 5;
  for (int l : {0, 2}) {
    Parameter& pa_w = *a->parameters()[l];
    Parameter& pb_w = *b->parameters()[l];
    const int OUT = static_cast<int>(pa_w.shape[0]), IN = static_cast<int>(pa_w.shape[1]);
    const std::vector<float> x = small_ints(size_t(B) * IN, 10 + l), dy = small_ints(size_t(B) * OUT, 20 + l);
    const std::vector<float> g = dense_gradient(dy, x, B, OUT, IN);
    pa_w.var.grad() = Tensor::from_vector({OUT, IN}, g);
    to_sparse(pb_w);
    REQUIRE(pb_w.sparse());
    std::vector<float> gv;
    const kernels::CsrMatrix& w = pb_w.csr->w;
    for (int r = 0; r < w.rows; ++r)
      for (int32_t k = w.row_ptr[r]; k < w.row_ptr[r + 1]; ++k) gv.push_back(g[size_t(r) * IN + w.col_idx[k]]);
    pb_w.csr->values.grad() = Tensor::from_vector({static_cast<int64_t>(gv.size())}, gv);
    pb_w.csr->factors.capture = true;
    pb_w.csr->factors.rows = B;
    pb_w.csr->factors.x = x;
    pb_w.csr->factors.dy = dy;
  }
  const int64_t v0 = b->parameters()[0]->mask_version;
  pa.rigl_update(0.3);
  pb.rigl_update(0.3);
  const auto sa = optimizer_state_by_param(oa), sb = optimizer_state_by_param(ob);
  for (int l : {0, 2}) {
    const Parameter& da = *a->parameters()[l];
    const Parameter& sp = *b->parameters()[l];
    CAPTURE(da.name);
    REQUIRE(sp.sparse());  // regrown in the sparse form, never made dense
    CHECK(sp.csr->factors.rows == 0);  // used up
    CHECK(!sp.csr->factors.capture);
    const kernels::CsrMatrix& w = sp.csr->w;
    const std::vector<uint8_t> mask = mask_of(da);
    std::vector<uint8_t> pattern(mask.size(), 0);
    const int IN = w.cols;
    const float* mom_b = sb.at(sp.name)[0]->f32();
    const float* mom_a = sa.at(da.name)[0]->f32();
    for (int r = 0; r < w.rows; ++r)
      for (int32_t k = w.row_ptr[r]; k < w.row_ptr[r + 1]; ++k) {
        const size_t pos = size_t(r) * IN + w.col_idx[k];
        pattern[pos] = 1;
        CHECK(w.values[k] == da.var.value().f32()[pos]);
        CHECK(sp.csr->values.grad().f32()[k] == da.var.grad().f32()[pos]);
        CHECK(mom_b[k] == mom_a[pos]);
      }
    CHECK(pattern == mask);
    CHECK(count_kept(sp) == count_kept(da));
  }
  CHECK(b->parameters()[0]->mask_version > v0);
}

TEST_CASE("pruner: a RigL step on sparse layers keeps them sparse and captures what it needs") {
  auto m = mlp(6, 12, 4);
  OptimizerOptions o;
  Optimizer opt(m->parameters(), o);
  Pruner p(cfg(R"({"method": "rigl", "target": 0.6, "distribution": {"type": "layerwise"},
                   "schedule": {"every_steps": 2, "end_epoch": 2}})", 2), *m, 5);
  p.set_optimizer(&opt);
  p.set_steps_per_epoch(10);
  p.on_start();
  for (int l : {0, 2}) to_sparse(*m->parameters()[l]);
  CHECK(!p.regrows_on_sparse());  // not allowed until the trainer says so (CPU, one process)
  CHECK(p.plan_step(0, 2).needs_dense());
  p.set_sparse_regrowth(true);
  REQUIRE(p.regrows_on_sparse());
  CHECK(!p.plan_step(0, 1));  // not an update step
  const int64_t nnz0 = count_kept(*m->parameters()[0]);
  const std::vector<int32_t> cols0 = m->parameters()[0]->csr->w.col_idx;
  Action act = p.plan_step(0, 2);
  REQUIRE(act);
  CHECK(!act.needs_dense());
  CHECK(m->parameters()[0]->csr->factors.capture);
  train_step(*m, opt, nullptr, 0, 2);  // the backward keeps x and dy (3 rows)
  CHECK(m->parameters()[0]->csr->factors.rows == 3);
  opt.zero_grad();
  Tensor x = Tensor::from_vector({3, 6}, small_ints(18, 4));
  softmax_cross_entropy(m->forward(Variable(x)), Tensor::from_vector({3}, std::vector<int32_t>{0, 1, 3})).backward();
  act();
  for (int l : {0, 2}) {
    const Parameter& w = *m->parameters()[l];
    REQUIRE(w.sparse());
    CHECK(!w.var.value().defined());  // no dense twin
    CHECK(!w.mask.defined());
  }
  CHECK(count_kept(*m->parameters()[0]) == nnz0);
  CHECK(m->parameters()[0]->csr->w.col_idx != cols0);
  opt.step(0.1f);  // the step after the change runs on the new pattern
  // A sparse conv weight (or a layer on CUDA) is not regrown this way: such steps run densely.
}

TEST_CASE("pruner: the L1 term adds λ·sign(w); ADMM adds ρ(W − Z + U) and hard-prunes at the end") {
  auto m = ranked();
  Pruner p(cfg(R"({"method": "one_shot", "target": 0.5, "schedule": {"epoch": 9}, "l1": {"lambda": 0.5}})"), *m, 1);
  Parameter& w = *m->parameters()[0];
  set_values(w, {1, -2, 0, 4, 5, 6, 7, 8});
  w.var.grad() = Tensor::zeros({4, 2});
  m->parameters()[2]->var.grad() = Tensor::zeros({2, 4});
  p.on_step(0, 0);
  CHECK(w.var.grad().to_vector() == std::vector<float>{0.5f, -0.5f, 0, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f});

  auto a = ranked();
  Pruner pa(cfg(R"({"method": "admm", "target": 0.5, "schedule": {"start_epoch": 0, "end_epoch": 2}, "admm": {"rho": 0.1}})"), *a, 1);
  pa.on_epoch_begin(0);  // Z = Π(W): fc1 keeps 5..8, U = 0
  Parameter& aw = *a->parameters()[0];
  aw.var.grad() = Tensor::zeros({4, 2});
  a->parameters()[2]->var.grad() = Tensor::zeros({2, 4});
  pa.on_step(0, 0);
  // ρ(W − Z): 0.1·(1, 2, 3, 4, 0, 0, 0, 0)
  auto g = aw.var.grad().to_vector();
  CHECK(g[0] == doctest::Approx(0.1));
  CHECK(g[3] == doctest::Approx(0.4));
  CHECK(g[4] == 0.f);
  CHECK(pa.sparsity() == 0);  // no mask until the hard prune
  pa.on_epoch_end(0);         // Z = Π(W + U), U += W − Z = (1, 2, 3, 4, 0, ...)
  auto st = pa.state_tensors();
  REQUIRE(st.size() == 4);
  CHECK(st[1].name == "pruning.admm_u.fc1.weight");
  CHECK(st[1].tensor->to_vector()[3] == doctest::Approx(4));
  pa.on_epoch_begin(2);
  CHECK(pa.sparsity() == 0.5);
  CHECK(mask_of(aw) == std::vector<uint8_t>{0, 0, 0, 0, 1, 1, 1, 1});
}

TEST_CASE("pruner: static masks are random with ERK densities, the same for the same seed") {
  auto a = mlp(20, 10, 4), b = mlp(20, 10, 4);
  Pruner pa(cfg(R"({"method": "static", "target": 0.8})"), *a, 3);
  Pruner pb(cfg(R"({"method": "static", "target": 0.8})"), *b, 3);
  pa.on_start();
  pb.on_start();
  CHECK(mask_of(*a->parameters()[0]) == mask_of(*b->parameters()[0]));
  CHECK(pa.sparsity() == doctest::Approx(0.8).epsilon(0.01));
  // ERK: fc1 (10×20) raw 30/200 = 0.15, fc2 (4×10) raw 14/40 = 0.35; eps = 48/(30 + 14) →
  // fc1 density 0.15·48/44 = 0.1636 → 33 of 200 kept.
  CHECK(kept(*a->parameters()[0]) == 33);
}

TEST_CASE("report: sparsity, nonzeros, CSR bytes and MACs by hand") {
  auto m = ranked();
  Pruner p(cfg(R"({"method": "one_shot", "target": 0.5})"), *m, 1);
  p.on_epoch_begin(0);
  Report r = make_report(*m);
  REQUIRE(r.layers.size() == 2);
  CHECK(r.layers[0].name == "fc1.weight");
  CHECK(r.layers[0].nonzeros == 4);
  CHECK(r.layers[0].sparsity == 0.5);
  CHECK(r.layers[0].dense_bytes == 32);
  CHECK(r.layers[0].sparse_bytes == 4 * 4 + 4 * 4 + 4 * 5);
  CHECK(r.layers[0].dense_macs == 8);
  CHECK(r.layers[0].macs == 4);
  CHECK(r.params == 8 + 4 + 8 + 2);
  CHECK(r.nonzeros == 4 + 4 + 4 + 2);
  CHECK(r.sparsity == 0.5);
  CHECK(r.dense_bytes == 4 * 22);
  CHECK(r.sparse_bytes == (16 + 16 + 20) + (16 + 16 + 12) + 4 * 6);
  CHECK(r.macs == 8);
  CHECK(r.dense_macs == 16);
  auto j = r.to_json();
  CHECK(j["layers"]["fc2.weight"]["nonzeros"] == 4);
  CHECK(csr_bytes(10, 0) == 44);
}
