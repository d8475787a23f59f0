// tests/kernels/test_sparse.cpp — CSR builders and the CPU CSR kernels (kernels/csr.h,
// kernels/sparse_cpu.h) against the double-accumulating references at odd sizes: empty rows and
// columns, density 0/0.05/0.3/1, N = 1, 8, 17, 40, 128, 130 (the >128 chunked path), beta and
// accumulate variants with NaN-filled outputs when they must not be read, transpose round trips,
// and bitwise determinism across repeats and thread counts.
#include <omp.h>

#include <algorithm>
#include <limits>
#include <random>

#include "kernels/csr.h"
#include "kernels/elementwise.h"
#include "kernels/reference.h"
#include "kernels/sparse_cpu.h"
#include "kernel_test_util.h"

namespace st::kernels {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Shape {
  int M, K, N;
};
// N (the batch in the Linear layout) also covers the x-stationary tiles of sparse_cpu.cpp:
// ≤ 16 (16-row tiles), 32 and 48 (whole and half-filled 32-row tiles), 33 (a 1-row last tile).
const Shape kShapes[] = {{7, 96, 40},   {11, 55, 8},     {1, 1, 1},       {33, 20, 1},
                         {20, 33, 17},  {64, 100, 128},  {40, 300, 130},  {130, 70, 16},
                         {16, 16, 32},  {19, 45, 33},    {50, 64, 48},    {17, 1, 5}};
const double kDensities[] = {0.0, 0.05, 0.3, 1.0};

std::vector<float> transposed(const std::vector<float>& a, int rows, int cols) {
  std::vector<float> t(a.size());
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) t[static_cast<size_t>(c) * rows + r] = a[static_cast<size_t>(r) * cols + c];
  return t;
}

TEST_CASE("csr_from_dense: mask, nonzeros, round trip, row order") {
  test::SparseCase c = test::make_case(13, 29, 0.3, 3);
  const CsrMatrix& a = c.csr;
  int64_t mask_count = 0;
  for (uint8_t m : c.mask) mask_count += m;
  CHECK(a.nnz() == mask_count);  // masked-in zeros are part of the pattern
  CHECK(a.row_ptr[2] == a.row_ptr[1]);  // row 1 is empty
  std::vector<float> back(c.dense.size(), kNaN);
  csr_to_dense(a, back.data());
  CHECK(test::bitwise_equal(back, c.dense));
  for (int r = 0; r < a.rows; ++r)
    for (int32_t k = a.row_ptr[r] + 1; k < a.row_ptr[r + 1]; ++k) CHECK(a.col_idx[k - 1] < a.col_idx[k]);
  REQUIRE(a.row_order.size() == 13u);
  for (size_t i = 1; i < a.row_order.size(); ++i) {
    const int p = a.row_order[i - 1], q = a.row_order[i];
    CHECK(a.row_ptr[p + 1] - a.row_ptr[p] >= a.row_ptr[q + 1] - a.row_ptr[q]);
  }
  // Without a mask the pattern is the nonzeros: the masked-in zeros drop out.
  const CsrMatrix b = csr_from_dense(c.dense.data(), nullptr, 13, 29);
  int64_t nonzeros = 0;
  for (float v : c.dense) nonzeros += v != 0.0f;
  CHECK(b.nnz() == nonzeros);
  CHECK(b.nnz() < a.nnz());
  // Density 0 and 1, and an empty matrix.
  const CsrMatrix z = csr_from_dense(c.dense.data(), std::vector<uint8_t>(c.dense.size(), 0).data(), 13, 29);
  CHECK(z.nnz() == 0);
  const CsrMatrix f = csr_from_dense(c.dense.data(), std::vector<uint8_t>(c.dense.size(), 1).data(), 13, 29);
  CHECK(f.nnz() == 13 * 29);
  const CsrMatrix e = csr_from_dense(nullptr, nullptr, 0, 0);
  CHECK(e.nnz() == 0);
  CHECK(e.row_ptr.size() == 1u);
}

