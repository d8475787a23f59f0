// data/large_pages.h — an allocator that asks Linux for transparent huge pages on large buffers.
// Used for a dataset's images (188 MB for MNIST as floats) and the bytes an IDX file is read into
// (47 MB): with 4 KiB pages the first write to a fresh buffer takes a page fault per 4 KiB, and
// those faults dominated loading (docs/design.md, "Performance notes"). Buffers of kMinBytes
// or more are aligned to 2 MiB and marked MADV_HUGEPAGE before anything touches them (the kernel
// then backs them with huge pages when /sys/kernel/mm/transparent_hugepage/enabled is `madvise`
// or `always`, as on Debian 12); smaller ones, or a kernel that refuses, get ordinary pages.
// resize() default-initializes: a buffer is not zeroed before its real first write (every writer of
// these buffers fills them whole; zeroing was one more pass over them, and their first touch).
#pragma once
#include <cstddef>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace st::data {

template <class T>
struct LargePageAllocator {
  using value_type = T;
  static constexpr size_t kHugePage = size_t{2} << 20;
  static constexpr size_t kMinBytes = size_t{4} << 20;

  LargePageAllocator() = default;
  template <class U>
  LargePageAllocator(const LargePageAllocator<U>&) {}

  T* allocate(size_t n) {
    if (n > static_cast<size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    const size_t bytes = n * sizeof(T);
    void* p = nullptr;
    if (bytes >= kMinBytes) {
      p = std::aligned_alloc(kHugePage, (bytes + kHugePage - 1) / kHugePage * kHugePage);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
      if (p) madvise(p, bytes, MADV_HUGEPAGE);  // a hint: failure leaves ordinary pages
#endif
    } else {
      p = std::malloc(bytes == 0 ? 1 : bytes);
    }
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) noexcept { std::free(p); }

  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible<U>::value) {
    ::new (static_cast<void*>(p)) U;  // default-, not value-initialized: no zeroing
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

template <class T, class U>
bool operator==(const LargePageAllocator<T>&, const LargePageAllocator<U>&) { return true; }
template <class T, class U>
bool operator!=(const LargePageAllocator<T>&, const LargePageAllocator<U>&) { return false; }

}  // namespace st::data
