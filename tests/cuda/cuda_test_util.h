// tests/cuda/cuda_test_util.h — shared helpers for the CUDA suites: a device array that owns its
// memory (st::cuda::device_alloc) and moves data to and from std::vector. The suites run under
// the CPU emulator (SPARSETRAIN_CUDA_EMULATION=1, set by ctest) or on a GPU; data helpers
// (random_floats, check_close, bitwise_equal) come from tests/kernels/kernel_test_util.h.
#pragma once
#include <doctest/doctest.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "cuda/runtime.h"

namespace st::cuda::test {

template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n = 0) : n_(n), p_(static_cast<T*>(device_alloc(n * sizeof(T)))) {}
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host); }
  DeviceArray(DeviceArray&& o) noexcept : n_(std::exchange(o.n_, 0)), p_(std::exchange(o.p_, nullptr)) {}
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(n_, o.n_);
    std::swap(p_, o.p_);
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (p_) device_free(p_, n_ * sizeof(T));
  }

  T* get() const { return p_; }
  size_t size() const { return n_; }

  void upload(const std::vector<T>& host) {
    REQUIRE(host.size() == n_);
    if (n_) copy_h2d(p_, host.data(), n_ * sizeof(T));
  }
  // Synchronizes the stream (copy_d2h waits for the data).
  std::vector<T> download() const {
    std::vector<T> host(n_);
    if (n_) copy_d2h(host.data(), p_, n_ * sizeof(T));
    return host;
  }

 private:
  size_t n_;
  T* p_;
};

template <class T>
DeviceArray<T> to_device(const std::vector<T>& host) {
  return DeviceArray<T>(host);
}

}  // namespace st::cuda::test
