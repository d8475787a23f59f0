// pruning/sparse_pattern.h: random CSR patterns (exact count, valid CSR, exactly uniform over sets),
// initialisation by each row's actual fan-in, and SET's drop-and-regrow (which entries go, where the
// new ones land, what is carried over). The 333333×333333 timing case is skipped by default
// (run it with test_pruning -tc='*pattern*timing*' --no-skip).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "core/check.h"
#include "pruning/sparse_pattern.h"

using namespace st;
using namespace st::pruning;
using kernels::CsrMatrix;
using models::Init;

namespace {

// Every structural property CsrMatrix documents.
void check_csr(const CsrMatrix& a) {
  REQUIRE(a.row_ptr.size() == static_cast<size_t>(a.rows) + 1);
  CHECK(a.row_ptr[0] == 0);
  REQUIRE(a.col_idx.size() == static_cast<size_t>(a.nnz()));
  CHECK(a.values.size() == static_cast<size_t>(a.nnz()));
  for (int r = 0; r < a.rows; ++r) {
    REQUIRE(a.row_ptr[r] <= a.row_ptr[r + 1]);
    for (int32_t k = a.row_ptr[r]; k < a.row_ptr[r + 1]; ++k) {
      REQUIRE(a.col_idx[k] >= 0);
      REQUIRE(a.col_idx[k] < a.cols);
      if (k > a.row_ptr[r]) REQUIRE(a.col_idx[k - 1] < a.col_idx[k]);
    }
  }
  REQUIRE(a.row_order.size() == static_cast<size_t>(a.rows));
  std::vector<uint8_t> seen(a.rows, 0);
  for (int i = 0; i < a.rows; ++i) {
    const int32_t r = a.row_order[i];
    REQUIRE(r >= 0);
    REQUIRE(r < a.rows);
    REQUIRE(!seen[r]);
    seen[r] = 1;
    if (i > 0) {
      const int32_t p = a.row_order[i - 1];
      const int32_t lp = a.row_ptr[p + 1] - a.row_ptr[p], lr = a.row_ptr[r + 1] - a.row_ptr[r];
      REQUIRE((lp > lr || (lp == lr && p < r)));
    }
  }
}

int row_of(const CsrMatrix& a, int64_t k) {
  return static_cast<int>(std::upper_bound(a.row_ptr.begin(), a.row_ptr.end(), k) - a.row_ptr.begin()) - 1;
}

// The pattern as linear positions r·cols + c.
std::set<int64_t> positions(const CsrMatrix& a) {
  std::set<int64_t> out;
  for (int r = 0; r < a.rows; ++r)
    for (int32_t k = a.row_ptr[r]; k < a.row_ptr[r + 1]; ++k) out.insert(int64_t{r} * a.cols + a.col_idx[k]);
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A pattern with the given values in CSR order.
CsrMatrix with_values(CsrMatrix a, const std::vector<float>& v) {
  REQUIRE(v.size() == a.values.size());
  a.values = v;
  return a;
}

}  // namespace

TEST_CASE("sparse pattern: sample_pattern gives exactly nnz positions in a valid CSR") {
  struct Shape {
    int rows, cols;
    int64_t nnz;
  };
  const std::vector<Shape> shapes = {{7, 13, 0},  {7, 13, 1},   {7, 13, 30}, {7, 13, 45}, {7, 13, 46},
                                     {7, 13, 80}, {7, 13, 91},  {1, 1, 1},   {1, 50, 17}, {1, 50, 50},
                                     {50, 1, 17}, {50, 1, 40},  {4, 5, 7},   {3, 1000, 2999},
                                     {0, 5, 0},   {5, 0, 0}};
  for (const auto& s : shapes) {
    CAPTURE(s.rows);
    CAPTURE(s.cols);
    CAPTURE(s.nnz);
    Rng rng(11);
    const CsrMatrix a = sample_pattern(s.rows, s.cols, s.nnz, rng);
    CHECK(a.rows == s.rows);
    CHECK(a.cols == s.cols);
    CHECK(a.nnz() == s.nnz);
    check_csr(a);
    for (float v : a.values) CHECK(v == 0.0f);
    if (s.nnz == int64_t{s.rows} * s.cols)  // density 1: every row full
      for (int r = 0; r < s.rows; ++r) CHECK(a.row_ptr[r + 1] - a.row_ptr[r] == s.cols);
  }
}

TEST_CASE("sparse pattern: sample_pattern is a function of the seed") {
  for (int64_t nnz : {40, 900}) {  // both sides of density 1/2 on 30×40
    Rng a(5), b(5), c(6);
    const CsrMatrix x = sample_pattern(30, 40, nnz, a), y = sample_pattern(30, 40, nnz, b),
                    z = sample_pattern(30, 40, nnz, c);
    CHECK(x.row_ptr == y.row_ptr);
    CHECK(x.col_idx == y.col_idx);
    CHECK(a.state() == b.state());
    CHECK(x.col_idx != z.col_idx);
  }
}

TEST_CASE("sparse pattern: sample_pattern rejects impossible counts, naming the values") {
  Rng rng(1);
  std::string e = error_of([&] { sample_pattern(4, 5, 21, rng); });
  CHECK(e.find("21") != std::string::npos);
  CHECK(e.find("4x5") != std::string::npos);
  e = error_of([&] { sample_pattern(4, 5, -1, rng); });
  CHECK(e.find("-1") != std::string::npos);
  e = error_of([&] { sample_pattern(-2, 5, 0, rng); });
  CHECK(e.find("-2x5") != std::string::npos);
  e = error_of([&] { sample_pattern(100000, 100000, int64_t{3} << 30, rng); });
  CHECK(e.find("CSR limit") != std::string::npos);
}

TEST_CASE("sparse pattern: sample_pattern is uniform over all nnz-sets") {
  // 3×3: every one of the C(9, nnz) sets, counted over many draws from one deterministic stream.
  // nnz 4 takes the direct path, nnz 6 the complement path (density > 1/2).
  for (int nnz : {4, 6}) {
    CAPTURE(nnz);
    const int sets = nnz == 4 ? 126 : 84;
    const int per_set = 500, trials = sets * per_set;
    Rng rng(2024 + nnz);
    std::map<uint32_t, int> count;
    for (int t = 0; t < trials; ++t) {
      const CsrMatrix a = sample_pattern(3, 3, nnz, rng);
      uint32_t bits = 0;
      for (int64_t p : positions(a)) bits |= 1u << p;
      ++count[bits];
    }
    CHECK(count.size() == static_cast<size_t>(sets));
    double chi2 = 0;
    for (const auto& [bits, n] : count) {
      CHECK(n > per_set * 0.8);  // σ ≈ 22: ±100 is 4.5σ
      CHECK(n < per_set * 1.2);
      chi2 += (n - per_set) * double(n - per_set) / per_set;
    }
    // sets−1 degrees of freedom: mean ≈ sets, sd ≈ √(2·sets) ≈ 16.
    CHECK(chi2 < sets + 6 * std::sqrt(2.0 * sets));
  }
  // 4×5 with 7: each position's frequency.
  Rng rng(7);
  const int trials = 20000;
  std::vector<int> freq(20, 0);
  for (int t = 0; t < trials; ++t)
    for (int64_t p : positions(sample_pattern(4, 5, 7, rng))) ++freq[p];
  for (int f : freq) {
    CHECK(f > 7000 - 350);  // expected trials·7/20 = 7000, σ ≈ 67
    CHECK(f < 7000 + 350);
  }
}

TEST_CASE("sparse pattern: sample_pattern on a 200000×300000 layer stays O(nnz)") {
  Rng rng(3);
  const auto t0 = std::chrono::steady_clock::now();
  const CsrMatrix a = sample_pattern(200000, 300000, 100000, rng);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("sample_pattern 200000x300000, 1e5 nnz: " << s * 1e3 << " ms");
  CHECK(a.nnz() == 100000);
  check_csr(a);
}

TEST_CASE("sparse pattern: init_by_fan_in bounds each value by its own row's (and column's) nnz") {
  Rng prng(9);
  CsrMatrix w = sample_pattern(40, 300, 3000, prng);
  // Row 3 emptied, row 5 filled: fan-ins from 1 (empty, bias only) to 300.
  {
    std::vector<int64_t> drop;
    for (int32_t k = w.row_ptr[3]; k < w.row_ptr[4]; ++k) drop.push_back(k);
    std::vector<std::pair<int, int>> grow;
    std::set<int> in5(w.col_idx.begin() + w.row_ptr[5], w.col_idx.begin() + w.row_ptr[6]);
    for (int c = 0; c < 300; ++c)
      if (!in5.count(c)) grow.emplace_back(5, c);
    w = change_pattern(w, drop, grow).w;
  }
  REQUIRE(w.row_ptr[4] == w.row_ptr[3]);
  REQUIRE(w.row_ptr[6] - w.row_ptr[5] == 300);
  std::vector<int> col_nnz(300, 0);
  for (int32_t c : w.col_idx) ++col_nnz[c];

  for (Init init : {Init::pytorch, Init::kaiming_uniform, Init::glorot_uniform, Init::kaiming_normal,
                    Init::glorot_normal}) {
    CAPTURE(static_cast<int>(init));
    Rng rng(17);
    std::vector<float> bias(40, 123.f);
    init_by_fan_in(w, init, rng, bias.data());
    for (int r = 0; r < w.rows; ++r) {
      const float fan_in = std::max(w.row_ptr[r + 1] - w.row_ptr[r], 1);
      for (int32_t k = w.row_ptr[r]; k < w.row_ptr[r + 1]; ++k) {
        const float fan_out = col_nnz[w.col_idx[k]];
        float bound = 0;
        if (init == Init::pytorch) bound = 1 / std::sqrt(fan_in);
        if (init == Init::kaiming_uniform) bound = std::sqrt(6 / fan_in);
        if (init == Init::glorot_uniform) bound = std::sqrt(6 / (fan_in + fan_out));
        if (init == Init::kaiming_normal) bound = 6 * std::sqrt(2 / fan_in);  // 6σ
        if (init == Init::glorot_normal) bound = 6 * std::sqrt(2 / (fan_in + fan_out));
        REQUIRE(std::abs(w.values[k]) <= bound * 1.0001f);
      }
      if (init == Init::pytorch) {
        CHECK(std::abs(bias[r]) <= 1 / std::sqrt(fan_in) * 1.0001f);
        CHECK(bias[r] != 0.0f);
      } else {
        CHECK(bias[r] == 0.0f);
      }
    }
    // Same seed, same values; without a bias pointer no bias is drawn (only pytorch draws one).
    std::vector<float> first = w.values;
    Rng again(17);
    init_by_fan_in(w, init, again, nullptr);
    CHECK(w.values == first);
    CHECK((again.state() == rng.state()) == (init != Init::pytorch));
  }
}

TEST_CASE("sparse pattern: init_by_fan_in has the variance of the fan-in rule on big rows") {
  // 4 rows of ~10000 nonzeros each over 40000 columns: each row's empirical variance against
  // bound²/3 (uniform) or σ² (normal), per row; column counts here are 1 or so.
  Rng prng(21);
  CsrMatrix w = sample_pattern(4, 40000, 40000, prng);
  for (Init init : {Init::pytorch, Init::kaiming_uniform, Init::kaiming_normal}) {
    CAPTURE(static_cast<int>(init));
    Rng rng(4);
    init_by_fan_in(w, init, rng, nullptr);
    for (int r = 0; r < 4; ++r) {
      const int n = w.row_ptr[r + 1] - w.row_ptr[r];
      REQUIRE(n > 9000);
      double mean = 0, sq = 0;
      for (int32_t k = w.row_ptr[r]; k < w.row_ptr[r + 1]; ++k) {
        mean += w.values[k];
        sq += double(w.values[k]) * w.values[k];
      }
      mean /= n;
      const double var = sq / n - mean * mean;
      const double expected = init == Init::pytorch           ? 1.0 / (3.0 * n)
                              : init == Init::kaiming_uniform ? 6.0 / n / 3.0
                                                              : 2.0 / n;
      CHECK(var == doctest::Approx(expected).epsilon(0.05));
      CHECK(std::abs(mean) < 4 * std::sqrt(expected / n));
    }
  }
}

TEST_CASE("sparse pattern: init_by_fan_in on a full pattern draws what the dense scheme draws") {
  // 3×4 full: fan_in 4 and fan_out 3 for every entry, as models::initialize computes for a Linear.
  Rng prng(1);
  CsrMatrix w = sample_pattern(3, 4, 12, prng);
  std::vector<float> bias(3);
  Rng rng(33), ref(33);
  init_by_fan_in(w, Init::pytorch, rng, bias.data());
  for (int i = 0; i < 12; ++i) CHECK(w.values[i] == ref.uniform(-0.5f, 0.5f));
  for (int i = 0; i < 3; ++i) CHECK(bias[i] == ref.uniform(-0.5f, 0.5f));
  Rng rng2(34), ref2(34);
  init_by_fan_in(w, Init::glorot_uniform, rng2, nullptr);
  const float bound = std::sqrt(6.f / (4 + 3));
  for (int i = 0; i < 12; ++i) CHECK(w.values[i] == ref2.uniform(-bound, bound));
  // An all-empty matrix: only biases, each U(±1).
  CsrMatrix empty = sample_pattern(5, 6, 0, prng);
  std::vector<float> b5(5);
  Rng rng3(2);
  init_by_fan_in(empty, Init::pytorch, rng3, b5.data());
  CHECK(empty.values.empty());
  for (float b : b5) CHECK(std::abs(b) <= 1.0f);
}

TEST_CASE("sparse pattern: smallest_nonzeros orders by |value|, then position; NaN last") {
  Rng prng(1);
  const CsrMatrix w = with_values(sample_pattern(2, 4, 8, prng),
                                  {0.5f, -0.1f, 0.1f, std::nanf(""), -0.0f, 2.f, 0.1f, -std::numeric_limits<float>::infinity()});
  CHECK(smallest_nonzeros(w, 0).empty());
  CHECK(smallest_nonzeros(w, 1) == std::vector<int64_t>{4});
  CHECK(smallest_nonzeros(w, 3) == std::vector<int64_t>{1, 2, 4});  // 0, then the first two 0.1s
  CHECK(smallest_nonzeros(w, 4) == std::vector<int64_t>{1, 2, 4, 6});
  CHECK(smallest_nonzeros(w, 7) == std::vector<int64_t>{0, 1, 2, 4, 5, 6, 7});
  CHECK(smallest_nonzeros(w, 8).size() == 8);
  CHECK(error_of([&] { smallest_nonzeros(w, 9); }).find("k 9") != std::string::npos);
  // Large enough for the radix path: the selected set against a full sort.
  Rng rng(5);
  CsrMatrix big = sample_pattern(100, 100, 5000, rng);
  for (auto& v : big.values) v = static_cast<float>(rng.below(50)) - 25.f;  // many ties
  std::vector<int64_t> idx(5000);
  for (int i = 0; i < 5000; ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int64_t a, int64_t b) { return std::abs(big.values[a]) < std::abs(big.values[b]); });
  idx.resize(1700);
  std::sort(idx.begin(), idx.end());
  CHECK(smallest_nonzeros(big, 1700) == idx);
}

