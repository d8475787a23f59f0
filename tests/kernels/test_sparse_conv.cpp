// tests/kernels/test_sparse_conv.cpp — the direct sparse convolution (kernels/sparse_conv.h) against
// the double-accumulating dense reference convolution on the masked weight: forward, input
// gradient and weight gradient (at the nonzeros, overwrite and accumulate), at odd shapes with
// stride and padding, 1×1 kernels, N = 1, 5, 17, 33 and 130 (the > 128-lane chunked path),
// densities 0 / 0.05 / 0.3 / 1 with an empty output channel; the layout round trips; bitwise
// determinism across thread counts; and the conv pooled as it is computed.

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

#include "kernels/csr.h"
#include "kernels/reference.h"
#include "kernels/sparse_conv.h"
#include "kernel_test_util.h"

namespace st::kernels {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

const Conv2dShape kShapes[] = {
    test::conv_shape(2, 3, 7, 6, 4, 3, 3, 1, 1, 0, 0),    test::conv_shape(1, 2, 8, 9, 3, 3, 2, 2, 1, 1, 0),
    test::conv_shape(17, 1, 5, 5, 2, 5, 5, 1, 1, 2, 2),   test::conv_shape(5, 5, 9, 7, 6, 3, 3, 2, 2, 1, 1),
    test::conv_shape(130, 2, 6, 6, 3, 3, 3, 1, 1, 1, 1),  test::conv_shape(33, 4, 12, 12, 7, 5, 5, 1, 1, 0, 0),
    test::conv_shape(16, 3, 4, 5, 5, 1, 1, 1, 1, 0, 0),   test::conv_shape(3, 2, 5, 4, 2, 2, 3, 3, 2, 0, 1),
};
const double kDensities[] = {0.0, 0.05, 0.3, 1.0};

// Masked dense weight (OC, C, KH, KW) with output channel 1 empty (when OC > 2) and its CSR.
struct Weight {
  std::vector<float> dense;
  CsrMatrix csr;
};
Weight make_weight(const Conv2dShape& s, double density, uint32_t seed) {
  const int K = s.C * s.KH * s.KW;
  Weight w;
  w.dense = test::random_floats(static_cast<size_t>(s.OC) * K, seed);
  std::vector<uint8_t> mask(w.dense.size());
  std::mt19937 rng(seed + 3);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int o = 0; o < s.OC; ++o)
    for (int k = 0; k < K; ++k) {
      const size_t i = static_cast<size_t>(o) * K + k;
      mask[i] = (density >= 1.0 || u(rng) < density) && !(density < 1.0 && s.OC > 2 && o == 1);
      if (!mask[i]) w.dense[i] = 0.0f;
    }
  w.csr = csr_from_dense(w.dense.data(), mask.data(), s.OC, K);
  return w;
}

size_t padded_size(const Conv2dShape& s) {
  return static_cast<size_t>(s.C) * padded_h(s) * padded_w(s) * s.N;
}

// A pooled (C, PH, PW, N) array placed inside b's border (b.pad_h, b.pad_w), `fill` around it.
std::vector<float> with_border(const PoolPnShape& b, const std::vector<float>& pooled, float fill) {
  std::vector<float> out(size_t(b.C) * b.YH() * b.YW() * b.N, fill);
  for (int c = 0; c < b.C; ++c)
    for (int ph = 0; ph < b.PH(); ++ph)
      for (int pw = 0; pw < b.PW(); ++pw)
        std::copy_n(pooled.data() + ((size_t(c) * b.PH() + ph) * b.PW() + pw) * b.N, b.N,
                    out.data() + b.y_at(c, ph, pw) * b.N);
  return out;
}

