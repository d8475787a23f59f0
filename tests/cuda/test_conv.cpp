// tests/cuda/test_conv.cpp — cuda/conv.cu against the CPU kernels and references: im2col (bitwise)
// and col2im (gather vs the CPU's scatter: float tolerance) per image and per batch, the CNP<->NCHW
// reorders bitwise, the batched-GEMM conv2d forward / backward-data / backward-weights against the
// double reference (overwrite, accumulate, no bias), and max/avg pooling against the CPU kernels
// (bitwise but avg pooling's backward; argmax exactly, ties included). Shapes: stride > kernel, padding, non-square kernels,
// W = 1, 1×1 maps, N = 1. Small sizes: the emulator runs every CUDA thread as a fiber.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/conv.h"
#include "cuda_test_util.h"
#include "kernels/conv.h"
#include "kernels/kernel_test_util.h"
#include "kernels/pool.h"
#include "kernels/reference.h"
#include "kernels/sparse_conv.h"

namespace st::cuda {
namespace {

namespace kt = st::kernels::test;
using test::DeviceArray;
using test::to_device;

const Conv2dShape kConvShapes[] = {
    kt::conv_shape(2, 3, 9, 11, 4, 3, 2, 2, 1, 1, 0),  // non-square kernel, mixed stride, pad on H only
    kt::conv_shape(1, 1, 5, 5, 2, 5, 5, 1, 1, 0, 0),   // N = 1, kernel covers the image (1×1 output)
    kt::conv_shape(3, 2, 7, 6, 5, 1, 1, 1, 1, 0, 0),   // pointwise
    kt::conv_shape(2, 3, 7, 6, 5, 1, 1, 2, 2, 0, 0),   // 1×1 stride 2: pixels no output reads
    kt::conv_shape(3, 3, 8, 8, 6, 3, 3, 2, 2, 1, 1),   // 3×3 stride 2 pad 1
    kt::conv_shape(2, 2, 6, 7, 3, 2, 3, 3, 2, 1, 1),   // stride larger than the kernel height
    kt::conv_shape(2, 1, 4, 1, 2, 3, 3, 1, 1, 1, 1),   // W = 1: kernel columns that only see padding
    kt::conv_shape(2, 1, 12, 12, 3, 5, 5, 1, 1, 2, 2), // LeNet-5 conv1-like ("same" padding)
};

size_t col_size(const Conv2dShape& s) {
  return static_cast<size_t>(s.C) * s.KH * s.KW * s.OH() * s.OW() * s.N;
}

std::string describe(const Conv2dShape& s) {
  return "N" + std::to_string(s.N) + " C" + std::to_string(s.C) + " " + std::to_string(s.H) + "x" +
         std::to_string(s.W) + " OC" + std::to_string(s.OC) + " k" + std::to_string(s.KH) + "x" +
         std::to_string(s.KW) + " s" + std::to_string(s.stride_h) + "," +
         std::to_string(s.stride_w) + " p" + std::to_string(s.pad_h) + "," + std::to_string(s.pad_w);
}

TEST_CASE("cuda im2col/col2im match the CPU kernels, per image and per batch") {
  uint32_t seed = 1;
  for (const auto& shape : kConvShapes) {
    INFO(describe(shape));
    // Per image.
    Conv2dShape one = shape;
    one.N = 1;
    const auto x1 = kt::random_floats(kt::x_size(one), seed++), c1 = kt::random_floats(col_size(one), seed++);
    auto dx1 = to_device(x1), dc1 = to_device(c1);
    DeviceArray<float> dcols(col_size(one)), dimg(kt::x_size(one));
    std::vector<float> want_cols(col_size(one)), want_img(kt::x_size(one));
    cuda::im2col(one, dx1.get(), dcols.get());
    kernels::im2col(one, x1.data(), want_cols.data());
    CHECK(kt::bitwise_equal(dcols.download(), want_cols));
    dimg.upload(std::vector<float>(kt::x_size(one), 7.f));  // overwritten, never read
    cuda::col2im(one, dc1.get(), dimg.get());
    kernels::col2im(one, c1.data(), want_img.data());
    kt::check_close(dimg.download(), want_img, 1e-6);

    // Whole batch, column n·P + p.
    const Conv2dShape& s = shape;
    const auto x = kt::random_floats(kt::x_size(s), seed++), c = kt::random_floats(col_size(s), seed++);
    auto dx = to_device(x), dc = to_device(c);
    DeviceArray<float> dbcols(col_size(s)), dbimg(kt::x_size(s));
    std::vector<float> want_bcols(col_size(s)), want_bimg(kt::x_size(s));
    cuda::im2col_batch(s, dx.get(), dbcols.get());
    kernels::im2col_batch(s, x.data(), want_bcols.data());
    CHECK(kt::bitwise_equal(dbcols.download(), want_bcols));
    cuda::col2im_batch(s, dc.get(), dbimg.get());
    kernels::col2im_batch(s, c.data(), want_bimg.data());
    kt::check_close(dbimg.download(), want_bimg, 1e-6);
  }
}

TEST_CASE("cuda cnp_to_nchw (with and without bias) and nchw_to_cnp are the CPU's, bitwise") {
  const int shapes[][3] = {{1, 1, 1}, {3, 2, 5}, {4, 3, 49}, {7, 1, 33}};
  uint32_t seed = 50;
  for (const auto& sh : shapes) {
    const int C = sh[0], N = sh[1], P = sh[2];
    INFO("C" << C << " N" << N << " P" << P);
    const size_t n = static_cast<size_t>(C) * N * P;
    auto a = kt::random_floats(n, seed++);
    a[0] = -0.0f;  // without a bias, −0 must stay −0 (a copy, not + 0)
    const auto bias = kt::random_floats(C, seed++);
    auto da = to_device(a), dbias = to_device(bias);
    DeviceArray<float> dy(n), dback(n);
    std::vector<float> want(n), want_back(n);
    for (const float* b : {bias.data(), static_cast<const float*>(nullptr)}) {
      cuda::cnp_to_nchw(C, N, P, da.get(), b ? dbias.get() : nullptr, dy.get());
      kernels::cnp_to_nchw(C, N, P, a.data(), b, want.data());
      CHECK(kt::bitwise_equal(dy.download(), want));
    }
    cuda::nchw_to_cnp(C, N, P, dy.get(), dback.get());
    kernels::nchw_to_cnp(C, N, P, want.data(), want_back.data());
    CHECK(kt::bitwise_equal(dback.download(), want_back));
    CHECK(kt::bitwise_equal(want_back, a));  // the round trip
  }
}

TEST_CASE("cuda conv2d forward, backward-data and backward-weights match the reference") {
  uint32_t seed = 100;
  for (const auto& s : kConvShapes) {
    INFO(describe(s));
    const auto x = kt::random_floats(kt::x_size(s), seed++), w = kt::random_floats(kt::w_size(s), seed++);
    const auto b = kt::random_floats(s.OC, seed++), dy = kt::random_floats(kt::y_size(s), seed++);
    auto dx_in = to_device(x), dw_in = to_device(w), db_in = to_device(b), ddy = to_device(dy);
    DeviceArray<float> ws(cuda::conv2d_workspace_floats(s)), dy_out(kt::y_size(s)), ddx(kt::x_size(s));
    const double k_scale = std::sqrt(static_cast<double>(s.C * s.KH * s.KW));

    std::vector<float> want(kt::y_size(s));
    for (bool with_bias : {true, false}) {
      cuda::conv2d_forward(s, dx_in.get(), dw_in.get(), with_bias ? db_in.get() : nullptr, dy_out.get(), ws.get());
      kernels::ref::conv2d_forward(s, x.data(), w.data(), with_bias ? b.data() : nullptr, want.data());
      kt::check_close(dy_out.download(), want, 1e-5, k_scale);
    }

    std::vector<float> want_dx(kt::x_size(s));
    ddx.upload(std::vector<float>(kt::x_size(s), 123.f));
    cuda::conv2d_backward_data(s, ddy.get(), dw_in.get(), ddx.get(), ws.get());
    kernels::ref::conv2d_backward_data(s, dy.data(), w.data(), want_dx.data());
    kt::check_close(ddx.download(), want_dx, 1e-5, std::sqrt(static_cast<double>(s.OC * s.KH * s.KW)));

    std::vector<float> want_w(kt::w_size(s)), want_b(s.OC);
    kernels::ref::conv2d_backward_weights(s, x.data(), dy.data(), want_w.data(), want_b.data());
    const double scale = std::sqrt(static_cast<double>(s.N) * s.OH() * s.OW());
    const auto prior_w = kt::random_floats(kt::w_size(s), seed++), prior_b = kt::random_floats(s.OC, seed++);
    auto ddw = to_device(std::vector<float>(kt::w_size(s), 7.f));
    auto ddb = to_device(std::vector<float>(s.OC, 7.f));
    cuda::conv2d_backward_weights(s, dx_in.get(), ddy.get(), ddw.get(), ddb.get(), false, ws.get());
    kt::check_close(ddw.download(), want_w, 1e-5, scale);
    kt::check_close(ddb.download(), want_b, 1e-5, scale);

    ddw.upload(prior_w);
    ddb.upload(prior_b);
    cuda::conv2d_backward_weights(s, dx_in.get(), ddy.get(), ddw.get(), ddb.get(), true, ws.get());
    std::vector<float> acc_w(kt::w_size(s)), acc_b(s.OC);
    for (size_t i = 0; i < acc_w.size(); ++i) acc_w[i] = prior_w[i] + want_w[i];
    for (int i = 0; i < s.OC; ++i) acc_b[i] = prior_b[i] + want_b[i];
    kt::check_close(ddw.download(), acc_w, 1e-5, scale);
    kt::check_close(ddb.download(), acc_b, 1e-5, scale);

    cuda::conv2d_backward_weights(s, dx_in.get(), ddy.get(), ddw.get(), nullptr, false, ws.get());
    kt::check_close(ddw.download(), want_w, 1e-5, scale);
  }
}

const Pool2dShape kPoolShapes[] = {
    kt::pool_shape(2, 3, 7, 9, 2, 2, 2, 2, 0, 0),  // odd H, W: the last row/col is dropped
    kt::pool_shape(3, 2, 9, 8, 3, 3, 2, 2, 1, 1),  // overlapping windows with padding
    kt::pool_shape(2, 2, 6, 7, 3, 2, 1, 2, 1, 0),  // non-square window, mixed stride
    kt::pool_shape(1, 1, 1, 1, 1, 1, 1, 1, 0, 0),  // 1×1
    kt::pool_shape(2, 2, 8, 5, 3, 3, 1, 1, 1, 1),  // stride 1: each pixel in up to 9 windows
    kt::pool_shape(1, 2, 7, 7, 2, 2, 3, 3, 0, 0),  // stride > window: pixels no window reads
    kt::pool_shape(2, 3, 12, 12, 2, 2, 2, 2, 0, 0),  // LeNet-5 pool-like
};


TEST_CASE("cuda max and avg pooling equal the CPU kernels (bitwise but avg backward; argmax exactly)") {
  uint32_t seed = 200;
  for (const auto& s : kPoolShapes)
    for (bool ties : {false, true}) {
      INFO("N" << s.N << " C" << s.C << " " << s.H << "x" << s.W << " k" << s.KH << "x" << s.KW
               << " s" << s.stride_h << "," << s.stride_w << " p" << s.pad_h << "," << s.pad_w
               << " ties " << ties);
      const auto x = ties ? kt::tie_heavy(kt::x_size(s), seed++) : kt::random_floats(kt::x_size(s), seed++);
      const auto dy = kt::random_floats(kt::y_size(s), seed++);
      auto dx_in = to_device(x), ddy = to_device(dy);
      DeviceArray<float> dy_out(kt::y_size(s)), ddx(kt::x_size(s));
      DeviceArray<int32_t> darg(kt::y_size(s));

      std::vector<float> want_y(kt::y_size(s)), want_dx(kt::x_size(s));
      std::vector<int32_t> want_arg(kt::y_size(s));
      cuda::max_pool2d_forward(s, dx_in.get(), dy_out.get(), darg.get());
      kernels::max_pool2d_forward(s, x.data(), want_y.data(), want_arg.data());
      CHECK(kt::bitwise_equal(dy_out.download(), want_y));
      CHECK(darg.download() == want_arg);

      ddx.upload(std::vector<float>(kt::x_size(s), 5.f));  // overwritten
      cuda::max_pool2d_backward(s, ddy.get(), darg.get(), ddx.get());
      kernels::max_pool2d_backward(s, dy.data(), want_arg.data(), want_dx.data());
      CHECK(kt::bitwise_equal(ddx.download(), want_dx));

      cuda::avg_pool2d_forward(s, dx_in.get(), dy_out.get());
      kernels::avg_pool2d_forward(s, x.data(), want_y.data());
      CHECK(kt::bitwise_equal(dy_out.download(), want_y));

      ddx.upload(std::vector<float>(kt::x_size(s), 5.f));
      cuda::avg_pool2d_backward(s, ddy.get(), ddx.get());
      kernels::avg_pool2d_backward(s, dy.data(), want_dx.data());
      kt::check_close(ddx.download(), want_dx, 1e-6);  // either compiler may fuse g·(1/area) + acc
    }
}

TEST_CASE("cuda avg pooling counts padded cells in the divisor") {
  const Pool2dShape s = kt::pool_shape(1, 1, 2, 2, 3, 3, 2, 2, 1, 1);  // one output; 4 real cells of 9
  auto dx = to_device(std::vector<float>{1.f, 2.f, 3.f, 4.f});
  DeviceArray<float> dy(1), dgrad(4);
  cuda::avg_pool2d_forward(s, dx.get(), dy.get());
  CHECK(dy.download()[0] == doctest::Approx(10.0 / 9.0));
  auto dg = to_device(std::vector<float>{9.f});
  cuda::avg_pool2d_backward(s, dg.get(), dgrad.get());
  for (float v : dgrad.download()) CHECK(v == doctest::Approx(1.0));
}

}  // namespace
}  // namespace st::cuda
