// cuda/dense.h — dense kernels on the GPU: the device twins of kernels/gemm.h and
// kernels/elementwise.h (same argument orders and contracts; every pointer is a device pointer).
//   sgemm:  C (M, N) = alpha · op(A) (M, K) · op(B) (K, N) + beta · C   row-major, beta == 0: C not read
//   elementwise ops, bias add/grad (rows: Linear, channels: conv), dropout (device-generated mask),
//   fused softmax-cross-entropy, sum, argmax_rows.
// Activation gradients overwrite (=); bias gradients take `accumulate` (+= when true).
// All calls are asynchronous on st::cuda::stream() except the ones that return a host value
// (softmax_xent_forward, sum), which copy one double back and so wait for the stream; their
// *_to_device variants leave the result in device memory instead.
// Deterministic: no float atomics; every sum runs in an order fixed by the sizes (sgemm: k order
// per element, or fixed K chunks added in order when a long K is split; reductions in double like
// the CPU's, in a different order). So results match the CPU kernels to float tolerance, and
// bitwise where there is nothing to reorder (elementwise ops, bias add, argmax).
// Kernels: cuda/dense.cu. Tests: tests/cuda/test_dense.cpp (under the emulator).
#pragma once
#include <cstdint>

// Plain C++ for the host; nvcc also compiles the inline hash below for the device.
#if defined(__CUDACC__)
#define ST_HOST_DEVICE __host__ __device__
#else
#define ST_HOST_DEVICE
#endif

namespace st::cuda {

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc);

// y (n) = max(x, 0); x and y may alias.
void relu_forward(int64_t n, const float* x, float* y);
// dx (n) = dy where y > 0 else 0 (y is the forward output).
void relu_backward(int64_t n, const float* dy, const float* y, float* dx);
// out (n) = a + b; any may alias.
void add(int64_t n, const float* a, const float* b, float* out);
// y (n) += alpha · x
void axpy(int64_t n, float alpha, const float* x, float* y);
// y (n) = alpha · x  (x and y may alias)
void scale(int64_t n, float alpha, const float* x, float* y);
void fill(int64_t n, float value, float* y);

// y (rows, cols) += bias (cols), broadcast over rows — Linear bias.
void bias_add_rows(int rows, int cols, const float* bias, float* y);
// db (cols) (+)= Σ_rows dy (rows, cols)
void bias_grad_rows(int rows, int cols, const float* dy, float* db, bool accumulate);
// y (N, C, HW) += bias (C) — conv bias.
void bias_add_channels(int N, int C, int HW, const float* bias, float* y);
// db (C) (+)= Σ_{n,hw} dy (N, C, HW)
void bias_grad_channels(int N, int C, int HW, const float* dy, float* db, bool accumulate);

// The dropout draw for element `index` of the stream `seed`: a uniform in [0, 1) from the
// counter-based splitmix64 hash (the index-th output of a splitmix64 generator seeded with
// mix(seed)). Counter-based so every GPU thread draws its own element without shared RNG state,
// and the same (seed, index) gives the same mask on every device and run.
ST_HOST_DEVICE inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
ST_HOST_DEVICE inline float dropout_uniform(uint64_t seed, uint64_t index) {
  const uint64_t h = splitmix64_mix(splitmix64_mix(seed) + (index + 1) * 0x9E3779B97F4A7C15ull);
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);  // top 24 bits: exact in a float
}
// keep (n) = dropout_uniform(seed, offset + i) >= p ? 1 : 0  (the CPU's `rng.uniform() >= p`).
// `offset` lets one seed serve several layers or steps without reusing draws.
void dropout_mask(int64_t n, float p, uint64_t seed, uint64_t offset, uint8_t* keep);
// y (n) = x · keep · scale, where keep (n) is 0/1 (inverted dropout: scale = 1/(1-p)).
// Backward is the same call on dy.
void dropout_apply(int64_t n, const float* x, const uint8_t* keep, float scale, float* y);

// Fused softmax + cross-entropy, mean over the batch.
//   logits (B, C), labels (B) in [0, C) -> probs (B, C); returns the mean loss (double). A label
//   outside [0, C) makes the loss NaN (the CPU kernel asserts instead).
double softmax_xent_forward(int B, int C, const float* logits, const int32_t* labels, float* probs);
// The same, leaving the mean loss in *loss (one device double) without waiting for the stream.
void softmax_xent_forward_to_device(int B, int C, const float* logits, const int32_t* labels,
                                    float* probs, double* loss);
// dlogits (B, C) = (probs − onehot(labels)) · dloss / B   (overwrites)
void softmax_xent_backward(int B, int C, const float* probs, const int32_t* labels, float dloss,
                           float* dlogits);

// Σ x (n), in double.
double sum(int64_t n, const float* x);
// The same into *out (one device double), asynchronously.
void sum_to_device(int64_t n, const float* x, double* out);
// out (rows) = argmax over cols of x (rows, cols); first maximum wins (NaN handled as the CPU's
// sequential `>` scan does: a NaN in column 0 wins, elsewhere it is skipped).
void argmax_rows(int rows, int cols, const float* x, int32_t* out);

namespace detail {
// Tests only: force sgemm's block tile (32 or 64) so both variants are checked whatever the
// device's SM count; 0 restores the automatic choice.
void force_sgemm_tile(int tile);
}  // namespace detail

}  // namespace st::cuda
