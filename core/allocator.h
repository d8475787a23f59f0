// core/allocator.h — a caching host allocator. The training step allocates the same sizes every
// step (activations, gradients, workspaces), so freed blocks are kept in per-size free lists and
// handed out again: after the first step no malloc happens on the hot path. 64-byte aligned.
#pragma once
#include <cstddef>

namespace st {

void* host_alloc(size_t bytes);
void host_free(void* ptr, size_t bytes);

struct AllocatorStats {
  size_t system_allocs = 0;   // blocks obtained from the system
  size_t cached_reuses = 0;   // allocations served from the cache
  size_t bytes_cached = 0;    // bytes currently held in free lists
};
AllocatorStats host_allocator_stats();
// Returns every cached block to the system (e.g. between experiments of a sweep).
void host_release_cache();

}  // namespace st
