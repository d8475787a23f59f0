// core/tensor.h — an n-d array: shape, dtype (f32, i32, u8), device, shared contiguous storage.
// Knows nothing of autograd (core/variable.h adds that). Copies share storage; clone() copies data.
// Devices: a cpu tensor's storage comes from the caching host allocator (core/allocator.h), a cuda
// tensor's from st::cuda::device_alloc (cuda/runtime.h, also caching). The element accessors say
// where the pointer may be used: f32()/i32()/u8() are host pointers and assert the tensor is on the
// cpu; cuda_f32()/cuda_i32()/cuda_u8() are device pointers for st::cuda kernels and assert it is on
// cuda. zeros/zero_/fill_/clone/copy_from/to_vector/item work on either device; to(device) and
// copy_from between devices are the host<->device copies.
// Tests: tests/core/test_cuda_tensor.cpp.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/check.h"

namespace st {

enum class DType : uint8_t { f32, i32, u8 };
enum class Device : uint8_t { cpu, cuda };

size_t dtype_size(DType t);
const char* dtype_name(DType t);    // "f32", "i32", "u8"
const char* device_name(Device d);  // "cpu", "cuda"

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "(64, 1, 28, 28)"

// Waits until the work queued on `device` has finished (a no-op on the cpu): for timing.
void device_synchronize(Device device);

class Storage {
 public:
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

class Tensor {
 public:
  Tensor() = default;
  // Uninitialized contents.
  explicit Tensor(Shape shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(Shape shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor full(Shape shape, float value, Device device = Device::cpu);
  static Tensor from_vector(Shape shape, const std::vector<float>& values);
  static Tensor from_vector(Shape shape, const std::vector<int32_t>& values);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? i + ndim() : i); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool same_storage(const Tensor& o) const { return storage_ == o.storage_; }

  // The data pointer on the tensor's own device (host or device memory): for copies that check the
  // device themselves. Element access goes through the typed accessors below.
  void* raw() const { return storage_ ? storage_->data() : nullptr; }
  // Host pointers (cpu tensors only).
  float* f32() const { check(DType::f32, Device::cpu); return static_cast<float*>(raw()); }
  int32_t* i32() const { check(DType::i32, Device::cpu); return static_cast<int32_t*>(raw()); }
  uint8_t* u8() const { check(DType::u8, Device::cpu); return static_cast<uint8_t*>(raw()); }
  // Device pointers for st::cuda kernels (cuda tensors only).
  float* cuda_f32() const { check(DType::f32, Device::cuda); return static_cast<float*>(raw()); }
  int32_t* cuda_i32() const { check(DType::i32, Device::cuda); return static_cast<int32_t*>(raw()); }
  uint8_t* cuda_u8() const { check(DType::u8, Device::cuda); return static_cast<uint8_t*>(raw()); }
  bool is_cuda() const { return device_ == Device::cuda; }

  // A view of the same storage with another shape of equal numel.
  Tensor reshape(Shape shape) const;
  // A view of the first n entries along dimension 0 (same storage), e.g. a short last batch.
  Tensor leading(int64_t n) const;
  Tensor clone() const;  // on the same device
  // This tensor's data on `device`: *this when it is there already, else a copy.
  Tensor to(Device device) const;
  // Same dtype and numel; either tensor may be on either device (the copy direction follows).
  void copy_from(const Tensor& src);
  void zero_();
  void fill_(float value);             // f32 only
  std::vector<float> to_vector() const;  // f32 only; downloads a cuda tensor
  float item() const;                    // the one f32 element; downloads a cuda tensor

  std::string str() const;  // "f32(64, 10)", "f32(64, 10) on cuda"

 private:
  void check(DType t, Device d) const {
    ST_ASSERT(dtype_ == t, "tensor is ", dtype_name(dtype_), ", accessed as ", dtype_name(t));
    ST_ASSERT(device_ == d, "tensor ", str(), " is on ", device_name(device_), ", accessed as a ",
              device_name(d), " pointer", d == Device::cpu ? " (download it with to(Device::cpu))" : "");
  }
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
};

}  // namespace st
