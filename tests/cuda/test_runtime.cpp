// tests/cuda/test_runtime.cpp — cuda/runtime.h: device discovery (and, in the emulated build,
// what a build without the CUDA backend says), the caching allocator's reuse and its checks,
// copies and fills round-tripping through device memory at odd sizes, the stream.
#include "cuda/runtime.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

// test_cuda_gpu (ST_CUDA_GPU_TESTS) links the nvcc-built backend, which has no emulator.
#if !defined(ST_CUDA_GPU_TESTS)
#include "cuda/emu/emu.h"  // st::emu::stats(): the emulator counts its cudaMalloc calls
#endif

namespace cuda = st::cuda;

TEST_CASE("cuda runtime: device_info describes the device") {
  cuda::DeviceInfo info = cuda::device_info();
  REQUIRE(info.available);
  CHECK(info.reason.empty());
  CHECK(!info.name.empty());
  CHECK(info.cc_major >= 7);
  CHECK(info.total_memory > 0);
  CHECK(info.emulated == cuda::emulated());
  CHECK_NOTHROW(cuda::require_device("config test"));
  if (info.emulated) CHECK(info.name == "sparsetrain CPU emulator");
}

TEST_CASE("cuda runtime: without emulation the emulated build has no device, and says why" *
          doctest::skip(!cuda::emulated())) {
  cuda::enable_emulation(false);
  cuda::DeviceInfo info = cuda::device_info();
  std::string err;
  try {
    cuda::require_device("configs/lenet5.json");
  } catch (const std::runtime_error& e) {
    err = e.what();
  }
  cuda::enable_emulation(true);  // before any CHECK can end the test
  CHECK(!info.available);
  CHECK(info.emulated);
  CHECK(info.reason.find("built without the CUDA backend") != std::string::npos);
  CHECK(info.reason.find("SPARSETRAIN_CUDA_EMULATION=1") != std::string::npos);
  CHECK(err == "configs/lenet5.json asks for device \"cuda\", but " + info.reason);
  CHECK(cuda::device_info().available);
}

TEST_CASE("cuda runtime: freed blocks are reused without a new cudaMalloc") {
#if !defined(ST_CUDA_GPU_TESTS)
  st::emu::ScopedStrict caching(false);  // strict mode bypasses the cache (test_emu_checks.cpp)
#endif
  cuda::release_cache();
  cuda::DeviceAllocatorStats s0 = cuda::device_allocator_stats();
  void* a = cuda::device_alloc(1000);
  void* b = cuda::device_alloc(5000);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(reinterpret_cast<uintptr_t>(a) % 256 == 0);
  cuda::DeviceAllocatorStats s1 = cuda::device_allocator_stats();
  CHECK(s1.device_mallocs == s0.device_mallocs + 2);
  CHECK(s1.bytes_in_use == s0.bytes_in_use + 1024 + 5120);
#if !defined(ST_CUDA_GPU_TESTS)
  size_t emu_mallocs = st::emu::stats().mallocs;
#endif
  // A training step: the same sizes freed and allocated again, many times.
  for (int step = 0; step < 10; ++step) {
    cuda::device_free(a, 1000);
    cuda::device_free(b, 5000);
    void* a2 = cuda::device_alloc(1001);  // rounds to the same 1024 bytes
    void* b2 = cuda::device_alloc(5000);
    CHECK(a2 == a);
    CHECK(b2 == b);
  }
  cuda::DeviceAllocatorStats s2 = cuda::device_allocator_stats();
  CHECK(s2.device_mallocs == s1.device_mallocs);
  CHECK(s2.cached_reuses == s1.cached_reuses + 20);
  CHECK(s2.bytes_cached == s0.bytes_cached);
#if !defined(ST_CUDA_GPU_TESTS)
  CHECK(st::emu::stats().mallocs == emu_mallocs);
#endif
  CHECK(cuda::device_alloc(0) == nullptr);
  cuda::device_free(nullptr, 0);

  cuda::device_free(a, 1001);
  cuda::device_free(b, 5000);
  CHECK(cuda::device_allocator_stats().bytes_cached >= 1024 + 5120);
  cuda::release_cache();
  cuda::DeviceAllocatorStats s3 = cuda::device_allocator_stats();
  CHECK(s3.bytes_cached == 0);
  CHECK(s3.bytes_in_use == s0.bytes_in_use);
  CHECK(s3.peak_bytes >= 1024 + 5120);
  void* c = cuda::device_alloc(1000);  // the cache is empty: a new block
  CHECK(cuda::device_allocator_stats().device_mallocs == s3.device_mallocs + 1);
  cuda::device_free(c, 1000);
}

