// Finite-difference gradient checks for every op, on both dense backends, plus forward values
// against hand-computed cases.
#include <doctest/doctest.h>

#include "core/ops.h"
#include "gradcheck.h"

using namespace st;
using st::test::gradcheck_error;
using st::test::random_tensor;

namespace {
constexpr double kTol = 2e-2;  // float32 central differences with eps = 1e-2

struct BackendGuard {
  explicit BackendGuard(DenseBackend b) : prev(dense_backend()) { set_dense_backend(b); }
  ~BackendGuard() { set_dense_backend(prev); }
  DenseBackend prev;
};
}  // namespace

TEST_CASE("linear: gradients on both backends, with and without bias") {
  for (DenseBackend b : {DenseBackend::native, DenseBackend::onednn}) {
    BackendGuard g(b);
    CAPTURE(dense_backend_name(b));
    Tensor x = random_tensor({3, 5}, 1), w = random_tensor({4, 5}, 2), bias = random_tensor({4}, 3);
    CHECK(gradcheck_error([](auto& in) { return linear(in[0], in[1], in[2]); }, {x, w, bias}) < kTol);
    CHECK(gradcheck_error([](auto& in) { return linear(in[0], in[1], Variable()); }, {x, w}) < kTol);
    // only some inputs need grad
    CHECK(gradcheck_error([](auto& in) { return linear(in[0], in[1], in[2]); }, {x, w, bias},
                          {false, true, false}) < kTol);
  }
}

TEST_CASE("linear: forward matches a hand-computed case") {
  Variable x(Tensor::from_vector({1, 2}, std::vector<float>{1, 2}));
  Variable w(Tensor::from_vector({2, 2}, std::vector<float>{1, 0, 3, -1}));
  Variable b(Tensor::from_vector({2}, std::vector<float>{0.5f, 0}));
  for (DenseBackend be : {DenseBackend::native, DenseBackend::onednn}) {
    BackendGuard g(be);
    auto y = linear(x, w, b).value().to_vector();
    CHECK(y[0] == doctest::Approx(1.5));
    CHECK(y[1] == doctest::Approx(1.0));
  }
}

// With the oneDNN backend on a vector instruction set the first two cases run the direct
// batch-innermost conv (kernels/conv_pn.h: channel counts oneDNN does not block), the third
// (one input channel) runs oneDNN.
TEST_CASE("conv2d: gradients with stride, padding, odd sizes, both backends") {
  struct Case { Shape x, w; Conv2dOptions o; };
  std::vector<Case> cases = {
      {{2, 3, 7, 6}, {4, 3, 3, 3}, {1, 1, 0, 0}},
      {{1, 2, 8, 9}, {3, 2, 3, 2}, {2, 1, 1, 0}},
      {{3, 1, 5, 5}, {2, 1, 5, 5}, {1, 1, 2, 2}},
  };
  for (DenseBackend b : {DenseBackend::native, DenseBackend::onednn}) {
    BackendGuard g(b);
    CAPTURE(dense_backend_name(b));
    for (const Case& c : cases) {
      Tensor x = random_tensor(c.x, 4), w = random_tensor(c.w, 5), bias = random_tensor({c.w[0]}, 6);
      auto f = [&](auto& in) { return conv2d(in[0], in[1], in[2], c.o); };
      CHECK(gradcheck_error(f, {x, w, bias}) < kTol);
      auto nb = [&](auto& in) { return conv2d(in[0], in[1], Variable(), c.o); };
      CHECK(gradcheck_error(nb, {x, w}) < kTol);
      // only some inputs need grad
      CHECK(gradcheck_error(f, {x, w, bias}, {true, false, false}) < kTol);
      CHECK(gradcheck_error(f, {x, w, bias}, {false, true, true}) < kTol);
      // the input used twice: its gradient accumulates
      auto twice = [&](auto& in) { return add(conv2d(in[0], in[1], in[2], c.o), conv2d(in[0], in[1], in[2], c.o)); };
      CHECK(gradcheck_error(twice, {x, w, bias}) < kTol);
    }
  }
}

