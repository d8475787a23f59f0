// tests/cuda/test_dense.cpp — cuda/dense.cu against the CPU kernels and references: SGEMM at odd
// sizes, all transposes, alpha/beta (C never read when beta == 0), padded and misaligned operands
// (the scalar-load paths); elementwise ops and bias add bitwise; bias grads, softmax-CE and sum to
// float tolerance; dropout masks reproducible from the host hash; argmax ties and NaNs exactly.
// Runs under the emulator (small sizes: every CUDA thread is a fiber there).
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "cuda/dense.h"
#include "cuda_test_util.h"
#include "kernels/elementwise.h"
#include "kernels/kernel_test_util.h"
#include "kernels/reference.h"

namespace st::cuda {
namespace {

namespace kt = st::kernels::test;
using test::DeviceArray;
using test::to_device;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// One SGEMM case on the device against ref::sgemm. `ld_pad` pads every leading dimension (odd pads
// force the scalar-load paths); `misalign` shifts A, B and C by one float off 16-byte alignment.
// C starts as NaN when beta == 0, and C's padding must come back untouched.
void check_sgemm(bool ta, bool tb, int M, int N, int K, float alpha, float beta, int ld_pad,
                 bool misalign, uint32_t seed) {
  const int lda = (ta ? M : K) + ld_pad, ldb = (tb ? K : N) + ld_pad, ldc = N + ld_pad;
  const size_t a_size = static_cast<size_t>(ta ? K : M) * lda, b_size = static_cast<size_t>(tb ? N : K) * ldb;
  const size_t c_size = static_cast<size_t>(M) * ldc;
  const size_t off = misalign ? 1 : 0;
  const auto A = kt::random_floats(a_size + off, seed), B = kt::random_floats(b_size + off, seed + 1);
  const auto C0 = beta == 0.f ? std::vector<float>(c_size + off, kNaN) : kt::random_floats(c_size + off, seed + 2);
  auto dA = to_device(A), dB = to_device(B), dC = to_device(C0);
  sgemm(ta, tb, M, N, K, alpha, dA.get() + off, lda, dB.get() + off, ldb, beta, dC.get() + off, ldc);
  const auto got = dC.download();
  std::vector<float> want = C0;
  kernels::ref::sgemm(ta, tb, M, N, K, alpha, A.data() + off, lda, B.data() + off, ldb, beta,
                      want.data() + off, ldc);

  INFO("M=" << M << " N=" << N << " K=" << K << " ta=" << ta << " tb=" << tb << " alpha=" << alpha
            << " beta=" << beta << " ld_pad=" << ld_pad << " misalign=" << misalign);
  std::vector<float> got_block, want_block;
  for (int i = 0; i < M; ++i) {
    const size_t row = off + static_cast<size_t>(i) * ldc;
    got_block.insert(got_block.end(), got.begin() + row, got.begin() + row + N);
    want_block.insert(want_block.end(), want.begin() + row, want.begin() + row + N);
    REQUIRE(std::memcmp(got.data() + row + N, C0.data() + row + N, sizeof(float) * ld_pad) == 0);
  }
  kt::check_close(got_block, want_block, 1e-5, std::sqrt(static_cast<double>(K)));
}

// Restores sgemm's automatic tile choice when a test ends, even on failure.
struct ForceTile {
  explicit ForceTile(int tile) { detail::force_sgemm_tile(tile); }
  ~ForceTile() { detail::force_sgemm_tile(0); }
};

TEST_CASE("cuda sgemm matches the reference: odd sizes, all transposes, alpha/beta, layouts") {
  struct Shape {
    int M, N, K;
  };
  const Shape shapes[] = {{1, 1, 1}, {7, 13, 5}, {67, 45, 129}, {64, 64, 16}, {5, 70, 3}};
  const float alpha_beta[][2] = {{1.f, 0.f}, {0.5f, -1.5f}};
  for (int tile : {64, 32}) {
    INFO("tile " << tile);
    ForceTile force(tile);
    uint32_t seed = 100;
    for (const Shape& s : shapes)
      for (int t = 0; t < 4; ++t)
        for (const auto& ab : alpha_beta) {
          const bool ta = t & 1, tb = t & 2;
          const float alpha = ab[0], beta = ab[1];
          check_sgemm(ta, tb, s.M, s.N, s.K, alpha, beta, 0, false, seed);   // vector if ld % 4 == 0
          check_sgemm(ta, tb, s.M, s.N, s.K, alpha, beta, 4, false, seed);   // vector paths
          check_sgemm(ta, tb, s.M, s.N, s.K, alpha, beta, 3, true, seed++);  // scalar paths
        }
  }
  // The automatic choice on a larger output (64-tiles unless the device has many SMs).
  check_sgemm(false, true, 130, 150, 70, 1.f, 0.f, 0, false, 7);
}

TEST_CASE("cuda sgemm split-K (long K, few output tiles) matches the reference and is deterministic") {
  // A conv weight gradient's shape: (OC, C·KH·KW) summed over N·OH·OW. K = 4100 over one tile
  // splits into 5 chunks of 832 (the last one short); (70, 9) with K = 2100 into 3.
  for (int tile : {64, 32}) {
    INFO("tile " << tile);
    ForceTile force(tile);
    uint32_t seed = 500;
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      check_sgemm(ta, tb, 6, 25, 4100, 1.f, 0.f, 0, false, seed);
      check_sgemm(ta, tb, 6, 25, 4100, 0.5f, 1.f, 3, true, seed);
      check_sgemm(ta, tb, 70, 9, 2100, -1.f, 0.25f, 0, false, seed++);
    }
  }
  // Same shape, same bits, whatever the tile: the split depends on the shape only.
  const int M = 5, N = 7, K = 3000;
  const auto A = kt::random_floats(static_cast<size_t>(M) * K, 1), B = kt::random_floats(static_cast<size_t>(K) * N, 2);
  auto dA = to_device(A), dB = to_device(B);
  DeviceArray<float> dC(static_cast<size_t>(M) * N);
  std::vector<std::vector<float>> results;
  for (int tile : {64, 32, 64}) {
    ForceTile force(tile);
    sgemm(false, false, M, N, K, 1.f, dA.get(), K, dB.get(), N, 0.f, dC.get(), N);
    results.push_back(dC.download());
  }
  CHECK(kt::bitwise_equal(results[0], results[1]));
  CHECK(kt::bitwise_equal(results[0], results[2]));
  CHECK_THROWS_AS(detail::force_sgemm_tile(16), std::invalid_argument);
}

TEST_CASE("cuda sgemm edge cases: K = 0, alpha = 0, empty outputs, beta = 1 accumulation") {
  // K == 0 and alpha == 0 scale C by beta without touching A/B; beta == 0 overwrites NaN.
  check_sgemm(false, false, 5, 6, 0, 1.f, 0.f, 1, false, 1);
  check_sgemm(false, true, 5, 6, 0, 1.f, 2.f, 0, false, 2);
  check_sgemm(true, false, 9, 3, 7, 0.f, 0.5f, 2, false, 3);
  check_sgemm(true, true, 9, 3, 7, 0.f, 0.f, 0, false, 4);
  check_sgemm(false, false, 33, 65, 17, 1.f, 1.f, 0, false, 5);
  // M == 0 or N == 0: nothing to do, nothing written.
  std::vector<float> c(4, 7.f);
  auto dC = to_device(c);
  sgemm(false, false, 0, 2, 3, 1.f, nullptr, 3, nullptr, 2, 0.f, dC.get(), 2);
  sgemm(false, false, 2, 0, 3, 1.f, nullptr, 3, nullptr, 1, 0.f, dC.get(), 1);
  CHECK(kt::bitwise_equal(dC.download(), c));
}

TEST_CASE("cuda elementwise ops match the CPU kernels bitwise") {
  for (int64_t n : {int64_t(1), int64_t(17), int64_t(1000), int64_t(4099)}) {
    INFO("n = " << n);
    const auto x = kt::random_floats(n, 1), y0 = kt::random_floats(n, 2);
    auto dx = to_device(x), dy0 = to_device(y0);
    DeviceArray<float> dout(n);
    std::vector<float> want(n);

    relu_forward(n, dx.get(), dout.get());
    kernels::relu_forward(n, x.data(), want.data());
    CHECK(kt::bitwise_equal(dout.download(), want));
    DeviceArray<float> inplace = to_device(x);
    relu_forward(n, inplace.get(), inplace.get());
    CHECK(kt::bitwise_equal(inplace.download(), want));

    const auto relu_y = want;
    auto dry = to_device(relu_y);
    relu_backward(n, dy0.get(), dry.get(), dout.get());
    kernels::relu_backward(n, y0.data(), relu_y.data(), want.data());
    CHECK(kt::bitwise_equal(dout.download(), want));

    add(n, dx.get(), dy0.get(), dout.get());
    kernels::add(n, x.data(), y0.data(), want.data());
    CHECK(kt::bitwise_equal(dout.download(), want));

    dout.upload(y0);
    axpy(n, -0.5f, dx.get(), dout.get());
    want = y0;
    kernels::axpy(n, -0.5f, x.data(), want.data());
    kt::check_close(dout.download(), want, 1e-6);  // the GPU may fuse the multiply-add

    scale(n, 3.f, dx.get(), dout.get());
    kernels::scale(n, 3.f, x.data(), want.data());
    CHECK(kt::bitwise_equal(dout.download(), want));

    fill(n, 0.25f, dout.get());
    CHECK(kt::bitwise_equal(dout.download(), std::vector<float>(n, 0.25f)));

    std::vector<uint8_t> keep(n);
    for (int64_t i = 0; i < n; ++i) keep[i] = (i * 7919) % 3 != 0;
    auto dkeep = to_device(keep);
    dropout_apply(n, dx.get(), dkeep.get(), 2.f, dout.get());
    kernels::dropout_apply(n, x.data(), keep.data(), 2.f, want.data());
    CHECK(kt::bitwise_equal(dout.download(), want));
  }
  // n == 0 launches nothing.
  relu_forward(0, nullptr, nullptr);
  fill(0, 1.f, nullptr);
}

TEST_CASE("cuda bias add (bitwise) and bias grad (double sums) for rows and channels") {
  const int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {64, 50, 1}, {3, 37, 33}, {0, 5, 4}, {100, 3, 2}};
  for (const auto& sh : shapes) {
    const int rows = sh[0], cols = sh[1], hw = sh[2];
    INFO(rows << "x" << cols << "x" << hw);
    const size_t n = static_cast<size_t>(rows) * cols * hw;
    const auto bias = kt::random_floats(cols, 3), base = kt::random_floats(n, 4);
    const auto prior = kt::random_floats(cols, 5);
    auto dbias = to_device(bias), dbase = to_device(base);

    // Rows: the (rows·hw, cols) matrix.
    const int R = rows * hw;
    DeviceArray<float> dy = to_device(base);
    bias_add_rows(R, cols, dbias.get(), dy.get());
    std::vector<float> want = base;
    kernels::bias_add_rows(R, cols, bias.data(), want.data());
    CHECK(kt::bitwise_equal(dy.download(), want));

    std::vector<float> want_db(cols, 9.f);
    DeviceArray<float> ddb = to_device(want_db);
    bias_grad_rows(R, cols, dbase.get(), ddb.get(), false);
    kernels::bias_grad_rows(R, cols, base.data(), want_db.data(), false);
    kt::check_close(ddb.download(), want_db, 1e-6);
    want_db = prior;
    ddb.upload(prior);
    bias_grad_rows(R, cols, dbase.get(), ddb.get(), true);
    kernels::bias_grad_rows(R, cols, base.data(), want_db.data(), true);
    kt::check_close(ddb.download(), want_db, 1e-6);

    // Channels: (rows, cols, hw).
    dy.upload(base);
    bias_add_channels(rows, cols, hw, dbias.get(), dy.get());
    want = base;
    kernels::bias_add_channels(rows, cols, hw, bias.data(), want.data());
    CHECK(kt::bitwise_equal(dy.download(), want));

    want_db.assign(cols, 9.f);
    ddb.upload(want_db);
    bias_grad_channels(rows, cols, hw, dbase.get(), ddb.get(), false);
    kernels::bias_grad_channels(rows, cols, hw, base.data(), want_db.data(), false);
    kt::check_close(ddb.download(), want_db, 1e-6);
    want_db = prior;
    ddb.upload(prior);
    bias_grad_channels(rows, cols, hw, dbase.get(), ddb.get(), true);
    kernels::bias_grad_channels(rows, cols, hw, base.data(), want_db.data(), true);
    kt::check_close(ddb.download(), want_db, 1e-6);
  }
}

