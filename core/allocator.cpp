#include "core/allocator.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace st {
namespace {

constexpr size_t kAlign = 64;

struct Cache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_lists;
  AllocatorStats stats;
  ~Cache() {
    for (auto& [size, list] : free_lists)
      for (void* p : list) std::free(p);
  }
};

Cache& cache() {
  static Cache* c = new Cache();  // leaked on purpose: tensors may be freed during static destruction
  return *c;
}

size_t rounded(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

}  // namespace

void* host_alloc(size_t bytes) {
  size_t size = rounded(bytes == 0 ? 1 : bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_lists.find(size);
    if (it != c.free_lists.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cached_reuses++;
      c.stats.bytes_cached -= size;
      return p;
    }
    c.stats.system_allocs++;
  }
  void* p = std::aligned_alloc(kAlign, size);
  if (!p) throw std::bad_alloc();
  return p;
}

void host_free(void* ptr, size_t bytes) {
  if (!ptr) return;
  size_t size = rounded(bytes == 0 ? 1 : bytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.free_lists[size].push_back(ptr);
  c.stats.bytes_cached += size;
}

AllocatorStats host_allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.stats;
}

void host_release_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [size, list] : c.free_lists)
    for (void* p : list) std::free(p);
  c.free_lists.clear();
  c.stats.bytes_cached = 0;
}

}  // namespace st