// The three products through the PN layout, as the sparse conv op runs them.
struct Result {
  std::vector<float> y, dx, dw;
};
Result run_direct(const Conv2dShape& s, const Weight& w, const std::vector<float>& x,
                  const std::vector<float>& dy, const std::vector<float>& bias, bool accumulate,
                  const std::vector<float>& dw0) {
  const int P = s.OH() * s.OW();
  std::vector<int32_t> off;
  conv_offsets(s, w.csr, off);
  std::vector<float> xp(padded_size(s), kNaN), ypn(test::y_size(s), kNaN), dypn(test::y_size(s), kNaN),
      dxp(padded_size(s), kNaN);
  Result r;
  r.y.assign(test::y_size(s), kNaN);
  r.dx.assign(test::x_size(s), kNaN);
  r.dw = dw0;
  nchw_to_pn_padded(s, x.data(), xp.data());
  csr_conv_forward(s, w.csr, off.data(), xp.data(), ypn.data());
  pn_to_nchw(s.OC, s.N, P, ypn.data(), bias.empty() ? nullptr : bias.data(), r.y.data());
  nchw_to_pn(s.OC, s.N, P, dy.data(), dypn.data());
  csr_conv_backward_data(s, w.csr, off.data(), dypn.data(), dxp.data());
  pn_padded_to_nchw(s, dxp.data(), r.dx.data());
  csr_conv_backward_weights(s, w.csr, off.data(), dypn.data(), xp.data(), r.dw.data(), accumulate);
  return r;
}

TEST_CASE("direct sparse conv: forward, dx and dW against the dense reference") {
  uint32_t seed = 1;
  for (const Conv2dShape& s : kShapes)
    for (double density : kDensities)
      for (bool accumulate : {false, true}) {
        INFO("N=" << s.N << " C=" << s.C << " " << s.H << "x" << s.W << " OC=" << s.OC << " k="
                  << s.KH << "x" << s.KW << " stride=" << s.stride_h << "," << s.stride_w
                  << " pad=" << s.pad_h << "," << s.pad_w << " density=" << density
                  << " accumulate=" << accumulate);
        const Weight w = make_weight(s, density, ++seed);
        const auto x = test::random_floats(test::x_size(s), ++seed);
        const auto dy = test::random_floats(test::y_size(s), ++seed);
        const auto bias = accumulate ? test::random_floats(s.OC, ++seed) : std::vector<float>{};
        const auto dw0 = accumulate ? test::random_floats(w.csr.nnz(), ++seed)
                                    : std::vector<float>(w.csr.nnz(), kNaN);
        const Result got = run_direct(s, w, x, dy, bias, accumulate, dw0);

        std::vector<float> y(test::y_size(s)), dx(test::x_size(s)), dw_dense(w.dense.size()), db(s.OC);
        ref::conv2d_forward(s, x.data(), w.dense.data(), bias.empty() ? nullptr : bias.data(),
                            y.data());
        ref::conv2d_backward_data(s, dy.data(), w.dense.data(), dx.data());
        ref::conv2d_backward_weights(s, x.data(), dy.data(), dw_dense.data(), db.data());
        std::vector<float> dw(w.csr.nnz());
        for (int o = 0; o < s.OC; ++o)
          for (int32_t k = w.csr.row_ptr[o]; k < w.csr.row_ptr[o + 1]; ++k)
            dw[k] = dw_dense[static_cast<size_t>(o) * w.csr.cols + w.csr.col_idx[k]] +
                    (accumulate ? dw0[k] : 0.0f);
        const double depth = std::sqrt(static_cast<double>(s.C * s.KH * s.KW));
        test::check_close(got.y, y, 1e-5, depth);
        test::check_close(got.dx, dx, 1e-5, std::sqrt(static_cast<double>(s.OC * s.KH * s.KW)));
        test::check_close(got.dw, dw, 1e-5, std::sqrt(static_cast<double>(s.N) * s.OH() * s.OW()));
      }
}

