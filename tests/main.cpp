// tests/main.cpp — the doctest main of every layer suite. SPARSETRAIN_ISA (kernels/isa.h) picks the
// instruction set the CPU kernels run on, so ctest runs a suite once per set; a set this CPU cannot
// run makes the suite exit 77, which ctest reports as skipped (SKIP_RETURN_CODE), never as passed.
// Built with ST_GPU_SUITE (the *_gpu suites of a CUDA build) it first requires a usable GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "kernels/isa.h"

#if defined(ST_GPU_SUITE)
#include <unistd.h>

#include "cuda/runtime.h"

// The GPU variant of a suite (its test_cuda_*.cpp cases on the nvcc-built backend) needs the GPU:
// without an NVIDIA driver it exits 77 (ctest: skipped); with a driver but no usable device it
// fails, so a GPU machine whose runtime cannot run never reads as skipped or passed.
int require_gpu() {
  const st::cuda::DeviceInfo info = st::cuda::device_info();
  if (info.available) return 0;
  std::fprintf(stderr, "GPU suite: %s\n", info.reason.c_str());
  return access("/proc/driver/nvidia/version", F_OK) == 0 ? 1 : 77;
}
#endif

int main(int argc, char** argv) {
  using namespace st::kernels;
#if defined(ST_GPU_SUITE)
  if (const int code = require_gpu(); code != 0) return code;
#endif
  if (const char* env = std::getenv("SPARSETRAIN_ISA"); env && *env) {
    Isa isa;
    try {
      isa = parse_isa(env, "SPARSETRAIN_ISA");
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    }
    if (!isa_supported(isa)) {
      std::printf("skipped: this CPU cannot run the %s kernels (it runs: %s)\n", env, isa_summary().c_str());
      return 77;
    }
    set_isa(isa);
  }
  std::printf("CPU kernels: %s\n", isa_name(active_isa()));
  doctest::Context context(argc, argv);
  return context.run();
}
