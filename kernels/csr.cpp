// kernels/csr.cpp — CSR builders (see kernels/csr.h). Building is O(rows·cols) once per mask
// change; the per-step refreshes (csr_update_values, csr_transpose_values) are O(nnz), and
// OpenMP-parallel when large: their reads are scattered (a dense weight, a permutation), so they
// are bound by memory latency and gain from more misses in flight.
#include "kernels/csr.h"
#include "kernels/parallel.h"

#include <omp.h>

#include <algorithm>
#include <cassert>
#include <numeric>

namespace st::kernels {

void csr_compute_row_order(CsrMatrix& a) {
  a.row_order.resize(a.rows);
  std::iota(a.row_order.begin(), a.row_order.end(), 0);
  std::stable_sort(a.row_order.begin(), a.row_order.end(), [&](int32_t x, int32_t y) {
    return a.row_ptr[x + 1] - a.row_ptr[x] > a.row_ptr[y + 1] - a.row_ptr[y];
  });
}

CsrMatrix csr_from_dense(const float* dense, const uint8_t* mask, int rows, int cols) {
  assert(rows >= 0 && cols >= 0);
  CsrMatrix a;
  a.rows = rows;
  a.cols = cols;
  a.row_ptr.assign(static_cast<size_t>(rows) + 1, 0);
  for (int r = 0; r < rows; ++r) {
    const size_t base = static_cast<size_t>(r) * cols;
    int32_t n = 0;
    for (int c = 0; c < cols; ++c) n += mask ? (mask[base + c] != 0) : (dense[base + c] != 0.0f);
    a.row_ptr[r + 1] = a.row_ptr[r] + n;
  }
  a.col_idx.resize(a.nnz());
  a.values.resize(a.nnz());
  for (int r = 0; r < rows; ++r) {
    const size_t base = static_cast<size_t>(r) * cols;
    int32_t k = a.row_ptr[r];
    for (int c = 0; c < cols; ++c) {
      const bool in = mask ? (mask[base + c] != 0) : (dense[base + c] != 0.0f);
      if (in) {
        a.col_idx[k] = c;
        a.values[k] = dense[base + c];
        ++k;
      }
    }
  }
  csr_compute_row_order(a);
  return a;
}

void csr_to_dense(const CsrMatrix& a, float* dense) {
  std::fill_n(dense, static_cast<size_t>(a.rows) * a.cols, 0.0f);
  for (int r = 0; r < a.rows; ++r)
    for (int32_t k = a.row_ptr[r]; k < a.row_ptr[r + 1]; ++k)
      dense[static_cast<size_t>(r) * a.cols + a.col_idx[k]] = a.values[k];
}

void csr_update_values(CsrMatrix& a, const float* dense) {
  const int32_t* rp = a.row_ptr.data();
  const int32_t* ci = a.col_idx.data();
  float* values = a.values.data();
  const size_t cols = static_cast<size_t>(a.cols);
  parallel_for(a.rows, worth_parallel(a.nnz(), int64_t{1} << 16), [=](int64_t r) {
    const float* row = dense + r * cols;
    for (int32_t k = rp[r]; k < rp[r + 1]; ++k) values[k] = row[ci[k]];
  });
}

CsrMatrix csr_transpose(const CsrMatrix& a, std::vector<int32_t>& perm) {
  CsrMatrix at;
  at.rows = a.cols;
  at.cols = a.rows;
  const int64_t nnz = a.nnz();
  at.row_ptr.assign(static_cast<size_t>(at.rows) + 1, 0);
  for (int64_t k = 0; k < nnz; ++k) ++at.row_ptr[a.col_idx[k] + 1];
  for (int r = 0; r < at.rows; ++r) at.row_ptr[r + 1] += at.row_ptr[r];
  at.col_idx.resize(nnz);
  at.values.resize(nnz);
  perm.resize(nnz);
  // Visiting A's rows in order fills each row of Aᵀ with increasing column indices.
  std::vector<int32_t> next(at.row_ptr.begin(), at.row_ptr.end() - 1);
  for (int r = 0; r < a.rows; ++r) {
    for (int32_t k = a.row_ptr[r]; k < a.row_ptr[r + 1]; ++k) {
      const int32_t p = next[a.col_idx[k]]++;
      at.col_idx[p] = r;
      at.values[p] = a.values[k];
      perm[p] = k;
    }
  }
  csr_compute_row_order(at);
  return at;
}

void csr_transpose_values(const CsrMatrix& a, const std::vector<int32_t>& perm, CsrMatrix& at) {
  assert(static_cast<int64_t>(perm.size()) == a.nnz() && at.nnz() == a.nnz());
  const int64_t nnz = a.nnz();
  const float* src = a.values.data();
  float* dst = at.values.data();
  const int32_t* p = perm.data();
  parallel_for(nnz, worth_parallel(nnz, int64_t{1} << 16), [=](int64_t k) {
    dst[k] = src[p[k]];
  });
}

void gather_at(int64_t n, const int64_t* index, const float* dense, float* out) {
  for (int64_t k = 0; k < n; ++k) out[k] = dense[index[k]];
}

void scatter_at(int64_t n, const int64_t* index, const float* in, float* dense) {
  for (int64_t k = 0; k < n; ++k) dense[index[k]] = in[k];
}

}  // namespace st::kernels
