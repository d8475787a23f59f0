#include "core/csr_weight.h"

#include <cstring>

#include "cuda/runtime.h"

namespace st {

namespace {

void free_mirror(CsrWeight& c) {
  cuda::device_csr_free(c.dw);
  cuda::device_csr_free(c.dwt);
  const size_t n = static_cast<size_t>(c.nnz());
  cuda::device_free(c.dperm, n * sizeof(int32_t));
  cuda::device_free(c.dindex, n * sizeof(int64_t));
  c.dperm = nullptr;
  c.dindex = nullptr;
}

// Uploads w, wt (with their current host values), perm and index; `values` goes to the device.
void upload_mirror(CsrWeight& c) {
  c.dw = cuda::device_csr_upload(c.w);
  c.dwt = cuda::device_csr_upload(c.wt);
  c.dperm = cuda::device_upload_i32(c.perm.data(), c.nnz());
  c.dindex = cuda::device_upload_i64(c.index.data(), c.nnz());
  c.values = Variable(c.values.value().to(Device::cuda), /*requires_grad=*/true);
  c.device = Device::cuda;
}

}  // namespace

CsrWeight::~CsrWeight() {
  if (device == Device::cuda) free_mirror(*this);
}

std::shared_ptr<CsrWeight> make_csr_weight(const Tensor& dense_any, const uint8_t* mask) {
  ST_CHECK(dense_any.ndim() >= 2 && dense_any.dtype() == DType::f32,
           "csr weight: expected an f32 weight, got ", dense_any.str());
  const Tensor dense = dense_any.to(Device::cpu);
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
  if (dense_any.is_cuda()) upload_mirror(*c);
  return c;
}

void refresh_csr_values(CsrWeight& c, const float* dense) {
  ST_ASSERT(c.device == Device::cpu, "refresh_csr_values from a host array on a cuda CSR weight");
  ST_ASSERT(!c.dense_stale, "refresh_csr_values from a stale dense weight (sync_dense_weight first)");
  kernels::gather_at(c.nnz(), c.index.data(), dense, c.w.values.data());
  sync_csr_copies(c);
}

void refresh_csr_values(CsrWeight& c, const Tensor& dense) {
  ST_ASSERT(dense.device() == c.device && dense.numel() == int64_t(c.rows) * c.cols,
            "refresh_csr_values: dense ", dense.str(), " for a ", device_name(c.device), " CSR weight");
  if (c.device == Device::cpu) return refresh_csr_values(c, dense.f32());
  cuda::csr_gather_values(c.nnz(), c.dindex, dense.cuda_f32(), c.dw.values);
  sync_csr_copies(c);
}

void sync_csr_copies(CsrWeight& c) {
  const int64_t n = c.nnz();
  if (c.device == Device::cuda) {
    cuda::csr_transpose_values(c.dw, c.dperm, c.dwt);
    if (n) cuda::copy_d2d(c.values.value().cuda_f32(), c.dw.values, sizeof(float) * n);
    return;
  }
  if (n) std::memcpy(c.values.value().f32(), c.w.values.data(), sizeof(float) * n);
  kernels::csr_transpose_values(c.w, c.perm, c.wt);
}

void sync_dense_weight(Parameter& p) {
  if (!p.csr || !p.csr->dense_stale) return;
  CsrWeight& c = *p.csr;
  ST_ASSERT(c.device == Device::cpu && p.var.value().device() == Device::cpu,
            "sync_dense_weight: a stale dense weight on cuda");
  kernels::scatter_at(c.nnz(), c.index.data(), c.w.values.data(), p.var.value().f32());
  c.dense_stale = false;
}

void sync_dense_weights(const std::vector<Parameter*>& params) {
  for (Parameter* p : params) sync_dense_weight(*p);
}

void download_csr_values(CsrWeight& c) {
  if (c.device != Device::cuda) return;
  const int64_t n = c.nnz();
  if (n) cuda::copy_d2h(c.w.values.data(), c.dw.values, sizeof(float) * n);
  kernels::csr_transpose_values(c.w, c.perm, c.wt);
}

void move_csr_weight(CsrWeight& c, Device device) {
  if (device == c.device) return;
  if (device == Device::cuda) {
    upload_mirror(c);
    return;
  }
  download_csr_values(c);
  free_mirror(c);
  c.dw = cuda::DeviceCsr{};
  c.dwt = cuda::DeviceCsr{};
  c.device = Device::cpu;
  c.values = Variable(Tensor({c.nnz()}), /*requires_grad=*/true);
  sync_csr_copies(c);
}

}  // namespace st