TEST_CASE("direct sparse conv: layout round trips and offsets") {
  for (const Conv2dShape& s : kShapes) {
    const auto x = test::random_floats(test::x_size(s), 11);
    std::vector<float> xp(padded_size(s), kNaN), back(test::x_size(s), kNaN);
    nchw_to_pn_padded(s, x.data(), xp.data());
    // The border is zero, the interior is x with the batch index innermost.
    const int Hp = padded_h(s), Wp = padded_w(s);
    for (int c = 0; c < s.C; ++c)
      for (int h = 0; h < Hp; ++h)
        for (int w = 0; w < Wp; ++w)
          for (int n = 0; n < s.N; ++n) {
            const float got = xp[((static_cast<size_t>(c) * Hp + h) * Wp + w) * s.N + n];
            const int ih = h - s.pad_h, iw = w - s.pad_w;
            const bool inside = ih >= 0 && ih < s.H && iw >= 0 && iw < s.W;
            const float want =
                inside ? x[((static_cast<size_t>(n) * s.C + c) * s.H + ih) * s.W + iw] : 0.0f;
            if (got != want) {
              INFO("c=" << c << " h=" << h << " w=" << w << " n=" << n);
              REQUIRE(got == want);
            }
          }
    pn_padded_to_nchw(s, xp.data(), back.data());
    CHECK(test::bitwise_equal(back, x));
    // From an unpadded batch-innermost x (C, H, W, N): the same padded layout, and the crop back.
    std::vector<float> xpn(test::x_size(s), kNaN), xp2(padded_size(s), kNaN), crop(test::x_size(s), kNaN);
    nchw_to_pn(s.C, s.N, s.H * s.W, x.data(), xpn.data());
    pn_to_pn_padded(s, xpn.data(), xp2.data());
    CHECK(test::bitwise_equal(xp2, xp));
    pn_padded_to_pn(s, xp2.data(), crop.data());
    CHECK(test::bitwise_equal(crop, xpn));
    const int P = s.OH() * s.OW();
    const auto y = test::random_floats(test::y_size(s), 12);
    std::vector<float> a(test::y_size(s), kNaN), y2(test::y_size(s), kNaN);
    nchw_to_pn(s.OC, s.N, P, y.data(), a.data());
    pn_to_nchw(s.OC, s.N, P, a.data(), nullptr, y2.data());
    CHECK(test::bitwise_equal(y2, y));
  }
  const Conv2dShape s = test::conv_shape(2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 2);
  const Weight w = make_weight(s, 1.0, 5);
  std::vector<int32_t> off;
  conv_offsets(s, w.csr, off);
  REQUIRE(off.size() == static_cast<size_t>(w.csr.nnz()));
  // Column (c, kh, kw) = (2, 1, 2) of output channel 0: position (2·Hp + 1)·Wp + 2.
  CHECK(off[2 * 9 + 1 * 3 + 2] == (2 * padded_h(s) + 1) * padded_w(s) + 2);
  Conv2dShape wrong = s;
  wrong.C = 2;
  CHECK_THROWS_AS(conv_offsets(wrong, w.csr, off), std::invalid_argument);
}

TEST_CASE("direct sparse conv is bitwise deterministic across repeats and thread counts") {
  // Big enough to split: the forward and dW split rows by nonzeros, dx splits input channels.
  for (const Conv2dShape& s : {test::conv_shape(64, 20, 12, 12, 50, 5, 5, 1, 1, 0, 0),
                               test::conv_shape(40, 8, 14, 14, 16, 3, 3, 1, 1, 1, 1)}) {
    const Weight w = make_weight(s, 0.3, 21);
    const auto x = test::random_floats(test::x_size(s), 22);
    const auto dy = test::random_floats(test::y_size(s), 23);
    const std::vector<float> dw0(w.csr.nnz(), kNaN);
    auto run = [&]() {
      Result r = run_direct(s, w, x, dy, {}, false, dw0);
      r.y.insert(r.y.end(), r.dx.begin(), r.dx.end());
      r.y.insert(r.y.end(), r.dw.begin(), r.dw.end());
      return r.y;
    };
    test::check_bitwise_across_threads(run);
  }
}

