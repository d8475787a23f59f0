// cuda/cusparse.h — the sparse layers' products through NVIDIA cuSPARSE (cusparseSpMM, cusparseSDDMM),
// with the host signatures of cuda/sparse.h so a caller switches by `sparse_impl`:
//   csr_spmm:      C (M, N) = A (M, K) · B (K, N) + beta·C        B, C row-major      (SpMM)
//   csr_spmm_t:    C (K, N) = Aᵀ · B (M, N) + beta·C              on the transposed copy At
//   csr_sddmm:     vals (+)= (X (M, N) · Y (K, N)ᵀ) at A's nonzeros                     (SDDMM)
//   csr_spmm_xwt:  y (B, OUT) = x (B, IN) · Wᵀ + beta·y           as yᵀ = W · xᵀ, column-major views
//   csr_spmm_dyw:  dx (B, IN) = dy (B, OUT) · W + beta·dx         the same on Wt
//   csr_sddmm_dyx: dw_vals (+)= (dyᵀ · x) at W's nonzeros          dy with opA = transpose
// Same contracts as the native kernels: beta == 0 / accumulate == false never read the output.
// Create once, execute many: the handle, the matrix descriptors and the external buffer of each
// (product, pattern pointers, shape) are made on first use and cached; a steady-state call only
// re-points the descriptors at this call's arrays (no cusparseCreate*, no allocation).
// Degenerate shapes (nnz == 0, no rows, N == 0) go to the native kernels, which define them.
// Built by nvcc only (cuda/cusparse.cu), which opens libcusparse on first use instead of linking
// it (cuda/dynlib.h), so commands that never call cuSPARSE never load it. In the emulator build
// (cuda/emu/cusparse_emu.cpp) every call throws: cuSPARSE runs only on a real GPU.
// Tests: tests/cuda/test_cusparse.cpp (GPU only).
#pragma once
#include <cstdint>
#include <string>

#include "cuda/sparse.h"

namespace st::cuda::cusparse {

// Whether the products below can run: false in the emulator build, and in the nvcc build when
// libcusparse cannot be loaded or lacks an entry point (the first call loads it). load_error()
// says why ("" when available); the products throw with that message.
bool available();
std::string load_error();

void csr_spmm(const DeviceCsr& A, const float* B, int N, float* C, float beta);
void csr_spmm_t(const DeviceCsr& A, const DeviceCsr& At, const float* B, int N, float* C,
                float beta);
void csr_sddmm(const DeviceCsr& pattern, const float* X, const float* Y, int N, float* out_values,
               bool accumulate);

void csr_spmm_xwt(const DeviceCsr& W, const float* x, int batch, float* y, float beta);
void csr_spmm_dyw(const DeviceCsr& Wt, const float* dy, int batch, float* dx, float beta);
void csr_sddmm_dyx(const DeviceCsr& W, const float* dy, const float* x, int batch,
                   float* dw_values, bool accumulate);

struct CacheStats {
  int64_t plans = 0;    // cached (product, pattern, shape) entries
  int64_t created = 0;  // plans created since start (a steady-state step adds none)
  int64_t evicted = 0;  // plans destroyed to keep the cache bounded
};
CacheStats cache_stats();
// Destroys every cached plan, its buffer and the handle (e.g. before the device is reset).
void release_cache();

}  // namespace st::cuda::cusparse
