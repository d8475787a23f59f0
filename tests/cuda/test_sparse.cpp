// tests/cuda/test_sparse.cpp — the CUDA CSR kernels (cuda/sparse.h) against the CPU CSR kernels
// (kernels/sparse_cpu.h): odd sizes (7×96×40, 11×55×8, 1×1×1, ...), empty
// rows and columns, density 0 / 0.05 / 0.3 / 1, N = 1, beta 0 (output NaN-filled: must not be
// read) / 1 / −0.5, accumulate on and off, every lanes-per-row variant with vector (float4) and
// scalar loads, the DeviceCsr helpers, degenerate shapes and repeatability. Runs in the emulator in
// test_cuda, on the GPU in test_cuda_gpu.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

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

// ---- small helpers (device arrays, data, comparisons) ------------------------------------

// Restores automatic lanes-per-row when a test case ends, even on failure.
struct ForcedLanes {
  explicit ForcedLanes(int lanes) { detail::force_lanes_per_row(lanes); }
  ~ForcedLanes() { detail::force_lanes_per_row(0); }
};

struct Shape {
  int M, K, N;
};
// N also decides the lanes per row (N/4 or N vectors) and the float4 path (N % 4 == 0).
const Shape kShapes[] = {{7, 96, 40}, {11, 55, 8}, {1, 1, 1}, {33, 20, 1},
                         {20, 33, 17}, {5, 70, 130}, {40, 9, 4}, {3, 260, 12},
                         {4, 30, 1000}};
const double kDensities[] = {0.0, 0.05, 0.3, 1.0};

// ---- the general products -----------------------------------------------------------------

// C = A·B, C = Aᵀ·B (through At) and SDDMM at A's pattern, each against the CPU kernel.
void check_core_products(const kt::SparseCase& c, int N, float beta, size_t offset, uint32_t seed) {
  const int M = c.csr.rows, K = c.csr.cols;
  std::vector<int32_t> perm;
  const kernels::CsrMatrix at = kernels::csr_transpose(c.csr, perm);
  DeviceCsrHolder dA(c.csr), dAt(at);

  // spmm: C (M, N) = A · B (K, N)
  const auto B = kt::random_floats(static_cast<size_t>(K) * N, seed + 1);
  auto C = kt::init_output(static_cast<size_t>(M) * N, beta, seed + 2), want = C;
  {
    DeviceArray<float> dB(B, offset), dC(C, offset);
    csr_spmm(dA.d, dB.get(), N, dC.get(), beta);
    kernels::csr_spmm(c.csr, B.data(), N, want.data(), beta);
    kt::check_close(dC.download(), want, 1e-5, kt::scale_for(K));
  }
  // spmm_t: C (K, N) = Aᵀ · B (M, N)
  const auto Bt = kt::random_floats(static_cast<size_t>(M) * N, seed + 3);
  auto Ct = kt::init_output(static_cast<size_t>(K) * N, beta, seed + 4), want_t = Ct;
  {
    DeviceArray<float> dB(Bt, offset), dC(Ct, offset);
    csr_spmm_t(dA.d, dAt.d, dB.get(), N, dC.get(), beta);
    kernels::csr_spmm_t(c.csr, Bt.data(), N, want_t.data(), beta);
    kt::check_close(dC.download(), want_t, 1e-5, kt::scale_for(M));
  }
  // sddmm: vals (+)= X (M, N) · Y (K, N)ᵀ at A's nonzeros
  const bool accumulate = beta != 0.0f;
  const auto X = kt::random_floats(static_cast<size_t>(M) * N, seed + 5);
  const auto Y = kt::random_floats(static_cast<size_t>(K) * N, seed + 6);
  auto vals = accumulate ? kt::random_floats(static_cast<size_t>(c.csr.nnz()), seed + 7)
                         : std::vector<float>(static_cast<size_t>(c.csr.nnz()), kNaN);
  auto want_v = vals;
  {
    DeviceArray<float> dX(X, offset), dY(Y, offset), dv(vals);
    csr_sddmm(dA.d, dX.get(), dY.get(), N, dv.get(), accumulate);
    kernels::csr_sddmm(c.csr, X.data(), Y.data(), N, want_v.data(), accumulate);
    kt::check_close(dv.download(), want_v, 1e-5, kt::scale_for(N));
  }
}