TEST_CASE("csr_update_values and csr_transpose(_values) round trips") {
  for (double d : kDensities) {
    test::SparseCase c = test::make_case(17, 23, d, 11);
    std::vector<int32_t> perm;
    CsrMatrix at = csr_transpose(c.csr, perm);
    REQUIRE(at.rows == 23);
    REQUIRE(at.cols == 17);
    std::vector<float> dt(static_cast<size_t>(17) * 23);
    csr_to_dense(at, dt.data());
    CHECK(test::bitwise_equal(dt, transposed(c.dense, 17, 23)));
    for (int64_t p = 0; p < at.nnz(); ++p) CHECK(at.values[p] == c.csr.values[perm[p]]);
    std::vector<int32_t> perm2;
    const CsrMatrix att = csr_transpose(at, perm2);
    CHECK(att.row_ptr == c.csr.row_ptr);
    CHECK(att.col_idx == c.csr.col_idx);
    CHECK(test::bitwise_equal(att.values, c.csr.values));
    // New weights with the same pattern: refresh A from dense, then Aᵀ through perm.
    std::vector<float> w2 = test::random_floats(c.dense.size(), 99);
    for (size_t i = 0; i < w2.size(); ++i)
      if (!c.mask[i]) w2[i] = 0.0f;
    csr_update_values(c.csr, w2.data());
    std::vector<float> back(w2.size());
    csr_to_dense(c.csr, back.data());
    CHECK(test::bitwise_equal(back, w2));
    csr_transpose_values(c.csr, perm, at);
    csr_to_dense(at, dt.data());
    CHECK(test::bitwise_equal(dt, transposed(w2, 17, 23)));
  }
}

TEST_CASE("transpose_dense at odd sizes") {
  const int sizes[][2] = {{1, 1}, {7, 96}, {16, 16}, {33, 17}, {128, 300}, {5, 1}};
  for (auto& s : sizes) {
    const auto a = test::random_floats(static_cast<size_t>(s[0]) * s[1], 5);
    std::vector<float> at(a.size(), kNaN);
    transpose_dense(s[0], s[1], a.data(), at.data());
    CHECK(test::bitwise_equal(at, transposed(a, s[0], s[1])));
  }
}

TEST_CASE("csr_spmm and csr_spmm_t against the reference") {
  uint32_t seed = 100;
  for (const Shape& s : kShapes)
    for (double d : kDensities)
      for (float beta : {0.0f, 1.0f, -0.5f}) {
        INFO("M=" << s.M << " K=" << s.K << " N=" << s.N << " density=" << d << " beta=" << beta);
        test::SparseCase c = test::make_case(s.M, s.K, d, ++seed);
        // spmm: C (M, N) = A · B (K, N)
        const auto B = test::random_floats(static_cast<size_t>(s.K) * s.N, ++seed);
        auto got = test::init_output(static_cast<size_t>(s.M) * s.N, beta, ++seed), want = got;
        csr_spmm(c.csr, B.data(), s.N, got.data(), beta);
        ref::csr_spmm(c.csr, B.data(), s.N, want.data(), beta);
        test::check_close(got, want, 1e-5, test::scale_for(s.K));
        // spmm_t: C (K, N) = Aᵀ · B (M, N), and the same through the transposed copy.
        const auto Bt = test::random_floats(static_cast<size_t>(s.M) * s.N, ++seed);
        auto got_t = test::init_output(static_cast<size_t>(s.K) * s.N, beta, ++seed), want_t = got_t,
             got_copy = got_t;
        csr_spmm_t(c.csr, Bt.data(), s.N, got_t.data(), beta);
        ref::csr_spmm_t(c.csr, Bt.data(), s.N, want_t.data(), beta);
        test::check_close(got_t, want_t, 1e-5, test::scale_for(s.M));
        std::vector<int32_t> perm;
        const CsrMatrix at = csr_transpose(c.csr, perm);
        csr_spmm(at, Bt.data(), s.N, got_copy.data(), beta);
        test::check_close(got_copy, want_t, 1e-5, test::scale_for(s.M));
      }
}

TEST_CASE("csr_sddmm against the reference, overwrite and accumulate") {
  uint32_t seed = 300;
  for (const Shape& s : kShapes)
    for (double d : kDensities)
      for (bool accumulate : {false, true}) {
        INFO("M=" << s.M << " K=" << s.K << " N=" << s.N << " density=" << d << " acc=" << accumulate);
        test::SparseCase c = test::make_case(s.M, s.K, d, ++seed);
        const auto X = test::random_floats(static_cast<size_t>(s.M) * s.N, ++seed);
        const auto Y = test::random_floats(static_cast<size_t>(s.K) * s.N, ++seed);
        auto got = accumulate ? test::random_floats(c.csr.nnz(), ++seed) : std::vector<float>(c.csr.nnz(), kNaN);
        auto want = got;
        csr_sddmm(c.csr, X.data(), Y.data(), s.N, got.data(), accumulate);
        ref::csr_sddmm(c.csr, X.data(), Y.data(), s.N, want.data(), accumulate);
        test::check_close(got, want, 1e-5, test::scale_for(s.N));
      }
}

