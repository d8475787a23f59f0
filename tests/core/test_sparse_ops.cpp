// CSR execution against masked dense (docs/architecture.md invariant 2): sparse_linear and sparse_conv2d
// forward and every gradient at odd shapes, sparsities 0 / 0.5 / 0.95 / 1, with and without bias,
// conv with stride and padding; finite-difference checks of the new ops; the optimizer's CSR step
// (at the nonzeros only) against the masked dense step for SGD-momentum, Nesterov, Adam and AdamW.
#include <doctest/doctest.h>

#include <cmath>

#include "core/csr_weight.h"
#include "core/ops.h"
#include "core/optim.h"
#include "gradcheck.h"

using namespace st;
using st::test::gradcheck_error;
using st::test::random_mask;
using st::test::random_tensor;

namespace {

Tensor masked(const Tensor& w, const Tensor& m) {
  Tensor o = w.clone();
  for (int64_t i = 0; i < o.numel(); ++i)
    if (!m.u8()[i]) o.f32()[i] = 0.f;
  return o;
}

void check_close(const Tensor& a, const Tensor& b, double tol = 1e-4) {
  REQUIRE(a.numel() == b.numel());
  for (int64_t i = 0; i < a.numel(); ++i) CHECK(a.f32()[i] == doctest::Approx(b.f32()[i]).epsilon(tol).scale(1));
}

// Runs the dense op and the CSR op on the same masked weight, compares y, dx, dW (at the nonzeros,
// and: the dense grad's other entries are what a masked optimizer discards) and db.
template <class Dense, class Sparse>
void compare(const Shape& xs, const Shape& ws, double sparsity, bool bias, Dense dense, Sparse sparse) {
  CAPTURE(sparsity);
  CAPTURE(bias);
  Tensor mask = random_mask(ws, sparsity, 11);
  Tensor wv = masked(random_tensor(ws, 2), mask);
  Variable x1(random_tensor(xs, 1), true), w1(wv, true);
  Variable b1 = bias ? Variable(random_tensor({ws[0]}, 3), true) : Variable();
  Variable y1 = dense(x1, w1, b1);
  Tensor dout = random_tensor(y1.shape(), 4);
  y1.backward(dout);

  auto csr = make_csr_weight(wv, mask.u8());
  Variable x2(x1.value(), true);
  Variable b2 = bias ? Variable(b1.value(), true) : Variable();
  Variable y2 = sparse(x2, csr, b2);
  y2.backward(dout);
  check_close(y1.value(), y2.value());
  check_close(x1.grad(), x2.grad());
  if (bias) check_close(b1.grad(), b2.grad());
  if (csr->nnz() > 0) {
    REQUIRE(csr->values.has_grad());
    Tensor dw_at(Shape{csr->nnz()});
    for (int64_t k = 0; k < csr->nnz(); ++k) dw_at.f32()[k] = w1.grad().f32()[csr->index[k]];
    check_close(dw_at, csr->values.grad());
  }
}

// One masked weight trained twice with the same options: pd as masked dense, pc in CSR.
struct DenseAndCsr {
  Parameter pd, pc;
  Optimizer od, oc;
  DenseAndCsr(const Tensor& mask, const Tensor& w0, const OptimizerOptions& opt)
      : pd("d", w0.clone(), true), pc("c", w0.clone(), true), od({&pd}, opt), oc({&pc}, opt) {
    pd.mask = mask.clone();
    pc.mask = mask.clone();
    pc.csr = make_csr_weight(pc.var.value(), pc.mask_data());
  }
  // The same gradient g to both: dense to pd, at the nonzeros to pc's CSR values.
  void csr_step(const Tensor& g, float lr) {
    od.zero_grad();
    oc.zero_grad();
    pd.var.grad() = g;
    Tensor gv(Shape{pc.csr->nnz()});
    for (int64_t k = 0; k < pc.csr->nnz(); ++k) gv.f32()[k] = g.f32()[pc.csr->index[k]];
    pc.csr->values.grad() = gv;
    od.step(lr);
    oc.step(lr);
  }
};

}  // namespace

