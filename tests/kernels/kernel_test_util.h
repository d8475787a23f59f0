// tests/kernels/kernel_test_util.h — shared helpers for the kernel suites: seeded random data,
// a tolerance comparison that reports the first offending index, the thread-count determinism
// check, conv/pool shape builders and sizes, and the sparse weights of the CSR suites.
#pragma once
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/conv.h"
#include "kernels/csr.h"
#include "kernels/pool.h"

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

// A keep-mask of n entries, about 25% of them 0.
inline std::vector<uint8_t> random_mask(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> m(n);
  for (auto& x : m) x = (rng() % 4) != 0;
  return m;
}

// The SGD option combinations both optimizer suites run: plain, weight decay, momentum,
// momentum with dampening and decay, nesterov.
struct SgdOptions {
  float momentum, dampening, weight_decay;
  bool nesterov;
};
inline constexpr SgdOptions kSgdOptions[] = {{0.0f, 0.0f, 0.0f, false},
                                             {0.0f, 0.0f, 1e-2f, false},
                                             {0.9f, 0.0f, 0.0f, false},
                                             {0.9f, 0.1f, 5e-4f, false},
                                             {0.9f, 0.0f, 5e-4f, true}};

// Masked-out entries of v (weights or optimizer state) must be exactly 0.
inline void check_masked_zero(const std::vector<uint8_t>& mask, const std::vector<float>& v) {
  for (size_t i = 0; i < mask.size(); ++i)
    if (!mask[i]) REQUIRE(v[i] == 0.0f);
}

inline Conv2dShape conv_shape(int N, int C, int H, int W, int OC, int KH, int KW, int sh, int sw,
                              int ph, int pw) {
  Conv2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.OC = OC, s.KH = KH, s.KW = KW;
  s.stride_h = sh, s.stride_w = sw, s.pad_h = ph, s.pad_w = pw;
  return s;
}

inline Pool2dShape pool_shape(int N, int C, int H, int W, int KH, int KW, int sh, int sw, int ph,
                              int pw) {
  Pool2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.KH = KH, s.KW = KW;
  s.stride_h = sh, s.stride_w = sw, s.pad_h = ph, s.pad_w = pw;
  return s;
}

// A (rows, cols) weight of the given density with row 1 and column 2 forced empty (when they
// exist), exact zeros at some masked-in entries (they stay in the pattern), and its CSR.
struct SparseCase {
  std::vector<float> dense;
  std::vector<uint8_t> mask;
  CsrMatrix csr;
};

inline SparseCase make_case(int rows, int cols, double density, uint32_t seed) {
  SparseCase c;
  c.dense = random_floats(static_cast<size_t>(rows) * cols, seed);
  c.mask.resize(c.dense.size());
  std::mt19937 rng(seed + 7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < cols; ++k) {
      const size_t i = static_cast<size_t>(r) * cols + k;
      bool in = density >= 1.0 || u(rng) < density;
      if (density < 1.0 && ((rows > 2 && r == 1) || (cols > 2 && k == 2))) in = false;
      c.mask[i] = in;
      if (!in) c.dense[i] = 0.0f;
      else if (i % 13 == 5) c.dense[i] = 0.0f;  // a masked-in exact zero
    }
  c.csr = csr_from_dense(c.dense.data(), c.mask.data(), rows, cols);
  return c;
}

// An output buffer for a product with this beta: NaN when beta == 0 (it must not be read).
inline std::vector<float> init_output(size_t n, float beta, uint32_t seed) {
  return beta == 0.0f ? std::vector<float>(n, std::numeric_limits<float>::quiet_NaN())
                      : random_floats(n, seed);
}

// The `scale` of check_close for sums over `depth` terms of unit-size products.
inline double scale_for(int depth) { return std::sqrt(static_cast<double>(std::max(depth, 1))); }

// Element counts: input x, output y, weight w.
inline size_t x_size(const Conv2dShape& s) { return static_cast<size_t>(s.N) * s.C * s.H * s.W; }
inline size_t y_size(const Conv2dShape& s) { return static_cast<size_t>(s.N) * s.OC * s.OH() * s.OW(); }
inline size_t w_size(const Conv2dShape& s) { return static_cast<size_t>(s.OC) * s.C * s.KH * s.KW; }
inline size_t x_size(const Pool2dShape& s) { return static_cast<size_t>(s.N) * s.C * s.H * s.W; }
inline size_t y_size(const Pool2dShape& s) { return static_cast<size_t>(s.N) * s.C * s.OH() * s.OW(); }

// Small integers in [-2, 2]: ties are common, so "the first maximum wins" is really exercised.
inline std::vector<float> tie_heavy(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-2, 2);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(dist(rng));
  return v;
}

inline bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  // memcmp with an empty vector's null data() is undefined, even for 0 bytes.
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// run() (returning std::vector<float>) twice on 2 threads, then on 1 and on 3: every result must be
// bitwise the first (determinism across repeats and thread counts).
template <class Run>
inline void check_bitwise_across_threads(Run run) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(2);
  const std::vector<float> first = run();
  CHECK(bitwise_equal(run(), first));
  omp_set_num_threads(1);
  CHECK(bitwise_equal(run(), first));
  omp_set_num_threads(3);
  CHECK(bitwise_equal(run(), first));
  omp_set_num_threads(saved);
}

}  // namespace st::kernels::test