// Linear layout: W (OUT=M, IN=K), batch = N.
TEST_CASE("Linear-layout kernels: xWᵀ, dy·W, SDDMM(dyᵀ·x)") {
  uint32_t seed = 500;
  for (const Shape& s : kShapes)
    for (double d : kDensities)
      for (float beta : {0.0f, 1.0f, -0.5f}) {
        const int OUT = s.M, IN = s.K, batch = s.N;
        INFO("OUT=" << OUT << " IN=" << IN << " batch=" << batch << " density=" << d << " beta=" << beta);
        test::SparseCase c = test::make_case(OUT, IN, d, ++seed);
        std::vector<int32_t> perm;
        const CsrMatrix wt = csr_transpose(c.csr, perm);
        const auto x = test::random_floats(static_cast<size_t>(batch) * IN, ++seed);
        const auto dy = test::random_floats(static_cast<size_t>(batch) * OUT, ++seed);
        const auto xt = transposed(x, batch, IN), dyt = transposed(dy, batch, OUT);
        // y (batch, OUT) = x · Wᵀ  ⇔  yᵀ = W · xᵀ
        auto y = test::init_output(static_cast<size_t>(batch) * OUT, beta, ++seed);
        auto yt_want = transposed(y, batch, OUT);
        csr_spmm_xwt(c.csr, x.data(), batch, y.data(), beta);
        ref::csr_spmm(c.csr, xt.data(), batch, yt_want.data(), beta);
        test::check_close(transposed(y, batch, OUT), yt_want, 1e-5, test::scale_for(IN));
        // dx (batch, IN) = dy · W  ⇔  dxᵀ = Wᵀ · dyᵀ
        auto dx = test::init_output(static_cast<size_t>(batch) * IN, beta, ++seed);
        auto dxt_want = transposed(dx, batch, IN);
        csr_spmm_dyw(wt, dy.data(), batch, dx.data(), beta);
        ref::csr_spmm_t(c.csr, dyt.data(), batch, dxt_want.data(), beta);
        test::check_close(transposed(dx, batch, IN), dxt_want, 1e-5, test::scale_for(OUT));
        // dW at the nonzeros (+)= Σ_b dy[b, row] · x[b, col]
        const bool accumulate = beta != 0.0f;
        auto dw = accumulate ? test::random_floats(c.csr.nnz(), ++seed) : std::vector<float>(c.csr.nnz(), kNaN);
        auto dw_want = dw;
        csr_sddmm_dyx(c.csr, dy.data(), x.data(), batch, dw.data(), accumulate);
        ref::csr_sddmm(c.csr, dyt.data(), xt.data(), batch, dw_want.data(), accumulate);
        test::check_close(dw, dw_want, 1e-5, test::scale_for(batch));
      }
}

// A wide layer (IN = 2500: a ragged last k-block of the packed tile) with a ragged row group
// (OUT = 37), sparse to dense, at 1, 2 and 3 threads.
TEST_CASE("xWᵀ on wide layers against the reference, any thread count") {
  const int saved = omp_get_max_threads();
  uint32_t seed = 900;
  for (int batch : {45, 7, 64})
    for (double d : {0.02, 0.4, 1.0})
      for (float beta : {0.0f, 1.0f}) {
        const int OUT = 37, IN = 2500;
        INFO("batch=" << batch << " density=" << d << " beta=" << beta);
        test::SparseCase c = test::make_case(OUT, IN, d, ++seed);
        const auto x = test::random_floats(static_cast<size_t>(batch) * IN, ++seed);
        const auto xt = transposed(x, batch, IN);
        const auto y0 = test::init_output(static_cast<size_t>(batch) * OUT, beta, ++seed);
        auto yt_want = transposed(y0, batch, OUT);
        ref::csr_spmm(c.csr, xt.data(), batch, yt_want.data(), beta);
        std::vector<float> first;
        for (int threads : {2, 1, 3}) {
          omp_set_num_threads(threads);
          auto y = y0;
          csr_spmm_xwt(c.csr, x.data(), batch, y.data(), beta);
          test::check_close(transposed(y, batch, OUT), yt_want, 1e-5, test::scale_for(IN));
          if (first.empty()) first = y;
          else CHECK(test::bitwise_equal(y, first));
        }
      }
  omp_set_num_threads(saved);
}

