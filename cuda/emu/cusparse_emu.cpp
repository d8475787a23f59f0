// cuda/emu/cusparse_emu.cpp — the emulator build's stand-in for cuda/cusparse.cu: cuSPARSE is NVIDIA's
// binary library and runs only on a real GPU, so every product throws (a config asking for
// `sparse_impl: cusparse` fails with this message instead of silently using other kernels).
// Deliberately does not include cuda/cusparse.cu or <cusparse.h>: only our plain C++ header.
#include <stdexcept>

#include "cuda/cusparse.h"

namespace st::cuda::cusparse {
namespace {

[[noreturn]] void needs_gpu() {
  throw std::runtime_error(
      "cuSPARSE needs a real GPU; the emulator runs only sparsetrain's own kernels");
}

}  // namespace

bool available() { return false; }

std::string load_error() { return "the emulator build runs only sparsetrain's own kernels"; }

void csr_spmm(const DeviceCsr&, const float*, int, float*, float) { needs_gpu(); }
void csr_spmm_t(const DeviceCsr&, const DeviceCsr&, const float*, int, float*, float) {
  needs_gpu();
}
void csr_sddmm(const DeviceCsr&, const float*, const float*, int, float*, bool) { needs_gpu(); }
void csr_spmm_xwt(const DeviceCsr&, const float*, int, float*, float) { needs_gpu(); }
void csr_spmm_dyw(const DeviceCsr&, const float*, int, float*, float) { needs_gpu(); }
void csr_sddmm_dyx(const DeviceCsr&, const float*, const float*, int, float*, bool) {
  needs_gpu();
}

CacheStats cache_stats() { return CacheStats{}; }
void release_cache() {}

}  // namespace st::cuda::cusparse
