// tests/cuda/main.cpp — the doctest main of test_cuda (the CUDA kernels in the CPU emulator) and
// test_cuda_gpu (the same tests on a GPU). The emulated binary switches emulation on itself, so it
// also runs outside ctest; the GPU binary stops at once, saying why, when the machine has no NVIDIA
// driver, with exit code 77, which ctest reports as "skipped" (a driver that cannot be used fails).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>

#include "cuda/runtime.h"

int main(int argc, char** argv) {
  if (st::cuda::emulated()) st::cuda::enable_emulation();
  st::cuda::DeviceInfo info = st::cuda::device_info();
  if (!info.available) {
    std::fprintf(stderr, "test_cuda: %s\n", info.reason.c_str());
    if (info.emulated) return 1;
    // Skipped only where no NVIDIA driver is installed at all. With a driver present, a device
    // query that fails (a driver too old for this CUDA runtime, a broken install) is a failure:
    // on a GPU machine it must not read as "skipped".
    if (access("/proc/driver/nvidia/version", F_OK) == 0) {
      std::fprintf(stderr, "test_cuda_gpu: an NVIDIA driver is installed (/proc/driver/nvidia/version), "
                           "yet no device can be used: failing, not skipping\n");
      return 1;
    }
    return 77;
  }
  if (!info.emulated)
    std::fprintf(stderr, "test_cuda_gpu: %s (sm_%d%d, %.1f GiB)\n", info.name.c_str(),
                 info.cc_major, info.cc_minor, info.total_memory / double(1 << 30));
  doctest::Context context;
  context.applyCommandLine(argc, argv);
  return context.run();
}
