// tests/kernels/test_conv.cpp — im2col/col2im and conv2d forward / backward-data / backward-weights
// against the direct-loop reference: stride 2, padding, non-square kernels, C = 3, N = 1, 1×1
// (the im2col-free path), kernels wider than the unpadded input, LeNet-5's conv2; overwrite and
// accumulate for the weight gradient; bitwise determinism; the direct weight gradient of layers with
// few input channels, whose result does not depend on the thread count.
#include <omp.h>

#include <string>

#include "kernels/conv.h"
#include "kernels/isa.h"
#include "kernels/reference.h"
#include "kernel_test_util.h"

namespace st::kernels {
namespace {

const Conv2dShape kShapes[] = {
    test::conv_shape(2, 3, 9, 11, 4, 3, 2, 2, 1, 1, 0),  // non-square kernel, mixed stride, pad on H only
    test::conv_shape(1, 1, 5, 5, 2, 5, 5, 1, 1, 0, 0),   // N = 1, kernel covers the whole image (1×1 output)
    test::conv_shape(3, 2, 7, 6, 5, 1, 1, 1, 1, 0, 0),   // pointwise: im2col skipped
    test::conv_shape(2, 3, 7, 6, 5, 1, 1, 2, 2, 0, 0),   // 1×1 with stride 2: im2col needed
    test::conv_shape(5, 3, 8, 8, 6, 3, 3, 2, 2, 1, 1),   // ResNet-style 3×3 stride 2 pad 1
    test::conv_shape(4, 2, 6, 7, 3, 2, 3, 3, 2, 1, 1),   // stride larger than the kernel height
    test::conv_shape(2, 1, 4, 1, 2, 3, 3, 1, 1, 1, 1),   // W = 1: some kernel columns only ever see padding
    test::conv_shape(8, 20, 12, 12, 50, 5, 5, 1, 1, 0, 0),  // LeNet-5 conv2
    test::conv_shape(3, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2),  // LeNet-5 conv1 ("same" padding)
    // Few input channels (the direct weight gradient): Caffe LeNet-5's conv1 with an odd batch and
    // a partial block of 4 output channels; SimpleCNN's conv1 (OW = 28: a masked tail); C = 3 with
    // a 7-wide kernel (kernel-row blocks of 5, 2 on AVX-512; 3, 3, 1 on AVX2) and fewer images
    // than batch chunks; a 9-wide kernel (blocks of 5, 4; 3, 3, 3). 3×3 kernels take all-taps
    // blocks of 3 channels on AVX-512 (SimpleCNN's: 32 = 10 blocks + 2): rows of exactly two
    // vectors (OW = 32) and of more than two (OW = 40, C = 2, channels 3 + 1).
    test::conv_shape(9, 1, 28, 28, 21, 5, 5, 1, 1, 0, 0),
    test::conv_shape(5, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1),
    test::conv_shape(2, 3, 13, 17, 6, 4, 7, 1, 1, 2, 3),
    test::conv_shape(3, 2, 9, 11, 5, 2, 9, 1, 1, 0, 4),
    test::conv_shape(3, 1, 6, 32, 5, 3, 3, 1, 1, 1, 1),
    test::conv_shape(2, 2, 5, 40, 4, 3, 3, 1, 1, 1, 1),
};

double k_scale(const Conv2dShape& s) { return std::sqrt(static_cast<double>(s.C * s.KH * s.KW)); }

std::string describe(const Conv2dShape& s) {
  return "N" + std::to_string(s.N) + " C" + std::to_string(s.C) + " " + std::to_string(s.H) + "x" +
         std::to_string(s.W) + " OC" + std::to_string(s.OC) + " k" + std::to_string(s.KH) + "x" +
         std::to_string(s.KW) + " s" + std::to_string(s.stride_h) + "," + std::to_string(s.stride_w) +
         " p" + std::to_string(s.pad_h) + "," + std::to_string(s.pad_w);
}

TEST_CASE("conv2d forward matches the reference (with and without bias)") {
  uint32_t seed = 100;
  for (const auto& s : kShapes) {
    INFO(describe(s));
    const auto x = test::random_floats(test::x_size(s), seed++), w = test::random_floats(test::w_size(s), seed++);
    const auto b = test::random_floats(s.OC, seed++);
    std::vector<float> ws(conv2d_workspace_floats(s)), y(test::y_size(s)), want(test::y_size(s));
    for (const float* bias : {b.data(), static_cast<const float*>(nullptr)}) {
      conv2d_forward(s, x.data(), w.data(), bias, y.data(), ws.data());
      ref::conv2d_forward(s, x.data(), w.data(), bias, want.data());
      test::check_close(y, want, 1e-4, k_scale(s));
    }
  }
}

TEST_CASE("conv2d backward-data matches the reference") {
  uint32_t seed = 200;
  for (const auto& s : kShapes) {
    INFO(describe(s));
    const auto dy = test::random_floats(test::y_size(s), seed++), w = test::random_floats(test::w_size(s), seed++);
    std::vector<float> ws(conv2d_workspace_floats(s)), dx(test::x_size(s), 123.0f), want(test::x_size(s));
    conv2d_backward_data(s, dy.data(), w.data(), dx.data(), ws.data());
    ref::conv2d_backward_data(s, dy.data(), w.data(), want.data());
    test::check_close(dx, want, 1e-4, std::sqrt(static_cast<double>(s.OC * s.KH * s.KW)));
  }
}

TEST_CASE("conv2d backward-weights matches the reference, overwriting and accumulating") {
  uint32_t seed = 300;
  for (const auto& s : kShapes) {
    INFO(describe(s));
    const auto x = test::random_floats(test::x_size(s), seed++), dy = test::random_floats(test::y_size(s), seed++);
    const auto prior_w = test::random_floats(test::w_size(s), seed++), prior_b = test::random_floats(s.OC, seed++);
    std::vector<float> ws(conv2d_workspace_floats(s)), want_w(test::w_size(s)), want_b(s.OC);
    ref::conv2d_backward_weights(s, x.data(), dy.data(), want_w.data(), want_b.data());
    const double scale = std::sqrt(static_cast<double>(s.N) * s.OH() * s.OW());

    std::vector<float> dw(test::w_size(s), 7.0f), db(s.OC, 7.0f);  // overwrite: the 7s must vanish
    conv2d_backward_weights(s, x.data(), dy.data(), dw.data(), db.data(), false, ws.data());
    test::check_close(dw, want_w, 1e-4, scale);
    test::check_close(db, want_b, 1e-4, scale);

    dw = prior_w, db = prior_b;
    conv2d_backward_weights(s, x.data(), dy.data(), dw.data(), db.data(), true, ws.data());
    std::vector<float> acc_w(test::w_size(s)), acc_b(s.OC);
    for (size_t i = 0; i < acc_w.size(); ++i) acc_w[i] = prior_w[i] + want_w[i];
    for (int i = 0; i < s.OC; ++i) acc_b[i] = prior_b[i] + want_b[i];
    test::check_close(dw, acc_w, 1e-4, scale);
    test::check_close(db, acc_b, 1e-4, scale);

    conv2d_backward_weights(s, x.data(), dy.data(), dw.data(), nullptr, false, ws.data());  // no db
    test::check_close(dw, want_w, 1e-4, scale);
  }
}

TEST_CASE("im2col and col2im are adjoint: <im2col(x), c> == <x, col2im(c)>") {
  uint32_t seed = 400;
  for (auto s : kShapes) {
    INFO(describe(s));
    s.N = 1;
    const size_t rows = static_cast<size_t>(s.C) * s.KH * s.KW, cols = static_cast<size_t>(s.OH()) * s.OW();
    const auto x = test::random_floats(test::x_size(s), seed++), c = test::random_floats(rows * cols, seed++);
    std::vector<float> xc(rows * cols), cx(test::x_size(s));
    im2col(s, x.data(), xc.data());
    col2im(s, c.data(), cx.data());
    double lhs = 0.0, rhs = 0.0;
    for (size_t i = 0; i < xc.size(); ++i) lhs += static_cast<double>(xc[i]) * c[i];
    for (size_t i = 0; i < cx.size(); ++i) rhs += static_cast<double>(x[i]) * cx[i];
    CHECK(lhs == doctest::Approx(rhs).epsilon(1e-5));
  }
}

TEST_CASE("conv2d kernels are bitwise deterministic") {
  const Conv2dShape s = test::conv_shape(16, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0);  // LeNet-5-like conv2, N = 16
  const auto x = test::random_floats(test::x_size(s), 1), w = test::random_floats(test::w_size(s), 2);
  const auto dy = test::random_floats(test::y_size(s), 3);
  std::vector<float> ws(conv2d_workspace_floats(s));
  std::vector<float> y1(test::y_size(s)), y2(test::y_size(s)), dx1(test::x_size(s)), dx2(test::x_size(s));
  std::vector<float> dw1(test::w_size(s)), dw2(test::w_size(s)), db1(s.OC), db2(s.OC);
  for (int run = 0; run < 2; ++run) {
    conv2d_forward(s, x.data(), w.data(), nullptr, (run ? y2 : y1).data(), ws.data());
    conv2d_backward_data(s, dy.data(), w.data(), (run ? dx2 : dx1).data(), ws.data());
    conv2d_backward_weights(s, x.data(), dy.data(), (run ? dw2 : dw1).data(), (run ? db2 : db1).data(),
                            false, ws.data());
  }
  CHECK(test::bitwise_equal(y1, y2));
  CHECK(test::bitwise_equal(dx1, dx2));
  CHECK(test::bitwise_equal(dw1, dw2));
  CHECK(test::bitwise_equal(db1, db2));
}

TEST_CASE("the direct weight gradient (few input channels) does not depend on the thread count") {
  // Taken on every vector set, never on the generic one (kernels/conv.cpp); stride 2 never.
  CHECK_FALSE(conv2d_direct_weight_grad(test::conv_shape(2, 1, 9, 9, 4, 3, 3, 2, 2, 1, 1)));
  CHECK_FALSE(conv2d_direct_weight_grad(test::conv_shape(2, 5, 9, 9, 4, 3, 3, 1, 1, 1, 1)));
  // LeNet-5's conv1 (kernel-row blocks) and SimpleCNN's (all-taps blocks on AVX-512, with the
  // bias gradient summed in the same units).
  for (const Conv2dShape& s : {test::conv_shape(13, 1, 28, 28, 20, 5, 5, 1, 1, 0, 0),
                               test::conv_shape(13, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1)}) {
    INFO("k" << s.KH << "x" << s.KW);
    CHECK(conv2d_direct_weight_grad(s) == (active_isa() != Isa::generic));
    const auto x = test::random_floats(test::x_size(s), 11);
    const auto dy = test::random_floats(test::y_size(s), 12);
    std::vector<float> ws(conv2d_workspace_floats(s));
    std::vector<float> dw1(test::w_size(s)), dw2(test::w_size(s)), db1(s.OC), db2(s.OC);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    conv2d_backward_weights(s, x.data(), dy.data(), dw1.data(), db1.data(), false, ws.data());
    omp_set_num_threads(std::max(2, threads));
    ws.assign(conv2d_workspace_floats(s), 0.f);
    conv2d_backward_weights(s, x.data(), dy.data(), dw2.data(), db2.data(), false, ws.data());
    omp_set_num_threads(threads);
    if (conv2d_direct_weight_grad(s)) {
      CHECK(test::bitwise_equal(dw1, dw2));
      CHECK(test::bitwise_equal(db1, db2));
    }
    std::vector<float> want_w(test::w_size(s)), want_b(s.OC);
    ref::conv2d_backward_weights(s, x.data(), dy.data(), want_w.data(), want_b.data());
    const double scale = std::sqrt(static_cast<double>(s.N) * s.OH() * s.OW());
    test::check_close(dw2, want_w, 1e-4, scale);
    test::check_close(db2, want_b, 1e-4, scale);
  }
}

}  // namespace
}  // namespace st::kernels
