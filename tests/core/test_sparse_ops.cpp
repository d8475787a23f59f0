// CSR execution against masked dense (docs/architecture.md invariant 2): sparse_linear and sparse_conv2d
// forward and every gradient at odd shapes, sparsities 0 / 0.5 / 0.95 / 1, with and without bias,
// conv with stride and padding; sparse_linear with its relu and the fused conv + relu + max pool
// against the separate ops;
// the feature-major sparse_linear_fm (through transpose2d) against dense linear;
// finite-difference checks of the new ops; the optimizer's CSR step
// (at the nonzeros only) against the masked dense step for SGD-momentum, Nesterov, Adam and AdamW.
#include <doctest/doctest.h>

#include <cmath>

#include "core/csr_weight.h"
#include "core/ops.h"
#include "core/optim.h"
#include "gradcheck.h"

using namespace st;
using st::test::gradcheck_error;
using st::test::pattern_positions;
using st::test::random_mask;
using st::test::random_tensor;

namespace {

Tensor masked(const Tensor& w, const Tensor& m) {
  Tensor o = w.clone();
  for (int64_t i = 0; i < o.numel(); ++i)
    if (!m.u8()[i]) o.f32()[i] = 0.f;
  return o;
}

// (N, C, H, W) <-> (C, H, W, N), the batch-innermost layout.
Tensor to_pn(const Tensor& t) {
  const int64_t N = t.shape()[0], CHW = t.numel() / N;
  Tensor o({t.shape()[1], t.shape()[2], t.shape()[3], N});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < CHW; ++i) o.f32()[i * N + n] = t.f32()[n * CHW + i];
  return o;
}
// (C, H, W, N) inside a border of ph rows and pw columns filled with `fill`, and back.
Tensor pad_pn(const Tensor& t, int ph, int pw, float fill) {
  const int64_t C = t.shape()[0], H = t.shape()[1], W = t.shape()[2], N = t.shape()[3];
  Tensor o({C, H + 2 * ph, W + 2 * pw, N});
  std::fill_n(o.f32(), o.numel(), fill);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t h = 0; h < H; ++h)
      std::copy_n(t.f32() + (c * H + h) * W * N, W * N,
                  o.f32() + ((c * (H + 2 * ph) + h + ph) * (W + 2 * pw) + pw) * N);
  return o;
}
Tensor crop_pn(const Tensor& t, int ph, int pw) {
  const int64_t C = t.shape()[0], H = t.shape()[1] - 2 * ph, W = t.shape()[2] - 2 * pw, N = t.shape()[3];
  Tensor o({C, H, W, N});
  for (int64_t c = 0; c < C; ++c)
    for (int64_t h = 0; h < H; ++h)
      std::copy_n(t.f32() + ((c * (H + 2 * ph) + h + ph) * (W + 2 * pw) + pw) * N, W * N,
                  o.f32() + (c * H + h) * W * N);
  return o;
}
Tensor from_pn(const Tensor& t) {
  const int64_t N = t.shape()[3], CHW = t.numel() / N;
  Tensor o({N, t.shape()[0], t.shape()[1], t.shape()[2]});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < CHW; ++i) o.f32()[n * CHW + i] = t.f32()[i * N + n];
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
    const std::vector<int64_t> pos = pattern_positions(csr->w);
    for (int64_t k = 0; k < csr->nnz(); ++k) dw_at.f32()[k] = w1.grad().f32()[pos[k]];
    check_close(dw_at, csr->values.grad());
  }
}

