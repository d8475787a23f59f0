// tests/kernels/test_onednn.cpp — OnednnLinear / OnednnConv2d against the naive references in
// kernels/reference.h (double accumulation), at odd sizes (batch 1 and 7, 13→5, 1→1, stride 2,
// padding, non-square kernels, C = 3, and shapes that take oneDNN's blocked layouts), with accumulate
// on and off, a null db, both backward passes in one call, run-to-run bitwise determinism, and errors that name the layer.
#include <doctest/doctest.h>

#include <omp.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/onednn.h"
#include "kernels/reference.h"

namespace {

using st::kernels::Conv2dShape;
using st::kernels::OnednnConv2d;
using st::kernels::OnednnLinear;
using st::kernels::test::bitwise_equal;
using st::kernels::test::conv_shape;
using st::kernels::test::w_size;
using st::kernels::test::x_size;
using st::kernels::test::y_size;
using Vec = std::vector<float>;

constexpr double kRtol = 1e-4;

Vec random_vec(size_t n, unsigned seed) { return st::kernels::test::random_floats(n, seed); }

void check_close(const Vec& got, const Vec& want, const char* what) {
  INFO(what);
  st::kernels::test::check_close(got, want, kRtol);
}

// out[i] = base[i] + delta[i] (the expected result of accumulating `delta` into `base`)
Vec plus(const Vec& base, const Vec& delta) {
  Vec out(base.size());
  for (size_t i = 0; i < base.size(); ++i) out[i] = float(double(base[i]) + delta[i]);
  return out;
}

// db (OUT) = Σ_B dy (B, OUT)
Vec column_sums(int B, int OUT, const Vec& dy) {
  Vec db(OUT);
  for (int o = 0; o < OUT; ++o) {
    double acc = 0;
    for (int n = 0; n < B; ++n) acc += dy[size_t(n) * OUT + o];
    db[o] = float(acc);
  }
  return db;
}


std::string describe(const Conv2dShape& s) {
  return "N" + std::to_string(s.N) + " C" + std::to_string(s.C) + " " + std::to_string(s.H) + "x" +
         std::to_string(s.W) + " OC" + std::to_string(s.OC) + " k" + std::to_string(s.KH) + "x" +
         std::to_string(s.KW) + " s" + std::to_string(s.stride_h) + "x" +
         std::to_string(s.stride_w) + " p" + std::to_string(s.pad_h) + "x" +
         std::to_string(s.pad_w);
}

// The weight-gradient pass of `layer` (OnednnLinear or OnednnConv2d) against dw_fresh and
// db_fresh, the reference gradients: written fresh and accumulated onto garbage, db untouched
// without a bias, and a null db (only dw produced).
template <class Layer>
void check_backward_weights(Layer& layer, const Vec& x, const Vec& dy, const Vec& dw_fresh,
                            const Vec& db_fresh, bool bias, unsigned& seed) {
  for (bool accumulate : {false, true, false}) {
    CAPTURE(accumulate);
    Vec dw = random_vec(dw_fresh.size(), seed++), db = random_vec(db_fresh.size(), seed++);
    const Vec dw_ref = accumulate ? plus(dw, dw_fresh) : dw_fresh;
    const Vec db_ref = accumulate ? plus(db, db_fresh) : db_fresh;
    const Vec db_before = db;
    layer.backward_weights(x.data(), dy.data(), dw.data(), db.data(), accumulate);
    check_close(dw, dw_ref, "dw");
    if (bias) check_close(db, db_ref, "db");
    else CHECK(db == db_before);  // no bias: db untouched
  }
  Vec dw = random_vec(dw_fresh.size(), seed++);
  layer.backward_weights(x.data(), dy.data(), dw.data(), nullptr, false);
  check_close(dw, dw_fresh, "dw (null db)");
}

// Every pass of `layer` (built for (B, IN, OUT, bias)) against the reference: y, dx over garbage,
// dw and db fresh and accumulated, no bias leaving db untouched, a null db.
void check_linear(OnednnLinear& layer, int B, int IN, int OUT, bool bias, unsigned& seed) {
  const Vec x = random_vec(size_t(B) * IN, seed++), w = random_vec(size_t(OUT) * IN, seed++);
  const Vec b = random_vec(OUT, seed++), dy = random_vec(size_t(B) * OUT, seed++);

  namespace ref = st::kernels::ref;
  Vec y = random_vec(size_t(B) * OUT, seed++), y_ref(y.size());
  layer.forward(x.data(), w.data(), bias ? b.data() : nullptr, y.data());
  ref::sgemm(false, true, B, OUT, IN, 1.f, x.data(), IN, w.data(), IN, 0.f,
             y_ref.data(), OUT);
  if (bias)
    for (size_t i = 0; i < y_ref.size(); ++i) y_ref[i] += b[i % OUT];
  check_close(y, y_ref, "y");

  Vec dx = random_vec(x.size(), seed++), dx_ref(x.size());  // garbage in dx must be overwritten
  layer.backward_data(dy.data(), w.data(), dx.data());
  ref::sgemm(false, false, B, IN, OUT, 1.f, dy.data(), OUT, w.data(), IN, 0.f,
             dx_ref.data(), IN);
  check_close(dx, dx_ref, "dx");

  Vec dw_fresh(w.size());
  ref::sgemm(true, false, OUT, IN, B, 1.f, dy.data(), OUT, x.data(), IN, 0.f,
             dw_fresh.data(), IN);
  const Vec db_fresh = column_sums(B, OUT, dy);
  check_backward_weights(layer, x, dy, dw_fresh, db_fresh, bias, seed);
}

}  // namespace