TEST_CASE("cuda dropout mask is the host hash, keeps ≈ 1 − p, and offsets shift the stream") {
  const int64_t n = 5000;
  const uint64_t seed = 12345;
  for (float p : {0.f, 0.3f, 0.9f}) {
    INFO("p = " << p);
    DeviceArray<uint8_t> dkeep(n);
    dropout_mask(n, p, seed, 0, dkeep.get());
    const auto keep = dkeep.download();
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      REQUIRE(keep[i] == (dropout_uniform(seed, i) >= p ? 1 : 0));
      kept += keep[i];
    }
    CHECK(std::fabs(static_cast<double>(kept) / n - (1.0 - p)) < 0.03);

    DeviceArray<uint8_t> shifted(n - 7);
    dropout_mask(n - 7, p, seed, 7, shifted.get());
    const auto tail = shifted.download();
    CHECK(std::memcmp(tail.data(), keep.data() + 7, n - 7) == 0);
  }
  // Different seeds give different masks; draws lie in [0, 1).
  int same = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    const float a = dropout_uniform(1, i), b = dropout_uniform(2, i);
    REQUIRE((a >= 0.f && a < 1.f));
    same += (a >= 0.5f) == (b >= 0.5f);
  }
  CHECK(same > 400);
  CHECK(same < 600);
}

