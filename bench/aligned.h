// bench/aligned.h — 64-byte aligned float vectors for the benchmarks' operands.
// Why: the trainer's tensors come from core/allocator (64-byte aligned), but a large std::vector
// starts 16 bytes into its page (glibc's mmap chunk header), so every 64-byte row piece a kernel
// loads or stores straddles two cache lines. On std::vector operands csr_spmm_xwt at 99% sparsity
// on (1024, 1024, 128) ran 40–47 µs against 31–37 µs on aligned ones (2 threads; 75–78 against
// 58–66 µs on 1): the benchmark measured a handicap that training never has.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <algorithm>
#include <new>
#include <vector>

namespace st::bench {

template <class T>
struct Aligned64Allocator {
  using value_type = T;
  Aligned64Allocator() = default;
  template <class U>
  Aligned64Allocator(const Aligned64Allocator<U>&) {}
  T* allocate(size_t n) {
    const size_t bytes = (std::max<size_t>(n, 1) * sizeof(T) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  template <class U>
  bool operator==(const Aligned64Allocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const Aligned64Allocator<U>&) const { return false; }
};

using Floats = std::vector<float, Aligned64Allocator<float>>;

}  // namespace st::bench
