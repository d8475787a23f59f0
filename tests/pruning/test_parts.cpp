// Granularity groups, selection, ERK densities and the schedule formulas against hand-computed values.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "pruning/distribution.h"
#include "pruning/granularity.h"
#include "pruning/schedule.h"

using namespace st;
using namespace st::pruning;

namespace {
GranularityConfig gran(GranularityType t, int bh = 1, int bw = 4) {
  GranularityConfig g;
  g.type = t;
  g.block = {bh, bw};
  return g;
}
}  // namespace

TEST_CASE("granularity: group ids and reductions on a 2×4 weight") {
  // scores (rows 2, cols 4; a conv with 2 input channels of area 2)
  const std::vector<float> s = {1, 2, 3, 4, 5, 6, 7, 8};
  Groups e(gran(GranularityType::Element), 2, 4, 2);
  CHECK(e.count() == 8);
  CHECK(e.reduce(s.data(), nullptr, Reduction::Sum)[5] == 6);
  Groups n(gran(GranularityType::Neuron), 2, 4, 2);
  CHECK(n.count() == 2);
  CHECK(n.reduce(s.data(), nullptr, Reduction::Sum) == std::vector<double>{10, 26});
  CHECK(n.reduce(s.data(), nullptr, Reduction::Mean) == std::vector<double>{2.5, 6.5});
  CHECK(n.reduce(s.data(), nullptr, Reduction::RootSum)[0] == doctest::Approx(std::sqrt(10.0)));
  Groups c(gran(GranularityType::Channel), 2, 4, 2);
  CHECK(c.count() == 2);
  CHECK(c.reduce(s.data(), nullptr, Reduction::Sum) == std::vector<double>{1 + 2 + 5 + 6, 3 + 4 + 7 + 8});
  Groups b(gran(GranularityType::Block, 1, 3), 2, 4, 2);  // 1×3 tiles: cols {0,1,2} and {3}
  CHECK(b.count() == 4);
  CHECK(b.reduce(s.data(), nullptr, Reduction::Sum) == std::vector<double>{6, 4, 18, 8});
  CHECK(b.expand({1, 0, 0, 1}) == std::vector<uint8_t>{1, 1, 1, 0, 0, 0, 0, 1});
  Groups b22(gran(GranularityType::Block, 2, 2), 2, 4, 2);
  CHECK(b22.reduce(s.data(), nullptr, Reduction::Sum) == std::vector<double>{1 + 2 + 5 + 6, 3 + 4 + 7 + 8});
  // A group with every element masked is dead: -inf, pruned first.
  const std::vector<uint8_t> mask = {0, 0, 0, 0, 1, 1, 1, 1};
  CHECK(std::isinf(n.reduce(s.data(), mask.data(), Reduction::Sum)[0]));
  CHECK(n.expand({0, 1}) == mask);
}

TEST_CASE("granularity: N:M keeps the n largest of each m along the fan-in") {
  const std::vector<float> s = {0.1f, 0.9f, 0.5f, 0.3f, /**/ 4, 3, 2, 1, /**/ 1, 1, 1, 1, /**/ 0, 2, 0, 3};
  const auto m = nm_mask(s.data(), 2, 8, 2, 4);
  CHECK(m == std::vector<uint8_t>{0, 1, 1, 0, 1, 1, 0, 0, /**/ 1, 1, 0, 0, 0, 1, 0, 1});
  const auto m14 = nm_mask(s.data(), 1, 16, 1, 4);
  CHECK(m14 == std::vector<uint8_t>{0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1});
}

TEST_CASE("selection: lowest per layer, global, threshold, ties by index") {
  CHECK(select_lowest({3, 1, 2, 5}, 0.5) == std::vector<uint8_t>{1, 0, 0, 1});
  CHECK(select_lowest({1, 1, 1, 1}, 0.5) == std::vector<uint8_t>{0, 0, 1, 1});  // ties: lower index falls
  CHECK(select_lowest({3, 1, 2, 5}, 0.0) == std::vector<uint8_t>{1, 1, 1, 1});
  const double dead = -std::numeric_limits<double>::infinity();
  // Already-dead groups stay pruned even when the target is lower.
  CHECK(select_lowest({dead, dead, 2, 5}, 0.25) == std::vector<uint8_t>{0, 0, 1, 1});
  // Global: one cut over both layers (4 + 2 groups, 50% → 3 lowest: 0.1, 0.2, 0.3).
  auto g = select_global({{0.1, 5, 0.3, 4}, {0.2, 6}}, {true, true}, 0.5);
  CHECK(g[0] == std::vector<uint8_t>{0, 1, 0, 1});
  CHECK(g[1] == std::vector<uint8_t>{0, 1});
  g = select_global({{0.1, 5, 0.3, 4}, {0.2, 6}}, {true, false}, 0.5);  // 2 of the 4 eligible
  CHECK(g[0] == std::vector<uint8_t>{0, 1, 0, 1});
  CHECK(g[1] == std::vector<uint8_t>{1, 1});
  CHECK(select_threshold({0.1, 0.5, 0.05, 2}, 0.2) == std::vector<uint8_t>{0, 1, 0, 1});
}

