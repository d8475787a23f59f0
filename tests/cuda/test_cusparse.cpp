// tests/cuda/test_cusparse.cpp — the cuSPARSE wrappers (cuda/cusparse.h) against the CPU CSR kernels:
// the general products and the Linear-layout ones at odd sizes, density 0 / 0.3 / 1, N = 1,
// beta 0 with NaN-filled outputs, accumulate, and the plan cache (a repeated call with new dense
// arrays creates nothing). cuSPARSE exists only on a real GPU: in the emulated build (test_cuda)
// this file only checks that every wrapper refuses with a clear message, and doctest counts the
// GPU-only cases as skipped.
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
#include "cuda_test_util.h"
#include "kernels/csr.h"
#include "kernels/kernel_test_util.h"
#include "kernels/sparse_cpu.h"

namespace st::cuda {
namespace {

namespace kt = st::kernels::test;
using test::DeviceArray;
using test::DeviceCsrHolder;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

TEST_CASE("cusparse wrappers refuse to run in the emulator" * doctest::skip(!emulated())) {
  CHECK_FALSE(cusparse::available());
  const kernels::CsrMatrix a = kt::make_case(3, 4, 1.0, 1).csr;
  DeviceCsrHolder dA(a);
  DeviceArray<float> b(std::vector<float>(8, 1.0f)), c(std::vector<float>(6, 0.0f));
  const std::string msg =
      "cuSPARSE needs a real GPU; the emulator runs only sparsetrain's own kernels";
  CHECK_THROWS_WITH_AS(cusparse::csr_spmm(dA.d, b.get(), 2, c.get(), 0.0f), msg.c_str(),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(cusparse::csr_spmm_xwt(dA.d, b.get(), 2, c.get(), 0.0f), msg.c_str(),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(cusparse::csr_spmm_dyw(dA.d, b.get(), 2, c.get(), 0.0f), msg.c_str(),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(cusparse::csr_sddmm(dA.d, b.get(), b.get(), 2, c.get(), false), msg.c_str(),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(cusparse::csr_sddmm_dyx(dA.d, b.get(), b.get(), 2, c.get(), false), msg.c_str(),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(cusparse::csr_spmm_t(dA.d, dA.d, b.get(), 2, c.get(), 0.0f), msg.c_str(),
                       std::runtime_error);
}

struct CusparseShape {
  int M, K, N;
};
const CusparseShape kCusparseShapes[] = {{7, 96, 40}, {11, 55, 8}, {1, 1, 1}, {33, 20, 1},
                                         {20, 33, 17}, {64, 100, 128}};

TEST_CASE("cusparse products against the CPU kernels (GPU only)" * doctest::skip(emulated())) {
  uint32_t seed = 700;
  for (const CusparseShape& s : kCusparseShapes)
    for (double d : {0.0, 0.3, 1.0})
      for (float beta : {0.0f, 1.0f, -0.5f}) {
        INFO("M=" << s.M << " K=" << s.K << " N=" << s.N << " density=" << d << " beta=" << beta);
        const kernels::CsrMatrix a = kt::make_case(s.M, s.K, d, seed += 10).csr;
        std::vector<int32_t> perm;
        const kernels::CsrMatrix at = kernels::csr_transpose(a, perm);
        DeviceCsrHolder dA(a), dAt(at);
        const bool accumulate = beta != 0.0f;

        // General layout: C (M, N) = A · B; C (K, N) = Aᵀ · B'; SDDMM X (M, N) · Y (K, N)ᵀ.
        const auto B = kt::random_floats(static_cast<size_t>(s.K) * s.N, seed + 1);
        auto C = kt::init_output(static_cast<size_t>(s.M) * s.N, beta, seed + 2), C_want = C;
        DeviceArray<float> dB(B), dC(C);
        cusparse::csr_spmm(dA.d, dB.get(), s.N, dC.get(), beta);
        kernels::csr_spmm(a, B.data(), s.N, C_want.data(), beta);
        kt::check_close(dC.download(), C_want, 1e-5, kt::scale_for(s.K));

        const auto Bt = kt::random_floats(static_cast<size_t>(s.M) * s.N, seed + 3);
        auto Ct = kt::init_output(static_cast<size_t>(s.K) * s.N, beta, seed + 4), Ct_want = Ct;
        DeviceArray<float> dBt(Bt), dCt(Ct);
        cusparse::csr_spmm_t(dA.d, dAt.d, dBt.get(), s.N, dCt.get(), beta);
        kernels::csr_spmm_t(a, Bt.data(), s.N, Ct_want.data(), beta);
        kt::check_close(dCt.download(), Ct_want, 1e-5, kt::scale_for(s.M));

        const auto X = kt::random_floats(static_cast<size_t>(s.M) * s.N, seed + 5);
        const auto Y = kt::random_floats(static_cast<size_t>(s.K) * s.N, seed + 6);
        auto v = kt::init_output(static_cast<size_t>(a.nnz()), beta, seed + 7), v_want = v;
        DeviceArray<float> dX(X), dY(Y), dv(v);
        cusparse::csr_sddmm(dA.d, dX.get(), dY.get(), s.N, dv.get(), accumulate);
        kernels::csr_sddmm(a, X.data(), Y.data(), s.N, v_want.data(), accumulate);
        kt::check_close(dv.download(), v_want, 1e-5, kt::scale_for(s.N));

        // Linear layout: W (OUT = M, IN = K), batch = N.
        const int batch = s.N;
        const auto x = kt::random_floats(static_cast<size_t>(batch) * s.K, seed + 8);
        const auto dy = kt::random_floats(static_cast<size_t>(batch) * s.M, seed + 9);
        DeviceArray<float> dx_in(x), ddy(dy);
        auto y = kt::init_output(static_cast<size_t>(batch) * s.M, beta, seed + 10), y_want = y;
        DeviceArray<float> dy_out(y);
        cusparse::csr_spmm_xwt(dA.d, dx_in.get(), batch, dy_out.get(), beta);
        kernels::csr_spmm_xwt(a, x.data(), batch, y_want.data(), beta);
        kt::check_close(dy_out.download(), y_want, 1e-5, kt::scale_for(s.K));

        auto dx = kt::init_output(static_cast<size_t>(batch) * s.K, beta, seed + 11), dx_want = dx;
        DeviceArray<float> ddx(dx);
        cusparse::csr_spmm_dyw(dAt.d, ddy.get(), batch, ddx.get(), beta);
        kernels::csr_spmm_dyw(at, dy.data(), batch, dx_want.data(), beta);
        kt::check_close(ddx.download(), dx_want, 1e-5, kt::scale_for(s.M));

        auto dw = kt::init_output(static_cast<size_t>(a.nnz()), beta, seed + 12), dw_want = dw;
        DeviceArray<float> ddw(dw);
        cusparse::csr_sddmm_dyx(dA.d, ddy.get(), dx_in.get(), batch, ddw.get(), accumulate);
        kernels::csr_sddmm_dyx(a, dy.data(), x.data(), batch, dw_want.data(), accumulate);
        kt::check_close(ddw.download(), dw_want, 1e-5, kt::scale_for(batch));
      }
}

TEST_CASE("cusparse plans are created once per pattern and shape (GPU only)" * doctest::skip(emulated())) {
  const kernels::CsrMatrix w = kt::make_case(50, 70, 0.3, 3).csr;
  DeviceCsrHolder dW(w);
  const int batch = 24;
  const auto x = kt::random_floats(static_cast<size_t>(batch) * 70, 4);
  const auto dy = kt::random_floats(static_cast<size_t>(batch) * 50, 5);
  DeviceArray<float> dx(x), ddy(dy), y(std::vector<float>(static_cast<size_t>(batch) * 50)),
      dw(std::vector<float>(static_cast<size_t>(w.nnz())));
  cusparse::csr_spmm_xwt(dW.d, dx.get(), batch, y.get(), 0.0f);
  cusparse::csr_sddmm_dyx(dW.d, ddy.get(), dx.get(), batch, dw.get(), false);
  const cusparse::CacheStats first = cusparse::cache_stats();
  // The steady state: new dense arrays (as a training step would get), same pattern and shape.
  for (int step = 0; step < 3; ++step) {
    DeviceArray<float> x2(kt::random_floats(static_cast<size_t>(batch) * 70, 10 + step));
    DeviceArray<float> y2(std::vector<float>(static_cast<size_t>(batch) * 50, kNaN));
    DeviceArray<float> dw2(std::vector<float>(static_cast<size_t>(w.nnz()), kNaN));
    cusparse::csr_spmm_xwt(dW.d, x2.get(), batch, y2.get(), 0.0f);
    cusparse::csr_sddmm_dyx(dW.d, ddy.get(), x2.get(), batch, dw2.get(), false);
    std::vector<float> want(static_cast<size_t>(batch) * 50);
    kernels::csr_spmm_xwt(w, x2.download().data(), batch, want.data(), 0.0f);
    kt::check_close(y2.download(), want, 1e-5, kt::scale_for(70));
  }
  CHECK(cusparse::cache_stats().created == first.created);
  // Another batch size is another plan.
  cusparse::csr_spmm_xwt(dW.d, dx.get(), batch - 1, y.get(), 0.0f);
  CHECK(cusparse::cache_stats().created == first.created + 1);
  synchronize();
}

}  // namespace
}  // namespace st::cuda
