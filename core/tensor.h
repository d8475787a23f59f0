// core/tensor.h — an n-d array: shape, dtype (f32, i32, u8), device, shared contiguous storage.
// Knows nothing of autograd (core/variable.h adds that). Copies share storage; clone() copies data.
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
  static Tensor full(Shape shape, float value);
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

  void* raw() const { return storage_ ? storage_->data() : nullptr; }
  float* f32() const { check_dtype(DType::f32); return static_cast<float*>(raw()); }
  int32_t* i32() const { check_dtype(DType::i32); return static_cast<int32_t*>(raw()); }
  uint8_t* u8() const { check_dtype(DType::u8); return static_cast<uint8_t*>(raw()); }

  // A view of the same storage with another shape of equal numel.
  Tensor reshape(Shape shape) const;
  // A view of the first n entries along dimension 0 (same storage), e.g. a short last batch.
  Tensor leading(int64_t n) const;
  Tensor clone() const;
  void copy_from(const Tensor& src);  // same dtype and numel
  void zero_();
  void fill_(float value);             // f32 only
  std::vector<float> to_vector() const;  // f32 only, host

  std::string str() const;  // "f32(64, 10)"

 private:
  void check_dtype(DType t) const {
    ST_ASSERT(dtype_ == t, "tensor is ", dtype_name(dtype_), ", accessed as ", dtype_name(t));
  }
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
};

}  // namespace st