// A dense operand beyond the caches (K·N·4 bytes > 16 MiB) makes csr_spmm walk each row's column
// chunks in turn: N = 130 (two full chunks and a ragged one), empty rows, at 1 and 2 threads.
TEST_CASE("csr_spmm with a dense operand larger than the caches (row-outer chunks)") {
  const int saved = omp_get_max_threads();
  const int M = 45, K = 33000, N = 130;
  uint32_t seed = 1200;
  for (double d : {0.0, 0.0007, 0.004})
    for (float beta : {0.0f, 1.0f}) {
      INFO("density=" << d << " beta=" << beta);
      test::SparseCase c = test::make_case(M, K, d, ++seed);
      const auto B = test::random_floats(static_cast<size_t>(K) * N, ++seed);
      const auto c0 = test::init_output(static_cast<size_t>(M) * N, beta, ++seed);
      auto want = c0;
      ref::csr_spmm(c.csr, B.data(), N, want.data(), beta);
      std::vector<float> first;
      for (int threads : {2, 1}) {
        omp_set_num_threads(threads);
        auto got = c0;
        csr_spmm(c.csr, B.data(), N, got.data(), beta);
        test::check_close(got, want, 1e-5, test::scale_for(K));
        if (first.empty()) first = got;
        else CHECK(test::bitwise_equal(got, first));
      }
    }
  omp_set_num_threads(saved);
}

// SDDMM(dyᵀ·x) has two thread splits (kernels/sparse_cpu.cpp): by rows, or by whole batch tiles
// with the later tiles' partials added afterwards. At density 0.01 on (700, 1100) with batch 130
// (4 full tiles and a 2-row one) 2 and 3 threads take the tile split (thread 0 owning 2 or 1
// tiles); at 0.2 the row split. Both must match the reference and give the bits of 1 thread.
TEST_CASE("SDDMM(dyᵀ·x) split by rows or by batch tiles: same bits at any thread count") {
  const int saved = omp_get_max_threads();
  const int OUT = 700, IN = 1100, batch = 130;
  uint32_t seed = 1500;
  for (double d : {0.01, 0.2})
    for (bool accumulate : {false, true}) {
      INFO("density=" << d << " accumulate=" << accumulate);
      test::SparseCase c = test::make_case(OUT, IN, d, ++seed);
      const auto x = test::random_floats(static_cast<size_t>(batch) * IN, ++seed);
      const auto dy = test::random_floats(static_cast<size_t>(batch) * OUT, ++seed);
      const auto dw0 = accumulate ? test::random_floats(c.csr.nnz(), ++seed)
                                  : std::vector<float>(c.csr.nnz(), kNaN);
      auto want = dw0;
      ref::csr_sddmm(c.csr, transposed(dy, batch, OUT).data(), transposed(x, batch, IN).data(), batch,
                     want.data(), accumulate);
      std::vector<float> first;
      for (int threads : {1, 2, 3}) {
        INFO("threads=" << threads);
        omp_set_num_threads(threads);
        auto dw = dw0;
        csr_sddmm_dyx(c.csr, dy.data(), x.data(), batch, dw.data(), accumulate);
        test::check_close(dw, want, 1e-5, test::scale_for(batch));
        if (first.empty()) first = dw;
        else CHECK(test::bitwise_equal(dw, first));
      }
    }
  omp_set_num_threads(saved);
}

