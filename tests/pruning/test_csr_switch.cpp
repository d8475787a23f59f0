// The CSR switch (pruning/csr_switch.h) and invariants 3 and 4: a sparse weight has no dense twin;
// a mask change made on the dense form (prune more, and a RigL/SET-style regrowth) and a return to
// the sparse form remap the CSR structure and the optimizer state together — kept entries keep their
// weight and state, pruned entries lose both, regrown entries start at 0 — and training on continues
// exactly as masked dense does.
#include <doctest/doctest.h>

#include "core/csr_weight.h"
#include "core/optim.h"
#include "models/model.h"
#include "pruning/csr_switch.h"
#include "pruning/layers.h"
#include "gradcheck.h"

using namespace st;

namespace {

std::unique_ptr<models::Model> mlp() {
  auto m = std::make_unique<models::Model>(Shape{12}, 3);
  m->add(std::make_unique<models::Linear>("fc1", 12, 9, true));
  m->add(std::make_unique<models::ReLU>("r1"));
  m->add(std::make_unique<models::Linear>("fc2", 9, 4, true));
  Rng rng(5);
  for (Parameter* p : m->parameters())
    for (int64_t i = 0; i < p->var.value().numel(); ++i) p->var.value().f32()[i] = rng.uniform(-1.f, 1.f);
  return m;
}

std::vector<uint8_t> random_keep(int64_t n, double sparsity, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint8_t> m(n);
  for (auto& v : m) v = rng.uniform() >= sparsity ? 1 : 0;
  return m;
}

// One training step of both models on the same batch.
void step(models::Model& m, Optimizer& o, int t) {
  Rng rng(100 + t);
  Tensor x({5, 12});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.uniform(-1.f, 1.f);
  Tensor y({5}, DType::i32);
  for (int i = 0; i < 5; ++i) y.i32()[i] = static_cast<int32_t>(rng.below(4));
  Variable loss = softmax_cross_entropy(m.forward(Variable(x)), y);
  o.zero_grad();
  loss.backward();
  o.step(0.1f);
}

// a's parameters (masked dense) and b's (any form) hold the same weights and optimizer state; a
// sparse parameter's state is compact, compared at its pattern.
void check_same(models::Model& a, models::Model& b, Optimizer& oa, Optimizer& ob) {
  auto close = [](const float* x, const float* y, int64_t n) {
    for (int64_t k = 0; k < n; ++k) CHECK(x[k] == doctest::Approx(y[k]).epsilon(1e-5).scale(1));
  };
  for (size_t i = 0; i < a.parameters().size(); ++i) {
    const Tensor wa = a.parameters()[i]->var.value(), wb = dense_value(*b.parameters()[i]);
    REQUIRE(wa.numel() == wb.numel());
    close(wa.f32(), wb.f32(), wa.numel());
  }
  auto sa = oa.state(), sb = ob.state();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    const Parameter* pb = nullptr;
    for (Parameter* p : b.parameters())
      if (sb[i].first.rfind(p->name + ".", 0) == 0) pb = p;
    REQUIRE(pb != nullptr);
    if (!pb->sparse()) {
      close(sa[i].second->f32(), sb[i].second->f32(), sa[i].second->numel());
      continue;
    }
    REQUIRE(sb[i].second->numel() == pb->csr->nnz());
    std::vector<float> at(static_cast<size_t>(pb->csr->nnz()));
    gather_at_pattern(pb->csr->w, sa[i].second->f32(), at.data());
    close(at.data(), sb[i].second->f32(), pb->csr->nnz());
  }
}

}  // namespace

TEST_CASE("csr switch: threshold decides, logs, and goes back to dense when regrowth lowers sparsity") {
  auto m = mlp();
  auto layers = pruning::prunable_layers(*m);
  pruning::CsrSwitchOptions so;
  so.threshold = 0.6;
  pruning::CsrSwitch sw(so, *m);
  CHECK(sw.update().empty());  // no masks: dense
  pruning::set_mask(*layers[0].weight, random_keep(layers[0].numel(), 0.8, 1), nullptr);
  auto ev = sw.update();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].layer == "fc1");
  CHECK(ev[0].to_csr);
  CHECK(ev[0].message().find("[csr] fc1: dense -> csr at sparsity") == 0);
  CHECK(layers[0].weight->sparse());
  CHECK_FALSE(layers[0].weight->var.value().defined());  // no dense twin
  CHECK_FALSE(layers[0].weight->mask.defined());
  CHECK(layers[1].weight->dense());
  sw.suspend(true);  // masks are edited on the dense form
  CHECK(layers[0].weight->dense());
  pruning::set_mask(*layers[0].weight, random_keep(layers[0].numel(), 0.3, 2), nullptr);
  sw.suspend(false);
  ev = sw.update();
  REQUIRE(ev.size() == 1);
  CHECK_FALSE(ev[0].to_csr);
  CHECK(layers[0].weight->csr == nullptr);
  CHECK(sw.update().empty());  // nothing changed, nothing re-decided
  // suspended layers are dense (value and a mask of the pattern) until the next update()
  pruning::set_mask(*layers[1].weight, random_keep(layers[1].numel(), 0.9, 3), nullptr);
  sw.update();
  REQUIRE(layers[1].weight->sparse());
  const int64_t nnz = layers[1].weight->csr->nnz();
  sw.suspend(true);
  CHECK(layers[1].weight->dense());
  CHECK(layers[1].weight->kept() == nnz);
  sw.suspend(false);
  CHECK(sw.update().empty());  // the pattern did not change: back to sparse, no new decision
  CHECK(layers[1].weight->sparse());
  CHECK(layers[1].weight->csr->nnz() == nnz);
}

