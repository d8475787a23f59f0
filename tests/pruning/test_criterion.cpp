// Each criterion against hand-computed scores on tiny models.
#include <doctest/doctest.h>

#include <cmath>

#include "pruning/criterion.h"
#include "pruning_test_util.h"

using namespace st;
using namespace st::pruning;
using namespace st::test;

namespace {
// One linear layer 2 → 2 without bias, W = I, one sample x = (1, 2), label 0.
// logits (1, 2), p = (1/(1+e), e/(1+e)), dlogits = (p0 − 1, p1) = (−q, q) with q = e/(1+e);
// dW = dlogitsᵀ x = [[−q, −2q], [q, 2q]].
struct Tiny {
  std::unique_ptr<models::Model> model = std::make_unique<models::Model>(Shape{2}, 1);
  FixedBatches batches;
  Tiny() {
    model->add(std::make_unique<models::Linear>("fc1", 2, 2, false));
    set_values(*model->parameters()[0], {1, 0, 0, 1});
    for (int i = 0; i < 2; ++i) {  // the same batch twice: means equal the one-batch values
      batches.xs.push_back(Tensor::from_vector({1, 2}, std::vector<float>{1, 2}));
      batches.ys.push_back(Tensor::from_vector({1}, std::vector<int32_t>{0}));
    }
  }
  std::vector<float> scores(CriterionType t) {
    CriterionConfig c;
    c.type = t;
    c.batches = 2;
    Rng rng(3);
    return compute_scores(c, *model, prunable_layers(*model), &batches, rng, 0)[0].elem;
  }
};
const double q = std::exp(1.0) / (1 + std::exp(1.0));
}  // namespace

TEST_CASE("criteria: magnitude, norms, gradient, taylor, fisher, random") {
  Tiny t;
  set_values(*t.model->parameters()[0], {1, -3, 0.5f, 1});
  CHECK(t.scores(CriterionType::Magnitude) == std::vector<float>{1, 3, 0.5f, 1});
  CHECK(t.scores(CriterionType::L1Norm) == std::vector<float>{1, 3, 0.5f, 1});
  CHECK(t.scores(CriterionType::L2Norm) == std::vector<float>{1, 9, 0.25f, 1});
  set_values(*t.model->parameters()[0], {1, 0, 0, 1});
  auto g = t.scores(CriterionType::Gradient);
  CHECK(g[0] == doctest::Approx(q));
  CHECK(g[1] == doctest::Approx(2 * q));
  CHECK(g[2] == doctest::Approx(q));
  CHECK(g[3] == doctest::Approx(2 * q));
  auto ty = t.scores(CriterionType::Taylor);
  CHECK(ty[0] == doctest::Approx(q));
  CHECK(ty[1] == 0);
  CHECK(ty[3] == doctest::Approx(2 * q));
  auto f = t.scores(CriterionType::Fisher);
  CHECK(f[0] == doctest::Approx(0.5 * q * q));
  CHECK(f[2] == 0);
  CHECK(f[3] == doctest::Approx(0.5 * 4 * q * q));
  CHECK(t.batches.passes == 3);
  // The model's gradients are left as they were (none).
  CHECK_FALSE(t.model->parameters()[0]->var.has_grad());
  auto r1 = t.scores(CriterionType::Random), r2 = t.scores(CriterionType::Random);
  CHECK(r1 == r2);  // same seed, same scores
  for (float v : r1) CHECK((v >= 0 && v < 1));
}

TEST_CASE("criteria: activation (mean |relu output| per unit) and neighbourhood sums") {
  auto m = mlp(2, 2, 2);
  set_values(*m->parameters()[0], {1, 0, 0, -1});  // fc1.weight
  set_values(*m->parameters()[1], {0, 0});         // fc1.bias
  set_values(*m->parameters()[2], {1, 2, 3, 4});   // fc2.weight
  FixedBatches b;
  b.xs.push_back(Tensor::from_vector({2, 2}, std::vector<float>{1, 2, 3, 1}));
  b.ys.push_back(Tensor::from_vector({2}, std::vector<int32_t>{0, 1}));
  CriterionConfig c;
  c.type = CriterionType::Activation;
  c.batches = 1;
  Rng rng(1);
  auto layers = prunable_layers(*m);
  auto s = compute_scores(c, *m, layers, &b, rng, 0);
  // unit 0: relu(1), relu(3) → mean 2; unit 1: relu(−2), relu(−1) → 0.
  CHECK(s[0].unit == std::vector<float>{2, 0});
  CHECK(s[0].elem == std::vector<float>{2, 2, 0, 0});
  // Neighbourhood: fc1 unit r = Σ|W1[r, :]| + Σ|W2[:, r]| → unit 0: 1 + (1 + 3), unit 1: 1 + (2 + 4).
  c.type = CriterionType::Neighbourhood;
  s = compute_scores(c, *m, layers, &b, rng, 0);
  CHECK(s[0].unit == std::vector<float>{5, 7});
  CHECK(s[1].unit == std::vector<float>{3, 7});  // the last layer: incoming only
}

TEST_CASE("prunable layers: shapes, MACs and how conv units feed a flattened linear layer") {
  auto m = std::make_unique<models::Model>(Shape{1, 6, 6}, 1);
  m->add(std::make_unique<models::Conv2d>("conv1", 1, 3, 3, 3, Conv2dOptions{}, true));
  m->add(std::make_unique<models::Pool2d>("pool1", models::Pool2d::Kind::max, Pool2dOptions{}));
  m->add(std::make_unique<models::Flatten>("flatten1"));
  m->add(std::make_unique<models::Linear>("fc1", 12, 5, true));
  auto L = prunable_layers(*m);
  REQUIRE(L.size() == 2);
  CHECK(L[0].rows == 3);
  CHECK(L[0].cols == 9);
  CHECK(L[0].area == 9);
  CHECK(L[0].dense_macs == 3 * 16 * 9);
  CHECK(L[0].next == 1);
  CHECK(L[0].span == 4);  // each filter becomes 2×2 = 4 features of fc1
  CHECK(L[1].next == -1);
  CHECK(L[1].dense_macs == 60);
}