// The forward can leave its packed batch tiles of x in x_tiles for the weight gradient: y and dW
// must carry the bits of the calls without them, at any thread count. On the small layers every
// call runs on one thread (dW reads x_tiles): batch 7 runs the forward on narrow tiles (x_tiles
// packed afterwards), 45 and 130 leave a ragged last tile. On (700, 1100) with batch 128 the
// calls take several threads: at density 0.01 dW takes the tile split (reading x_tiles at 2
// threads, whose forward took whole tiles; packing at 3), at 0.2 the row split (packing). OUT = 40
// and the 3-thread forward split tiles into row chunks (chunk 0's thread fills x_tiles). The
// buffer starts as NaN, so a tile left unpacked shows.
TEST_CASE("xWᵀ leaves its packed x for SDDMM(dyᵀ·x): same bits as packing again") {
  const int saved = omp_get_max_threads();
  struct Case { int OUT, IN, batch; double d; };
  std::vector<Case> cases;
  for (int batch : {7, 45, 64, 130})
    for (int OUT : {40, 300})
      for (double d : {0.05, 0.6}) cases.push_back({OUT, 150, batch, d});
  cases.push_back({700, 1100, 128, 0.01});
  cases.push_back({700, 1100, 128, 0.2});
  uint32_t seed = 1700;
  for (const Case& k : cases) {
    const int OUT = k.OUT, IN = k.IN, batch = k.batch;
    INFO("batch=" << batch << " OUT=" << OUT << " IN=" << IN << " density=" << k.d);
    test::SparseCase c = test::make_case(OUT, IN, k.d, ++seed);
    const auto x = test::random_floats(static_cast<size_t>(batch) * IN, ++seed);
    const auto dy = test::random_floats(static_cast<size_t>(batch) * OUT, ++seed);
    auto dw_want = std::vector<float>(c.csr.nnz(), kNaN);
    ref::csr_sddmm(c.csr, transposed(dy, batch, OUT).data(), transposed(x, batch, IN).data(),
                   batch, dw_want.data(), false);
    for (int threads : {1, 2, 3}) {
      INFO("threads=" << threads);
      omp_set_num_threads(threads);
      std::vector<float> y_plain(static_cast<size_t>(batch) * OUT), y(y_plain.size());
      csr_spmm_xwt(c.csr, x.data(), batch, y_plain.data(), 0.0f);
      std::vector<float> tiles_buf(csr_x_tiles_size(batch, IN) + 16, kNaN);  // 64-byte aligned view
      float* tiles = reinterpret_cast<float*>(
          (reinterpret_cast<uintptr_t>(tiles_buf.data()) + 63) & ~uintptr_t{63});
      csr_spmm_xwt(c.csr, x.data(), batch, y.data(), 0.0f, tiles);
      CHECK(test::bitwise_equal(y, y_plain));
      for (bool accumulate : {false, true}) {
        auto dw_plain = accumulate ? test::random_floats(c.csr.nnz(), seed + 7)
                                   : std::vector<float>(c.csr.nnz(), kNaN);
        auto dw = dw_plain;
        csr_sddmm_dyx(c.csr, dy.data(), x.data(), batch, dw_plain.data(), accumulate);
        csr_sddmm_dyx(c.csr, dy.data(), x.data(), batch, dw.data(), accumulate, tiles);
        CHECK(test::bitwise_equal(dw, dw_plain));
        if (!accumulate) test::check_close(dw, dw_want, 1e-5, test::scale_for(batch));
      }
    }
  }
  omp_set_num_threads(saved);
}

// The bias and relu applied as xWᵀ stores y: the bits of bias_add_rows and relu_forward run on the
// stored y, with outputs that straddle zero (some exactly 0 or −0), a NaN and ±Inf among x, every
// tile width, beta 0 and 1, 1–3 threads, with and without x_tiles, and an empty layer.
TEST_CASE("xWᵀ with the bias and relu in its stores: the bits of bias_add_rows and relu_forward") {
  const int saved = omp_get_max_threads();
  uint32_t seed = 2300;
  std::vector<Shape> shapes(std::begin(kShapes), std::end(kShapes));
  shapes.push_back({300, 784, 64});
  shapes.push_back({37, 2500, 45});
  for (const Shape& s : shapes)
    for (double d : kDensities)
      for (float beta : {0.0f, 1.0f}) {
        const int OUT = s.M, IN = s.K, batch = s.N;
        test::SparseCase c = test::make_case(OUT, IN, d, ++seed);
        auto x = test::random_floats(static_cast<size_t>(batch) * IN, ++seed);
        if (x.size() > 7) {
          x[3] = std::numeric_limits<float>::infinity();
          x[x.size() / 2] = kNaN;
          x[x.size() - 1] = -std::numeric_limits<float>::infinity();
        }
        auto bias = test::random_floats(OUT, ++seed);
        for (int o = 0; o < OUT; o += 3) bias[o] = o % 2 ? -0.0f : 0.0f;
        const auto y0 = test::init_output(static_cast<size_t>(batch) * OUT, beta, ++seed);
        for (int threads : {1, 2, 3})
          for (int form = 0; form < 3; ++form) {  // bias and relu, bias only, relu only
            INFO("OUT=" << OUT << " IN=" << IN << " batch=" << batch << " density=" << d
                        << " beta=" << beta << " threads=" << threads << " form=" << form);
            omp_set_num_threads(threads);
            const float* b = form != 2 ? bias.data() : nullptr;
            const bool relu = form != 1;
            auto want = y0;
            csr_spmm_xwt(c.csr, x.data(), batch, want.data(), beta);
            if (b) bias_add_rows(batch, OUT, b, want.data());
            if (relu) relu_forward(static_cast<int64_t>(want.size()), want.data(), want.data());
            auto y = y0;
            std::vector<float> tiles_buf(csr_x_tiles_size(batch, IN) + 16, kNaN);
            float* tiles = reinterpret_cast<float*>(
                (reinterpret_cast<uintptr_t>(tiles_buf.data()) + 63) & ~uintptr_t{63});
            csr_spmm_xwt(c.csr, x.data(), batch, y.data(), beta, threads == 2 ? tiles : nullptr, b,
                         relu);
            CHECK(test::bitwise_equal(y, want));
          }
      }
  omp_set_num_threads(saved);
  CsrMatrix empty = test::make_case(0, 5, 1.0, 1).csr;  // no outputs: nothing written, no crash
  const auto x = test::random_floats(10, 2);
  csr_spmm_xwt(empty, x.data(), 2, nullptr, 0.0f, nullptr, nullptr, true);
}

