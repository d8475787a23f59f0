#include "core/csr_weight.h"

#include <cstring>

namespace st {

std::shared_ptr<CsrWeight> make_csr_weight(const Tensor& dense, const uint8_t* mask) {
  ST_CHECK(dense.ndim() >= 2 && dense.dtype() == DType::f32, "csr weight: expected an f32 weight, got ",
           dense.str());
  auto c = std::make_shared<CsrWeight>();
  c->shape = dense.shape();
  c->rows = static_cast<int>(dense.dim(0));
  c->cols = static_cast<int>(dense.numel() / dense.dim(0));
  if (mask) {
    c->w = kernels::csr_from_dense(dense.f32(), mask, c->rows, c->cols);
  } else {
    // Every entry kept, zeros included (csr_from_dense without a mask would drop exact zeros).
    std::vector<uint8_t> ones(static_cast<size_t>(dense.numel()), 1);
    c->w = kernels::csr_from_dense(dense.f32(), ones.data(), c->rows, c->cols);
  }
  const int64_t nnz = c->w.nnz();
  c->index.resize(static_cast<size_t>(nnz));
  for (int r = 0; r < c->rows; ++r)
    for (int32_t k = c->w.row_ptr[r]; k < c->w.row_ptr[r + 1]; ++k)
      c->index[k] = int64_t(r) * c->cols + c->w.col_idx[k];
  c->wt = kernels::csr_transpose(c->w, c->perm);
  c->values = Variable(Tensor({nnz}), /*requires_grad=*/true);
  sync_csr_copies(*c);
  return c;
}

void refresh_csr_values(CsrWeight& c, const float* dense) {
  float* v = c.w.values.data();
  const int64_t* idx = c.index.data();
  for (int64_t k = 0, n = c.nnz(); k < n; ++k) v[k] = dense[idx[k]];
  sync_csr_copies(c);
}

void sync_csr_copies(CsrWeight& c) {
  const int64_t n = c.nnz();
  if (n) std::memcpy(c.values.value().f32(), c.w.values.data(), sizeof(float) * n);
  kernels::csr_transpose_values(c.w, c.perm, c.wt);
}

}  // namespace st
