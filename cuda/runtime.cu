// cuda/runtime.cu — device discovery, the caching device allocator, copies and the backend's
// stream (interface and contracts in cuda/runtime.h). Built by nvcc into st_cuda and, through
// cuda/emu/runtime_emu.cpp, by g++ into st_cuda_emu, where "the device" is the CPU emulator.
// Allocator: blocks are rounded to 256 bytes and kept in per-size free lists, like the host
// allocator (core/allocator.cpp): training allocates the same sizes every step, so from the
// second step on no cudaMalloc (which synchronizes the device) happens. Reuse needs no event:
// every kernel and copy runs on the one stream, so work on a reused block is ordered after the
// previous owner's. The emulator's strict mode turns the caching off (bypass_cache below).
// Tests: tests/cuda/test_runtime.cpp, tests/cuda/test_emu_checks.cpp.
#include "cuda/compat.h"

#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda/runtime.h"

namespace st::cuda {
namespace {

constexpr size_t kAlign = 256;

size_t rounded(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

#if defined(ST_CUDA_EMULATION)
constexpr const char* kNoBackend =
    "this sparsetrain was built without the CUDA backend (nvcc was not found at configure time, "
    "or SPARSETRAIN_CUDA was OFF); SPARSETRAIN_CUDA_EMULATION=1 runs the CUDA code paths in the "
    "CPU emulator, slowly, for testing";
#endif

DeviceInfo query_device() {
  DeviceInfo info;
  info.emulated = emulated();
  int count = 0;  // left unwritten when the call fails
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // not a sticky error; do not leave it for the next check
#if defined(ST_CUDA_EMULATION)
    info.reason = kNoBackend;
#else
    info.reason = std::string("no CUDA device is visible (") + cudaGetErrorString(err) + ")";
#endif
    return info;
  }
  if (count == 0) {
    info.reason = "no CUDA device found";
    return info;
  }
  cudaDeviceProp prop;
  ST_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  info.available = true;
  info.name = prop.name;
  info.cc_major = prop.major;
  info.cc_minor = prop.minor;
  info.total_memory = prop.totalGlobalMem;
  return info;
}

struct Block {
  size_t size;  // rounded
  bool cached;  // goes to a free list when freed (false: cudaFree at once)
};

struct Allocator {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_lists;
  std::unordered_map<void*, Block> in_use;  // catches double frees and wrong sizes
  DeviceAllocatorStats stats;
  size_t obtained = 0;  // bytes currently obtained from cudaMalloc
};

Allocator& allocator() {
  static Allocator* a = new Allocator();  // leaked: tensors may be freed during static destruction
  return *a;
}

// Frees every cached block; the caller holds the lock.
void release_locked(Allocator& a) {
  if (a.stats.bytes_cached == 0) return;
  ST_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream())));
  for (auto& [size, list] : a.free_lists) {
    for (void* p : list) {
      ST_CUDA_CHECK(cudaFree(p));
      a.obtained -= size;
    }
    list.clear();
  }
  a.stats.bytes_cached = 0;
}

}  // namespace

bool emulated() {
#if defined(ST_CUDA_EMULATION)
  return true;
#else
  return false;
#endif
}

void enable_emulation(bool on) {
#if defined(ST_CUDA_EMULATION)
  st::emu::set_enabled(on);
#else
  (void)on;
#endif
}

DeviceInfo device_info() {
#if defined(ST_CUDA_EMULATION)
  return query_device();  // emulation can be switched on and off, so ask every time
#else
  // A GPU does not come and go during a run, and cudaGetDeviceProperties is slow.
  static std::mutex mu;
  static DeviceInfo cached;
  static bool have = false;
  std::lock_guard<std::mutex> lock(mu);
  if (!have) {
    cached = query_device();
    have = true;
  }
  return cached;
#endif
}

void require_device(const std::string& what) {
  DeviceInfo info = device_info();
  if (!info.available)
    throw std::runtime_error(what + " asks for device \"cuda\", but " + info.reason);
}

void* stream() {
  static std::once_flag once;
  static cudaStream_t s = nullptr;  // never destroyed: the runtime may be gone at exit
  std::call_once(once, [] { ST_CUDA_CHECK(cudaStreamCreate(&s)); });
  return s;
}

// The emulator's strict mode checks every allocation's bounds with guards right after the bytes
// asked for; a block rounded up to 256 bytes and reused would hide an overrun (and a stale value),
// so there each block is its own exact-size cudaMalloc, freed by device_free.
bool bypass_cache() {
#if defined(ST_CUDA_EMULATION)
  return st::emu::strict();
#else
  return false;
#endif
}

void* device_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  size_t size = rounded(bytes);
  const bool cached = !bypass_cache();
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  void* p = nullptr;
  auto it = a.free_lists.find(size);
  if (cached && it != a.free_lists.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    a.stats.cached_reuses++;
    a.stats.bytes_cached -= size;
  } else {
    const size_t ask = cached ? size : bytes;
    cudaError_t err = cudaMalloc(&p, ask);
    if (err == cudaErrorMemoryAllocation) {  // cached blocks of other sizes may make room
      (void)cudaGetLastError();
      release_locked(a);
      err = cudaMalloc(&p, ask);
    }
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      throw std::runtime_error("cuda::device_alloc: cudaMalloc of " + std::to_string(ask) +
                               " bytes failed: " + cudaGetErrorString(err) + " (" +
                               std::to_string(a.obtained) + " bytes already allocated)");
    }
    a.stats.device_mallocs++;
    a.obtained += size;
    if (a.obtained > a.stats.peak_bytes) a.stats.peak_bytes = a.obtained;
  }
  a.in_use[p] = Block{size, cached};
  a.stats.bytes_in_use += size;
  return p;
}

void device_free(void* ptr, size_t bytes) {
  if (!ptr) return;
  size_t size = rounded(bytes);
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  auto it = a.in_use.find(ptr);
  if (it == a.in_use.end())
    throw std::logic_error(
        "cuda::device_free: pointer not allocated by device_alloc (or freed "
        "twice)");
  if (it->second.size != size)
    throw std::logic_error("cuda::device_free: freed with " + std::to_string(bytes) +
                           " bytes, allocated with " + std::to_string(it->second.size));
  const bool cached = it->second.cached;
  a.in_use.erase(it);
  a.stats.bytes_in_use -= size;
  if (!cached) {
    a.obtained -= size;
    // device_free runs in destructors, so it must not throw for a device that has faulted (a
    // sticky error: every call fails until the context is reset, and the memory went with it);
    // the call that met the fault has reported it. The block itself was checked above.
    if (cudaFree(ptr) != cudaSuccess) (void)cudaGetLastError();
    return;
  }
  a.free_lists[size].push_back(ptr);
  a.stats.bytes_cached += size;
}

DeviceAllocatorStats device_allocator_stats() {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  return a.stats;
}

void release_cache() {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  release_locked(a);
}

void copy_h2d(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  // From pageable memory the call returns once the source has been staged.
  ST_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice,
                                static_cast<cudaStream_t>(stream())));
}

void copy_d2h(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream());
  ST_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
  ST_CUDA_CHECK(cudaStreamSynchronize(s));
}

void copy_d2d(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  ST_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice,
                                static_cast<cudaStream_t>(stream())));
}

void memset_zero(void* dst, size_t bytes) {
  if (bytes == 0) return;
  ST_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, static_cast<cudaStream_t>(stream())));
}

void synchronize() { ST_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream()))); }

}  // namespace st::cuda