// The Linear layout: W (OUT = M, IN = K), batch = N.
void check_linear_products(const kt::SparseCase& c, int batch, float beta, size_t offset,
                           uint32_t seed) {
  const int OUT = c.csr.rows, IN = c.csr.cols;
  std::vector<int32_t> perm;
  const kernels::CsrMatrix wt = kernels::csr_transpose(c.csr, perm);
  DeviceCsrHolder dW(c.csr), dWt(wt);
  const auto x = kt::random_floats(static_cast<size_t>(batch) * IN, seed + 1);
  const auto dy = kt::random_floats(static_cast<size_t>(batch) * OUT, seed + 2);
  DeviceArray<float> dx_in(x, offset), ddy(dy, offset);

  auto y = kt::init_output(static_cast<size_t>(batch) * OUT, beta, seed + 3), y_want = y;
  {
    DeviceArray<float> dy_out(y, offset);
    csr_spmm_xwt(dW.d, dx_in.get(), batch, dy_out.get(), beta);
    kernels::csr_spmm_xwt(c.csr, x.data(), batch, y_want.data(), beta);
    kt::check_close(dy_out.download(), y_want, 1e-5, kt::scale_for(IN));
  }
  auto dx = kt::init_output(static_cast<size_t>(batch) * IN, beta, seed + 4), dx_want = dx;
  {
    DeviceArray<float> ddx(dx, offset);
    csr_spmm_dyw(dWt.d, ddy.get(), batch, ddx.get(), beta);
    kernels::csr_spmm_dyw(wt, dy.data(), batch, dx_want.data(), beta);
    kt::check_close(ddx.download(), dx_want, 1e-5, kt::scale_for(OUT));
  }
  const bool accumulate = beta != 0.0f;
  auto dw = accumulate ? kt::random_floats(static_cast<size_t>(c.csr.nnz()), seed + 5)
                       : std::vector<float>(static_cast<size_t>(c.csr.nnz()), kNaN);
  auto dw_want = dw;
  {
    DeviceArray<float> ddw(dw);
    csr_sddmm_dyx(dW.d, ddy.get(), dx_in.get(), batch, ddw.get(), accumulate);
    kernels::csr_sddmm_dyx(c.csr, dy.data(), x.data(), batch, dw_want.data(), accumulate);
    kt::check_close(ddw.download(), dw_want, 1e-5, kt::scale_for(batch));
  }
}

TEST_CASE("cuda DeviceCsr: upload, download, value refreshes") {
  for (double d : kDensities) {
    INFO("density " << d);
    kt::SparseCase c = kt::make_case(17, 23, d, 11);
    DeviceCsrHolder dA(c.csr);
    CHECK(dA.d.rows == 17);
    CHECK(dA.d.cols == 23);
    CHECK(dA.d.nnz == c.csr.nnz());
    int longest = 0;
    for (int r = 0; r < 17; ++r)
      longest = std::max(longest, c.csr.row_ptr[r + 1] - c.csr.row_ptr[r]);
    CHECK(dA.d.max_row_nnz == longest);
    const kernels::CsrMatrix back = device_csr_download(dA.d);
    CHECK(back.row_ptr == c.csr.row_ptr);
    CHECK(back.col_idx == c.csr.col_idx);
    CHECK(back.row_order == c.csr.row_order);
    CHECK(kt::bitwise_equal(back.values, c.csr.values));

    // New weights on the same pattern: host refresh + upload, then Wt through perm on the device.
    std::vector<int32_t> perm;
    kernels::CsrMatrix at = kernels::csr_transpose(c.csr, perm);
    DeviceCsrHolder dAt(at);
    std::vector<float> w2 = kt::random_floats(c.dense.size(), 99);
    for (size_t i = 0; i < w2.size(); ++i)
      if (!c.mask[i]) w2[i] = 0.0f;
    kernels::csr_update_values(c.csr, w2.data());
    device_csr_update_values(dA.d, c.csr);
    int32_t* dperm = device_upload_i32(perm.data(), static_cast<int64_t>(perm.size()));
    csr_transpose_values(dA.d, dperm, dAt.d);
    kernels::csr_transpose_values(c.csr, perm, at);
    CHECK(kt::bitwise_equal(device_csr_download(dAt.d).values, at.values));
    if (dperm) device_free(dperm, sizeof(int32_t) * perm.size());
  }
}

