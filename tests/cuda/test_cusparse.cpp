// tests/cuda/test_cusparse.cpp — the cuSPARSE wrappers (cuda/cusparse.h) against the CPU CSR kernels:
// the general products and the Linear-layout ones at odd sizes, density 0 / 0.3 / 1, N = 1,
// beta 0 with NaN-filled outputs, accumulate, and the plan cache (a repeated call with new dense
// arrays creates nothing). cuSPARSE exists only on a real GPU: in the emulated build (test_cuda)
// this file only checks that every wrapper refuses with a clear message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/cusparse.h"
#include "cuda/runtime.h"
#include "cuda/sparse.h"
#include "kernels/csr.h"
#include "kernels/sparse_cpu.h"

namespace st::cuda {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> cusparse_random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Density-d mask with row 1 and column 2 empty (when they exist).
kernels::CsrMatrix cusparse_case(int rows, int cols, double density, uint32_t seed) {
  auto dense = cusparse_random(static_cast<size_t>(rows) * cols, seed);
  std::vector<uint8_t> mask(dense.size());
  std::mt19937 rng(seed + 7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < cols; ++k) {
      bool in = density >= 1.0 || u(rng) < density;
      if (density < 1.0 && ((rows > 2 && r == 1) || (cols > 2 && k == 2))) in = false;
      mask[static_cast<size_t>(r) * cols + k] = in;
    }
  return kernels::csr_from_dense(dense.data(), mask.data(), rows, cols);
}

struct Buffer {
  float* ptr = nullptr;
  size_t n = 0;
  explicit Buffer(const std::vector<float>& host) : n(host.size()) {
    ptr = static_cast<float*>(device_alloc(sizeof(float) * n));
    if (n) copy_h2d(ptr, host.data(), sizeof(float) * n);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (ptr) device_free(ptr, sizeof(float) * n);
  }
  std::vector<float> download() const {
    std::vector<float> out(n);
    if (n) copy_d2h(out.data(), ptr, sizeof(float) * n);
    return out;
  }
};

struct Csr {
  DeviceCsr d;
  explicit Csr(const kernels::CsrMatrix& a) : d(device_csr_upload(a)) {}
  Csr(const Csr&) = delete;
  Csr& operator=(const Csr&) = delete;
  ~Csr() { device_csr_free(d); }
};

void expect_close(const std::vector<float>& got, const std::vector<float>& want, int depth) {
  REQUIRE(got.size() == want.size());
  const double scale = std::sqrt(static_cast<double>(std::max(depth, 1)));
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(diff <= 1e-5 * (std::fabs(static_cast<double>(want[i])) + scale))) {
      INFO("index " << i << ": got " << got[i] << ", want " << want[i]);
      CHECK(diff <= 1e-5 * (std::fabs(static_cast<double>(want[i])) + scale));
      return;
    }
  }
}