TEST_CASE("distribution: ERK and ER densities against hand computation") {
  // Linear 4×4 (16) and 2×8 (16) at 50%: raw (4+4)/16 = 0.5, (2+8)/16 = 0.625;
  // eps = 16 / (0.5·16 + 0.625·16) = 8/9 → densities 4/9, 5/9 (total 16 of 32 kept).
  auto d = erk_densities({{4, 4}, {2, 8}}, {false, false}, 0.5, 1.0, true);
  CHECK(d[0] == doctest::Approx(4.0 / 9));
  CHECK(d[1] == doctest::Approx(5.0 / 9));
  // Conv (2, 1, 3, 3) = 18 weights and linear (2, 8) = 16 at 50%, ERK: raw (2+1+3+3)/18 = 0.5,
  // (2+8)/16 = 0.625; eps = 17 / (0.5·18 + 0.625·16) = 17/19.
  d = erk_densities({{2, 1, 3, 3}, {2, 8}}, {false, false}, 0.5, 1.0, true);
  CHECK(d[0] == doctest::Approx(0.5 * 17 / 19));
  CHECK(d[1] == doctest::Approx(0.625 * 17 / 19));
  // ER ignores the kernel: raw (2+1)/2 = 1.5 and 0.625; eps = 17/(1.5·18 + 10) = 17/37;
  // 1.5·17/37 = 0.689 < 1, so no layer saturates.
  d = erk_densities({{2, 1, 3, 3}, {2, 8}}, {false, false}, 0.5, 1.0, false);
  CHECK(d[0] == doctest::Approx(1.5 * 17 / 37));
  // A small layer saturates: (2, 2) = 4 weights (raw 1) beside (10, 100) = 1000 (raw 0.11) at 10%:
  // eps = 903.6 / (4 + 110) = 7.93 → the small layer would exceed 1, so it becomes dense and the big
  // one takes the rest: 1004·0.9 − 4 = 899.6 of 1000.
  d = erk_densities({{2, 2}, {10, 100}}, {false, false}, 0.1, 1.0, true);
  CHECK(d[0] == 1.0);
  CHECK(d[1] == doctest::Approx(899.6 / 1000));
  // keep_dense layers count toward the total: 16 dense + 16·x = 0.75·32 → x = 0.5.
  d = erk_densities({{4, 4}, {2, 8}}, {true, false}, 0.25, 1.0, true);
  CHECK(d[0] == 1.0);
  CHECK(d[1] == doctest::Approx(0.5));
}

TEST_CASE("schedules: the cubic gradual curve, iterative rates, RigL's cosine drop") {
  // s_f = 0.8, s_i = 0, t0 = 0, n·Δt = 10
  CHECK(gradual_sparsity(0, 0, 10, 0, 0.8) == 0.0);
  CHECK(gradual_sparsity(2, 0, 10, 0, 0.8) == doctest::Approx(0.8 - 0.8 * 0.512));
  CHECK(gradual_sparsity(5, 0, 10, 0, 0.8) == doctest::Approx(0.7));
  CHECK(gradual_sparsity(10, 0, 10, 0, 0.8) == doctest::Approx(0.8));
  CHECK(gradual_sparsity(12, 0, 10, 0, 0.8) == doctest::Approx(0.8));
  CHECK(gradual_sparsity(3, 2, 6, 0.2, 0.6) == doctest::Approx(0.6 - 0.4 * 0.421875));
  CHECK(iterative_rate(0.875, 3) == doctest::Approx(0.5));
  CHECK(iterative_sparsity(1, 3, 0.875) == doctest::Approx(0.5));
  CHECK(iterative_sparsity(2, 3, 0.875) == doctest::Approx(0.75));
  CHECK(iterative_sparsity(3, 3, 0.875) == doctest::Approx(0.875));
  CHECK(cosine_drop(0, 100, 0.3) == doctest::Approx(0.3));
  CHECK(cosine_drop(50, 100, 0.3) == doctest::Approx(0.15));
  CHECK(cosine_drop(100, 100, 0.3) == 0.0);
}