TEST_CASE("cuda csr_spmm, csr_spmm_t, csr_sddmm against the CPU kernels") {
  uint32_t seed = 100;
  for (const Shape& s : kShapes)
    for (double d : kDensities)
      for (float beta : {0.0f, 1.0f, -0.5f}) {
        INFO("M=" << s.M << " K=" << s.K << " N=" << s.N << " density=" << d << " beta=" << beta);
        const kt::SparseCase c = kt::make_case(s.M, s.K, d, seed += 10);
        check_core_products(c, s.N, beta, 0, seed);
      }
}

TEST_CASE("cuda Linear-layout kernels: xWᵀ, dy·W, SDDMM(dyᵀ·x) against the CPU kernels") {
  uint32_t seed = 500;
  for (const Shape& s : kShapes)
    for (double d : kDensities)
      for (float beta : {0.0f, 1.0f, -0.5f}) {
        INFO("OUT=" << s.M << " IN=" << s.K << " batch=" << s.N << " density=" << d
                    << " beta=" << beta);
        const kt::SparseCase c = kt::make_case(s.M, s.K, d, seed += 10);
        check_linear_products(c, s.N, beta, 0, seed);
      }
}

TEST_CASE("cuda sparse kernels: every lanes-per-row variant, float4 and scalar loads") {
  // N = 40 / 12 take the float4 path when aligned; offset 1 forces the scalar one. Rows long and
  // short (density 0.3 and 1 of 70 columns) so lanes past a row's end are exercised too.
  uint32_t seed = 900;
  for (int lanes : {1, 2, 4, 8, 16, 32}) {
    ForcedLanes forced(lanes);
    for (size_t offset : {size_t{0}, size_t{1}})
      for (const Shape s : {Shape{9, 70, 40}, Shape{35, 19, 12}})
        for (double d : {0.3, 1.0}) {
          INFO("lanes=" << lanes << " offset=" << offset << " M=" << s.M << " K=" << s.K
                        << " N=" << s.N << " density=" << d);
          const kt::SparseCase c = kt::make_case(s.M, s.K, d, seed += 10);
          check_core_products(c, s.N, 0.5f, offset, seed);
          check_linear_products(c, s.N, 0.0f, offset, seed);
        }
  }
}

TEST_CASE("cuda csr_sddmm split over ranges of N (the conv-layer path)") {
  // Ranges are whole S·VEC slabs, so a request above the slab count is clamped; N = 1000 gives
  // uneven ranges, N = 40 with 32 lanes a single slab.
  uint32_t seed = 1300;
  for (int ranges : {2, 3, 7, 100})
    for (const Shape s : {Shape{4, 30, 1000}, Shape{9, 70, 40}, Shape{6, 11, 13}, Shape{1, 1, 1}})
      for (double d : {0.3, 1.0})
        for (bool accumulate : {false, true}) {
          INFO("ranges=" << ranges << " M=" << s.M << " K=" << s.K << " N=" << s.N
                         << " density=" << d << " accumulate=" << accumulate);
          detail::force_sddmm_ranges(ranges);
          const kt::SparseCase c = kt::make_case(s.M, s.K, d, seed += 10);
          DeviceCsrHolder dA(c.csr);
          const auto X = kt::random_floats(static_cast<size_t>(s.M) * s.N, seed + 1);
          const auto Y = kt::random_floats(static_cast<size_t>(s.K) * s.N, seed + 2);
          auto vals = accumulate ? kt::random_floats(static_cast<size_t>(c.csr.nnz()), seed + 3)
                                 : std::vector<float>(static_cast<size_t>(c.csr.nnz()), kNaN);
          auto want = vals;
          DeviceArray<float> dX(X), dY(Y), dv(vals);
          csr_sddmm(dA.d, dX.get(), dY.get(), s.N, dv.get(), accumulate);
          detail::force_sddmm_ranges(0);
          kernels::csr_sddmm(c.csr, X.data(), Y.data(), s.N, want.data(), accumulate);
          kt::check_close(dv.download(), want, 1e-5, kt::scale_for(s.N));
        }
  detail::force_sddmm_ranges(0);
}