TEST_CASE("sparse_linear equals masked dense linear: forward, dx, dW at nonzeros, db") {
  for (double sp : {0.0, 0.5, 0.95, 1.0})
    for (bool bias : {true, false})
      for (auto [B, IN, OUT] : {std::tuple{7, 96, 40}, std::tuple{11, 55, 8}, std::tuple{1, 3, 5}})
        compare({B, IN}, {OUT, IN}, sp, bias,
                [](auto& x, auto& w, auto& b) { return linear(x, w, b); },
                [](auto& x, auto& w, auto& b) { return sparse_linear(x, w, b); });
}

TEST_CASE("sparse_conv2d equals masked dense conv2d with stride and padding") {
  struct Case { Shape x, w; Conv2dOptions o; };
  std::vector<Case> cases = {
      {{2, 3, 7, 6}, {4, 3, 3, 3}, {1, 1, 0, 0}},
      {{1, 2, 8, 9}, {3, 2, 3, 2}, {2, 1, 1, 0}},
      {{3, 1, 5, 5}, {2, 1, 5, 5}, {1, 1, 2, 2}},
      {{2, 5, 9, 7}, {6, 5, 3, 3}, {2, 2, 1, 1}},
  };
  for (const Case& c : cases)
    for (double sp : {0.0, 0.5, 0.95, 1.0})
      for (bool bias : {true, false})
        compare(c.x, c.w, sp, bias, [&](auto& x, auto& w, auto& b) { return conv2d(x, w, b, c.o); },
                [&](auto& x, auto& w, auto& b) { return sparse_conv2d(x, w, b, c.o); });
}

TEST_CASE("sparse ops: finite-difference gradients (x, the CSR values, bias)") {
  const double kTol = 2e-2;
  auto run = [kTol](const Shape& xs, const Shape& ws, auto op) {
    Tensor mask = random_mask(ws, 0.5, 21);
    auto csr = make_csr_weight(masked(random_tensor(ws, 22), mask), mask.u8());
    Tensor vals = csr->values.value().clone();
    // The op reads W's values; each probe copies the perturbed `values` input into them.
    auto f = [csr, op](auto& in) {
      csr->values = in[1];
      std::copy_n(in[1].value().f32(), csr->nnz(), csr->w.values.data());
      kernels::csr_transpose_values(csr->w, csr->perm, csr->wt);
      return op(in[0], csr, in[2]);
    };
    CHECK(gradcheck_error(f, {random_tensor(xs, 23), vals, random_tensor({ws[0]}, 24)}) < kTol);
  };
  run({3, 9}, {5, 9}, [](auto& x, auto& w, auto& b) { return sparse_linear(x, w, b); });
  Conv2dOptions o{2, 1, 1, 0};
  run({2, 2, 6, 5}, {3, 2, 3, 2}, [o](auto& x, auto& w, auto& b) { return sparse_conv2d(x, w, b, o); });
}

TEST_CASE("optimizer: the CSR step equals the masked dense step (weights and state)") {
  const std::pair<OptimizerType, bool> cases[] = {
      {OptimizerType::sgd, false}, {OptimizerType::sgd, true}, {OptimizerType::adam, false}, {OptimizerType::adamw, false}};
  for (const auto& [type, nesterov] : cases) {
    CAPTURE(static_cast<int>(type));
    CAPTURE(nesterov);
    OptimizerOptions opt;
    opt.type = type;
    opt.nesterov = nesterov;
    opt.weight_decay = 0.01f;
    const Shape s{13, 17};
    Tensor mask = random_mask(s, 0.8, 31);
    DenseAndCsr t(mask, masked(random_tensor(s, 32), mask), opt);
    Parameter &pd = t.pd, &pc = t.pc;
    Optimizer &od = t.od, &oc = t.oc;
    for (int step = 0; step < 6; ++step) t.csr_step(random_tensor(s, 40 + step), 0.05f);
    CHECK(pc.csr->dense_stale);  // CSR steps leave the dense weight behind until a sync
    sync_dense_weight(pc);
    CHECK_FALSE(pc.csr->dense_stale);
    check_close(pd.var.value(), pc.var.value(), 1e-5);
    auto sd = od.state(), sc = oc.state();
    REQUIRE(sd.size() == sc.size());
    for (size_t i = 0; i < sd.size(); ++i) check_close(*sd[i].second, *sc[i].second, 1e-5);
    // The CSR copies follow the dense weight.
    for (int64_t k = 0; k < pc.csr->nnz(); ++k)
      CHECK(pc.csr->w.values[k] == pc.var.value().f32()[pc.csr->index[k]]);
    for (int64_t i = 0; i < mask.numel(); ++i)
      if (!mask.u8()[i]) CHECK(pc.var.value().f32()[i] == 0.f);
  }
}

