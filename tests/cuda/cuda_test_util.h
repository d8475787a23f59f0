// tests/cuda/cuda_test_util.h — shared helpers for the CUDA suites: a device array that owns its
// memory (st::cuda::device_alloc, optionally misaligned) and moves data to and from std::vector,
// and a self-freeing device CSR. The suites run under the CPU emulator (SPARSETRAIN_CUDA_EMULATION=1,
// set by ctest) or on a GPU; data helpers (random_floats, check_close, bitwise_equal, make_case)
// come from tests/kernels/kernel_test_util.h.
#pragma once
#include <doctest/doctest.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "cuda/runtime.h"
#include "cuda/sparse.h"
#include "kernels/csr.h"

namespace st::cuda::test {

template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n = 0, size_t offset = 0)
      : n_(n), offset_(offset), base_(static_cast<T*>(device_alloc((n + offset) * sizeof(T)))) {}
  // `offset` elements past the start of the allocation (256-byte aligned): offset 1 rules out
  // vector (float4) loads, so kernels take their scalar path.
  explicit DeviceArray(const std::vector<T>& host, size_t offset = 0)
      : DeviceArray(host.size(), offset) {
    upload(host);
  }
  DeviceArray(DeviceArray&& o) noexcept
      : n_(std::exchange(o.n_, 0)), offset_(std::exchange(o.offset_, 0)),
        base_(std::exchange(o.base_, nullptr)) {}
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(n_, o.n_);
    std::swap(offset_, o.offset_);
    std::swap(base_, o.base_);
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (base_) device_free(base_, (n_ + offset_) * sizeof(T));
  }

  T* get() const { return base_ ? base_ + offset_ : nullptr; }
  size_t size() const { return n_; }

  void upload(const std::vector<T>& host) {
    REQUIRE(host.size() == n_);
    if (n_) copy_h2d(get(), host.data(), n_ * sizeof(T));
  }
  // Synchronizes the stream (copy_d2h waits for the data).
  std::vector<T> download() const {
    std::vector<T> host(n_);
    if (n_) copy_d2h(host.data(), get(), n_ * sizeof(T));
    return host;
  }

 private:
  size_t n_, offset_;
  T* base_;
};

template <class T>
DeviceArray<T> to_device(const std::vector<T>& host) {
  return DeviceArray<T>(host);
}

// A DeviceCsr (cuda/sparse.h) that frees itself.
struct DeviceCsrHolder {
  DeviceCsr d;
  explicit DeviceCsrHolder(const kernels::CsrMatrix& a) : d(device_csr_upload(a)) {}
  DeviceCsrHolder(const DeviceCsrHolder&) = delete;
  DeviceCsrHolder& operator=(const DeviceCsrHolder&) = delete;
  ~DeviceCsrHolder() { device_csr_free(d); }
};

}  // namespace st::cuda::test
