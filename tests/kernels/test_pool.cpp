// tests/kernels/test_pool.cpp — max/avg pooling forward and backward against the reference at odd
// sizes, with padding, overlapping windows, and ties (the first maximum must win, argmax exactly);
// the 2×2 windows that tile a plane (written once per input in the backward), −0 gradients.
#include <cmath>
#include <limits>

#include "kernels/pool.h"
#include "kernels/reference.h"
#include "kernel_test_util.h"

namespace st::kernels {
namespace {

const Pool2dShape kShapes[] = {
    test::pool_shape(2, 3, 7, 9, 2, 2, 2, 2, 0, 0),     // odd H, W: the last row/col is dropped
    test::pool_shape(3, 2, 9, 8, 3, 3, 2, 2, 1, 1),     // overlapping windows with padding
    test::pool_shape(2, 2, 6, 7, 3, 2, 1, 2, 1, 0),     // non-square window, mixed stride
    test::pool_shape(1, 1, 1, 1, 1, 1, 1, 1, 0, 0),     // 1×1
    test::pool_shape(4, 5, 24, 24, 2, 2, 2, 2, 0, 0),   // LeNet-5 pool1
    test::pool_shape(16, 64, 32, 32, 2, 2, 2, 2, 0, 0), // big enough to run in parallel
    test::pool_shape(2, 3, 5, 71, 2, 2, 2, 2, 0, 0),    // 35 outputs per row: two full vectors and a ragged one
    test::pool_shape(1, 2, 2, 2, 2, 2, 2, 2, 0, 0),     // one window per plane
    test::pool_shape(3, 4, 14, 14, 2, 2, 2, 2, 0, 0),   // SimpleCNN pool2: 7 outputs per row
    test::pool_shape(2, 3, 28, 28, 2, 2, 2, 2, 0, 0),   // SimpleCNN pool1: a full vector and 6
    test::pool_shape(2, 2, 4, 6, 2, 2, 2, 2, 0, 0),     // 3 outputs per row
};


TEST_CASE("max pool forward and backward match the reference, ties included") {
  uint32_t seed = 1;
  for (const auto& s : kShapes) {
    for (bool ties : {false, true}) {
      INFO("H" << s.H << " W" << s.W << " k" << s.KH << "x" << s.KW << " p" << s.pad_h << "," << s.pad_w
               << " ties " << ties);
      const auto x = ties ? test::tie_heavy(test::x_size(s), seed++) : test::random_floats(test::x_size(s), seed++);
      std::vector<float> y(test::y_size(s)), want_y(test::y_size(s));
      std::vector<int32_t> arg(test::y_size(s)), want_arg(test::y_size(s));
      max_pool2d_forward(s, x.data(), y.data(), arg.data());
      ref::max_pool2d_forward(s, x.data(), want_y.data(), want_arg.data());
      CHECK(test::bitwise_equal(y, want_y));
      CHECK(arg == want_arg);

      auto dy = test::random_floats(test::y_size(s), seed++);
      dy[0] = -0.0f;  // lands as 0 + (−0) = +0, as the reference's sum into zeros has it
      std::vector<float> dx(test::x_size(s), 5.0f), want_dx(test::x_size(s));
      max_pool2d_backward(s, dy.data(), arg.data(), dx.data());
      ref::max_pool2d_backward(s, dy.data(), want_arg.data(), want_dx.data());
      test::check_close(dx, want_dx, 1e-6);
      // Without overlapping windows each input gradient is one sum, so bit for bit.
      if (s.stride_h >= s.KH && s.stride_w >= s.KW) CHECK(test::bitwise_equal(dx, want_dx));
    }
  }
}

TEST_CASE("max pool: the first maximum in row-major window order wins") {
  const Pool2dShape s = test::pool_shape(1, 1, 2, 2, 2, 2, 2, 2, 0, 0);
  const float x[4] = {1.0f, 3.0f, 3.0f, 3.0f};
  float y;
  int32_t arg;
  max_pool2d_forward(s, x, &y, &arg);
  CHECK(y == 3.0f);
  CHECK(arg == 1);
  // NaN follows the strict `>` of the reference: a NaN first candidate stays, a later one is skipped.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float first_nan[4] = {nan, 1.0f, 2.0f, 3.0f}, later_nan[4] = {1.0f, nan, 3.0f, 2.0f};
  max_pool2d_forward(s, first_nan, &y, &arg);
  CHECK(std::isnan(y));
  CHECK(arg == 0);
  max_pool2d_forward(s, later_nan, &y, &arg);
  CHECK(y == 3.0f);
  CHECK(arg == 2);
}

TEST_CASE("avg pool forward and backward match the reference (padding counts in the divisor)") {
  uint32_t seed = 50;
  for (const auto& s : kShapes) {
    INFO("H" << s.H << " W" << s.W << " k" << s.KH << "x" << s.KW << " p" << s.pad_h << "," << s.pad_w);
    const auto x = test::random_floats(test::x_size(s), seed++);
    std::vector<float> y(test::y_size(s)), want_y(test::y_size(s));
    avg_pool2d_forward(s, x.data(), y.data());
    ref::avg_pool2d_forward(s, x.data(), want_y.data());
    test::check_close(y, want_y, 1e-5);

    const auto dy = test::random_floats(test::y_size(s), seed++);
    std::vector<float> dx(test::x_size(s), 5.0f), want_dx(test::x_size(s));
    avg_pool2d_backward(s, dy.data(), dx.data());
    ref::avg_pool2d_backward(s, dy.data(), want_dx.data());
    test::check_close(dx, want_dx, 1e-5);
  }
}

TEST_CASE("avg pool: a corner window with padding divides by the full window area") {
  const Pool2dShape s = test::pool_shape(1, 1, 2, 2, 3, 3, 2, 2, 1, 1);  // one output; 4 real cells of 9
  const float x[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  float y;
  avg_pool2d_forward(s, x, &y);
  CHECK(y == doctest::Approx(10.0 / 9.0));
}

}  // namespace
}  // namespace st::kernels
