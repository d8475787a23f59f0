// tests/kernels/test_gemm.cpp — sgemm (blocked AVX-512 and portable micro-kernels) against the
// double-accumulating reference at odd sizes, all transpose cases, alpha/beta combinations,
// padded leading dimensions, and bitwise determinism across runs and thread counts.
#include <omp.h>

#include <limits>

#include "kernels/gemm.h"
#include "kernels/reference.h"
#include "kernel_test_util.h"

namespace st::kernels {
namespace {

using GemmFn = void (*)(bool, bool, int, int, int, float, const float*, int, const float*, int,
                        float, float*, int);

struct GemmCase {
  int M, N, K;
};

// Runs fn and the reference on the same random operands (leading dims padded by `ld_pad`) and
// compares. C starts as NaN when beta == 0, so any read of C shows up.
void check_gemm(GemmFn fn, bool ta, bool tb, GemmCase c, float alpha, float beta, int ld_pad,
                uint32_t seed) {
  const int lda = (ta ? c.M : c.K) + ld_pad, ldb = (tb ? c.K : c.N) + ld_pad, ldc = c.N + ld_pad;
  const int a_rows = ta ? c.K : c.M, b_rows = tb ? c.N : c.K;
  const auto A = test::random_floats(static_cast<size_t>(a_rows) * lda, seed);
  const auto B = test::random_floats(static_cast<size_t>(b_rows) * ldb, seed + 1);
  std::vector<float> C0 = beta == 0.0f
                              ? std::vector<float>(static_cast<size_t>(c.M) * ldc,
                                                   std::numeric_limits<float>::quiet_NaN())
                              : test::random_floats(static_cast<size_t>(c.M) * ldc, seed + 2);
  std::vector<float> got = C0, want = C0;
  fn(ta, tb, c.M, c.N, c.K, alpha, A.data(), lda, B.data(), ldb, beta, got.data(), ldc);
  ref::sgemm(ta, tb, c.M, c.N, c.K, alpha, A.data(), lda, B.data(), ldb, beta, want.data(), ldc);
  // Compare only the M×N block: the ld padding of C must be left untouched (NaN stays NaN).
  std::vector<float> got_block, want_block;
  for (int i = 0; i < c.M; ++i) {
    for (int j = 0; j < c.N; ++j) {
      got_block.push_back(got[static_cast<size_t>(i) * ldc + j]);
      want_block.push_back(want[static_cast<size_t>(i) * ldc + j]);
    }
    for (int j = c.N; j < ldc; ++j) {
      const float g = got[static_cast<size_t>(i) * ldc + j], o = C0[static_cast<size_t>(i) * ldc + j];
      REQUIRE(std::memcmp(&g, &o, sizeof(float)) == 0);
    }
  }
  INFO("M=" << c.M << " N=" << c.N << " K=" << c.K << " ta=" << ta << " tb=" << tb
            << " alpha=" << alpha << " beta=" << beta << " ld_pad=" << ld_pad);
  test::check_close(got_block, want_block, 1e-4, std::sqrt(static_cast<double>(c.K)));
}

const GemmCase kOddCases[] = {{1, 1, 1},   {7, 96, 40},  {11, 55, 8},  {13, 17, 300}, {1, 50, 33},
                              {40, 1, 29}, {23, 31, 1},  {9, 33, 257}, {130, 70, 20}, {3, 530, 5},
                              {64, 100, 300}};

void check_all_cases(GemmFn fn) {
  const float alpha_beta[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-2.0f, 0.25f}, {1.0f, 1.0f}};
  uint32_t seed = 1;
  for (const GemmCase& c : kOddCases)
    for (int t = 0; t < 4; ++t)
      for (const auto& ab : alpha_beta) {
        const int ld_pad = (seed % 3 == 0) ? 3 : 0;
        check_gemm(fn, t & 1, t & 2, c, ab[0], ab[1], ld_pad, seed++);
      }
}

TEST_CASE("sgemm matches the reference at odd sizes, all transposes, alpha/beta, padded ld") {
  check_all_cases(sgemm);
}

TEST_CASE("sgemm: shapes large enough to run in parallel and to span several cache blocks") {
  // LeNet-300-100 layer 1 (x·Wᵀ, dY·W, dYᵀ·X) and a shape spanning MC, NC and KC blocks.
  check_gemm(sgemm, false, true, {64, 300, 784}, 1.0f, 0.0f, 0, 11);
  check_gemm(sgemm, false, false, {64, 784, 300}, 1.0f, 0.0f, 0, 12);
  check_gemm(sgemm, true, false, {300, 784, 64}, 1.0f, 1.0f, 0, 13);
  check_gemm(sgemm, true, true, {150, 600, 270}, 0.75f, -0.5f, 1, 14);
}

TEST_CASE("sgemm: tiny C with a long K takes the split-K path") {
  check_gemm(sgemm, false, true, {20, 25, 5000}, 1.0f, 0.0f, 0, 21);  // conv weight-gradient shape
  check_gemm(sgemm, true, false, {7, 9, 2100}, -1.5f, 0.5f, 2, 22);
  check_gemm(sgemm, true, true, {3, 5, 4097}, 1.0f, 1.0f, 0, 23);
}

TEST_CASE("sgemm: alpha == 0 or K == 0 only scales C, and beta == 0 never reads it") {
  const int M = 5, N = 7;
  std::vector<float> C(M * N, std::numeric_limits<float>::quiet_NaN());
  const auto A = test::random_floats(M * 3, 1), B = test::random_floats(3 * N, 2);
  sgemm(false, false, M, N, 0, 1.0f, A.data(), 3, B.data(), N, 0.0f, C.data(), N);
  for (float x : C) CHECK(x == 0.0f);
  std::vector<float> D(M * N, 2.0f);
  sgemm(false, false, M, N, 3, 0.0f, A.data(), 3, B.data(), N, 0.5f, D.data(), N);
  for (float x : D) CHECK(x == 1.0f);
  sgemm(false, false, 0, N, 3, 1.0f, A.data(), 3, B.data(), N, 0.0f, nullptr, N);  // empty: no-op
}

TEST_CASE("sgemm is bitwise deterministic across calls and thread counts") {
  const int M = 97, N = 333, K = 301;
  const auto A = test::random_floats(static_cast<size_t>(M) * K, 5);
  const auto B = test::random_floats(static_cast<size_t>(K) * N, 6);
  std::vector<float> c1(static_cast<size_t>(M) * N), c2(c1.size()), c3(c1.size());
  sgemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, c1.data(), N);
  sgemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, c2.data(), N);
  CHECK(test::bitwise_equal(c1, c2));
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  sgemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, c3.data(), N);
  omp_set_num_threads(saved);
  CHECK(test::bitwise_equal(c1, c3));  // each element's k order does not depend on the tiling

  // Split-K too: its chunks are fixed by the shape, not by the thread count.
  const int m = 20, n = 25, k = 5000;
  const auto a = test::random_floats(static_cast<size_t>(m) * k, 7);
  const auto b = test::random_floats(static_cast<size_t>(n) * k, 8);
  std::vector<float> s1(m * n), s2(m * n);
  sgemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, s1.data(), n);
  omp_set_num_threads(1);
  sgemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, s2.data(), n);
  omp_set_num_threads(saved);
  CHECK(test::bitwise_equal(s1, s2));
}

}  // namespace
}  // namespace st::kernels
