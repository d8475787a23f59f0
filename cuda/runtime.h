// cuda/runtime.h — the host side of the CUDA backend that core/ sees: is there a device, device
// memory through a caching allocator, copies, and the one stream every kernel runs on.
// Plain C++ (no CUDA types), so any layer may include it. Implemented by cuda/runtime.cu, built
// twice: by nvcc into st_cuda (a real GPU) and by g++ into st_cuda_emu (the CPU emulator, which
// has a device only when SPARSETRAIN_CUDA_EMULATION=1 or enable_emulation() was called).
// Every call that reaches CUDA is checked; a failure throws std::runtime_error.
// Tests: tests/cuda/test_runtime.cpp.
#pragma once
#include <cstddef>
#include <string>

namespace st::cuda {

struct DeviceInfo {
  bool available = false;
  std::string reason;  // why not, when !available
  std::string name;
  int cc_major = 0, cc_minor = 0;
  size_t total_memory = 0;  // bytes
  bool emulated = false;    // the CPU emulator, not a GPU
};
DeviceInfo device_info();

// Throws std::runtime_error "<what> asks for device \"cuda\", but <reason>" when there is none.
void require_device(const std::string& what);

// True in the emulated build (st_cuda_emu), whether or not emulation is switched on.
bool emulated();
// Emulated build: switches the emulated device on (or off); the real build ignores it.
void enable_emulation(bool on = true);

// Device memory, 256-byte aligned. Freed blocks go to per-size free lists and are handed out
// again, so after the first training step no cudaMalloc happens. device_free must be given the
// size the block was allocated with. device_alloc(0) returns nullptr. In the emulator's strict
// mode (SPARSETRAIN_EMU_STRICT=1, docs/cuda.md) nothing is cached: each block is an exact-size
// cudaMalloc between guard zones, and device_free returns it with cudaFree. device_free throws
// only for misuse (a pointer it did not hand out, a wrong size), never because the device has
// faulted: it runs in destructors.
void* device_alloc(size_t bytes);
void device_free(void* ptr, size_t bytes);

struct DeviceAllocatorStats {
  size_t device_mallocs = 0;  // blocks obtained with cudaMalloc
  size_t cached_reuses = 0;   // allocations served from the free lists
  size_t bytes_in_use = 0;    // handed out and not yet freed
  size_t bytes_cached = 0;    // held in free lists
  size_t peak_bytes = 0;      // most bytes ever obtained from cudaMalloc at once
};
DeviceAllocatorStats device_allocator_stats();
// Returns every cached block with cudaFree (after synchronizing).
void release_cache();

// Copies and fills on the backend's stream. Host-to-device copies return once the source may be
// reused; device-to-host copies return once the data has arrived (they synchronize the stream).
void copy_h2d(void* dst_device, const void* src_host, size_t bytes);
void copy_d2h(void* dst_host, const void* src_device, size_t bytes);
void copy_d2d(void* dst_device, const void* src_device, size_t bytes);
void memset_zero(void* dst_device, size_t bytes);

// Waits for everything queued on the stream.
void synchronize();
// The one stream (a cudaStream_t) that every kernel wrapper launches on.
void* stream();

}  // namespace st::cuda
