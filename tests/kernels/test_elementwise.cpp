// tests/kernels/test_elementwise.cpp — elementwise ops, bias add/grad, reductions and the fused
// softmax-cross-entropy: against plain loops (small and parallel-sized inputs), numerical
// stability at huge logits, first-maximum ties in argmax, determinism of the reductions; the first NaN or ±Inf.
#include <cmath>
#include <limits>

#include "kernels/elementwise.h"
#include "kernels/reference.h"
#include "kernel_test_util.h"

namespace st::kernels {
namespace {

const int64_t kSizes[] = {1, 17, 1000, 200003};  // the last one takes the parallel path

TEST_CASE("relu forward/backward, add, axpy, scale, fill, dropout") {
  for (int64_t n : kSizes) {
    INFO("n = " << n);
    const auto x = test::random_floats(n, 1), y0 = test::random_floats(n, 2);
    std::vector<float> y(n), want(n);

    relu_forward(n, x.data(), y.data());
    for (int64_t i = 0; i < n; ++i) want[i] = x[i] > 0 ? x[i] : 0.0f;
    CHECK(test::bitwise_equal(y, want));
    std::vector<float> inplace = x;
    relu_forward(n, inplace.data(), inplace.data());
    CHECK(test::bitwise_equal(inplace, want));

    std::vector<float> dx(n);
    relu_backward(n, y0.data(), y.data(), dx.data());
    for (int64_t i = 0; i < n; ++i) want[i] = y[i] > 0 ? y0[i] : 0.0f;
    CHECK(test::bitwise_equal(dx, want));

    add(n, x.data(), y0.data(), y.data());
    for (int64_t i = 0; i < n; ++i) want[i] = x[i] + y0[i];
    CHECK(test::bitwise_equal(y, want));

    y = y0;
    axpy(n, -0.5f, x.data(), y.data());
    for (int64_t i = 0; i < n; ++i) want[i] = y0[i] + -0.5f * x[i];
    test::check_close(y, want, 1e-6);

    scale(n, 3.0f, x.data(), y.data());
    for (int64_t i = 0; i < n; ++i) want[i] = 3.0f * x[i];
    CHECK(test::bitwise_equal(y, want));

    fill(n, 0.25f, y.data());
    for (float v : y) REQUIRE(v == 0.25f);

    std::vector<uint8_t> keep(n);
    for (int64_t i = 0; i < n; ++i) keep[i] = (i * 7919) % 3 != 0;
    dropout_apply(n, x.data(), keep.data(), 2.0f, y.data());
    for (int64_t i = 0; i < n; ++i) want[i] = keep[i] ? x[i] * 2.0f : 0.0f;
    CHECK(test::bitwise_equal(y, want));
  }
}

TEST_CASE("bias add and bias grad, rows (Linear) and channels (conv)") {
  // 70 × 2500: the parallel path, over three column panels of bias_grad_rows (the last partial).
  const int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {64, 300, 1}, {64, 50, 64}, {3, 37, 1031}, {70, 2500, 1}};
  for (const auto& sh : shapes) {
    const int rows = sh[0], cols = sh[1], hw = sh[2];
    INFO(rows << "x" << cols << "x" << hw);
    const auto bias = test::random_floats(cols, 3);
    const auto base = test::random_floats(static_cast<size_t>(rows) * cols * hw, 4);
    const auto prior = test::random_floats(cols, 5);
    std::vector<float> want(base.size());

    if (hw == 1) {
      std::vector<float> y = base;
      bias_add_rows(rows, cols, bias.data(), y.data());
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) want[r * cols + c] = base[r * cols + c] + bias[c];
      CHECK(test::bitwise_equal(y, want));

      std::vector<float> db(cols, 9.0f), want_db(cols);
      for (int c = 0; c < cols; ++c) {
        double acc = 0.0;
        for (int r = 0; r < rows; ++r) acc += base[r * cols + c];
        want_db[c] = static_cast<float>(acc);
      }
      bias_grad_rows(rows, cols, base.data(), db.data(), false);
      test::check_close(db, want_db, 1e-6);
      db = prior;
      bias_grad_rows(rows, cols, base.data(), db.data(), true);
      for (int c = 0; c < cols; ++c) want_db[c] += prior[c];
      test::check_close(db, want_db, 1e-6);
    }

    std::vector<float> y = base;
    bias_add_channels(rows, cols, hw, bias.data(), y.data());
    for (size_t i = 0; i < base.size(); ++i) want[i] = base[i] + bias[(i / hw) % cols];
    CHECK(test::bitwise_equal(y, want));