TEST_SUITE("onednn") {

TEST_CASE("onednn linear matches the reference at odd sizes") {
  struct Case { int B, IN, OUT; bool bias; };
  const Case cases[] = {{1, 13, 5, true},  {7, 13, 5, true},   {7, 1, 1, true},  {1, 1, 1, false},
                        {7, 33, 17, false}, {3, 100, 10, true}, {64, 784, 300, true}};
  unsigned seed = 1;
  for (const Case& c : cases) {
    CAPTURE(c.B);
    CAPTURE(c.IN);
    CAPTURE(c.OUT);
    CAPTURE(c.bias);
    OnednnLinear layer(c.B, c.IN, c.OUT, c.bias);
    check_linear(layer, c.B, c.IN, c.OUT, c.bias, seed);
  }
}

// With more than one thread, a linear layer large enough cuts its passes into one single-threaded
// matmul per thread: forward and weight gradient by rows of w (uneven, staged forward output),
// input gradient by batch rows. The first three cut every pass at 2 and 3 threads into unequal
// parts; 9×5→300 is too small to cut and runs on one thread; the last is built for one thread.
TEST_CASE("onednn linear cut into per-thread slices matches the reference") {
  struct Case { int threads, B, IN, OUT; bool bias; };
  const Case cases[] = {{2, 17, 600, 129, true}, {3, 64, 130, 200, true}, {3, 64, 130, 200, false},
                        {2, 9, 5, 300, true},    {1, 64, 130, 200, true}};
  const int saved = omp_get_max_threads();
  unsigned seed = 100;
  for (const Case& c : cases) {
    CAPTURE(c.threads);
    CAPTURE(c.B);
    CAPTURE(c.IN);
    CAPTURE(c.OUT);
    CAPTURE(c.bias);
    omp_set_num_threads(c.threads);
    OnednnLinear layer(c.B, c.IN, c.OUT, c.bias);
    omp_set_num_threads(saved);  // the layer runs its slices on as many threads as it was built for
    check_linear(layer, c.B, c.IN, c.OUT, c.bias, seed);
  }
}

TEST_CASE("onednn conv2d matches the reference at odd shapes") {
  const Conv2dShape shapes[] = {
      conv_shape(1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0),
      conv_shape(7, 3, 9, 8, 5, 3, 2, 2, 1, 1, 0),    // non-square kernel, stride 2 along H only
      conv_shape(2, 3, 8, 8, 4, 3, 3, 2, 2, 1, 1),    // (8 + 2 − 3) / 2 does not divide: last row unread
      conv_shape(7, 2, 7, 10, 3, 1, 4, 1, 2, 0, 1),
      conv_shape(1, 3, 11, 11, 6, 5, 3, 2, 2, 2, 1),
      conv_shape(3, 20, 12, 12, 50, 5, 5, 1, 1, 0, 0),  // LeNet-5 conv2
      conv_shape(2, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1),  // SimpleCNN conv2 (blocked layouts + reorders)
      conv_shape(7, 1, 9, 10, 16, 3, 2, 2, 1, 1, 1),    // C = 1, OC = 16: blocked forward / bwd weights
      conv_shape(3, 16, 9, 7, 32, 3, 2, 2, 2, 1, 0),    // 16 → 32: blocked everywhere, odd spatial
  };
  unsigned seed = 100;
  bool bias = true;
  for (const Conv2dShape& s : shapes) {
    bias = !bias;
    const std::string shape_name = describe(s);
    CAPTURE(shape_name);
    CAPTURE(bias);
    OnednnConv2d layer(s, bias);
    const Vec x = random_vec(x_size(s), seed++), w = random_vec(w_size(s), seed++);
    const Vec b = random_vec(s.OC, seed++), dy = random_vec(y_size(s), seed++);

    namespace ref = st::kernels::ref;
    Vec y = random_vec(y_size(s), seed++), y_ref(y.size());
    layer.forward(x.data(), w.data(), bias ? b.data() : nullptr, y.data());
    ref::conv2d_forward(s, x.data(), w.data(), bias ? b.data() : nullptr, y_ref.data());
    check_close(y, y_ref, "y");

    Vec dx = random_vec(x.size(), seed++), dx_ref(x.size());  // garbage in dx must be overwritten
    layer.backward_data(dy.data(), w.data(), dx.data());
    ref::conv2d_backward_data(s, dy.data(), w.data(), dx_ref.data());
    check_close(dx, dx_ref, "dx");

    Vec dw_fresh(w.size()), db_fresh(s.OC);
    ref::conv2d_backward_weights(s, x.data(), dy.data(), dw_fresh.data(), db_fresh.data());
    check_backward_weights(layer, x, dy, dw_fresh, db_fresh, bias, seed);

    // backward: both passes in one call (dy reordered once where both want it blocked), same values.
    for (bool accumulate : {false, true}) {
      CAPTURE(accumulate);
      Vec dx1 = random_vec(x.size(), seed++), dw1 = random_vec(w.size(), seed++);
      Vec db1 = random_vec(s.OC, seed++);
      Vec dx2 = dx1, dw2 = dw1, db2 = db1;
      layer.backward_data(dy.data(), w.data(), dx1.data());
      layer.backward_weights(x.data(), dy.data(), dw1.data(), db1.data(), accumulate);
      layer.backward(dy.data(), w.data(), dx2.data(), x.data(), dw2.data(), db2.data(), accumulate);
      CHECK(dx1 == dx2);
      CHECK(dw1 == dw2);
      CHECK(db1 == db2);
    }
  }
}

TEST_CASE("onednn layers give bitwise-identical results run after run") {
  {
    const int B = 7, IN = 13, OUT = 5;
    OnednnLinear layer(B, IN, OUT, true);
    const Vec x = random_vec(B * IN, 1), w = random_vec(OUT * IN, 2), b = random_vec(OUT, 3);
    const Vec dy = random_vec(B * OUT, 4);
    Vec y1(B * OUT), y2(B * OUT), dx1(B * IN), dx2(B * IN), dw1(OUT * IN), dw2(OUT * IN);
    Vec db1(OUT), db2(OUT);
    layer.forward(x.data(), w.data(), b.data(), y1.data());
    layer.forward(x.data(), w.data(), b.data(), y2.data());
    CHECK(bitwise_equal(y1, y2));
    layer.backward_data(dy.data(), w.data(), dx1.data());
    layer.backward_data(dy.data(), w.data(), dx2.data());
    CHECK(bitwise_equal(dx1, dx2));
    layer.backward_weights(x.data(), dy.data(), dw1.data(), db1.data(), false);
    layer.backward_weights(x.data(), dy.data(), dw2.data(), db2.data(), false);
    CHECK(bitwise_equal(dw1, dw2));
    CHECK(bitwise_equal(db1, db2));
  }
  Conv2dShape odd;  // plain layouts (im2col + GEMM inside oneDNN)
  odd.N = 7, odd.C = 3, odd.H = 9, odd.W = 8, odd.OC = 5, odd.KH = 3, odd.KW = 2;
  odd.stride_h = 2, odd.pad_h = 1;
  Conv2dShape blocked;  // blocked layouts with reorders at the boundary
  blocked.N = 3, blocked.C = 16, blocked.H = 9, blocked.W = 7, blocked.OC = 32, blocked.KH = 3,
  blocked.KW = 3, blocked.pad_h = 1, blocked.pad_w = 1;
  for (const Conv2dShape& s : {odd, blocked}) {
    const std::string shape_name = describe(s);
    CAPTURE(shape_name);
    OnednnConv2d layer(s, true);
    const Vec x = random_vec(x_size(s), 5), w = random_vec(w_size(s), 6), b = random_vec(s.OC, 7);
    const Vec dy = random_vec(y_size(s), 8);
    Vec y1(y_size(s)), y2(y_size(s)), dx1(x_size(s)), dx2(x_size(s));
    Vec dw1(w_size(s)), dw2(w_size(s)), db1(s.OC), db2(s.OC);
    layer.forward(x.data(), w.data(), b.data(), y1.data());
    layer.forward(x.data(), w.data(), b.data(), y2.data());
    CHECK(bitwise_equal(y1, y2));
    layer.backward_data(dy.data(), w.data(), dx1.data());
    layer.backward_data(dy.data(), w.data(), dx2.data());
    CHECK(bitwise_equal(dx1, dx2));
    layer.backward_weights(x.data(), dy.data(), dw1.data(), db1.data(), false);
    layer.backward_weights(x.data(), dy.data(), dw2.data(), db2.data(), false);
    CHECK(bitwise_equal(dw1, dw2));
    CHECK(bitwise_equal(db1, db2));
  }
}

TEST_CASE("onednn errors name the layer and its shape") {
  Conv2dShape s;  // a 7x7 kernel on a 3x3 unpadded input has no output
  s.N = 1, s.C = 1, s.H = 3, s.W = 3, s.OC = 1, s.KH = 7, s.KW = 7;
  try {
    OnednnConv2d layer(s, true);
    FAIL("expected std::runtime_error");
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("OnednnConv2d") != std::string::npos);
    CHECK(msg.find("kernel 7x7") != std::string::npos);
  }
  CHECK_THROWS_AS(OnednnLinear(4, -3, 5, true), std::runtime_error);
}

}  // TEST_SUITE