// One masked weight trained twice with the same options: pd dense and masked, pc sparse (the CSR
// state is its only storage).
struct DenseAndCsr {
  Parameter pd, pc;
  Optimizer od, oc;
  DenseAndCsr(const Tensor& mask, const Tensor& w0, const OptimizerOptions& opt)
      : pd("d", w0.clone(), true), pc("c", w0.clone(), true), od({&pd}, opt), oc({&pc}, opt) {
    pd.mask = mask.clone();
    pc.mask = mask.clone();
    to_sparse(pc);
  }
  // The same gradient g to both: dense to pd, at the nonzeros to pc's CSR values.
  void csr_step(const Tensor& g, float lr) {
    od.zero_grad();
    oc.zero_grad();
    pd.var.grad() = g;
    Tensor gv(Shape{pc.csr->nnz()});
    const std::vector<int64_t> pos = pattern_positions(pc.csr->w);
    for (int64_t k = 0; k < pc.csr->nnz(); ++k) gv.f32()[k] = g.f32()[pos[k]];
    pc.csr->values.grad() = gv;
    od.step(lr);
    oc.step(lr);
  }
  // pc's weight and state equal pd's: at the pattern when pc is sparse, everywhere when dense.
  void check_same() {
    check_close(pd.var.value(), dense_value(pc), 1e-5);
    auto sd = od.state(), sc = oc.state();
    REQUIRE(sd.size() == sc.size());
    for (size_t i = 0; i < sd.size(); ++i) {
      if (pc.dense()) {
        check_close(*sd[i].second, *sc[i].second, 1e-5);
        continue;
      }
      REQUIRE(sc[i].second->numel() == pc.csr->nnz());  // compact: nothing of the dense shape
      Tensor at(Shape{pc.csr->nnz()});
      gather_at_pattern(pc.csr->w, sd[i].second->f32(), at.f32());
      check_close(at, *sc[i].second, 1e-5);
    }
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

// sparse_linear with its relu in the node against sparse_linear then relu: y, dx, dW, db and RigL's
// factors bit for bit, with and without a bias, with the bias and x wanting no gradient, at batch
// sizes on each side of the 32-row tiles.
TEST_CASE("sparse_linear with relu equals relu(sparse_linear) bit for bit") {
  auto bits = [](const Tensor& a, const Tensor& b) {
    REQUIRE(a.numel() == b.numel());
    return std::equal(a.f32(), a.f32() + a.numel(), b.f32());
  };
  for (double sp : {0.0, 0.5, 0.95, 1.0})
    for (int bias = 0; bias < 3; ++bias)  // none, wanting a gradient, fixed
      for (auto [B, IN, OUT] : {std::tuple{7, 96, 40}, std::tuple{45, 55, 17}, std::tuple{64, 300, 100}}) {
        CAPTURE(sp);
        CAPTURE(bias);
        CAPTURE(B);
        const Shape ws{OUT, IN};
        Tensor mask = random_mask(ws, sp, 41);
        auto csr = make_csr_weight(masked(random_tensor(ws, 42), mask), mask.u8());
        Tensor x = random_tensor({B, IN}, 43), b = random_tensor({OUT}, 44), dy = random_tensor({B, OUT}, 45);
        for (int64_t i = 0; i < dy.numel(); i += 13) x.f32()[i % x.numel()] = 0.f;
        auto run = [&](bool fused) {
          csr->values.grad() = Tensor();
          csr->factors = {};
          csr->factors.capture = true;
          Variable xv(x, bias != 2), bv = bias ? Variable(b, bias == 1) : Variable();
          Variable y = fused ? sparse_linear(xv, csr, bv, true) : relu(sparse_linear(xv, csr, bv));
          if (fused) CHECK(std::string(y.grad_fn()->name()) == "sparse_linear_relu");
          y.backward(dy);
          std::vector<Tensor> r{y.value().clone()};
          if (bias != 2) r.push_back(xv.grad().clone());
          if (bias == 1) r.push_back(bv.grad().clone());
          if (csr->nnz() > 0) r.push_back(csr->values.grad().clone());
          return std::make_pair(r, csr->factors);
        };
        const auto [want, want_f] = run(false);
        const auto [got, got_f] = run(true);
        REQUIRE(got.size() == want.size());
        for (size_t i = 0; i < got.size(); ++i) CHECK(bits(got[i], want[i]));
        CHECK(got_f.dy == want_f.dy);
        CHECK(got_f.x == want_f.x);
        csr->factors = {};
      }
}

TEST_CASE("sparse_linear_fm (feature-major) equals masked dense linear through transpose2d") {
  for (double sp : {0.0, 0.5, 0.95, 1.0})
    for (bool bias : {true, false})
      for (auto [B, IN, OUT] : {std::tuple{7, 96, 40}, std::tuple{11, 55, 8}, std::tuple{1, 3, 5},
                                std::tuple{130, 37, 19}})
        compare({B, IN}, {OUT, IN}, sp, bias,
                [](auto& x, auto& w, auto& b) { return linear(x, w, b); },
                [](auto& x, auto& w, auto& b) { return transpose2d(sparse_linear_fm(transpose2d(x), w, b)); });
}

TEST_CASE("sparse_linear_fm keeps RigL's gradient factors batch-major, as sparse_linear does") {
  const Shape ws{6, 13};
  Tensor mask = random_mask(ws, 0.6, 31);
  auto csr = make_csr_weight(masked(random_tensor(ws, 32), mask), mask.u8());
  Tensor x = random_tensor({9, 13}, 33), dy = random_tensor({9, 6}, 34);
  auto factors = [&](bool fm) {
    csr->factors = {};
    csr->factors.capture = true;
    Variable xv(x, true);
    Variable y = fm ? transpose2d(sparse_linear_fm(transpose2d(xv), csr, Variable()))
                    : sparse_linear(xv, csr, Variable());
    y.backward(dy);
    return csr->factors;
  };
  const auto want = factors(false), got = factors(true);
  CHECK(got.rows == want.rows);
  CHECK(got.x == want.x);
  CHECK(got.dy == want.dy);
  csr->factors = {};
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
  run({3, 9}, {5, 9}, [](auto& x, auto& w, auto& b) { return sparse_linear(x, w, b, true); });
  run({3, 9}, {5, 9}, [](auto& x, auto& w, auto& b) { return transpose2d(sparse_linear_fm(transpose2d(x), w, b)); });
  Conv2dOptions o{2, 1, 1, 0};
  run({2, 2, 6, 5}, {3, 2, 3, 2}, [o](auto& x, auto& w, auto& b) { return sparse_conv2d(x, w, b, o); });
  // Pooled (relu before a max: the finite differences stay clear of ties at this size).
  Pool2dOptions p{2, 2, 2, 2, 0, 0};
  for (bool r : {false, true})
    run({2, 2, 7, 6}, {3, 2, 3, 3}, [o = Conv2dOptions{1, 1, 1, 1}, p, r](auto& x, auto& w, auto& b) {
      return sparse_conv2d_pool(x, w, b, o, r, p);
    });
  // Batch innermost in and out: x is (C, H + 2, W + 2, N), the padded input itself (its border
  // perturbed too), and the output carries a border. (With eps = 1e-2 a max or relu near a tie
  // breaks the difference quotient; these values stay clear of one.)
  for (int border : {0, 1})
    run({2, 6, 6, 2}, {3, 2, 3, 3}, [o = Conv2dOptions{1, 1, 1, 1}, p, border](auto& x, auto& w, auto& b) {
      return sparse_conv2d_pool(x, w, b, o, true, p, true, true, border, border + 1);
    });
}

// Bit for bit but the bias gradient (the same values summed in double in another order).
TEST_CASE("sparse_conv2d_pool equals sparse_conv2d, relu and max_pool2d bit for bit, in either layout") {
  struct Case { Shape x, w; Conv2dOptions o; Pool2dOptions p; };
  const std::vector<Case> cases = {
      {{5, 3, 8, 8}, {6, 3, 3, 3}, {1, 1, 1, 1}, {2, 2, 2, 2, 0, 0}},
      {{3, 2, 9, 7}, {4, 2, 3, 2}, {1, 1, 0, 0}, {2, 2, 2, 2, 0, 0}},   // rows and columns left over
      {{2, 1, 12, 12}, {3, 1, 5, 5}, {1, 1, 0, 0}, {3, 2, 3, 2, 0, 0}},
      {{17, 2, 6, 6}, {2, 2, 3, 3}, {2, 2, 1, 1}, {1, 1, 1, 1, 0, 0}},
  };
  for (const Case& c : cases)
    for (double sp : {0.0, 0.7, 1.0})
      for (bool relu_on : {false, true})
        for (bool bias : {false, true}) {
          CAPTURE(sp);
          CAPTURE(relu_on);
          CAPTURE(bias);
          REQUIRE(sparse_conv2d_pool_fits(c.p));
          Tensor mask = random_mask(c.w, sp, 31);
          Tensor wv = masked(random_tensor(c.w, 32), mask);
          Tensor xv = random_tensor(c.x, 33);
          Tensor bv = random_tensor({c.w[0]}, 34);
          // mode 0: the three ops; 1: the fused node in NCHW; 2: the fused node with its input
          // batch innermost and padded, its output batch innermost inside a border of 1×2 (the
          // next conv's padding): compared after cropping and permuting back, the output's
          // border zeros, NaN in its gradient's border unread.
          const int bh = 1, bw = 2;
          auto run = [&](int mode) {
            auto csr = make_csr_weight(wv, mask.u8());
            Variable x(mode == 2 ? pad_pn(to_pn(xv), c.o.pad_h, c.o.pad_w, 0.0f) : xv.clone(), true);
            Variable b = bias ? Variable(bv.clone(), true) : Variable();
            Variable y;
            if (mode > 0) {
              y = sparse_conv2d_pool(x, csr, b, c.o, relu_on, c.p, mode == 2, mode == 2,
                                     mode == 2 ? bh : 0, mode == 2 ? bw : 0);
            } else {
              y = sparse_conv2d(x, csr, b, c.o);
              if (relu_on) y = relu(y);
              y = max_pool2d(y, c.p);
            }
            if (mode == 2) {
              Tensor zeros = pad_pn(crop_pn(y.value(), bh, bw), bh, bw, 0.0f);
              CHECK(std::equal(zeros.f32(), zeros.f32() + zeros.numel(), y.value().f32()));
            }
            const Shape ys = mode == 2 ? Shape{y.shape()[3], y.shape()[0], y.shape()[1] - 2 * bh,
                                               y.shape()[2] - 2 * bw}
                                       : y.shape();
            Tensor dy = random_tensor(ys, 35);
            y.backward(mode == 2 ? pad_pn(to_pn(dy), bh, bw, std::nanf("")) : dy);
            std::vector<Tensor> out{
                mode == 2 ? from_pn(crop_pn(y.value(), bh, bw)) : y.value(),
                mode == 2 ? from_pn(crop_pn(x.grad(), c.o.pad_h, c.o.pad_w)) : x.grad()};
            if (bias) out.push_back(b.grad());
            if (csr->nnz() > 0) out.push_back(csr->values.grad());
            return out;
          };
          const std::vector<Tensor> want = run(0);
          for (int mode : {1, 2}) {
            CAPTURE(mode);
            const std::vector<Tensor> got = run(mode);
            REQUIRE(got.size() == want.size());
            for (size_t i = 0; i < got.size(); ++i) {
              REQUIRE(got[i].shape() == want[i].shape());
              if (bias && i == 2) {  // the same values summed in double in another order
                for (int64_t k = 0; k < got[i].numel(); ++k)
                  CHECK(std::fabs(got[i].f32()[k] - want[i].f32()[k]) <=
                        1e-6f * (std::fabs(want[i].f32()[k]) + 1.0f));
              } else {
                CHECK(std::equal(got[i].f32(), got[i].f32() + got[i].numel(), want[i].f32()));
              }
            }
          }
        }
  Pool2dOptions overlapping{3, 3, 2, 2, 0, 0}, padded{2, 2, 2, 2, 1, 1};
  CHECK_FALSE(sparse_conv2d_pool_fits(overlapping));
  CHECK_FALSE(sparse_conv2d_pool_fits(padded));
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
    Parameter& pc = t.pc;
    Optimizer& oc = t.oc;
    // One representation: the sparse weight holds no dense value, grad or mask.
    CHECK(pc.sparse());
    CHECK_FALSE(pc.var.value().defined());
    CHECK_FALSE(pc.mask.defined());
    for (int step = 0; step < 6; ++step) t.csr_step(random_tensor(s, 40 + step), 0.05f);
    t.check_same();
    // W's values, the `values` Variable and Wt (refreshed when read after a step) agree.
    CHECK_FALSE(pc.csr->wt_current);
    const kernels::CsrMatrix& wt = transposed(*pc.csr);
    CHECK(pc.csr->wt_current);
    for (int64_t k = 0; k < pc.csr->nnz(); ++k) {
      CHECK(pc.csr->values.value().f32()[k] == pc.csr->w.values[k]);
      CHECK(wt.values[k] == pc.csr->w.values[pc.csr->perm[k]]);
    }
    // State bytes: 4 per nonzero per slot, nothing dense.
    const int64_t slots = type == OptimizerType::sgd ? 1 : 2;
    CHECK(oc.bytes() == slots * 4 * pc.csr->nnz());
  }
}

// The optimizer state follows its weight's form (core/optim.h): compact while sparse, dense while
// dense, converted by position at each switch and pattern change; edits through state() (the pruner
// zeroing entries) land in whichever form is current. The sparse twin tracks the masked dense run.
TEST_CASE("optimizer: the state follows the weight through state() edits, form switches and new patterns") {
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
    auto dense_step = [&] {  // e.g. a RigL step: pc goes dense for it and back
      to_dense(pc);
      CHECK(pc.mask.defined());
      Tensor g = masked(grad(), pd.mask);
      od.zero_grad();
      oc.zero_grad();
      pd.var.grad() = g;
      pc.var.grad() = g.clone();
      od.step(0.05f);
      oc.step(0.05f);
      to_sparse(pc);
    };
    // Zeroes the state of every third dense position that is kept, through state().
    auto edit_state = [](Optimizer& o, const Parameter& p) {
      std::vector<int64_t> pos;
      if (p.sparse()) pos = pattern_positions(p.csr->w);
      for (auto& [name, t] : o.state()) {
        if (p.sparse()) {
          for (int64_t k = 0; k < t->numel(); ++k)
            if (pos[k] % 3 == 0) t->f32()[k] = 0.f;
        } else {
          for (int64_t i = 0; i < t->numel(); i += 3)
            if (p.mask.u8()[i]) t->f32()[i] = 0.f;
        }
      }
    };
    csr_step();
    csr_step();
    edit_state(od, pd);
    edit_state(oc, pc);
    csr_step();
    t.check_same();
    // A new pattern, as a dense pruner makes it: pc goes dense, entries are pruned (weight and state
    // zeroed) and regrown (state zeroed), and pc goes sparse again with the new pattern.
    Tensor mask2 = random_mask(s, 0.7, 63);
    csr_step();
    to_dense(pc);
    for (Parameter* p : {&pd, &pc}) {
      Optimizer& o = p == &pd ? od : oc;
      for (auto& [name, t] : o.state()) {
        REQUIRE(t->numel() == mask2.numel());
        for (int64_t i = 0; i < t->numel(); ++i)
          if (mask.u8()[i] != mask2.u8()[i]) t->f32()[i] = 0.f;
      }
      p->mask = mask2.clone();
      p->var.value() = masked(p->var.value(), mask2);
      ++p->mask_version;
    }
    to_sparse(pc);
    csr_step();
    csr_step();
    dense_step();
    csr_step();
    t.check_same();
    // A pattern change with no state() call in between: the old compact state is carried by position.
    to_dense(pc);
    to_sparse(pc);
    csr_step();
    t.check_same();
  }
}

