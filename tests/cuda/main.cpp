// tests/cuda/main.cpp — the doctest main of test_cuda (the CUDA kernels in the CPU emulator) and
// test_cuda_gpu (the same tests on a GPU). The emulated binary switches emulation on itself, so it
// also runs outside ctest; the GPU binary stops at once, saying why, when the machine has no NVIDIA
// driver, with exit code 77, which ctest reports as "skipped" (a driver that cannot be used fails).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>

#include "cuda/runtime.h"

#if !defined(ST_CUDA_GPU_TESTS)
#include "cuda/compat.h"

namespace {
// A kernel fault leaves the emulated device faulted until cudaDeviceReset, as a GPU's context
// stays broken: reset after every test case, so one case's fault does not fail the next ones.
struct ResetEmulatedDevice : doctest::IReporter {
  explicit ResetEmulatedDevice(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override { (void)cudaDeviceReset(); }
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
DOCTEST_REGISTER_LISTENER("reset_emulated_device", 1, ResetEmulatedDevice);
}  // namespace
#endif

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