// CSR steps keep the optimizer state compact (core/optim.h); the dense slots must still be what the
// rest of the trainer sees: after edits through state() (the pruner zeroing entries), a new pattern
// (the old pattern's state scattered back, the new one's gathered), and a dense step in between.
TEST_CASE("optimizer: the compact CSR state survives state() edits, mask changes and dense steps") {
  for (OptimizerType type : {OptimizerType::sgd, OptimizerType::adam}) {
    CAPTURE(static_cast<int>(type));
    OptimizerOptions opt;
    opt.type = type;
    const Shape s{11, 19};
    Tensor mask = random_mask(s, 0.7, 61);
    DenseAndCsr t(mask, masked(random_tensor(s, 62), mask), opt);
    Parameter &pd = t.pd, &pc = t.pc;
    Optimizer &od = t.od, &oc = t.oc;
    int seed = 70;
    auto grad = [&] { return random_tensor(s, seed++); };
    auto csr_step = [&] { t.csr_step(grad(), 0.05f); };
    auto dense_step = [&] {  // e.g. a RigL step: the CSR layer gets a dense gradient
      Tensor g = masked(grad(), pd.mask);
      od.zero_grad();
      oc.zero_grad();
      pd.var.grad() = g;
      pc.var.grad() = g.clone();
      od.step(0.05f);
      oc.step(0.05f);
    };
    // Zeroes every third kept entry's state through state(), as the pruner does for reset entries.
    auto edit_state = [](Optimizer& o, const Tensor& m) {
      for (auto& [name, t] : o.state())
        for (int64_t i = 0; i < t->numel(); i += 3)
          if (m.u8()[i]) t->f32()[i] = 0.f;
    };
    auto check_same = [&] {
      sync_dense_weight(pc);
      check_close(pd.var.value(), pc.var.value(), 1e-5);
      auto sd = od.state(), sc = oc.state();
      REQUIRE(sd.size() == sc.size());
      for (size_t i = 0; i < sd.size(); ++i) check_close(*sd[i].second, *sc[i].second, 1e-5);
    };
    csr_step();
    csr_step();
    edit_state(od, pd.mask);
    edit_state(oc, pc.mask);
    csr_step();
    check_same();
    // A new pattern: entries pruned (weight and state zeroed) and regrown (state zeroed).
    Tensor mask2 = random_mask(s, 0.7, 63);
    csr_step();  // leaves pc's dense weight stale: the edit below must sync first, as set_mask does
    for (Parameter* p : {&pd, &pc}) {
      sync_dense_weight(*p);
      Optimizer& o = p == &pd ? od : oc;
      for (auto& [name, t] : o.state())
        for (int64_t i = 0; i < t->numel(); ++i)
          if (mask.u8()[i] != mask2.u8()[i]) t->f32()[i] = 0.f;
      p->mask = mask2.clone();
      p->var.value() = masked(p->var.value(), mask2);
    }
    pc.csr = make_csr_weight(pc.var.value(), pc.mask_data());
    csr_step();
    csr_step();
    dense_step();
    refresh_csr_values(*pc.csr, pc.var.value());  // as the optimizer's dense branch does
    csr_step();
    // A rebuilt CsrWeight (the switch re-deciding a layer) with no state() call in between: the
    // previous pattern's compact state must be scattered back before the new one is gathered.
    sync_dense_weight(pc);  // a rebuild reads the dense weight (CsrSwitch asserts it is current)
    pc.csr = make_csr_weight(pc.var.value(), pc.mask_data());
    csr_step();
    check_same();
    for (int64_t i = 0; i < mask2.numel(); ++i)
      if (!mask2.u8()[i]) CHECK(pc.var.value().f32()[i] == 0.f);
  }
}