TEST_CASE("cuda softmax cross-entropy matches the reference; backward matches the CPU kernel") {
  const int shapes[][2] = {{1, 1}, {1, 10}, {64, 10}, {7, 1000}, {33, 37}, {9, 32}};
  uint32_t seed = 10;
  for (const auto& sh : shapes) {
    const int B = sh[0], C = sh[1];
    INFO("B=" << B << " C=" << C);
    const auto logits = kt::random_floats(static_cast<size_t>(B) * C, seed++, -8.f, 8.f);
    std::vector<int32_t> labels(B);
    for (int b = 0; b < B; ++b) labels[b] = (b * 7 + 3) % C;
    auto dlogits = to_device(logits);
    auto dlabels = to_device(labels);
    DeviceArray<float> dprobs(logits.size());
    std::vector<float> want_probs(logits.size());
    const double loss = softmax_xent_forward(B, C, dlogits.get(), dlabels.get(), dprobs.get());
    const double want =
        kernels::ref::softmax_xent_forward(B, C, logits.data(), labels.data(), want_probs.data());
    CHECK(loss == doctest::Approx(want).epsilon(1e-6));
    const auto probs = dprobs.download();
    kt::check_close(probs, want_probs, 1e-5, 1e-6);

    DeviceArray<double> dloss(1);
    softmax_xent_forward_to_device(B, C, dlogits.get(), dlabels.get(), dprobs.get(), dloss.get());
    CHECK(dloss.download()[0] == loss);  // same kernels, same order

    DeviceArray<float> dd(logits.size());
    softmax_xent_backward(B, C, dprobs.get(), dlabels.get(), 2.f, dd.get());
    std::vector<float> want_d(logits.size());
    kernels::softmax_xent_backward(B, C, probs.data(), labels.data(), 2.f, want_d.data());
    CHECK(kt::bitwise_equal(dd.download(), want_d));
  }
}

