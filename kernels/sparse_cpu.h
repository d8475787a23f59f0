// kernels/sparse_cpu.h — CSR kernels for sparse layers (OpenMP; AVX-512, AVX2 or portable loops,
// whichever instruction set is active: kernels/isa.h).
// Core products; the N dimension is contiguous (row-major dense operands):
//   csr_spmm:   C (M, N) = A_csr (M, K) · B (K, N)                    + beta·C
//   csr_spmm_t: C (K, N) = A_csrᵀ (K, M) · B (M, N)                   + beta·C
//   csr_sddmm:  vals (nnz) (+)= (X (M, N) · Y (K, N)ᵀ) at A's nonzeros
// Linear-layer layout (activations are batch-major; W (OUT, IN) is the sparse weight):
//   csr_spmm_xwt:  y  (B, OUT) = x (B, IN) · Wᵀ               + beta·y [+ b, relu]   forward
//   csr_spmm_dyw:  dx (B, IN)  = dy (B, OUT) · W    (takes Wt = csr_transpose(W)) input gradient
//   csr_sddmm_dyx: dw_vals (nnz) (+)= (dyᵀ · x) at W's nonzeros                   weight gradient
// beta == 0 writes the output without reading it (it may hold NaN). Parameter gradients take
// `accumulate` (+= when true, = otherwise).
// Deterministic: every output element is summed in a fixed order (a CSR row's nonzeros in order)
// whatever the thread count; threads own disjoint outputs (no atomics, static partition).
// Reference: kernels/reference.h (ref::csr_*). Tests: tests/kernels/test_sparse.cpp.
// Bench: bench/bench_kernels.cpp (`sparsetrain bench kernels`).
#pragma once
#include <cstddef>

#include "kernels/csr.h"

namespace st::kernels {

void csr_spmm(const CsrMatrix& A, const float* B, int N, float* C, float beta);
// Scatters each row of B into the rows of C named by A's columns; threads split C's columns, so
// no transposed copy is needed. When the caller keeps Aᵀ, csr_spmm(Aᵀ, ...) is the same product.
void csr_spmm_t(const CsrMatrix& A, const float* B, int N, float* C, float beta);
void csr_sddmm(const CsrMatrix& pattern, const float* X, const float* Y, int N, float* out_values,
               bool accumulate);

// x_tiles (optional, 64-byte aligned, csr_x_tiles_size(batch, IN) floats): the forward leaves the
// batch tiles it packs from x there, and a weight gradient given the same buffer (same x and
// batch, nothing written to it in between) reads them instead of packing x again wherever each
// of its threads reads only tiles the same thread packed (one thread, or whole tiles per thread);
// the results are the same bits either way. Contents are the kernels' own (32-row tiles,
// transposed); without vector kernels they are left unused.
inline size_t csr_x_tiles_size(int batch, int in) {
  return static_cast<size_t>((batch + 31) / 32) * static_cast<size_t>(in) * 32;
}
// bias (OUT floats, optional) and relu make it y = relu(x·Wᵀ + beta·y + bias), applied as each
// piece of y is stored: the same bits as bias_add_rows and relu_forward run on y afterwards.
void csr_spmm_xwt(const CsrMatrix& W, const float* x, int batch, float* y, float beta,
                  float* x_tiles = nullptr, const float* bias = nullptr, bool relu = false);
// dx = dy · W = dy · (Wt)ᵀ: the forward kernel on the transposed copy (refresh its values with
// csr_transpose_values after each optimizer step).
void csr_spmm_dyw(const CsrMatrix& Wt, const float* dy, int batch, float* dx, float beta);
void csr_sddmm_dyx(const CsrMatrix& W, const float* dy, const float* x, int batch,
                   float* dw_values, bool accumulate, const float* x_tiles = nullptr);

// at (cols, rows) = a (rows, cols)ᵀ, both dense row-major.
void transpose_dense(int rows, int cols, const float* a, float* at);

}  // namespace st::kernels