TEST_CASE("sparse pattern: change_pattern merges kept and grown entries and maps sources") {
  // Row 0: cols 1, 3; row 1: empty; row 2: cols 0, 2, 4.
  CsrMatrix w;
  w.rows = 3;
  w.cols = 5;
  w.row_ptr = {0, 2, 2, 5};
  w.col_idx = {1, 3, 0, 2, 4};
  w.values = {1, 2, 3, 4, 5};
  kernels::csr_compute_row_order(w);
  const PatternChange pc = change_pattern(w, {3, 0}, {{2, 2}, {1, 4}, {0, 0}, {0, 4}});
  check_csr(pc.w);
  CHECK(pc.dropped == 2);
  CHECK(pc.w.row_ptr == std::vector<int32_t>{0, 3, 4, 7});
  CHECK(pc.w.col_idx == std::vector<int32_t>{0, 3, 4, 4, 0, 2, 4});
  CHECK(pc.w.values == std::vector<float>{0, 2, 0, 0, 3, 0, 5});
  CHECK(pc.source == std::vector<int64_t>{-1, 1, -1, -1, 2, -1, 4});
  CHECK(pc.w.row_order == std::vector<int32_t>{0, 2, 1});
  std::vector<float> moment = {10, 20, 30, 40, 50}, out(7, -1);
  carry_over(pc.source, moment.data(), out.data());
  CHECK(out == std::vector<float>{0, 20, 0, 0, 30, 0, 50});
  // Nothing changed: the same matrix, identity sources.
  const PatternChange same = change_pattern(w, {}, {});
  CHECK(same.w.col_idx == w.col_idx);
  CHECK(same.w.values == w.values);
  CHECK(same.source == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(error_of([&] { change_pattern(w, {}, {{0, 3}}); }).find("(0, 3) is already in the pattern") != std::string::npos);
  CHECK(error_of([&] { change_pattern(w, {1, 1}, {}); }).find("given twice") != std::string::npos);
  CHECK(error_of([&] { change_pattern(w, {5}, {}); }).find("drop index 5") != std::string::npos);
  CHECK(error_of([&] { change_pattern(w, {}, {{3, 0}}); }).find("(3, 0) outside") != std::string::npos);
  CHECK(error_of([&] { change_pattern(w, {}, {{1, 1}, {1, 1}}); }).find("given twice") != std::string::npos);
}

namespace {

// Every promise of drop_and_regrow_random for w and fraction, with a fresh Rng(seed).
PatternChange check_set_update(const CsrMatrix& w, double fraction, uint64_t seed) {
  Rng rng(seed);
  PatternChange pc = drop_and_regrow_random(w, fraction, rng);
  check_csr(pc.w);
  const int64_t nnz = w.nnz(), k = std::llround(fraction * nnz);
  CHECK(pc.w.nnz() == nnz);
  CHECK(pc.dropped == k);
  REQUIRE(pc.source.size() == static_cast<size_t>(nnz));
  const std::vector<int64_t> dropped = smallest_nonzeros(w, k);
  const std::set<int64_t> drop_set(dropped.begin(), dropped.end());
  const std::set<int64_t> old_pos = positions(w);
  const int64_t n_free = int64_t{w.rows} * w.cols - nnz;
  std::set<int64_t> kept_sources;
  int64_t grown = 0, grown_back = 0;
  for (int r = 0; r < pc.w.rows; ++r)
    for (int32_t i = pc.w.row_ptr[r]; i < pc.w.row_ptr[r + 1]; ++i) {
      const int64_t s = pc.source[i];
      if (s >= 0) {
        REQUIRE(!drop_set.count(s));
        REQUIRE(row_of(w, s) == r);
        REQUIRE(w.col_idx[s] == pc.w.col_idx[i]);
        REQUIRE(pc.w.values[i] == w.values[s]);
        kept_sources.insert(s);
      } else {
        REQUIRE(pc.w.values[i] == 0.0f);
        ++grown;
        grown_back += old_pos.count(int64_t{r} * w.cols + pc.w.col_idx[i]);
      }
    }
  CHECK(grown == k);
  CHECK(static_cast<int64_t>(kept_sources.size()) == nnz - k);
  // New positions only, unless there are fewer free positions than k.
  CHECK(grown_back == std::max<int64_t>(0, k - n_free));
  return pc;
}

}  // namespace

TEST_CASE("sparse pattern: drop_and_regrow_random drops the smallest and regrows new positions") {
  Rng prng(8);
  CsrMatrix w = sample_pattern(60, 80, 1000, prng);
  init_by_fan_in(w, Init::kaiming_normal, prng, nullptr);
  for (double f : {0.0, 0.01, 0.3, 0.5, 1.0}) {
    CAPTURE(f);
    const PatternChange pc = check_set_update(w, f, 99);
    // Deterministic.
    Rng again(99);
    const PatternChange pc2 = drop_and_regrow_random(w, f, again);
    CHECK(pc2.w.col_idx == pc.w.col_idx);
    CHECK(pc2.source == pc.source);
    if (f == 0.0) {
      CHECK(pc.w.col_idx == w.col_idx);
      CHECK(pc.w.values == w.values);
    }
  }
  CHECK(check_set_update(w, 0.3, 1).w.col_idx != check_set_update(w, 0.3, 2).w.col_idx);
  // k = round(fraction · nnz), half away from zero: 0.3125 · 8 = 2.5 → 3, 0.3 · 8 = 2.4 → 2.
  CsrMatrix eight = sample_pattern(4, 4, 8, prng);
  init_by_fan_in(eight, Init::pytorch, prng, nullptr);
  Rng r1(1), r2(1);
  CHECK(drop_and_regrow_random(eight, 0.3125, r1).dropped == 3);
  CHECK(drop_and_regrow_random(eight, 0.3, r2).dropped == 2);
  // Ties: every |value| equal, so the first k in CSR order go.
  CsrMatrix tied = w;
  for (size_t i = 0; i < tied.values.size(); ++i) tied.values[i] = i % 2 ? 1.f : -1.f;
  const PatternChange pt = check_set_update(tied, 0.1, 3);
  std::set<int64_t> kept(pt.source.begin(), pt.source.end());
  for (int64_t i = 0; i < 100; ++i) CHECK(!kept.count(i));
  for (int64_t i = 100; i < 1000; ++i) CHECK(kept.count(i));
  Rng e(1);
  CHECK(error_of([&] { drop_and_regrow_random(w, 1.5, e); }).find("fraction 1.5") != std::string::npos);
  CHECK(!error_of([&] { drop_and_regrow_random(w, -0.1, e); }).empty());
  CHECK(!error_of([&] { drop_and_regrow_random(w, std::nan(""), e); }).empty());
}

TEST_CASE("sparse pattern: drop_and_regrow_random with full rows and nearly full matrices") {
  Rng prng(12);
  // Row 0 full, the rest sparse: the full row has no free position, the draw is over the matrix.
  CsrMatrix w = sample_pattern(6, 10, 8, prng);
  {
    std::vector<std::pair<int, int>> grow;
    std::set<int> in0(w.col_idx.begin() + w.row_ptr[0], w.col_idx.begin() + w.row_ptr[1]);
    for (int c = 0; c < 10; ++c)
      if (!in0.count(c)) grow.emplace_back(0, c);
    w = change_pattern(w, {}, grow).w;
  }
  REQUIRE(w.row_ptr[1] == 10);
  init_by_fan_in(w, Init::pytorch, prng, nullptr);
  for (uint64_t seed = 0; seed < 20; ++seed) check_set_update(w, 0.5, seed);
  // Dense side (density > 1/2, enumeration of the free positions).
  CsrMatrix dense = sample_pattern(7, 13, 70, prng);
  init_by_fan_in(dense, Init::glorot_uniform, prng, nullptr);
  for (double f : {0.1, 0.3, 0.31, 0.5, 1.0}) check_set_update(dense, f, 4);
  // 4×5 with 18 nonzeros, k = 9 > 2 free: both free positions grow, 7 dropped ones come back at 0.
  CsrMatrix nearly = sample_pattern(4, 5, 18, prng);
  init_by_fan_in(nearly, Init::pytorch, prng, nullptr);
  const PatternChange pn = check_set_update(nearly, 0.5, 6);
  CHECK(positions(pn.w).size() == 18);
  // Full matrix: no free position; the pattern stays full and the k regrown are dropped ones at 0.
  CsrMatrix full = sample_pattern(5, 5, 25, prng);
  init_by_fan_in(full, Init::pytorch, prng, nullptr);
  const PatternChange pf = check_set_update(full, 0.4, 7);
  CHECK(pf.w.col_idx == full.col_idx);
  // 1×N and N×1.
  CsrMatrix row = sample_pattern(1, 50, 10, prng), col = sample_pattern(50, 1, 10, prng);
  init_by_fan_in(row, Init::pytorch, prng, nullptr);
  init_by_fan_in(col, Init::pytorch, prng, nullptr);
  check_set_update(row, 0.5, 8);
  check_set_update(col, 0.5, 8);
  // Empty matrix.
  CsrMatrix none = sample_pattern(3, 3, 0, prng);
  check_set_update(none, 0.5, 9);
}

TEST_CASE("sparse pattern: drop_and_regrow_random regrows uniformly among the free positions") {
  // 3×3 with 3 nonzeros (6 free): k = 2 by rejection sampling; 3×3 with 5 (4 free): k = 2 by
  // enumeration. Every pair of free positions equally often.
  for (int nnz : {3, 5}) {
    CAPTURE(nnz);
    Rng prng(31);
    CsrMatrix w = sample_pattern(3, 3, nnz, prng);
    for (size_t i = 0; i < w.values.size(); ++i) w.values[i] = 1.f + i;
    const double fraction = 2.0 / nnz;
    const int n_free = 9 - nnz, pairs = n_free * (n_free - 1) / 2, per_pair = 1000;
    std::map<std::pair<int64_t, int64_t>, int> count;
    Rng rng(77);
    for (int t = 0; t < pairs * per_pair; ++t) {
      const PatternChange pc = drop_and_regrow_random(w, fraction, rng);
      std::vector<int64_t> grown;
      for (int r = 0; r < 3; ++r)
        for (int32_t i = pc.w.row_ptr[r]; i < pc.w.row_ptr[r + 1]; ++i)
          if (pc.source[i] < 0) grown.push_back(int64_t{r} * 3 + pc.w.col_idx[i]);
      REQUIRE(grown.size() == 2);
      ++count[{grown[0], grown[1]}];
    }
    CHECK(count.size() == static_cast<size_t>(pairs));
    for (const auto& [pair, n] : count) {
      CHECK(n > per_pair * 0.85);  // σ ≈ 30
      CHECK(n < per_pair * 1.15);
    }
  }
}

namespace {

// The reference for drop_and_regrow_by_gradient: a dense G, every free position (not kept) sorted by
// (|G| descending with NaN first, position ascending), the first k.
std::vector<int64_t> top_free_positions(const CsrMatrix& w, const std::vector<int64_t>& drop,
                                        const std::vector<float>& G, int64_t k) {
  std::set<int64_t> kept = positions(w);
  for (int64_t d : drop) kept.erase(int64_t{row_of(w, d)} * w.cols + w.col_idx[d]);
  std::vector<int64_t> free;
  for (int64_t p = 0; p < int64_t{w.rows} * w.cols; ++p)
    if (!kept.count(p)) free.push_back(p);
  auto key = [&](int64_t p) { return std::isnan(G[p]) ? std::numeric_limits<float>::infinity() * 2 : std::fabs(G[p]); };
  std::stable_sort(free.begin(), free.end(), [&](int64_t a, int64_t b) {
    const float ka = key(a), kb = key(b);
    if (std::isnan(G[a]) != std::isnan(G[b])) return std::isnan(G[a]);
    return ka > kb;
  });
  free.resize(std::min<size_t>(free.size(), static_cast<size_t>(k)));
  std::sort(free.begin(), free.end());
  return free;
}

// Every promise of drop_and_regrow_by_gradient for w, fraction and a dense G, with panels of p rows.
void check_rigl_update(const CsrMatrix& w, double fraction, const std::vector<float>& G, int p) {
  CAPTURE(fraction);
  CAPTURE(p);
  std::vector<std::pair<int, int>> panels;
  auto gradient = [&](int r0, int r1, float* out) {
    panels.emplace_back(r0, r1);
    std::copy(G.begin() + int64_t{r0} * w.cols, G.begin() + int64_t{r1} * w.cols, out);
  };
  std::vector<float> grown;
  const PatternChange pc = drop_and_regrow_by_gradient(w, fraction, p, gradient, &grown);
  const int64_t nnz = w.nnz(), k = std::llround(fraction * nnz);
  if (k == 0 || nnz == int64_t{w.rows} * w.cols) {
    CHECK(pc.dropped == 0);
    CHECK(panels.empty());  // nothing to do: no gradient computed
    return;
  }
  // Panels: at most p rows each, in order, covering every row once.
  REQUIRE(!panels.empty());
  CHECK(panels.front().first == 0);
  CHECK(panels.back().second == w.rows);
  for (size_t i = 0; i < panels.size(); ++i) {
    CHECK(panels[i].second - panels[i].first <= p);
    if (i) CHECK(panels[i].first == panels[i - 1].second);
  }
  check_csr(pc.w);
  CHECK(pc.dropped == k);
  const std::vector<int64_t> drop = smallest_nonzeros(w, k);
  const std::vector<int64_t> want = top_free_positions(w, drop, G, k);
  CHECK(pc.w.nnz() == nnz - k + static_cast<int64_t>(want.size()));
  std::vector<int64_t> got_grown;
  std::vector<float> want_g;
  size_t gi = 0;
  for (int r = 0; r < pc.w.rows; ++r)
    for (int32_t i = pc.w.row_ptr[r]; i < pc.w.row_ptr[r + 1]; ++i) {
      const int64_t pos = int64_t{r} * w.cols + pc.w.col_idx[i];
      if (pc.source[i] >= 0) {
        REQUIRE(w.col_idx[pc.source[i]] == pc.w.col_idx[i]);
        CHECK(pc.w.values[i] == w.values[pc.source[i]]);
      } else {
        CHECK(pc.w.values[i] == 0.0f);
        got_grown.push_back(pos);
        REQUIRE(gi < grown.size());
        const float g = grown[gi++];
        CHECK(((std::isnan(g) && std::isnan(G[pos])) || g == G[pos]));
      }
    }
  CHECK(gi == grown.size());
  CHECK(got_grown == want);
}

}  // namespace

TEST_CASE("sparse pattern: drop_and_regrow_by_gradient regrows the largest |G| outside the kept entries") {
  Rng prng(21);
  for (int trial = 0; trial < 6; ++trial) {
    CAPTURE(trial);
    const int rows = 1 + static_cast<int>(prng.below(40)), cols = 1 + static_cast<int>(prng.below(50));
    const int64_t n = int64_t{rows} * cols;
    // Sparse, half full, nearly full (fewer free positions than k) and full patterns.
    const int64_t nnz = trial == 5 ? n : std::max<int64_t>(1, n * (trial + 1) / 6);
    CsrMatrix w = sample_pattern(rows, cols, nnz, prng);
    init_by_fan_in(w, Init::kaiming_normal, prng, nullptr);
    std::vector<float> G(static_cast<size_t>(n));
    for (float& g : G) g = static_cast<float>(static_cast<int>(prng.below(9)) - 4);  // many ties, signs
    if (trial == 2) G[static_cast<size_t>(n / 2)] = std::nanf("");
    for (double f : {0.0, 0.1, 0.3, 1.0})
      for (int p : {1, 3, rows})
        check_rigl_update(w, f, G, p);
  }
  // A wide row through a small panel: the top-k buffer is cut many times.
  CsrMatrix wide = sample_pattern(3, 5000, 300, prng);
  init_by_fan_in(wide, Init::pytorch, prng, nullptr);
  std::vector<float> G(15000);
  for (size_t i = 0; i < G.size(); ++i) G[i] = static_cast<float>((i * 7919) % 1000) - 500.0f;
  check_rigl_update(wide, 0.5, G, 1);
  auto none = [](int, int, float*) {};
  CHECK(error_of([&] { drop_and_regrow_by_gradient(wide, 1.5, 1, none); }).find("fraction 1.5") != std::string::npos);
  CHECK(error_of([&] { drop_and_regrow_by_gradient(wide, 0.5, 0, none); }).find("panel_rows 0") != std::string::npos);
}

TEST_CASE("sparse pattern: timing at 333333×333333 with 13M nonzeros" * doctest::skip()) {
  // Wall and process CPU seconds of each step (all single-threaded).
  struct Timer {
    std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
    std::clock_t cpu = std::clock();
    std::string lap() {
      const auto w = std::chrono::steady_clock::now();
      const std::clock_t c = std::clock();
      std::ostringstream os;
      os << std::chrono::duration<double>(w - wall).count() << " s wall, "
         << double(c - cpu) / CLOCKS_PER_SEC << " s cpu";
      wall = w;
      cpu = c;
      return os.str();
    }
  } t;
  Rng rng(1);
  CsrMatrix w = sample_pattern(333333, 333333, 13000000, rng);
  MESSAGE("sample_pattern: " << t.lap());
  std::vector<float> bias(333333);
  init_by_fan_in(w, Init::pytorch, rng, bias.data());
  MESSAGE("init_by_fan_in (pytorch): " << t.lap());
  CsrMatrix w2 = w;
  t.lap();
  init_by_fan_in(w2, Init::glorot_normal, rng, nullptr);
  MESSAGE("init_by_fan_in (glorot_normal): " << t.lap());
  const PatternChange pc = drop_and_regrow_random(w, 0.3, rng);
  MESSAGE("drop_and_regrow_random (0.3): " << t.lap());
  std::vector<float> moved(pc.source.size());
  carry_over(pc.source, w.values.data(), moved.data());
  MESSAGE("carry_over: " << t.lap());
  CHECK(pc.w.nnz() == 13000000);
  CHECK(pc.dropped == 3900000);
}
