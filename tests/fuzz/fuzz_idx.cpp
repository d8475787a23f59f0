// tests/fuzz/fuzz_idx.cpp — the IDX reader (MNIST's format), raw or gzip (read_idx tells them apart by
// the gzip magic, so one target covers both; the corpus holds both kinds).
#include "data/idx.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = st::fuzz::mem_file().write(data, size);
  st::fuzz::expect_clean_refusal([&] {
    const st::data::IdxArray a = st::data::read_idx(path);
    const int esize = st::data::idx_element_size(a.type);
    if (esize == 0 || a.data.size() != static_cast<size_t>(a.count()) * static_cast<size_t>(esize)) {
      std::fprintf(stderr, "read_idx returned %zu bytes for %lld elements of type 0x%02x\n",
                   a.data.size(), static_cast<long long>(a.count()), a.type);
      std::abort();
    }
  });
  return 0;
}