TEST_CASE("csr switch: a mask change in CSR mode remaps structure and optimizer state together") {
  for (OptimizerType type : {OptimizerType::sgd, OptimizerType::adam}) {
    CAPTURE(static_cast<int>(type));
    auto a = mlp(), b = mlp();  // a: masked dense, b: CSR
    OptimizerOptions opt;
    opt.type = type;
    Optimizer oa(a->parameters(), opt), ob(b->parameters(), opt);
    auto la = pruning::prunable_layers(*a), lb = pruning::prunable_layers(*b);
    auto sa = pruning::optimizer_state_by_param(oa), sb = pruning::optimizer_state_by_param(ob);
    pruning::CsrSwitchOptions so;
    so.threshold = 0.5;
    pruning::CsrSwitch sw(so, *b);
    for (size_t l = 0; l < la.size(); ++l) {
      auto keep = random_keep(la[l].numel(), 0.7, 10 + l);
      pruning::set_mask(*la[l].weight, keep, &sa);
      pruning::set_mask(*lb[l].weight, keep, &sb);
    }
    CHECK(sw.update().size() == 2);
    for (int t = 0; t < 4; ++t) {
      step(*a, oa, t);
      step(*b, ob, t);
    }
    check_same(*a, *b, oa, ob);
    // Prune more in fc1, and drop + regrow in fc2 (RigL/SET style), on both: b's on the dense form.
    sw.suspend(true);
    // State pointers are good until the next step: fetch them again, in the dense form.
    sa = pruning::optimizer_state_by_param(oa);
    sb = pruning::optimizer_state_by_param(ob);
    Parameter& p1 = *lb[0].weight;
    std::vector<uint8_t> more(p1.mask.u8(), p1.mask.u8() + p1.mask.numel());
    int64_t dropped = 0;
    for (size_t i = 0; i < more.size() && dropped < 5; ++i)
      if (more[i]) more[i] = 0, ++dropped;
    Parameter& p2 = *lb[1].weight;
    std::vector<uint8_t> regrow(p2.mask.u8(), p2.mask.u8() + p2.mask.numel());
    std::vector<int64_t> grown;
    for (size_t i = 0, d = 0; i < regrow.size(); ++i) {
      if (regrow[i] && d < 3) regrow[i] = 0, ++d;
      else if (!regrow[i] && grown.size() < 3) regrow[i] = 1, grown.push_back(static_cast<int64_t>(i));
    }
    pruning::set_mask(*la[0].weight, more, &sa);
    pruning::set_mask(p1, more, &sb);
    pruning::set_mask(*la[1].weight, regrow, &sa);
    pruning::set_mask(p2, regrow, &sb);
    sw.suspend(false);
    CHECK(sw.update().empty());  // still sparse enough: rebuilt, no switch
    REQUIRE(p1.csr != nullptr);
    REQUIRE(p2.csr != nullptr);
    // The new structure is the new mask, its values the live weights; regrown entries are 0 with
    // zero state; pruned entries' state is gone.
    int64_t kept = 0;
    for (uint8_t v : more) kept += v;
    CHECK(p1.csr->nnz() == kept);
    const std::vector<int64_t> pos1 = test::pattern_positions(p1.csr->w);
    for (int64_t k = 0; k < p1.csr->nnz(); ++k) CHECK(more[pos1[k]]);
    const Tensor w2 = dense_value(p2);
    for (int64_t i : grown) CHECK(w2.f32()[i] == 0.f);
    check_same(*a, *b, oa, ob);  // a's regrown entries have zero state, so b's do
    for (int t = 4; t < 8; ++t) {
      step(*a, oa, t);
      step(*b, ob, t);
    }
    check_same(*a, *b, oa, ob);
    const Tensor w2t = dense_value(p2);
    int64_t trained = 0;  // regrown entries train (one may sit behind a dead ReLU unit)
    for (int64_t i : grown) trained += w2t.f32()[i] != 0.f;
    CHECK(trained > 0);
  }
}
