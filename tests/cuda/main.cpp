// tests/cuda/main.cpp — the doctest main of test_cuda (the CUDA kernels in the CPU emulator) and
// test_cuda_gpu (the same tests on a GPU). The emulated binary switches emulation on itself, so it
// also runs outside ctest; the GPU binary stops at once, saying why, when there is no GPU, with
// exit code 77, which ctest reports as "skipped".
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "cuda/runtime.h"

int main(int argc, char** argv) {
  if (st::cuda::emulated()) st::cuda::enable_emulation();
  st::cuda::DeviceInfo info = st::cuda::device_info();
  if (!info.available) {
    std::fprintf(stderr, "test_cuda: %s\n", info.reason.c_str());
    return info.emulated ? 1 : 77;
  }
  if (!info.emulated)
    std::fprintf(stderr, "test_cuda_gpu: %s (sm_%d%d, %.1f GiB)\n", info.name.c_str(),
                 info.cc_major, info.cc_minor, info.total_memory / double(1 << 30));
  doctest::Context context;
  context.applyCommandLine(argc, argv);
  return context.run();
}
