// tests/pruning/test_select.cpp — select_k (pruning/select.h) against sorting (key, index) pairs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/rng.h"
#include "pruning/select.h"

using namespace st;

namespace {

// The reference: sort the admitted (|key| or -|key|, index) pairs, take the first k, in index order.
std::vector<int64_t> reference(const std::vector<float>& key, const std::vector<uint8_t>& admit, int64_t k,
                               bool largest) {
  std::vector<std::pair<double, int64_t>> items;
  for (size_t i = 0; i < key.size(); ++i)
    if (admit[i]) items.emplace_back(largest ? -std::abs(double(key[i])) : std::abs(double(key[i])), int64_t(i));
  std::sort(items.begin(), items.end());
  std::vector<int64_t> out;
  for (int64_t j = 0; j < std::min<int64_t>(k, int64_t(items.size())); ++j) out.push_back(items[size_t(j)].second);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("select_k picks what sorting (key, index) picks: ties to the lower index, signs and -0 ignored") {
  Rng rng(11);
  for (int64_t n : {1, 2, 7, 100, 5000}) {
    // Few distinct values (many ties, equal high halves of the bits), both signs, zeros of both signs,
    // values far apart, and subnormals.
    std::vector<float> key(static_cast<size_t>(n));
    std::vector<uint8_t> admit(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t r = rng.below(6);
      float v = r == 0 ? 0.f : r == 1 ? -0.f : r == 2 ? float(rng.below(5)) * 0.25f
                : r == 3 ? std::ldexp(1.f + rng.uniform(), int(rng.below(60)) - 30)
                : r == 4 ? 1e-40f * float(1 + rng.below(3)) : 1.f + 1e-7f * float(rng.below(3));
      key[size_t(i)] = rng.below(2) ? -v : v;
      admit[size_t(i)] = rng.below(4) != 0;
    }
    int64_t admitted = 0;
    for (uint8_t a : admit) admitted += a;
    for (int64_t k : {int64_t{0}, int64_t{1}, admitted / 3, admitted - 1, admitted, admitted + 5}) {
      for (bool largest : {false, true}) {
        CAPTURE(n);
        CAPTURE(k);
        CAPTURE(largest);
        std::vector<int64_t> got;
        pruning::select_k(n, k, largest, [&](int64_t i) { return key[size_t(i)]; },
                          [&](int64_t i) { return admit[size_t(i)] != 0; }, [&](int64_t i) { got.push_back(i); });
        CHECK(got == reference(key, admit, k, largest));
      }
    }
  }
}
