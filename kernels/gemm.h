// kernels/gemm.h — dense single-precision GEMM on the CPU (row-major, OpenMP, cache-blocked).
//   sgemm: C (M, N) = alpha · op(A) (M, K) · op(B) (K, N) + beta · C
//     op(A) = A (M×K, leading dim lda) or Aᵀ where A is stored K×M; likewise op(B).
//     beta == 0 means C is written without being read (it may hold garbage/NaN).
// The four transpose cases cover Linear forward (x·Wᵀ), dX (dY·W) and dW (dYᵀ·X), and the conv GEMMs.
// Deterministic: for a fixed thread count every output element is summed in a fixed order.
// Reference: kernels/reference.h (ref_sgemm). Tests: tests/kernels/test_gemm.cpp.
#pragma once

namespace st::kernels {

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc);

}  // namespace st::kernels