// The input gradient splits input channels by their nonzero count: channels with no nonzeros (all
// of them but one, or every other one), fewer channels than threads, and the split point landing
// inside a run of empty channels all leave every dx element summed once, equal to the reference
// and the same bits for 1, 2 and 3 threads.
TEST_CASE("direct sparse conv: dx with empty channels and fewer channels than threads") {
  struct Case { Conv2dShape s; int keep_every; };  // channels c % keep_every == 0 keep nonzeros
  const Case cases[] = {{test::conv_shape(96, 6, 16, 16, 8, 3, 3, 1, 1, 1, 1), 2},
                        {test::conv_shape(96, 7, 16, 16, 8, 3, 3, 1, 1, 1, 1), 7},
                        {test::conv_shape(96, 2, 20, 20, 16, 3, 3, 1, 1, 1, 1), 1},
                        {test::conv_shape(80, 9, 12, 12, 12, 3, 3, 1, 1, 0, 0), 4}};
  uint32_t seed = 300;
  for (const Case& c : cases) {
    const Conv2dShape& s = c.s;
    INFO("C=" << s.C << " keep every " << c.keep_every << " channel");
    Weight w = make_weight(s, 0.6, ++seed);
    const int KK = s.KH * s.KW;
    std::vector<uint8_t> mask(w.dense.size());
    for (size_t i = 0; i < w.dense.size(); ++i) {
      if ((static_cast<int>(i % w.csr.cols) / KK) % c.keep_every != 0) w.dense[i] = 0.0f;
      mask[i] = w.dense[i] != 0.0f;
    }
    w.csr = csr_from_dense(w.dense.data(), mask.data(), s.OC, w.csr.cols);
    const auto x = test::random_floats(test::x_size(s), ++seed);
    const auto dy = test::random_floats(test::y_size(s), ++seed);
    const std::vector<float> dw0(w.csr.nnz(), kNaN);
    std::vector<float> dx(test::x_size(s));
    ref::conv2d_backward_data(s, dy.data(), w.dense.data(), dx.data());
    const int saved = omp_get_max_threads();
    for (int threads : {1, 2, 3}) {
      INFO("threads=" << threads);
      omp_set_num_threads(threads);
      const Result got = run_direct(s, w, x, dy, {}, false, dw0);
      test::check_close(got.dx, dx, 1e-5, std::sqrt(static_cast<double>(s.OC * KK)));
    }
    omp_set_num_threads(saved);
    test::check_bitwise_across_threads([&] { return run_direct(s, w, x, dy, {}, false, dw0).dx; });
  }
}