// carry(): a pattern change whose origin the caller knows (SET's regrowth) maps each new nonzero's
// state from its source, and a regrown entry starts at zero.
TEST_CASE("optimizer: carry() maps compact state to a new pattern by source") {
  OptimizerOptions opt;
  opt.type = OptimizerType::adam;
  const Shape s{5, 8};
  Tensor mask = random_mask(s, 0.5, 81);
  Parameter p("w", masked(random_tensor(s, 82), mask), true);
  p.mask = mask;
  to_sparse(p);
  Optimizer o({&p}, opt);
  for (int i = 0; i < 2; ++i) {
    o.zero_grad();
    p.csr->values.grad() = random_tensor(Shape{p.csr->nnz()}, 83 + i);
    o.step(0.1f);
  }
  std::vector<Tensor> before;
  for (auto& [name, t] : o.state()) before.push_back(t->clone());
  // The new pattern: the old one reversed in order of values, the first half kept, plus new entries.
  kernels::CsrMatrix w = p.csr->w;
  const int64_t n = w.nnz();
  std::vector<int64_t> source(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) source[k] = k % 2 ? -1 : n - 1 - k;  // any map will do
  p.csr = make_csr_weight(w, s, Device::cpu);
  ++p.mask_version;
  o.carry(p, source);
  auto after = o.state();
  REQUIRE(after.size() == before.size());
  for (size_t i = 0; i < after.size(); ++i)
    for (int64_t k = 0; k < n; ++k)
      CHECK(after[i].second->f32()[k] == (source[k] >= 0 ? before[i].f32()[source[k]] : 0.f));
}

