#include "core/csr_weight.h"

#include <cstring>

#include "cuda/runtime.h"

namespace st {

namespace {

void free_mirror(CsrWeight& c) {
  cuda::device_csr_free(c.dw);
  cuda::device_csr_free(c.dwt);
  cuda::device_free(c.dperm, static_cast<size_t>(c.nnz()) * sizeof(int32_t));
  c.dperm = nullptr;
}

// Uploads w, wt (with their current host values) and perm; `values` goes to the device.
void upload_mirror(CsrWeight& c) {
  c.dw = cuda::device_csr_upload(c.w);
  c.dwt = cuda::device_csr_upload(transposed(c));  // current values, after steps on the cpu
  c.dperm = cuda::device_upload_i32(c.perm.data(), c.nnz());
  c.values = Variable(c.values.value().to(Device::cuda), /*requires_grad=*/true);
  c.device = Device::cuda;
}

int64_t csr_bytes(const kernels::CsrMatrix& a) {
  return static_cast<int64_t>(a.row_ptr.capacity() * 4 + a.col_idx.capacity() * 4 +
                              a.values.capacity() * 4 + a.row_order.capacity() * 4);
}

}  // namespace

CsrWeight::~CsrWeight() {
  if (device == Device::cuda) free_mirror(*this);
}

int64_t CsrWeight::bytes() const {
  int64_t b = csr_bytes(w) + csr_bytes(wt) + static_cast<int64_t>(perm.capacity() * 4);
  if (values.defined()) {
    b += static_cast<int64_t>(values.value().nbytes());
    if (values.has_grad()) b += static_cast<int64_t>(values.grad().nbytes());
  }
  if (device == Device::cuda) b += 2 * (csr_bytes(w) - static_cast<int64_t>(w.row_order.capacity() * 4)) + nnz() * 4;
  return b;
}

std::shared_ptr<CsrWeight> make_csr_weight(kernels::CsrMatrix w, const Shape& shape, Device device) {
  ST_CHECK(shape.size() >= 2, "csr weight: expected a weight shape of 2 or more dimensions, got ", shape_str(shape));
  auto c = std::make_shared<CsrWeight>();
  c->shape = shape;
  c->rows = static_cast<int>(shape[0]);
  c->cols = static_cast<int>(shape_numel(shape) / shape[0]);
  ST_CHECK(w.rows == c->rows && w.cols == c->cols && static_cast<int64_t>(w.row_ptr.size()) == c->rows + 1 &&
               static_cast<int64_t>(w.values.size()) == w.nnz(),
           "csr weight: a (", w.rows, ", ", w.cols, ") CSR matrix for a weight of shape ", shape_str(shape));
  c->w = std::move(w);
  if (c->w.row_order.size() != static_cast<size_t>(c->rows)) kernels::csr_compute_row_order(c->w);
  c->wt = kernels::csr_transpose(c->w, c->perm);
  c->values = Variable(Tensor({c->nnz()}), /*requires_grad=*/true);
  sync_csr_copies(*c);
  if (device == Device::cuda) upload_mirror(*c);
  return c;
}

std::shared_ptr<CsrWeight> make_csr_weight(const Tensor& dense_any, const uint8_t* mask) {
  ST_CHECK(dense_any.ndim() >= 2 && dense_any.dtype() == DType::f32,
           "csr weight: expected an f32 weight, got ", dense_any.str());
  const Tensor dense = dense_any.to(Device::cpu);
  const int rows = static_cast<int>(dense.dim(0));
  const int cols = static_cast<int>(dense.numel() / dense.dim(0));
  kernels::CsrMatrix w;
  if (mask) {
    w = kernels::csr_from_dense(dense.f32(), mask, rows, cols);
  } else {
    // Every entry kept, zeros included (csr_from_dense without a mask would drop exact zeros).
    std::vector<uint8_t> ones(static_cast<size_t>(dense.numel()), 1);
    w = kernels::csr_from_dense(dense.f32(), ones.data(), rows, cols);
  }
  return make_csr_weight(std::move(w), dense.shape(), dense_any.device());
}

void to_sparse(Parameter& p) {
  if (p.sparse()) return;
  ST_ASSERT(p.dense(), "to_sparse: ", p.name, " has no weight");
  p.csr = make_csr_weight(p.var.value(), p.mask_data());
  if (p.var.has_grad()) {  // a gradient computed densely (a step the pruner acted in) goes along
    const Tensor g = p.var.grad().to(Device::cpu);
    Tensor at(Shape{p.csr->nnz()});
    gather_at_pattern(p.csr->w, g.f32(), at.f32());
    p.csr->values.grad() = at.to(p.csr->device);
  }
  p.var.value() = Tensor();
  p.var.zero_grad();
  p.mask = Tensor();
}

Tensor dense_value(const Parameter& p) {
  if (!p.sparse()) return p.var.value();
  CsrWeight& c = *p.csr;
  download_csr_values(c);
  Tensor d = Tensor::zeros(p.shape);
  kernels::csr_to_dense(c.w, d.f32());
  return d.to(c.device);
}

void to_dense(Parameter& p) {
  if (!p.sparse()) return;
  const CsrWeight& c = *p.csr;
  Tensor value = dense_value(p);
  Tensor mask = Tensor::zeros(p.shape, DType::u8);
  uint8_t* m = mask.u8();
  for (int r = 0; r < c.rows; ++r)
    for (int32_t k = c.w.row_ptr[r]; k < c.w.row_ptr[r + 1]; ++k) m[int64_t(r) * c.cols + c.w.col_idx[k]] = 1;
  p.var.value() = std::move(value);
  p.var.zero_grad();
  if (c.values.has_grad()) {  // the gradient at the nonzeros goes along, zeros elsewhere
    const Tensor g = c.values.grad().to(Device::cpu);
    Tensor dense = Tensor::zeros(p.shape);
    scatter_at_pattern(c.w, g.f32(), dense.f32());
    p.var.grad() = dense.to(c.device);
  }
  p.mask = std::move(mask);
  p.csr.reset();
}

void sync_csr_copies(CsrWeight& c) {
  const int64_t n = c.nnz();
  if (c.device == Device::cuda) {
    cuda::csr_transpose_values(c.dw, c.dperm, c.dwt);
    if (n) cuda::copy_d2d(c.values.value().cuda_f32(), c.dw.values, sizeof(float) * n);
    return;
  }
  if (n) std::memcpy(c.values.value().f32(), c.w.values.data(), sizeof(float) * n);
  c.wt_current = false;
}

const kernels::CsrMatrix& transposed(CsrWeight& c) {
  if (!c.wt_current) {
    kernels::csr_transpose_values(c.w, c.perm, c.wt);
    c.wt_current = true;
  }
  return c.wt;
}

void download_csr_values(CsrWeight& c) {
  if (c.device != Device::cuda) return;
  const int64_t n = c.nnz();
  if (n) cuda::copy_d2h(c.w.values.data(), c.dw.values, sizeof(float) * n);
  kernels::csr_transpose_values(c.w, c.perm, c.wt);
  c.wt_current = true;
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

void gather_at_pattern(const kernels::CsrMatrix& a, const float* dense, float* out) {
  for (int r = 0; r < a.rows; ++r) {
    const float* row = dense + int64_t(r) * a.cols;
    for (int32_t k = a.row_ptr[r]; k < a.row_ptr[r + 1]; ++k) out[k] = row[a.col_idx[k]];
  }
}

void scatter_at_pattern(const kernels::CsrMatrix& a, const float* in, float* dense) {
  for (int r = 0; r < a.rows; ++r) {
    float* row = dense + int64_t(r) * a.cols;
    for (int32_t k = a.row_ptr[r]; k < a.row_ptr[r + 1]; ++k) row[a.col_idx[k]] = in[k];
  }
}

void carry_by_position(const kernels::CsrMatrix& from, const float* in, const kernels::CsrMatrix& to, float* out) {
  ST_ASSERT(from.rows == to.rows && from.cols == to.cols, "carry_by_position: shapes differ");
  for (int r = 0; r < to.rows; ++r) {
    int32_t i = from.row_ptr[r];
    const int32_t ie = from.row_ptr[r + 1];
    for (int32_t k = to.row_ptr[r]; k < to.row_ptr[r + 1]; ++k) {
      while (i < ie && from.col_idx[i] < to.col_idx[k]) ++i;
      out[k] = i < ie && from.col_idx[i] == to.col_idx[k] ? in[i] : 0.f;
    }
  }
}

}  // namespace st

namespace st {

int64_t Parameter::kept() const {
  if (csr) return csr->nnz();
  if (!mask.defined()) return numel();
  int64_t n = 0;
  const uint8_t* m = mask.u8();
  for (int64_t i = 0, e = mask.numel(); i < e; ++i) n += m[i] != 0;
  return n;
}

int64_t Parameter::bytes() const {
  if (csr) return csr->bytes();
  int64_t b = 0;
  if (var.value().defined()) b += static_cast<int64_t>(var.value().nbytes());
  if (var.has_grad()) b += static_cast<int64_t>(var.grad().nbytes());
  if (mask.defined()) b += static_cast<int64_t>(mask.nbytes());
  return b;
}

}  // namespace st
