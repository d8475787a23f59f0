#include "core/tensor.h"

#include <cstring>
#include <sstream>

#include "core/allocator.h"
#include "cuda/dense.h"
#include "cuda/runtime.h"

namespace st {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::i32: return 4;
    case DType::u8: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::i32: return "i32";
    case DType::u8: return "u8";
  }
  return "?";
}

const char* device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    ST_ASSERT(d >= 0, "negative dimension in ", shape_str(s));
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '(';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ')';
  return os.str();
}

void device_synchronize(Device device) {
  if (device == Device::cuda) cuda::synchronize();
}

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  data_ = device == Device::cuda ? cuda::device_alloc(bytes) : host_alloc(bytes);
}

Storage::~Storage() {
  if (device_ == Device::cuda)
    cuda::device_free(data_, bytes_);
  else
    host_free(data_, bytes_);
}

namespace {

// Copies `bytes` between two buffers, each on its own device.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0 || dst == src) return;
  if (dst_device == Device::cpu && src_device == Device::cpu)
    std::memcpy(dst, src, bytes);
  else if (dst_device == Device::cuda && src_device == Device::cpu)
    cuda::copy_h2d(dst, src, bytes);
  else if (dst_device == Device::cpu)
    cuda::copy_d2h(dst, src, bytes);
  else
    cuda::copy_d2d(dst, src, bytes);
}

}  // namespace

Tensor::Tensor(Shape shape, DType dtype, Device device)
    : shape_(std::move(shape)), dtype_(dtype), device_(device) {
  numel_ = shape_numel(shape_);
  storage_ = std::make_shared<Storage>(nbytes(), device);
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
  Tensor t(std::move(shape), dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::full(Shape shape, float value, Device device) {
  Tensor t(std::move(shape), DType::f32, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(Shape shape, const std::vector<float>& values) {
  Tensor t(std::move(shape));
  ST_ASSERT(static_cast<int64_t>(values.size()) == t.numel(), "from_vector: ", values.size(),
            " values for shape ", shape_str(t.shape()));
  std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

Tensor Tensor::from_vector(Shape shape, const std::vector<int32_t>& values) {
  Tensor t(std::move(shape), DType::i32);
  ST_ASSERT(static_cast<int64_t>(values.size()) == t.numel(), "from_vector: ", values.size(),
            " values for shape ", shape_str(t.shape()));
  std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  int64_t n = shape_numel(shape);
  ST_ASSERT(n == numel_, "reshape ", shape_str(shape_), " -> ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::leading(int64_t n) const {
  ST_ASSERT(ndim() >= 1 && n >= 0 && n <= shape_[0], "leading(", n, ") of ", str());
  Tensor t = *this;
  t.shape_[0] = n;
  t.numel_ = shape_numel(t.shape_);
  return t;
}

Tensor Tensor::clone() const {
  if (!defined()) return Tensor();
  Tensor t(shape_, dtype_, device_);
  copy_bytes(t.raw(), device_, raw(), device_, nbytes());
  return t;
}

Tensor Tensor::to(Device device) const {
  if (!defined() || device == device_) return *this;
  Tensor t(shape_, dtype_, device);
  copy_bytes(t.raw(), device, raw(), device_, nbytes());
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  ST_ASSERT(src.dtype_ == dtype_ && src.numel_ == numel_, "copy_from ", src.str(), " into ", str());
  copy_bytes(raw(), device_, src.raw(), src.device_, nbytes());
}

void Tensor::zero_() {
  if (!numel_) return;
  if (device_ == Device::cuda)
    cuda::memset_zero(raw(), nbytes());
  else
    std::memset(raw(), 0, nbytes());
}

void Tensor::fill_(float value) {
  if (device_ == Device::cuda) {
    cuda::fill(numel_, value, cuda_f32());
    return;
  }
  float* p = f32();
  for (int64_t i = 0; i < numel_; ++i) p[i] = value;
}

std::vector<float> Tensor::to_vector() const {
  ST_ASSERT(dtype_ == DType::f32, "to_vector of ", str());
  std::vector<float> out(static_cast<size_t>(numel_));
  copy_bytes(out.data(), Device::cpu, raw(), device_, nbytes());
  return out;
}

float Tensor::item() const {
  ST_ASSERT(dtype_ == DType::f32 && numel_ == 1, "item() of ", str(), ": expected one f32 element");
  float v = 0;
  copy_bytes(&v, Device::cpu, raw(), device_, sizeof v);
  return v;
}

std::string Tensor::str() const {
  std::string s = std::string(dtype_name(dtype_)) + shape_str(shape_);
  return device_ == Device::cpu ? s : s + " on " + device_name(device_);
}

}  // namespace st