TEST_CASE("conv2d: backends agree on the forward") {
  Tensor x = random_tensor({4, 3, 11, 9}, 7), w = random_tensor({5, 3, 3, 3}, 8),
         b = random_tensor({5}, 9);
  Conv2dOptions o{2, 1, 1, 1};
  std::vector<float> y[2];
  int k = 0;
  for (DenseBackend be : {DenseBackend::native, DenseBackend::onednn}) {
    BackendGuard g(be);
    y[k++] = conv2d(Variable(x), Variable(w), Variable(b), o).value().to_vector();
  }
  REQUIRE(y[0].size() == y[1].size());
  for (size_t i = 0; i < y[0].size(); ++i) CHECK(y[0][i] == doctest::Approx(y[1][i]).epsilon(1e-4));
}

TEST_CASE("pooling: gradients (max and avg, with padding and odd sizes)") {
  // Distinct values so max pooling has no ties within eps.
  Tensor x({2, 3, 7, 5});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = static_cast<float>((i * 37) % 101) * 0.05f;
  for (Pool2dOptions o : {Pool2dOptions{2, 2, 2, 2, 0, 0}, Pool2dOptions{3, 2, 2, 1, 1, 0}}) {
    CHECK(gradcheck_error([&](auto& in) { return max_pool2d(in[0], o); }, {x}, {}, 1e-3f) < kTol);
    CHECK(gradcheck_error([&](auto& in) { return avg_pool2d(in[0], o); }, {x}) < kTol);
  }
}

TEST_CASE("relu, flatten, add: gradients") {
  Tensor x({4, 6});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = (i % 2 ? 1 : -1) * (0.1f + 0.03f * i);
  CHECK(gradcheck_error([](auto& in) { return relu(in[0]); }, {x}) < kTol);
  Tensor y = random_tensor({2, 3, 2, 2}, 10);
  CHECK(gradcheck_error([](auto& in) { return flatten(in[0]); }, {y}) < kTol);
  Tensor a = random_tensor({3, 4}, 11), b = random_tensor({3, 4}, 12);
  CHECK(gradcheck_error([](auto& in) { return add(in[0], in[1]); }, {a, b}) < kTol);
  // The same input used twice accumulates its gradient.
  CHECK(gradcheck_error([](auto& in) { return add(relu(in[0]), in[0]); }, {x}) < kTol);
}

TEST_CASE("dropout: gradient with a fixed mask, identity in eval mode, expected keep rate") {
  Tensor x = random_tensor({8, 16}, 13);
  // Re-seeding the generator at every call fixes the mask for the finite differences.
  auto f = [](auto& in) {
    Rng rng(99);
    return dropout(in[0], 0.3f, true, rng);
  };
  CHECK(gradcheck_error(f, {x}) < kTol);
  Rng rng(1);
  Variable v(x);
  Variable e = dropout(v, 0.5f, false, rng);
  CHECK(e.value().same_storage(x));
  Tensor big = Tensor::full({100000}, 1.f);
  Variable d = dropout(Variable(big), 0.25f, true, rng);
  double kept = 0;
  for (float f : d.value().to_vector()) {
    CHECK((f == 0.f || f == doctest::Approx(1 / 0.75f)));
    kept += f != 0.f;
  }
  CHECK(kept / 100000 == doctest::Approx(0.75).epsilon(0.02));
}

