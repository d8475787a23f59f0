// bench/cuda_timing.h — what the GPU rows of `sparsetrain bench` need beyond cuda/: a check that
// there is a GPU worth timing, CUDA-event medians on the backend's stream, and cuBLAS SGEMM (the
// dense yardstick) for row-major operands.
// In st_bench, which only the app links. With the nvcc-built backend (ST_HAVE_CUBLAS) this is CUDA
// events and cuBLAS; without it (the emulated backend) require_timing_device refuses before anything
// else runs.
#pragma once
#include <functional>
#include <string>

namespace st::bench::gpu {

// The name of the GPU to time on. Throws st::cuda::require_device's message ("<what> asks for
// device \"cuda\", but ...") without a device, and refuses the CPU emulator (its timings say
// nothing about a GPU).
std::string require_timing_device(const std::string& what);

struct Timing {
  double min_s;     // keep sampling until this much device time was measured ...
  int min_samples;  // ... and at least this many samples were taken
};

// Median device time of one call of fn, in µs. fn must only enqueue work on st::cuda::stream() and
// give the same result every call. After 3 warm-up calls, each sample times a burst of calls
// issued back to back between two CUDA events (the burst is sized from one timed call so a sample
// lasts ~0.2 ms; up to 64 calls), so a short kernel is not charged the launch latency of an idle
// GPU; the sample is the burst's time / its length.
double median_us(const std::function<void()>& fn, Timing timing);

// cublasSgemm on st::cuda::stream(), FP32 math (no TF32), for the row-major product of
// cuda::sgemm: C (M, N) = op(A) (M, K) · op(B) (K, N)  (alpha 1, beta 0; device pointers).
class Cublas {
 public:
  Cublas();
  ~Cublas();
  Cublas(const Cublas&) = delete;
  Cublas& operator=(const Cublas&) = delete;
  void sgemm(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda, const float* B,
             int ldb, float* C, int ldc);

 private:
  void* handle_ = nullptr;  // cublasHandle_t
};

}  // namespace st::bench::gpu
