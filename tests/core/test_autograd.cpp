#include <doctest/doctest.h>

#include "core/allocator.h"
#include "core/lr_schedule.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/rng.h"
#include "gradcheck.h"

using namespace st;

TEST_CASE("tensor: shapes, views, clone, dtypes") {
  Tensor t = Tensor::zeros({2, 3, 4});
  CHECK(t.numel() == 24);
  CHECK(t.nbytes() == 96);
  CHECK(t.dim(-1) == 4);
  Tensor v = t.reshape({6, 4});
  CHECK(v.same_storage(t));
  v.f32()[5] = 3.f;
  CHECK(t.f32()[5] == 3.f);
  Tensor c = t.clone();
  CHECK_FALSE(c.same_storage(t));
  CHECK(c.f32()[5] == 3.f);
  Tensor e({0, 5});
  CHECK(e.numel() == 0);
  Tensor i = Tensor::zeros({3}, DType::i32);
  CHECK(i.nbytes() == 12);
  CHECK_THROWS_AS(i.f32(), std::logic_error);
  CHECK(shape_str({64, 1, 28, 28}) == "(64, 1, 28, 28)");
}

TEST_CASE("allocator: freed blocks are reused") {
  { Tensor a({1000, 17}); }
  auto before = host_allocator_stats();
  { Tensor b({1000, 17}); }
  auto after = host_allocator_stats();
  CHECK(after.cached_reuses == before.cached_reuses + 1);
  CHECK(after.system_allocs == before.system_allocs);
}

TEST_CASE("backward: a chain, shared inputs accumulate, leaves keep grads, no-grad records nothing") {
  Variable x(test::random_tensor({2, 3}, 1), true);
  Variable w(test::random_tensor({3, 3}, 2), true);
  Variable h = linear(x, w, Variable());
  Variable y = add(relu(h), h);  // h used twice
  Tensor labels = Tensor::from_vector({2}, std::vector<int32_t>{0, 2});
  Variable loss = softmax_cross_entropy(y, labels);
  loss.backward();
  CHECK(x.has_grad());
  CHECK(w.has_grad());
  CHECK_FALSE(h.has_grad());  // intermediate grads are freed
  CHECK(loss.grad_fn() == nullptr);  // the graph is consumed
  // Grads accumulate across backward calls until zero_grad.
  std::vector<float> g1 = w.grad().to_vector();
  Variable loss2 = softmax_cross_entropy(add(relu(linear(x, w, Variable())), linear(x, w, Variable())),
                                         labels);
  loss2.backward();
  std::vector<float> g2 = w.grad().to_vector();
  for (size_t i = 0; i < g1.size(); ++i) CHECK(g2[i] == doctest::Approx(2 * g1[i]));
  w.zero_grad();
  CHECK_FALSE(w.has_grad());
  {
    NoGradGuard ng;
    Variable z = linear(x, w, Variable());
    CHECK_FALSE(z.requires_grad());
    CHECK(z.grad_fn() == nullptr);
  }
  CHECK(grad_enabled());
}

TEST_CASE("backward: a deep graph does not recurse") {
  Variable x(Tensor::full({4}, 1.f), true);
  Variable h = x;
  for (int i = 0; i < 20000; ++i) h = relu(h);
  h.backward(Tensor::full({4}, 1.f));
  CHECK(x.grad().to_vector()[0] == 1.f);
}

TEST_CASE("rng: deterministic, state round-trips, distributions look right") {
  Rng a(42), b(42);
  for (int i = 0; i < 10; ++i) CHECK(a.next_u64() == b.next_u64());
  auto s = a.state();
  uint64_t next = a.next_u64();
  b.set_state(s);
  CHECK(b.next_u64() == next);
  Rng r(7);
  double sum = 0, sq = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    double z = r.normal();
    sum += z;
    sq += z * z;
  }
  CHECK(sum / n == doctest::Approx(0).epsilon(0.01).scale(1));
  CHECK(sq / n == doctest::Approx(1).epsilon(0.02));
  int counts[5] = {};
  for (int i = 0; i < 50000; ++i) counts[r.below(5)]++;
  for (int c : counts) CHECK(c == doctest::Approx(10000).epsilon(0.05));
  float u = r.uniform();
  CHECK((u >= 0.f && u < 1.f));
}

