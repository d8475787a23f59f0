// cuda/sparse.h — CSR kernels for sparse layers on the GPU: the device twins of kernels/sparse_cpu.h,
// same argument orders, device pointers, DeviceCsr for CsrMatrix.
// Core products (the N dimension is contiguous, dense operands row-major):
//   csr_spmm:   C (M, N) = A_csr (M, K) · B (K, N)                   + beta·C
//   csr_spmm_t: C (K, N) = A_csrᵀ (K, M) · B (M, N)                  + beta·C   (runs on At)
//   csr_sddmm:  vals (nnz) (+)= (X (M, N) · Y (K, N)ᵀ) at A's nonzeros
// Linear-layer layout (activations batch-major; W (OUT, IN) is the sparse weight):
//   csr_spmm_xwt:  y  (B, OUT) = x (B, IN) · Wᵀ                      + beta·y   forward
//   csr_spmm_dyw:  dx (B, IN)  = dy (B, OUT) · W   (takes Wt)        + beta·dx  input gradient
//   csr_sddmm_dyx: dw_vals (nnz) (+)= (dyᵀ · x) at W's nonzeros                 weight gradient
// beta == 0 writes the output without reading it (it may hold NaN); `accumulate` is += vs =.
// Deterministic: no atomics; every output is summed in an order fixed by the pattern and the shape
// (not the CPU's order, so results match the CPU kernels to float tolerance, not bitwise).
// All calls are asynchronous on st::cuda::stream(). Kernels: cuda/sparse.cu. cuSPARSE twins with
// the same signatures: cuda/cusparse.h. Tests: tests/cuda/test_sparse.cpp (under the emulator).
#pragma once
#include <cstdint>

#include "kernels/csr.h"

namespace st::cuda {

// A CsrMatrix on the device. The arrays are device pointers owned by whoever uploaded it
// (device_csr_upload / device_csr_free); a copy of the struct is a view, not a second owner.
struct DeviceCsr {
  int rows = 0, cols = 0;
  int64_t nnz = 0;
  int32_t* row_ptr = nullptr;    // rows + 1
  int32_t* col_idx = nullptr;    // nnz (null when nnz == 0)
  float* values = nullptr;       // nnz (null when nnz == 0)
  int32_t* row_order = nullptr;  // rows, longest row first (kernels hand rows out in this order)
  int max_row_nnz = 0;           // longest row: sizes the grids that split rows into chunks
};

// Allocates (st::cuda::device_alloc) and copies the structure, values and row order of `a`.
DeviceCsr device_csr_upload(const kernels::CsrMatrix& a);
// Copies a's values into d (same pattern: d must come from uploading a matrix shaped like a).
void device_csr_update_values(DeviceCsr& d, const kernels::CsrMatrix& a);
// Back to the host (synchronizes): for tests, checkpoints and debugging.
kernels::CsrMatrix device_csr_download(const DeviceCsr& d);
// Returns the arrays to the allocator and clears d.
void device_csr_free(DeviceCsr& d);

// Uploads n int32 values (the perm of csr_transpose); free with device_free(p, n · sizeof(int32_t)).
// Returns null for n == 0.
int32_t* device_upload_i32(const int32_t* host, int64_t n);

// at.values[p] = a.values[perm[p]] (kernels::csr_transpose_values on the device; perm from
// kernels::csr_transpose, uploaded): refreshes Wt after the optimizer wrote W's values.
void csr_transpose_values(const DeviceCsr& a, const int32_t* perm, DeviceCsr& at);

void csr_spmm(const DeviceCsr& A, const float* B, int N, float* C, float beta);
// C = Aᵀ·B without atomics: the row-gather SpMM on the transposed copy At (kernels::csr_transpose
// of A, uploaded; the CPU kernel scatters instead, which on a GPU would need atomics). A is only
// checked against At's shape.
void csr_spmm_t(const DeviceCsr& A, const DeviceCsr& At, const float* B, int N, float* C,
                float beta);
void csr_sddmm(const DeviceCsr& pattern, const float* X, const float* Y, int N, float* out_values,
               bool accumulate);

void csr_spmm_xwt(const DeviceCsr& W, const float* x, int batch, float* y, float beta);
void csr_spmm_dyw(const DeviceCsr& Wt, const float* dy, int batch, float* dx, float beta);
void csr_sddmm_dyx(const DeviceCsr& W, const float* dy, const float* x, int batch,
                   float* dw_values, bool accumulate);

namespace detail {
// Tests only: force the threads per row of every sparse kernel (1, 2, 4, 8, 16 or 32) so each
// compiled variant is checked; 0 restores the automatic choice.
void force_lanes_per_row(int lanes);
// Tests only: split csr_sddmm's N into this many ranges (at most one per S·VEC slab; the split-N
// path otherwise runs only when rows are too few to fill a GPU); 0 restores the automatic choice.
void force_sddmm_ranges(int ranges);
}  // namespace detail

}  // namespace st::cuda