// A step the pruner acts in computes its gradient densely; the switch back to sparse before the
// optimizer step must carry it, so the step equals the masked dense one (and back the other way).
TEST_CASE("to_sparse / to_dense carry a gradient present, so the next step is the masked dense step") {
  OptimizerOptions opt;
  opt.weight_decay = 0.01f;
  const Shape s{9, 14};
  Tensor mask = random_mask(s, 0.6, 91);
  DenseAndCsr t(mask, masked(random_tensor(s, 92), mask), opt);
  t.csr_step(random_tensor(s, 93), 0.1f);
  to_dense(t.pc);
  const Tensor g = masked(random_tensor(s, 94), mask);
  t.od.zero_grad();
  t.oc.zero_grad();
  t.pd.var.grad() = g;
  t.pc.var.grad() = g.clone();
  to_sparse(t.pc);  // the gradient moves to the CSR values
  REQUIRE(t.pc.csr->values.has_grad());
  t.od.step(0.1f);
  t.oc.step(0.1f);
  t.check_same();
  // Sparse -> dense with a gradient at the nonzeros: scattered, zeros elsewhere.
  t.oc.zero_grad();
  t.pc.csr->values.grad() = random_tensor(Shape{t.pc.csr->nnz()}, 95);
  const Tensor gv = t.pc.csr->values.grad().clone();
  to_dense(t.pc);
  REQUIRE(t.pc.var.has_grad());
  const std::vector<int64_t> pos = [&] {
    Parameter q("q", t.pc.var.value().clone(), true);
    q.mask = t.pc.mask.clone();
    to_sparse(q);
    return pattern_positions(q.csr->w);
  }();
  Tensor expect = Tensor::zeros(s);
  for (size_t k = 0; k < pos.size(); ++k) expect.f32()[pos[k]] = gv.f32()[k];
  for (int64_t i = 0; i < expect.numel(); ++i) CHECK(t.pc.var.grad().f32()[i] == expect.f32()[i]);
}