// The conv pooled as it is computed against csr_conv_forward, bias, relu and the reference NCHW max
// pool: the same values bit for bit and the same winners (ties are common: inputs and weights on a
// coarse grid, empty rows, zeros after relu), windows that leave rows and columns over, strided
// convs, N across the vector widths and past one lane chunk; and the backward's gradient placement.
TEST_CASE("csr_conv_pool_forward / csr_conv_pool_backward_* equal the conv, bias, relu and max_pool2d") {
  struct Case { Conv2dShape s; int KH, KW; };
  const Case cases[] = {
      {test::conv_shape(64, 3, 28, 28, 4, 3, 3, 1, 1, 1, 1), 2, 2},
      {test::conv_shape(17, 2, 9, 7, 3, 3, 3, 1, 1, 0, 0), 2, 2},
      {test::conv_shape(3, 1, 11, 11, 2, 3, 3, 1, 1, 0, 0), 3, 3},
      {test::conv_shape(1, 2, 6, 8, 4, 1, 1, 1, 1, 0, 0), 1, 2},
      {test::conv_shape(33, 2, 7, 6, 2, 3, 3, 1, 1, 0, 0), 5, 4},
      {test::conv_shape(130, 2, 14, 14, 5, 3, 3, 1, 1, 1, 1), 2, 2},
      {test::conv_shape(9, 3, 8, 8, 6, 3, 3, 2, 2, 1, 1), 2, 2},
  };
  uint32_t seed = 100;
  int clipped = 0;
  for (const Case& c : cases)
    for (double density : {0.0, 0.3, 1.0})
      for (bool relu : {false, true})
        for (bool bias : {false, true}) {
          const Conv2dShape& s = c.s;
          INFO("N=" << s.N << " C=" << s.C << " " << s.H << "x" << s.W << " OC=" << s.OC
                    << " window " << c.KH << "x" << c.KW << " density=" << density
                    << " relu=" << relu << " bias=" << bias);
          Weight w = make_weight(s, density, ++seed);
          for (float& v : w.dense) v = std::round(v * 2.0f) / 2.0f;  // exact sums: ties
          for (float& v : w.csr.values) v = std::round(v * 2.0f) / 2.0f;
          std::vector<float> x = test::random_floats(test::x_size(s), ++seed);
          for (float& v : x) v = std::round(v * 2.0f) / 2.0f;
          const std::vector<float> b =
              bias ? test::random_floats(s.OC, ++seed) : std::vector<float>{};
          const int OH = s.OH(), OW = s.OW(), P = OH * OW;
          PoolPnShape ps{s.OC, OH, OW, s.N, c.KH, c.KW};
          const int PH = ps.PH(), PW = ps.PW();
          std::vector<int32_t> off;
          conv_offsets(s, w.csr, off);
          std::vector<float> xp(padded_size(s), kNaN), a(test::y_size(s), kNaN);
          nchw_to_pn_padded(s, x.data(), xp.data());
          csr_conv_forward(s, w.csr, off.data(), xp.data(), a.data());
          const size_t pooled = size_t(s.OC) * PH * PW * s.N;
          std::vector<float> y(pooled, kNaN);
          std::vector<int32_t> code(pooled, -7);
          csr_conv_pool_forward(s, w.csr, off.data(), xp.data(), bias ? b.data() : nullptr, relu,
                                ps, y.data(), code.data());

          // Reference: the conv output in NCHW as sparse_conv2d makes it, relu, the reference pool.
          std::vector<float> yc(a.size());
          pn_to_nchw(s.OC, s.N, P, a.data(), bias ? b.data() : nullptr, yc.data());
          if (relu)
            for (float& v : yc) v = v > 0.0f ? v : 0.0f;
          Pool2dShape r;
          r.N = s.N, r.C = s.OC, r.H = OH, r.W = OW, r.KH = c.KH, r.KW = c.KW, r.stride_h = c.KH,
          r.stride_w = c.KW;
          REQUIRE(r.OH() == PH);
          REQUIRE(r.OW() == PW);
          std::vector<float> yr(pooled);
          std::vector<int32_t> arg(pooled);
          ref::max_pool2d_forward(r, yc.data(), yr.data(), arg.data());
          const std::vector<float> dy = test::random_floats(pooled, ++seed);
          std::vector<float> dy_nchw(pooled);
          for (int ch = 0; ch < s.OC; ++ch)
            for (int q = 0; q < PH * PW; ++q)
              for (int n = 0; n < s.N; ++n) {
                const size_t pn = (size_t(ch) * PH * PW + q) * s.N + n;
                const size_t nchw = (size_t(n) * s.OC + ch) * PH * PW + q;
                dy_nchw[nchw] = dy[pn];
                REQUIRE(y[pn] == yr[nchw]);  // bitwise (no NaN here)
                const int ih = arg[nchw] / OW, iw = arg[nchw] % OW;
                const int want = relu && !(yr[nchw] > 0.0f)
                                     ? -1
                                     : (ih - (q / PW) * c.KH) * c.KW + (iw - (q % PW) * c.KW);
                clipped += want == -1;
                REQUIRE(code[pn] == want);
              }

          // Backward: the reference pool's scatter, then relu's mask (output > 0).
          std::vector<float> dx(yc.size());
          ref::max_pool2d_backward(r, dy_nchw.data(), arg.data(), dx.data());
          if (relu)
            for (size_t i = 0; i < dx.size(); ++i) dx[i] = yc[i] > 0.0f ? dx[i] : 0.0f;
          // The conv's gradients from that stored gradient (batch innermost) and from the pooled
          // one through the winners: the same bits. The bias: the double sum of the same values.
          std::vector<float> da(a.size(), kNaN);
          nchw_to_pn(s.OC, s.N, P, dx.data(), da.data());
          std::vector<float> dxp_want(padded_size(s), kNaN), dxp_got(padded_size(s), kNaN);
          csr_conv_backward_data(s, w.csr, off.data(), da.data(), dxp_want.data());
          csr_conv_pool_backward_data(s, w.csr, off.data(), ps, dy.data(), code.data(),
                                      dxp_got.data());
          CHECK(test::bitwise_equal(dxp_got, dxp_want));
          for (bool accumulate : {false, true}) {
            std::vector<float> dw_want = accumulate ? test::random_floats(w.csr.nnz(), seed + 7)
                                                    : std::vector<float>(w.csr.nnz(), kNaN);
            std::vector<float> dw_got = dw_want;
            csr_conv_backward_weights(s, w.csr, off.data(), da.data(), xp.data(), dw_want.data(),
                                      accumulate);
            csr_conv_pool_backward_weights(s, w.csr, off.data(), ps, dy.data(), code.data(),
                                           xp.data(), dw_got.data(), accumulate);
            CHECK(test::bitwise_equal(dw_got, dw_want));
            std::vector<float> db(s.OC, 0.5f), db_want(s.OC);
            for (int ch = 0; ch < s.OC; ++ch) {
              double sum = accumulate ? 0.5 : 0.0;
              for (int n = 0; n < s.N; ++n)
                for (int i = 0; i < P; ++i) sum += dx[(size_t(n) * s.OC + ch) * P + i];
              db_want[ch] = static_cast<float>(sum);
            }
            pool_pn_bias_grad(ps, dy.data(), code.data(), db.data(), accumulate);
            test::check_close(db, db_want, 1e-6, 1.0);
          }

          // The pooled output inside a border (the next conv's padding, uneven here): the
          // interior and the codes bit for bit as without, the border zeros, and the backward
          // reading only the interior of g (NaN around it) to the same bits, bias gradient too.
          PoolPnShape pb = ps;
          pb.pad_h = 1;
          pb.pad_w = 2;
          std::vector<float> yb(size_t(s.OC) * pb.YH() * pb.YW() * s.N, kNaN);
          std::vector<int32_t> code_b(pooled, -7);
          csr_conv_pool_forward(s, w.csr, off.data(), xp.data(), bias ? b.data() : nullptr, relu,
                                pb, yb.data(), code_b.data());
          CHECK(test::bitwise_equal(yb, with_border(pb, y, 0.0f)));
          CHECK(code_b == code);
          const std::vector<float> gb = with_border(pb, dy, kNaN);
          std::vector<float> dxp_b(padded_size(s), kNaN);
          csr_conv_pool_backward_data(s, w.csr, off.data(), pb, gb.data(), code.data(), dxp_b.data());
          CHECK(test::bitwise_equal(dxp_b, dxp_got));
          std::vector<float> dw_b(w.csr.nnz(), kNaN), dw_u(w.csr.nnz(), kNaN);
          csr_conv_pool_backward_weights(s, w.csr, off.data(), pb, gb.data(), code.data(), xp.data(),
                                         dw_b.data(), false);
          csr_conv_pool_backward_weights(s, w.csr, off.data(), ps, dy.data(), code.data(), xp.data(),
                                         dw_u.data(), false);
          CHECK(test::bitwise_equal(dw_b, dw_u));
          std::vector<float> db_b(s.OC, kNaN), db_u(s.OC, kNaN);
          pool_pn_bias_grad(pb, gb.data(), code.data(), db_b.data(), false);
          pool_pn_bias_grad(ps, dy.data(), code.data(), db_u.data(), false);
          CHECK(test::bitwise_equal(db_b, db_u));
        }
  CHECK(clipped > 0);
  {  // big enough to split across threads: the same bits for 1, 2 and 3 threads
    const Conv2dShape s = test::conv_shape(64, 8, 16, 16, 24, 3, 3, 1, 1, 1, 1);
    const PoolPnShape ps{s.OC, s.OH(), s.OW(), s.N, 2, 2};
    const Weight w = make_weight(s, 0.3, 77);
    std::vector<int32_t> off;
    conv_offsets(s, w.csr, off);
    const auto x = test::random_floats(test::x_size(s), 78);
    std::vector<float> xp(padded_size(s));
    nchw_to_pn_padded(s, x.data(), xp.data());
    const size_t pooled = size_t(s.OC) * ps.PH() * ps.PW() * s.N;
    std::vector<float> y(pooled);
    std::vector<int32_t> code(pooled);
    csr_conv_pool_forward(s, w.csr, off.data(), xp.data(), nullptr, true, ps, y.data(), code.data());
    const auto g = test::random_floats(pooled, 79);
    test::check_bitwise_across_threads([&] {
      std::vector<float> out(padded_size(s) + w.csr.nnz() + s.OC);
      csr_conv_pool_backward_data(s, w.csr, off.data(), ps, g.data(), code.data(), out.data());
      csr_conv_pool_backward_weights(s, w.csr, off.data(), ps, g.data(), code.data(), xp.data(),
                                     out.data() + padded_size(s), false);
      pool_pn_bias_grad(ps, g.data(), code.data(), out.data() + padded_size(s) + w.csr.nnz(), false);
      return out;
    });
    // With a border: every thread zeros its channels' border and writes its rows' interior.
    PoolPnShape pb = ps;
    pb.pad_h = pb.pad_w = 1;
    test::check_bitwise_across_threads([&] {
      std::vector<float> yb(size_t(s.OC) * pb.YH() * pb.YW() * s.N, kNaN);
      std::vector<int32_t> cb(pooled);
      csr_conv_pool_forward(s, w.csr, off.data(), xp.data(), nullptr, true, pb, yb.data(), cb.data());
      CHECK(test::bitwise_equal(yb, with_border(pb, y, 0.0f)));
      return yb;
    });
  }
  PoolPnShape wrong{3, 28, 28, 64, 2, 2};
  const Conv2dShape s = test::conv_shape(64, 3, 28, 28, 4, 3, 3, 1, 1, 1, 1);
  const Weight w = make_weight(s, 0.3, 5);
  std::vector<int32_t> off;
  conv_offsets(s, w.csr, off);
  CHECK_THROWS_AS(csr_conv_pool_forward(s, w.csr, off.data(), nullptr, nullptr, false, wrong,
                                        nullptr, nullptr),
                  std::invalid_argument);
  CHECK_THROWS_AS(csr_conv_pool_backward_data(s, w.csr, off.data(), wrong, nullptr, nullptr, nullptr),
                  std::invalid_argument);
  CHECK_THROWS_AS(csr_conv_pool_backward_weights(s, w.csr, off.data(), wrong, nullptr, nullptr,
                                                 nullptr, nullptr, false),
                  std::invalid_argument);
  PoolPnShape negative{s.OC, s.OH(), s.OW(), s.N, 2, 2};
  negative.pad_w = -1;
  CHECK_THROWS_AS(csr_conv_pool_forward(s, w.csr, off.data(), nullptr, nullptr, false, negative,
                                        nullptr, nullptr),
                  std::invalid_argument);
}

}  // namespace
}  // namespace st::kernels