TEST_CASE("cuda runtime: device_free rejects double frees and wrong sizes") {
  void* p = cuda::device_alloc(512);
  CHECK_THROWS_AS(cuda::device_free(p, 4096), std::logic_error);
  cuda::device_free(p, 512);
  CHECK_THROWS_AS(cuda::device_free(p, 512), std::logic_error);
  int host = 0;
  CHECK_THROWS_AS(cuda::device_free(&host, 4), std::logic_error);
}

TEST_CASE("cuda runtime: copies and fills round-trip at odd sizes") {
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{3}, size_t{257}, size_t{100003}}) {
    std::vector<unsigned char> host(bytes), back(bytes, 0xAB), twice(bytes, 0xCD);
    for (size_t i = 0; i < bytes; ++i) host[i] = static_cast<unsigned char>(i * 31 + 7);
    void* d1 = cuda::device_alloc(bytes);
    void* d2 = cuda::device_alloc(bytes);
    cuda::copy_h2d(d1, host.data(), bytes);
    cuda::copy_d2d(d2, d1, bytes);
    cuda::copy_d2h(back.data(), d2, bytes);
    CHECK(back == host);
    cuda::memset_zero(d2, bytes);
    cuda::copy_d2h(twice.data(), d2, bytes);
    CHECK(twice == std::vector<unsigned char>(bytes, 0));
    cuda::synchronize();
    cuda::device_free(d1, bytes);
    cuda::device_free(d2, bytes);
  }
  // Copies into the middle of a block (tensor views) stay inside it.
  std::vector<float> x(100, 2.0f), y(10, 0.0f);
  auto* d = static_cast<float*>(cuda::device_alloc(100 * sizeof(float)));
  cuda::memset_zero(d, 100 * sizeof(float));
  cuda::copy_h2d(d + 45, x.data(), 10 * sizeof(float));
  cuda::copy_d2h(y.data(), d + 40, 10 * sizeof(float));
  CHECK(y == std::vector<float>{0, 0, 0, 0, 0, 2, 2, 2, 2, 2});
  cuda::device_free(d, 100 * sizeof(float));
}

TEST_CASE("cuda runtime: one stream for everything") {
  void* s = cuda::stream();
  CHECK(s != nullptr);
  CHECK(cuda::stream() == s);
  CHECK_NOTHROW(cuda::synchronize());
}

#if !defined(ST_CUDA_GPU_TESTS)
TEST_CASE("cuda runtime: a failing CUDA call throws with the call, place and error" *
          doctest::skip(!cuda::emulated())) {
  int host[4] = {1, 2, 3, 4};
  std::string err;
  try {
    cuda::copy_d2h(host, host + 1, sizeof(int));  // the "device" source is host memory
  } catch (const std::runtime_error& e) {
    err = e.what();
  }
  CHECK(err.find("CUDA call cudaMemcpyAsync(") == 0);
  CHECK(err.find("runtime.cu:") != std::string::npos);
  CHECK(err.find(": invalid argument") != std::string::npos);
  CHECK(cudaGetLastError() == cudaSuccess);  // cleared, so the next launch check is not blamed
}
#endif