TEST_CASE("cuda sparse kernels: degenerate shapes") {
  // No rows, no columns, nnz = 0, N = 0: nothing is read; beta·C and the fills still follow the
  // CPU contract.
  const kernels::CsrMatrix empty = kernels::csr_from_dense(nullptr, nullptr, 0, 0);
  DeviceCsrHolder dE(empty);
  csr_spmm(dE.d, nullptr, 5, nullptr, 0.0f);
  csr_spmm_xwt(dE.d, nullptr, 3, nullptr, 0.0f);
  csr_sddmm(dE.d, nullptr, nullptr, 4, nullptr, false);
  csr_sddmm_dyx(dE.d, nullptr, nullptr, 4, nullptr, false);

  // 4 × 6 with nnz = 0: outputs are beta·C (zeros for beta 0, NaN never read).
  const kt::SparseCase z = kt::make_case(4, 6, 0.0, 3);
  REQUIRE(z.csr.nnz() == 0);
  DeviceCsrHolder dZ(z.csr);
  const auto B = kt::random_floats(6 * 3, 4);
  DeviceArray<float> dB(B), dC(std::vector<float>(4 * 3, kNaN));
  csr_spmm(dZ.d, dB.get(), 3, dC.get(), 0.0f);
  CHECK(kt::bitwise_equal(dC.download(), std::vector<float>(4 * 3, 0.0f)));

  // N = 0 for SDDMM: overwrite gives zeros, accumulate leaves the values (the CPU contract).
  const kt::SparseCase f = kt::make_case(3, 5, 1.0, 5);
  DeviceCsrHolder dF(f.csr);
  DeviceArray<float> dv(std::vector<float>(15, kNaN));
  csr_sddmm(dF.d, nullptr, nullptr, 0, dv.get(), false);
  CHECK(kt::bitwise_equal(dv.download(), std::vector<float>(15, 0.0f)));
  const auto kept = kt::random_floats(15, 6);
  DeviceArray<float> dk(kept);
  csr_sddmm_dyx(dF.d, nullptr, nullptr, 0, dk.get(), true);
  CHECK(kt::bitwise_equal(dk.download(), kept));

  // At that is not A's transpose is an error, not a wrong answer.
  CHECK_THROWS_AS(csr_spmm_t(dF.d, dF.d, dB.get(), 3, dC.get(), 0.0f), std::invalid_argument);
  CHECK_THROWS_AS(detail::force_lanes_per_row(3), std::invalid_argument);
}

TEST_CASE("cuda sparse kernels are repeatable bit for bit") {
  const kt::SparseCase c = kt::make_case(45, 60, 0.3, 7);
  std::vector<int32_t> perm;
  const kernels::CsrMatrix wt = kernels::csr_transpose(c.csr, perm);
  DeviceCsrHolder dW(c.csr), dWt(wt);
  const int batch = 20;
  DeviceArray<float> dx(kt::random_floats(static_cast<size_t>(batch) * 60, 8));
  DeviceArray<float> ddy(kt::random_floats(static_cast<size_t>(batch) * 45, 9));
  auto run = [&]() {
    DeviceArray<float> y(std::vector<float>(static_cast<size_t>(batch) * 45));
    DeviceArray<float> dxo(std::vector<float>(static_cast<size_t>(batch) * 60));
    DeviceArray<float> dw(std::vector<float>(static_cast<size_t>(c.csr.nnz())));
    DeviceArray<float> ct(std::vector<float>(static_cast<size_t>(45) * 60));
    csr_spmm_xwt(dW.d, dx.get(), batch, y.get(), 0.0f);
    csr_spmm_dyw(dWt.d, ddy.get(), batch, dxo.get(), 0.0f);
    csr_sddmm_dyx(dW.d, ddy.get(), dx.get(), batch, dw.get(), false);
    csr_spmm(dW.d, dx.get(), batch, ct.get(), 0.0f);  // x as a (60, batch) matrix
    auto out = y.download();
    for (const auto& part : {dxo.download(), dw.download(), ct.download()})
      out.insert(out.end(), part.begin(), part.end());
    return out;
  };
  const auto first = run();
  CHECK(kt::bitwise_equal(run(), first));
}

}  // namespace
}  // namespace st::cuda
