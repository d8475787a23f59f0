// tests/kernels/test_conv_pn.cpp — the dense direct convolution in the batch-innermost layout
// (kernels/conv_pn.h) against the double-accumulating reference convolution: forward, input
// gradient and weight gradient (overwrite and accumulate), at odd shapes: N = 1, 5, 17, 33 and 70
// (ragged lane vectors, more than one lane pass), 80 (whole vectors past one lane pass), output
// channels 1, 3, 5, 7 and 50 (partial register blocks), weight columns that leave partial blocks,
// stride, padding, 1×1 and non-square kernels, a zero output channel; bitwise determinism across
// thread counts on a shape large enough to run threaded; and which shapes the CPU conv sends to it
// (pn_conv_fits).

#include <cmath>
#include <limits>

#include "kernels/conv_pn.h"
#include "kernels/isa.h"
#include "kernels/reference.h"
#include "kernels/sparse_conv.h"
#include "kernel_test_util.h"

namespace st::kernels {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

const Conv2dShape kShapes[] = {
    test::conv_shape(2, 3, 7, 6, 4, 3, 3, 1, 1, 0, 0),   test::conv_shape(1, 2, 8, 9, 3, 3, 2, 2, 1, 1, 0),
    test::conv_shape(17, 1, 5, 5, 2, 5, 5, 1, 1, 2, 2),  test::conv_shape(5, 5, 9, 7, 6, 3, 3, 2, 2, 1, 1),
    test::conv_shape(70, 2, 6, 6, 7, 3, 3, 1, 1, 1, 1),  test::conv_shape(33, 4, 12, 12, 7, 5, 5, 1, 1, 0, 0),
    test::conv_shape(16, 3, 4, 5, 1, 1, 1, 1, 1, 0, 0),  test::conv_shape(3, 2, 5, 4, 2, 2, 3, 3, 2, 0, 1),
    test::conv_shape(64, 20, 12, 12, 50, 5, 5, 1, 1, 0, 0),
    test::conv_shape(80, 3, 5, 6, 5, 3, 3, 1, 1, 1, 1),
};

size_t padded_size(const Conv2dShape& s) {
  return static_cast<size_t>(s.C) * padded_h(s) * padded_w(s) * s.N;
}

struct Result {
  std::vector<float> y, dx, dw;
};

// The three passes through the PN layout, as the conv2d op runs them.
Result run_pn(const Conv2dShape& s, const std::vector<float>& w, const std::vector<float>& x,
              const std::vector<float>& dy, bool accumulate, const std::vector<float>& dw0) {
  const int P = s.OH() * s.OW();
  std::vector<float> xp(padded_size(s), kNaN), ypn(test::y_size(s), kNaN),
      dypn(test::y_size(s), kNaN), dxp(padded_size(s), kNaN);
  Result r;
  r.y.assign(test::y_size(s), kNaN);
  r.dx.assign(test::x_size(s), kNaN);
  r.dw = dw0;
  nchw_to_pn_padded(s, x.data(), xp.data());
  pn_conv_forward(s, w.data(), xp.data(), ypn.data());
  pn_to_nchw(s.OC, s.N, P, ypn.data(), nullptr, r.y.data());
  nchw_to_pn(s.OC, s.N, P, dy.data(), dypn.data());
  pn_conv_backward_data(s, w.data(), dypn.data(), dxp.data());
  pn_padded_to_nchw(s, dxp.data(), r.dx.data());
  pn_conv_backward_weights(s, dypn.data(), xp.data(), r.dw.data(), accumulate);
  return r;
}

TEST_CASE("direct PN conv: forward, dx and dW against the reference") {
  uint32_t seed = 40;
  for (const Conv2dShape& s : kShapes)
    for (bool accumulate : {false, true}) {
      INFO("N=" << s.N << " C=" << s.C << " " << s.H << "x" << s.W << " OC=" << s.OC << " k="
                << s.KH << "x" << s.KW << " stride=" << s.stride_h << "," << s.stride_w
                << " pad=" << s.pad_h << "," << s.pad_w << " accumulate=" << accumulate);
      const int K = s.C * s.KH * s.KW;
      auto w = test::random_floats(static_cast<size_t>(s.OC) * K, ++seed);
      if (s.OC > 2) std::fill_n(w.begin() + K, K, 0.0f);  // output channel 1 all zero
      const auto x = test::random_floats(test::x_size(s), ++seed);
      const auto dy = test::random_floats(test::y_size(s), ++seed);
      const auto dw0 = accumulate ? test::random_floats(w.size(), ++seed)
                                  : std::vector<float>(w.size(), kNaN);
      const Result got = run_pn(s, w, x, dy, accumulate, dw0);

      std::vector<float> y(test::y_size(s)), dx(test::x_size(s)), dw(w.size()), db(s.OC);
      ref::conv2d_forward(s, x.data(), w.data(), nullptr, y.data());
      ref::conv2d_backward_data(s, dy.data(), w.data(), dx.data());
      ref::conv2d_backward_weights(s, x.data(), dy.data(), dw.data(), db.data());
      if (accumulate)
        for (size_t i = 0; i < dw.size(); ++i) dw[i] += dw0[i];
      test::check_close(got.y, y, 1e-5, std::sqrt(static_cast<double>(K)));
      test::check_close(got.dx, dx, 1e-5, std::sqrt(static_cast<double>(s.OC * s.KH * s.KW)));
      test::check_close(got.dw, dw, 1e-5, std::sqrt(static_cast<double>(s.N) * s.OH() * s.OW()));
    }
}

TEST_CASE("direct PN conv: the same bits for any thread count") {
  // LeNet-5's second conv at batch 64 (100 M multiply-adds: every pass runs threaded), and a
  // ragged one (70 lanes, 7 channels).
  for (const Conv2dShape& s : {test::conv_shape(64, 20, 12, 12, 50, 5, 5, 1, 1, 0, 0),
                               test::conv_shape(70, 9, 20, 20, 7, 3, 3, 1, 1, 1, 1)}) {
    INFO("C=" << s.C << " OC=" << s.OC << " N=" << s.N);
    const int K = s.C * s.KH * s.KW;
    const auto w = test::random_floats(static_cast<size_t>(s.OC) * K, 3);
    const auto x = test::random_floats(test::x_size(s), 4);
    const auto dy = test::random_floats(test::y_size(s), 5);
    const auto dw0 = test::random_floats(w.size(), 6);
    test::check_bitwise_across_threads([&] {
      Result r = run_pn(s, w, x, dy, true, dw0);
      r.y.insert(r.y.end(), r.dx.begin(), r.dx.end());
      r.y.insert(r.y.end(), r.dw.begin(), r.dw.end());
      return r.y;
    });
  }
}

TEST_CASE("pn_conv_fits: channel counts oneDNN does not block, with vector kernels") {
  const bool vector = active_isa() != Isa::generic;
  CHECK(pn_conv_fits(test::conv_shape(64, 20, 12, 12, 50, 5, 5, 1, 1, 0, 0)) == vector);  // LeNet-5
  CHECK_FALSE(pn_conv_fits(test::conv_shape(64, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1)));  // SimpleCNN
  CHECK_FALSE(pn_conv_fits(test::conv_shape(64, 1, 28, 28, 20, 5, 5, 1, 1, 0, 0)));   // first layer
}

}  // namespace
}  // namespace st::kernels