TEST_CASE("cuda softmax cross-entropy: huge logits, ties, bad labels, empty batch") {
  const std::vector<float> logits = {1000.f, -1000.f, 999.f, 88.f, 89.f, -3.0e38f,
                                     5.f,    5.f,     5.f};
  const std::vector<int32_t> labels = {1, 1, 2};
  auto dlogits = to_device(logits);
  auto dlabels = to_device(labels);
  DeviceArray<float> dprobs(9);
  const double loss = softmax_xent_forward(3, 3, dlogits.get(), dlabels.get(), dprobs.get());
  REQUIRE(std::isfinite(loss));
  const double tail = std::log1p(std::exp(-1.0));
  CHECK(loss == doctest::Approx((2000.0 + tail + tail + std::log(3.0)) / 3.0).epsilon(1e-9));
  const auto probs = dprobs.download();
  for (float p : probs) CHECK(std::isfinite(p));
  CHECK(probs[1] == 0.f);
  CHECK(probs[6] == probs[7]);
  CHECK(probs[7] == probs[8]);

  const std::vector<int32_t> bad = {0, 3, 1};  // 3 is outside [0, C)
  auto dbad = to_device(bad);
  CHECK(std::isnan(softmax_xent_forward(3, 3, dlogits.get(), dbad.get(), dprobs.get())));

  CHECK(softmax_xent_forward(0, 3, nullptr, nullptr, nullptr) == 0.0);
  DeviceArray<double> dloss = to_device(std::vector<double>{5.0});
  softmax_xent_forward_to_device(0, 3, nullptr, nullptr, nullptr, dloss.get());
  CHECK(dloss.download()[0] == 0.0);
}

