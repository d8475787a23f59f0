// cuda/compat.h — what every cuda/*.cu file includes first. Under nvcc it is <cuda_runtime.h>;
// under g++ it is the CPU emulator (cuda/emu/emu.h), which provides the same names, so one kernel
// source builds both the real backend (st_cuda) and its CPU emulation (st_cuda_emu).
//
//   ST_LAUNCH(grid, block, shared_bytes, stream, kernel)(args...);
//       a kernel launch; the kernel comes last so template commas need no parentheses:
//       ST_LAUNCH(grid, 256, 0, s, gemm_tile<float, 4>)(a, b, c, n);
//   ST_DYNAMIC_SHARED(type, name);
//       `type* name` pointing at the launch's dynamic shared memory (16-byte aligned).
//   ST_SHARED_POISON(array);
//       right after every static `__shared__` array: in the emulator the array is filled with
//       0xFF bytes (NaN floats) at the start of every block, so a block reading it before writing
//       it sees garbage, as on a GPU, not the previous block's values. Nothing under nvcc.
//   ST_CUDA_CHECK(call);        throws std::runtime_error naming the call, file:line and the error
//   ST_CUDA_CHECK_LAUNCH();     checks cudaGetLastError() right after a launch; with
//                               SPARSETRAIN_CUDA_CHECKED=1 also synchronizes the device, so a kernel
//                               that faults is reported at its own launch (file:line)
#pragma once

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)

#include <cuda_runtime.h>

#define ST_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<grid, block, smem, stream>>>

// One raw buffer declared per kernel; the cast gives it the caller's element type. Declaring the
// buffer as unsigned char with 16-byte alignment lets float4 loads use it whatever `type` is.
#define ST_DYNAMIC_SHARED(type, name)                                  \
  extern __shared__ __align__(16) unsigned char st_dynamic_smem_raw[]; \
  type* name = reinterpret_cast<type*>(st_dynamic_smem_raw)

#define ST_SHARED_POISON(array) ((void)0)

#else

#include "cuda/emu/emu.h"

#endif

namespace st::cuda_detail {

[[noreturn]] inline void throw_call_error(const char* api, const char* expr, const char* file,
                                          int line, const char* message) {
  throw std::runtime_error(std::string(api) + " call " + expr + " failed at " + file + ":" +
                           std::to_string(line) + ": " + (message ? message : "unknown error"));
}

// SPARSETRAIN_CUDA_CHECKED=1 (read once; 0 or unset: off): every launch is followed by
// cudaDeviceSynchronize, so an asynchronous fault (an illegal address, a trap) is reported at the
// launch of the kernel that caused it instead of at a later, unrelated call. Slow; for debugging
// and the GPU check (scripts/gpu_check.sh).
inline bool checked_launches() {
  static const bool on = [] {
    const char* v = std::getenv("SPARSETRAIN_CUDA_CHECKED");
    if (!v || !*v || std::strcmp(v, "0") == 0) return false;
    if (std::strcmp(v, "1") == 0) return true;
    throw std::invalid_argument(std::string("SPARSETRAIN_CUDA_CHECKED=\"") + v + "\": expected 1 or 0");
  }();
  return on;
}

}  // namespace st::cuda_detail

// A failed call also sets the runtime's last error; it is cleared before throwing, so the next
// ST_CUDA_CHECK_LAUNCH does not report this failure again as its launch's.
#define ST_CUDA_CHECK(expr)                                                                 \
  do {                                                                                      \
    cudaError_t st_cuda_err_ = (expr);                                                      \
    if (st_cuda_err_ != cudaSuccess) {                                                      \
      (void)cudaGetLastError();                                                             \
      ::st::cuda_detail::throw_call_error("CUDA", #expr, __FILE__, __LINE__,                \
                                          cudaGetErrorString(st_cuda_err_));                \
    }                                                                                       \
  } while (0)

#define ST_CUDA_CHECK_LAUNCH()                                                                \
  do {                                                                                        \
    ST_CUDA_CHECK(cudaGetLastError());                                                        \
    if (::st::cuda_detail::checked_launches()) ST_CUDA_CHECK(cudaDeviceSynchronize());        \
  } while (0)

