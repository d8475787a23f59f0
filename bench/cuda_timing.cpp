// bench/cuda_timing.cpp — GPU timing and the cuBLAS yardstick for `sparsetrain bench` (interface
// and contracts in bench/cuda_timing.h). Host code compiled by g++ against the CUDA runtime and
// cuBLAS headers when the app links the nvcc-built backend (ST_HAVE_CUBLAS); otherwise the backend
// is the CPU emulator, whose timings mean nothing, so everything here refuses.
// cuBLAS is opened when a benchmark first needs it (cuda/dynlib.h), not linked: libcublasLt's
// load-time initialisation costs ~0.4 s and ~200 MB of memory, which every `sparsetrain` command
// (and every CLI test) would otherwise pay, and the binary keeps starting where cuBLAS is not
// installed.
#include "bench/cuda_timing.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/check.h"
#include "cuda/runtime.h"

#if defined(ST_HAVE_CUBLAS)
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "cuda/dynlib.h"
#endif

namespace st::bench::gpu {

std::string require_timing_device(const std::string& what) {
  cuda::require_device(what);  // no device: its message says why
  const cuda::DeviceInfo info = cuda::device_info();
  ST_CHECK(!info.emulated, what,
           ": the CUDA emulator is for correctness, not timing (it runs the kernels on the CPU, one "
           "block after another); run this on a machine with an NVIDIA GPU and an nvcc-built "
           "sparsetrain");
#if !defined(ST_HAVE_CUBLAS)
  ST_CHECK(false, what, ": this sparsetrain was built without cuBLAS (no nvcc at configure time)");
#endif
  return info.name;
}

#if defined(ST_HAVE_CUBLAS)

namespace {

void check(cudaError_t err, const char* call, int line) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA call ") + call + " failed at " __FILE__ ":" +
                             std::to_string(line) + ": " + cudaGetErrorString(err));
}
#define BENCH_CHECK(call) check((call), #call, __LINE__)

cudaStream_t backend_stream() { return static_cast<cudaStream_t>(cuda::stream()); }

struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  EventPair() {
    BENCH_CHECK(cudaEventCreate(&start));
    BENCH_CHECK(cudaEventCreate(&stop));
  }
  ~EventPair() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  // Device milliseconds of `calls` calls of fn issued back to back.
  float time(const std::function<void()>& fn, int calls) {
    BENCH_CHECK(cudaEventRecord(start, backend_stream()));
    for (int i = 0; i < calls; ++i) fn();
    BENCH_CHECK(cudaEventRecord(stop, backend_stream()));
    BENCH_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    BENCH_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return ms;
  }
};

}  // namespace

double median_us(const std::function<void()>& fn, Timing timing) {
  for (int i = 0; i < 3; ++i) fn();
  cuda::synchronize();
  EventPair events;
  // A burst lasts ~0.2 ms: long against the µs of event resolution and of one launch's latency.
  const double one_ms = std::max<double>(events.time(fn, 1), 1e-4);
  const int burst = std::clamp(static_cast<int>(std::ceil(0.2 / one_ms)), 1, 64);
  std::vector<double> us;
  double total_s = 0.0;
  while (total_s < timing.min_s || static_cast<int>(us.size()) < timing.min_samples) {
    const double ms = events.time(fn, burst);
    us.push_back(1e3 * ms / burst);
    total_s += 1e-3 * ms;
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

namespace {

// The cuBLAS entry points the bench uses, resolved once from the shared library.
struct CublasApi {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
};

const CublasApi& cublas_api() {
  static const CublasApi api = [] {
    // The soname of the toolkit we compiled against, then the toolkit's library folder.
    const std::string soname = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    std::string error;
    void* lib = st::cuda::dynlib::open(soname, ST_CUDA_LIB_DIR, &error);
    ST_CHECK(lib, error, "; bench --device cuda needs the CUDA toolkit's libcublas");
    CublasApi a;
    auto find = [&](auto& fn, const char* name) {
      ST_CHECK(st::cuda::dynlib::resolve(lib, fn, name), "cuBLAS (", soname, ") has no ", name);
    };
    find(a.create, "cublasCreate_v2");
    find(a.destroy, "cublasDestroy_v2");
    find(a.set_stream, "cublasSetStream_v2");
    find(a.set_math_mode, "cublasSetMathMode");
    find(a.sgemm, "cublasSgemm_v2");
    find(a.status_string, "cublasGetStatusString");
    return a;  // the library stays loaded for the life of the process
  }();
  return api;
}

void check_cublas(cublasStatus_t status, const char* call, int line) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLAS call ") + call + " failed at " __FILE__ ":" +
                             std::to_string(line) + ": " + cublas_api().status_string(status));
}
#define BENCH_CUBLAS_CHECK(call) check_cublas((call), #call, __LINE__)

}  // namespace

Cublas::Cublas() {
  const CublasApi& api = cublas_api();
  cublasHandle_t h = nullptr;
  BENCH_CUBLAS_CHECK(api.create(&h));
  handle_ = h;
  BENCH_CUBLAS_CHECK(api.set_stream(h, backend_stream()));
  // The default, stated: FP32 products, as cuda::sgemm computes (TF32 would be a different,
  // less accurate yardstick and would fail the validation's tolerance).
  BENCH_CUBLAS_CHECK(api.set_math_mode(h, CUBLAS_DEFAULT_MATH));
}

Cublas::~Cublas() { cublas_api().destroy(static_cast<cublasHandle_t>(handle_)); }

void Cublas::sgemm(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                   const float* B, int ldb, float* C, int ldc) {
  // cuBLAS is column-major: a row-major C (M, N) is Cᵀ (N, M) column-major, and
  // Cᵀ = op(B)ᵀ · op(A)ᵀ, where each row-major operand read column-major is already transposed.
  const float alpha = 1.0f, beta = 0.0f;
  BENCH_CUBLAS_CHECK(cublas_api().sgemm(static_cast<cublasHandle_t>(handle_),
                                        trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                        trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb,
                                        A, lda, &beta, C, ldc));
}

#else  // the emulated backend: require_timing_device has already refused

double median_us(const std::function<void()>&, Timing) {
  throw std::runtime_error("GPU timing needs the nvcc-built backend");
}
Cublas::Cublas() { throw std::runtime_error("cuBLAS needs the nvcc-built backend"); }
Cublas::~Cublas() = default;
void Cublas::sgemm(bool, bool, int, int, int, const float*, int, const float*, int, float*, int) {}

#endif

}  // namespace st::bench::gpu