TEST_CASE("optimizer: SGD with momentum matches hand-computed steps; masks keep weights and state at 0") {
  Parameter p("w", Tensor::from_vector({3}, std::vector<float>{1.f, 2.f, 3.f}), true);
  p.mask = Tensor::zeros({3}, DType::u8);
  p.mask.u8()[0] = p.mask.u8()[1] = 1;  // w[2] pruned
  OptimizerOptions o;
  o.momentum = 0.9f;
  o.weight_decay = 0.1f;
  Optimizer opt({&p}, o);
  p.var.grad() = Tensor::from_vector({3}, std::vector<float>{0.5f, -1.f, 7.f});
  opt.step(0.1f);
  // g' = g + 0.1 w = (0.6, -0.8); buf = g'; w -= 0.1 buf
  auto w = p.var.value().to_vector();
  CHECK(w[0] == doctest::Approx(0.94));
  CHECK(w[1] == doctest::Approx(2.08));
  CHECK(w[2] == 0.f);
  opt.step(0.1f);  // same grad: g' = (0.5+0.094, -1+0.208) ; buf = 0.9 buf + g'
  w = p.var.value().to_vector();
  CHECK(w[0] == doctest::Approx(0.94 - 0.1 * (0.9 * 0.6 + 0.594)));
  CHECK(w[1] == doctest::Approx(2.08 - 0.1 * (0.9 * -0.8 + -0.792)));
  CHECK(w[2] == 0.f);
  auto st = opt.state();
  REQUIRE(st.size() == 1);
  CHECK(st[0].first == "w.momentum_buffer");
  CHECK(st[0].second->f32()[2] == 0.f);
}

TEST_CASE("optimizer: Adam first step moves each weight by lr·sign(g)") {
  Parameter p("w", Tensor::from_vector({2}, std::vector<float>{1.f, -1.f}), true);
  OptimizerOptions o;
  o.type = OptimizerType::adam;
  Optimizer opt({&p}, o);
  p.var.grad() = Tensor::from_vector({2}, std::vector<float>{0.3f, -2.f});
  opt.step(0.01f);
  auto w = p.var.value().to_vector();
  CHECK(w[0] == doctest::Approx(0.99).epsilon(1e-5));
  CHECK(w[1] == doctest::Approx(-0.99).epsilon(1e-5));
  CHECK(opt.state().size() == 2);
}

TEST_CASE("lr schedules: constant, step, cosine, warm-up") {
  LrScheduleOptions o;
  CHECK(LrSchedule(0.1f, 10, o).lr_at(5.5) == doctest::Approx(0.1));
  o.type = LrScheduleType::step;
  o.step_size = 3;
  o.gamma = 0.5f;
  LrSchedule s(0.1f, 10, o);
  CHECK(s.lr_at(2.9) == doctest::Approx(0.1));
  CHECK(s.lr_at(3.0) == doctest::Approx(0.05));
  CHECK(s.lr_at(6.5) == doctest::Approx(0.025));
  o.type = LrScheduleType::cosine;
  o.min_lr = 0.01f;
  o.warmup_epochs = 2;
  LrSchedule c(0.1f, 12, o);
  CHECK(c.lr_at(1.0) == doctest::Approx(0.05));
  CHECK(c.lr_at(2.0) == doctest::Approx(0.1));
  CHECK(c.lr_at(7.0) == doctest::Approx(0.055));
  CHECK(c.lr_at(12.0) == doctest::Approx(0.01));
  o.type = static_cast<LrScheduleType>(99);  // not a value of the enum
  CHECK_THROWS_WITH_AS(LrSchedule(0.1f, 3, o), doctest::Contains("lr_schedule.type"), Error);
}