TEST_CASE("cusparse wrappers refuse to run in the emulator") {
  if (!emulated()) return;
  CHECK_FALSE(cusparse::available());
  const kernels::CsrMatrix a = cusparse_case(3, 4, 1.0, 1);
  Csr dA(a);
  Buffer b(std::vector<float>(8, 1.0f)), c(std::vector<float>(6, 0.0f));
  const std::string msg =
      "cuSPARSE needs a real GPU; the emulator runs only sparsetrain's own kernels";
  CHECK_THROWS_WITH_AS(cusparse::csr_spmm(dA.d, b.ptr, 2, c.ptr, 0.0f), msg.c_str(),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(cusparse::csr_spmm_xwt(dA.d, b.ptr, 2, c.ptr, 0.0f), msg.c_str(),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(cusparse::csr_spmm_dyw(dA.d, b.ptr, 2, c.ptr, 0.0f), msg.c_str(),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(cusparse::csr_sddmm(dA.d, b.ptr, b.ptr, 2, c.ptr, false), msg.c_str(),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(cusparse::csr_sddmm_dyx(dA.d, b.ptr, b.ptr, 2, c.ptr, false), msg.c_str(),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(cusparse::csr_spmm_t(dA.d, dA.d, b.ptr, 2, c.ptr, 0.0f), msg.c_str(),
                       std::runtime_error);
}

struct CusparseShape {
  int M, K, N;
};
const CusparseShape kCusparseShapes[] = {{7, 96, 40}, {11, 55, 8}, {1, 1, 1}, {33, 20, 1},
                                         {20, 33, 17}, {64, 100, 128}};

TEST_CASE("cusparse products against the CPU kernels (GPU only)") {
  if (emulated() || !device_info().available) return;
  uint32_t seed = 700;
  for (const CusparseShape& s : kCusparseShapes)
    for (double d : {0.0, 0.3, 1.0})
      for (float beta : {0.0f, 1.0f, -0.5f}) {
        INFO("M=" << s.M << " K=" << s.K << " N=" << s.N << " density=" << d << " beta=" << beta);
        const kernels::CsrMatrix a = cusparse_case(s.M, s.K, d, seed += 10);
        std::vector<int32_t> perm;
        const kernels::CsrMatrix at = kernels::csr_transpose(a, perm);
        Csr dA(a), dAt(at);
        auto out0 = [&](size_t n, uint32_t sd) {
          return beta == 0.0f ? std::vector<float>(n, kNaN) : cusparse_random(n, sd);
        };
        const bool accumulate = beta != 0.0f;

        // General layout: C (M, N) = A · B; C (K, N) = Aᵀ · B'; SDDMM X (M, N) · Y (K, N)ᵀ.
        const auto B = cusparse_random(static_cast<size_t>(s.K) * s.N, seed + 1);
        auto C = out0(static_cast<size_t>(s.M) * s.N, seed + 2), C_want = C;
        Buffer dB(B), dC(C);
        cusparse::csr_spmm(dA.d, dB.ptr, s.N, dC.ptr, beta);
        kernels::csr_spmm(a, B.data(), s.N, C_want.data(), beta);
        expect_close(dC.download(), C_want, s.K);

        const auto Bt = cusparse_random(static_cast<size_t>(s.M) * s.N, seed + 3);
        auto Ct = out0(static_cast<size_t>(s.K) * s.N, seed + 4), Ct_want = Ct;
        Buffer dBt(Bt), dCt(Ct);
        cusparse::csr_spmm_t(dA.d, dAt.d, dBt.ptr, s.N, dCt.ptr, beta);
        kernels::csr_spmm_t(a, Bt.data(), s.N, Ct_want.data(), beta);
        expect_close(dCt.download(), Ct_want, s.M);

        const auto X = cusparse_random(static_cast<size_t>(s.M) * s.N, seed + 5);
        const auto Y = cusparse_random(static_cast<size_t>(s.K) * s.N, seed + 6);
        auto v = out0(static_cast<size_t>(a.nnz()), seed + 7), v_want = v;
        Buffer dX(X), dY(Y), dv(v);
        cusparse::csr_sddmm(dA.d, dX.ptr, dY.ptr, s.N, dv.ptr, accumulate);
        kernels::csr_sddmm(a, X.data(), Y.data(), s.N, v_want.data(), accumulate);
        expect_close(dv.download(), v_want, s.N);

        // Linear layout: W (OUT = M, IN = K), batch = N.
        const int batch = s.N;
        const auto x = cusparse_random(static_cast<size_t>(batch) * s.K, seed + 8);
        const auto dy = cusparse_random(static_cast<size_t>(batch) * s.M, seed + 9);
        Buffer dx_in(x), ddy(dy);
        auto y = out0(static_cast<size_t>(batch) * s.M, seed + 10), y_want = y;
        Buffer dy_out(y);
        cusparse::csr_spmm_xwt(dA.d, dx_in.ptr, batch, dy_out.ptr, beta);
        kernels::csr_spmm_xwt(a, x.data(), batch, y_want.data(), beta);
        expect_close(dy_out.download(), y_want, s.K);

        auto dx = out0(static_cast<size_t>(batch) * s.K, seed + 11), dx_want = dx;
        Buffer ddx(dx);
        cusparse::csr_spmm_dyw(dAt.d, ddy.ptr, batch, ddx.ptr, beta);
        kernels::csr_spmm_dyw(at, dy.data(), batch, dx_want.data(), beta);
        expect_close(ddx.download(), dx_want, s.M);

        auto dw = out0(static_cast<size_t>(a.nnz()), seed + 12), dw_want = dw;
        Buffer ddw(dw);
        cusparse::csr_sddmm_dyx(dA.d, ddy.ptr, dx_in.ptr, batch, ddw.ptr, accumulate);
        kernels::csr_sddmm_dyx(a, dy.data(), x.data(), batch, dw_want.data(), accumulate);
        expect_close(ddw.download(), dw_want, batch);
      }
}

TEST_CASE("cusparse plans are created once per pattern and shape (GPU only)") {
  if (emulated() || !device_info().available) return;
  const kernels::CsrMatrix w = cusparse_case(50, 70, 0.3, 3);
  Csr dW(w);
  const int batch = 24;
  const auto x = cusparse_random(static_cast<size_t>(batch) * 70, 4);
  const auto dy = cusparse_random(static_cast<size_t>(batch) * 50, 5);
  Buffer dx(x), ddy(dy), y(std::vector<float>(static_cast<size_t>(batch) * 50)),
      dw(std::vector<float>(static_cast<size_t>(w.nnz())));
  cusparse::csr_spmm_xwt(dW.d, dx.ptr, batch, y.ptr, 0.0f);
  cusparse::csr_sddmm_dyx(dW.d, ddy.ptr, dx.ptr, batch, dw.ptr, false);
  const cusparse::CacheStats first = cusparse::cache_stats();
  // The steady state: new dense arrays (as a training step would get), same pattern and shape.
  for (int step = 0; step < 3; ++step) {
    Buffer x2(cusparse_random(static_cast<size_t>(batch) * 70, 10 + step));
    Buffer y2(std::vector<float>(static_cast<size_t>(batch) * 50, kNaN));
    Buffer dw2(std::vector<float>(static_cast<size_t>(w.nnz()), kNaN));
    cusparse::csr_spmm_xwt(dW.d, x2.ptr, batch, y2.ptr, 0.0f);
    cusparse::csr_sddmm_dyx(dW.d, ddy.ptr, x2.ptr, batch, dw2.ptr, false);
    std::vector<float> want(static_cast<size_t>(batch) * 50);
    kernels::csr_spmm_xwt(w, x2.download().data(), batch, want.data(), 0.0f);
    expect_close(y2.download(), want, 70);
  }
  CHECK(cusparse::cache_stats().created == first.created);
  // Another batch size is another plan.
  cusparse::csr_spmm_xwt(dW.d, dx.ptr, batch - 1, y.ptr, 0.0f);
  CHECK(cusparse::cache_stats().created == first.created + 1);
  synchronize();
}

}  // namespace
}  // namespace st::cuda