    std::vector<float> db(cols, 9.0f), want_db(cols);
    for (int c = 0; c < cols; ++c) {
      double acc = 0.0;
      for (int n = 0; n < rows; ++n)
        for (int i = 0; i < hw; ++i) acc += base[(static_cast<size_t>(n) * cols + c) * hw + i];
      want_db[c] = static_cast<float>(acc);
    }
    bias_grad_channels(rows, cols, hw, base.data(), db.data(), false);
    test::check_close(db, want_db, 1e-6);
    db = prior;
    bias_grad_channels(rows, cols, hw, base.data(), db.data(), true);
    for (int c = 0; c < cols; ++c) want_db[c] += prior[c];
    test::check_close(db, want_db, 1e-6);
  }
}

TEST_CASE("softmax cross-entropy forward matches the reference; backward is (p − onehot)·dloss/B") {
  const int shapes[][2] = {{1, 1}, {1, 10}, {64, 10}, {7, 1000}, {4096, 37}};
  uint32_t seed = 10;
  for (const auto& sh : shapes) {
    const int B = sh[0], C = sh[1];
    INFO("B=" << B << " C=" << C);
    const auto logits = test::random_floats(static_cast<size_t>(B) * C, seed++, -8.0f, 8.0f);
    std::vector<int32_t> labels(B);
    for (int b = 0; b < B; ++b) labels[b] = (b * 7 + 3) % C;
    std::vector<float> probs(logits.size()), want_probs(logits.size());
    const double loss = softmax_xent_forward(B, C, logits.data(), labels.data(), probs.data());
    const double want = ref::softmax_xent_forward(B, C, logits.data(), labels.data(), want_probs.data());
    CHECK(loss == doctest::Approx(want).epsilon(1e-6));
    test::check_close(probs, want_probs, 1e-5, 1e-6);

    std::vector<float> dlogits(logits.size()), want_d(logits.size());
    softmax_xent_backward(B, C, probs.data(), labels.data(), 2.0f, dlogits.data());
    for (int b = 0; b < B; ++b)
      for (int c = 0; c < C; ++c)
        want_d[b * C + c] = (probs[b * C + c] - (c == labels[b] ? 1.0f : 0.0f)) * 2.0f / B;
    test::check_close(dlogits, want_d, 1e-6, 1e-7);
  }
}

TEST_CASE("softmax cross-entropy is stable at huge logits") {
  const float logits[6] = {1000.0f, -1000.0f, 999.0f, 88.0f, 89.0f, -3.0e38f};
  const int32_t labels[2] = {1, 1};
  float probs[6];
  const double loss = softmax_xent_forward(2, 3, logits, labels, probs);
  REQUIRE(std::isfinite(loss));
  // Row 0: −log p1 = 2000 + log(1 + e⁻¹); row 1: −log p(89) = log(1 + e⁻¹).
  const double tail = std::log1p(std::exp(-1.0));
  CHECK(loss == doctest::Approx((2000.0 + tail + tail) / 2.0).epsilon(1e-9));
  for (float p : probs) CHECK(std::isfinite(p));
  CHECK(probs[1] == 0.0f);
}

TEST_CASE("sum is accurate and deterministic; argmax takes the first maximum") {
  for (int64_t n : kSizes) {
    const auto x = test::random_floats(n, 20);
    double want = 0.0;
    for (float v : x) want += v;
    const double got = sum(n, x.data());
    CHECK(got == doctest::Approx(want).epsilon(1e-9).scale(1.0));
    CHECK(sum(n, x.data()) == got);  // bitwise: same thread count, same partials
  }
  const float m[3 * 4] = {1, 5, 5, 2,  /**/ -1, -1, -1, -1, /**/ 0, 0, 0, 7};
  int32_t out[3];
  argmax_rows(3, 4, m, out);
  CHECK(out[0] == 1);
  CHECK(out[1] == 0);
  CHECK(out[2] == 3);
}

}  // namespace
TEST_CASE("first_non_finite: the first NaN or ±Inf at any position, serial and split over threads") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{37}, int64_t{200003}}) {  // the last one is parallel
    CAPTURE(n);
    std::vector<float> v = test::random_floats(static_cast<size_t>(n), 5);
    if (n > 3) v[1] = std::numeric_limits<float>::max(), v[2] = -0.0f, v[3] = 1e-42f;  // finite
    CHECK(first_non_finite(n, v.data()) == -1);
    for (float bad : {nan, -nan, inf, -inf})
      for (int64_t at : {int64_t{0}, n / 2, n / 2 + 1, n - 1}) {
        if (at < 0 || at >= n) continue;
        CAPTURE(bad);
        CAPTURE(at);
        std::vector<float> w = v;
        w[static_cast<size_t>(at)] = bad;
        w[static_cast<size_t>(n - 1)] = bad;  // a later one does not count
        CHECK(first_non_finite(n, w.data()) == at);
      }
  }
}

}  // namespace st::kernels
