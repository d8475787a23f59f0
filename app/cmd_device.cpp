// app/cmd_device.cpp — `sparsetrain device`: whether `"device": "cuda"` can run here, and on what.
#include <cstdio>

#include "app/cli.h"
#include "cuda/cusparse.h"
#include "cuda/runtime.h"
#include "distributed/communicator.h"
#include "kernels/isa.h"
#include "kernels/onednn.h"

namespace st::app {

namespace {

int run_device() {
  std::printf("cpu kernels: %s (this CPU runs: %s; SPARSETRAIN_ISA=avx512|avx2|generic picks one); "
              "oneDNN: %s\n",
              kernels::isa_name(kernels::active_isa()), kernels::isa_summary().c_str(),
              kernels::onednn_isa_name().c_str());
  std::printf("distributed: %s; this process is 1 of %d launched rank%s\n",
              distributed::built_with_mpi() ? "built with MPI (mpirun -np N sparsetrain train|sweep ...)"
                                            : "built without MPI (one process; install libopenmpi-dev and rebuild)",
              distributed::launched_ranks(), distributed::launched_ranks() == 1 ? "" : "s");
  const cuda::DeviceInfo info = cuda::device_info();
  std::printf("cuda backend: %s\n", cuda::emulated() ? "CPU emulator (built without nvcc)" : "nvcc-built");
  // Loads libcusparse to say so (other commands load it only when a cuSPARSE product runs).
  if (!cuda::emulated())
    std::printf("cusparse: %s\n", cuda::cusparse::available()
                                      ? "loads (sparse.impl \"cusparse\" can run on a GPU)"
                                      : cuda::cusparse::load_error().c_str());
  if (!info.available) {
    std::printf("device: none (%s)\n", info.reason.c_str());
    return 0;
  }
  if (info.emulated)
    std::printf("device: CPU emulator (SPARSETRAIN_CUDA_EMULATION=1; slow, for testing)\n");
  else
    std::printf("device: %s, compute capability %d.%d, %.1f GiB\n", info.name.c_str(), info.cc_major,
                info.cc_minor, info.total_memory / double(1 << 30));
  return 0;
}

}  // namespace

Command add_device(CLI::App& app) {
  auto* cmd = app.add_subcommand("device", "Show the CPU kernels' instruction set and whether the CUDA backend has a device here");
  return {cmd, run_device};
}

}  // namespace st::app
