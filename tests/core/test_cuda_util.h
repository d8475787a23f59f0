// tests/core/test_cuda_util.h — helpers for the suites that run core/, models/ and experiment/ on
// Device::cuda: in the ordinary test run that device is the CPU emulator (ctest sets
// SPARSETRAIN_CUDA_EMULATION=1; no_cuda_device() also switches it on when a suite runs by hand),
// on a GPU machine it is the GPU. Comparisons are against the same computation on Device::cpu.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "core/tensor.h"
#include "cuda/runtime.h"

namespace st::test {

// True when Device::cuda cannot run here: a GPU build on a machine without a usable GPU (the
// emulated build switches its device on and always has one). Asked once, when the test cases
// register, through `TEST_CASE("..." * doctest::skip(test::no_cuda_device()))`, so doctest counts
// the cases as skipped, and the reason is printed once.
inline bool no_cuda_device() {
  static const bool missing = [] {
    if (cuda::emulated() && !cuda::device_info().available) cuda::enable_emulation(true);
    const cuda::DeviceInfo info = cuda::device_info();
    if (!info.available)
      std::fprintf(stderr, "skipping the cuda test cases: %s\n", info.reason.c_str());
    return !info.available;
  }();
  return missing;
}

// |a − b| <= tol · max(1, |b|) elementwise; a and b on any device.
inline void check_close_any(const Tensor& a, const Tensor& b, double tol = 1e-4) {
  REQUIRE(a.defined());
  REQUIRE(b.defined());
  REQUIRE(a.shape() == b.shape());
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  double worst = 0;
  int64_t at = -1;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = std::abs(double(x[i]) - y[i]) / std::max(1.0, std::abs(double(y[i])));
    if (!(e <= worst)) {
      worst = e;
      at = static_cast<int64_t>(i);
    }
  }
  CAPTURE(at);
  CHECK(worst <= tol);
}

}  // namespace st::test