TEST_CASE("sparse kernels are bitwise deterministic across repeats and thread counts") {
  // batch 72: 3 tiles of 32 (split into row chunks at 2 threads, whole tiles at 3); 128: 4 tiles
  // (whole tiles at 2, row chunks at 3); 9: one 16-row tile split into row chunks.
  for (int batch : {72, 128, 9}) {
    INFO("batch=" << batch);
    test::SparseCase c = test::make_case(200, 300, 0.3, 7);
    std::vector<int32_t> perm;
    const CsrMatrix wt = csr_transpose(c.csr, perm);
    const auto x = test::random_floats(static_cast<size_t>(batch) * 300, 8);
    const auto dy = test::random_floats(static_cast<size_t>(batch) * 200, 9);
    auto run = [&]() {
      std::vector<float> y(static_cast<size_t>(batch) * 200), dx(static_cast<size_t>(batch) * 300),
          dw(c.csr.nnz()), ct(static_cast<size_t>(300) * batch);
      csr_spmm_xwt(c.csr, x.data(), batch, y.data(), 0.0f);
      csr_spmm_dyw(wt, dy.data(), batch, dx.data(), 0.0f);
      csr_sddmm_dyx(c.csr, dy.data(), x.data(), batch, dw.data(), false);
      csr_spmm_t(c.csr, dy.data(), batch, ct.data(), 0.0f);  // dy as a (200, batch) matrix
      y.insert(y.end(), dx.begin(), dx.end());
      y.insert(y.end(), dw.begin(), dw.end());
      y.insert(y.end(), ct.begin(), ct.end());
      return y;
    };
    test::check_bitwise_across_threads(run);
  }
}

}  // namespace
}  // namespace st::kernels

TEST_CASE("gather_at / scatter_at move values between compact arrays and dense offsets") {
  std::vector<int64_t> index = {3, 0, 7, 12, 5};  // distinct, unordered
  std::vector<float> dense(13);
  for (size_t i = 0; i < dense.size(); ++i) dense[i] = 0.5f * static_cast<float>(i) - 2.0f;
  std::vector<float> compact(index.size(), -99.0f);
  st::kernels::gather_at(static_cast<int64_t>(index.size()), index.data(), dense.data(), compact.data());
  for (size_t k = 0; k < index.size(); ++k) CHECK(compact[k] == dense[index[k]]);
  std::vector<float> back(dense.size(), 42.0f);
  st::kernels::scatter_at(static_cast<int64_t>(index.size()), index.data(), compact.data(), back.data());
  for (size_t i = 0; i < back.size(); ++i) {
    const bool listed = std::find(index.begin(), index.end(), static_cast<int64_t>(i)) != index.end();
    CHECK(back[i] == (listed ? dense[i] : 42.0f));  // entries off the index are left alone
  }
  st::kernels::gather_at(0, nullptr, dense.data(), nullptr);  // n = 0 touches nothing
  st::kernels::scatter_at(0, nullptr, nullptr, back.data());
}
