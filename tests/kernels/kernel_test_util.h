// tests/kernels/kernel_test_util.h — shared helpers for the kernel suites: seeded random data and
// a tolerance comparison that reports the first offending index.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace st::kernels::test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// |got − want| ≤ rtol·(|want| + scale) for every element; `scale` absorbs cancellation in sums.
inline void check_close(const std::vector<float>& got, const std::vector<float>& want, double rtol,
                        double scale = 1.0) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(diff <= rtol * (std::fabs(static_cast<double>(want[i])) + scale))) {
      INFO("index " << i << ": got " << got[i] << ", want " << want[i]);
      CHECK(diff <= rtol * (std::fabs(static_cast<double>(want[i])) + scale));
      return;  // one failure per array is enough to read
    }
  }
}

inline bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace st::kernels::test
