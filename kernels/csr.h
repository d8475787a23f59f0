// kernels/csr.h — compressed sparse row matrix (int32 offsets/indices, f32 values) and its builders.
//   csr_from_dense:       dense (rows, cols) [+ mask (rows, cols)] -> CsrMatrix
//   csr_to_dense:         CsrMatrix -> dense (rows, cols), zeros off the pattern
//   csr_update_values:    refresh values from a dense weight with the same pattern (after a step)
//   csr_transpose:        A (rows, cols) -> Aᵀ (cols, rows) + perm (nnz): Aᵀ.values[p] = A.values[perm[p]]
//   csr_transpose_values: refresh Aᵀ's values from A through perm (O(nnz) gather, no re-sort)
//   gather_at / scatter_at: out[k] = dense[index[k]] / dense[index[k]] = in[k] for k < n: between
//                         a CSR weight's compact arrays (values, optimizer state) and its dense layout
// The pattern is what the mask says: a masked-in entry whose value is exactly 0 stays in the
// pattern (a weight that crosses zero during training must keep receiving gradient).
// Kernels on this format: kernels/sparse_cpu.h. Tests: tests/kernels/test_sparse.cpp.
#pragma once
#include <cstdint>
#include <vector>

namespace st::kernels {

struct CsrMatrix {
  int rows = 0, cols = 0;
  std::vector<int32_t> row_ptr;  // rows + 1, row_ptr[0] == 0
  std::vector<int32_t> col_idx;  // nnz, strictly increasing inside a row
  std::vector<float> values;     // nnz
  // Rows sorted by length, longest first (ties by index), for load balance on devices that hand
  // rows out one by one (the CUDA kernels' row swizzle). The CPU kernels instead split contiguous
  // row ranges of equal nnz across threads, which keeps locality and needs no order.
  std::vector<int32_t> row_order;
  int64_t nnz() const { return row_ptr.empty() ? 0 : row_ptr.back(); }
};

// mask may be null: the pattern is then the nonzeros of dense.
CsrMatrix csr_from_dense(const float* dense, const uint8_t* mask, int rows, int cols);
void csr_to_dense(const CsrMatrix& a, float* dense);
// a.values[k] = dense[row(k), col(k)] for the existing pattern.
void csr_update_values(CsrMatrix& a, const float* dense);
// Returns Aᵀ; perm (resized to nnz) maps each position of Aᵀ to its position in A.
CsrMatrix csr_transpose(const CsrMatrix& a, std::vector<int32_t>& perm);
void csr_transpose_values(const CsrMatrix& a, const std::vector<int32_t>& perm, CsrMatrix& at);
void gather_at(int64_t n, const int64_t* index, const float* dense, float* out);
void scatter_at(int64_t n, const int64_t* index, const float* in, float* dense);

// Recomputes row_order from row_ptr (the builders call it; exposed for code that edits row_ptr).
void csr_compute_row_order(CsrMatrix& a);

}  // namespace st::kernels