TEST_CASE("softmax_cross_entropy: gradient and value") {
  Tensor logits = random_tensor({5, 7}, 14, -3, 3);
  Tensor labels = Tensor::from_vector({5}, std::vector<int32_t>{0, 6, 3, 3, 1});
  CHECK(gradcheck_error([&](auto& in) { return softmax_cross_entropy(in[0], labels); }, {logits}) <
        kTol);
  // Uniform logits: loss = log(C).
  Variable u(Tensor::zeros({2, 4}));
  Tensor l2 = Tensor::from_vector({2}, std::vector<int32_t>{1, 2});
  CHECK(softmax_cross_entropy(u, l2).value().f32()[0] == doctest::Approx(std::log(4.0)));
  // Huge logits stay finite.
  Variable h(Tensor::from_vector({1, 3}, std::vector<float>{1000.f, -1000.f, 0.f}));
  Tensor l1 = Tensor::from_vector({1}, std::vector<int32_t>{0});
  CHECK(softmax_cross_entropy(h, l1).value().f32()[0] == doctest::Approx(0.0));
}

TEST_CASE("bad shapes and labels are clear errors") {
  Variable x(Tensor::zeros({2, 3})), w(Tensor::zeros({4, 5}));
  CHECK_THROWS_WITH_AS(linear(x, w, Variable()), doctest::Contains("does not match weight"), Error);
  Variable logits(Tensor::zeros({2, 3}));
  Tensor bad = Tensor::from_vector({2}, std::vector<int32_t>{0, 3});
  CHECK_THROWS_WITH_AS(softmax_cross_entropy(logits, bad), doctest::Contains("label 3"), Error);
}

TEST_CASE("count_correct") {
  Tensor logits = Tensor::from_vector({3, 2}, std::vector<float>{1, 0, 0, 1, 5, 4});
  Tensor labels = Tensor::from_vector({3}, std::vector<int32_t>{0, 0, 0});
  CHECK(count_correct(logits, labels) == 2);
}

TEST_CASE("distillation_loss: gradient, and hand-computed values") {
  Tensor labels = Tensor::from_vector({3}, std::vector<int32_t>{0, 2, 1});
  Tensor teacher = random_tensor({3, 4}, 9, -2.f, 2.f);
  Tensor logits = random_tensor({3, 4}, 8, -2.f, 2.f);
  for (float T : {1.f, 4.f})
    for (float alpha : {0.f, 0.5f, 1.f}) {
      CAPTURE(T);
      CAPTURE(alpha);
      CHECK(gradcheck_error([&](auto& in) { return distillation_loss(in[0], labels, teacher, T, alpha); },
                            {logits}, {}, 1e-3f) < kTol);
    }
  // alpha = 0 is plain cross-entropy.
  Variable z(logits);
  CHECK(distillation_loss(z, labels, teacher, 4.f, 0.f).value().f32()[0] ==
        doctest::Approx(softmax_cross_entropy(z, labels).value().f32()[0]).epsilon(1e-5));
  // One sample, two classes, student logits (0, 0), teacher (ln 3, 0) at T = 1: p_t = (3/4, 1/4),
  // p_s = (1/2, 1/2), KL = 3/4 ln(3/2) + 1/4 ln(1/2).
  Variable s1(Tensor::from_vector({1, 2}, std::vector<float>{0, 0}));
  Tensor t1 = Tensor::from_vector({1, 2}, std::vector<float>{std::log(3.f), 0});
  Tensor l1 = Tensor::from_vector({1}, std::vector<int32_t>{0});
  const double kl = 0.75 * std::log(1.5) + 0.25 * std::log(0.5);
  CHECK(distillation_loss(s1, l1, t1, 1.f, 1.f).value().f32()[0] == doctest::Approx(kl).epsilon(1e-5));
  // Same at T = 2: logits/T = (ln 3 / 2, 0): p_t = (√3/(√3+1), 1/(√3+1)); loss = T²·KL.
  const double a = std::sqrt(3.0) / (std::sqrt(3.0) + 1), b = 1 - a;
  const double kl2 = a * std::log(2 * a) + b * std::log(2 * b);
  CHECK(distillation_loss(s1, l1, t1, 2.f, 1.f).value().f32()[0] == doctest::Approx(4 * kl2).epsilon(1e-5));
}