TEST_CASE("cuda sum is accurate and deterministic") {
  for (int64_t n : {int64_t(1), int64_t(17), int64_t(1000), int64_t(70001)}) {
    INFO("n = " << n);
    const auto x = kt::random_floats(n, 20);
    auto dx = to_device(x);
    const double got = sum(n, dx.get());
    CHECK(got == doctest::Approx(kernels::sum(n, x.data())).epsilon(1e-12).scale(1.0));
    CHECK(sum(n, dx.get()) == got);  // bitwise: the order depends on n only
    DeviceArray<double> dout(1);
    sum_to_device(n, dx.get(), dout.get());
    CHECK(dout.download()[0] == got);
  }
  CHECK(sum(0, nullptr) == 0.0);
}

TEST_CASE("cuda argmax_rows equals the CPU kernel: first maximum, NaNs, infinities, wide rows") {
  const float inf = std::numeric_limits<float>::infinity();
  const int cols = 70;  // more than a warp: lanes hold several candidates each
  std::vector<std::vector<float>> rows;
  rows.push_back(std::vector<float>(cols, -1.f));  // all tied: column 0
  rows.push_back(std::vector<float>(cols, -inf));
  rows.push_back(std::vector<float>(cols, 0.f));
  rows.back()[3] = rows.back()[35] = rows.back()[67] = 2.f;  // ties across lanes: first wins
  rows.push_back(std::vector<float>(cols, 0.f));
  rows.back()[0] = kNaN;  // NaN in column 0: nothing compares greater
  rows.back()[5] = 9.f;
  rows.push_back(std::vector<float>(cols, 1.f));
  rows.back()[1] = kNaN;  // NaN elsewhere: skipped
  rows.back()[40] = 3.f;
  rows.push_back(std::vector<float>(cols, kNaN));
  rows.back()[0] = -inf;
  rows.back()[50] = -inf;
  rows.push_back(std::vector<float>(cols, kNaN));
  rows.back()[33] = 1.f;
  rows.back()[0] = -5.f;
  rows.push_back(std::vector<float>(cols, 0.f));
  rows.back()[69] = inf;
  rows.back()[68] = inf;
  for (int r = 0; r < 5; ++r) rows.push_back(kt::random_floats(cols, 30 + r));

  std::vector<float> x;
  for (const auto& r : rows) x.insert(x.end(), r.begin(), r.end());
  const int R = static_cast<int>(rows.size());
  auto dx = to_device(x);
  DeviceArray<int32_t> dout(R);
  argmax_rows(R, cols, dx.get(), dout.get());
  std::vector<int32_t> want(R);
  kernels::argmax_rows(R, cols, x.data(), want.data());
  const auto got = dout.download();
  for (int r = 0; r < R; ++r) {
    INFO("row " << r);
    CHECK(got[r] == want[r]);
  }

  // Narrow rows (fewer columns than lanes) and a single column.
  const auto small = kt::random_floats(9 * 3, 40);
  auto dsmall = to_device(small);
  DeviceArray<int32_t> dsmall_out(9);
  argmax_rows(9, 3, dsmall.get(), dsmall_out.get());
  std::vector<int32_t> want_small(9);
  kernels::argmax_rows(9, 3, small.data(), want_small.data());
  CHECK(dsmall_out.download() == want_small);
  DeviceArray<int32_t> dcol_out(27);
  argmax_rows(27, 1, dsmall.get(), dcol_out.get());
  CHECK(dcol_out.download() == std::vector<int32_t>(27, 0));
}

}  // namespace
}  // namespace st::cuda
