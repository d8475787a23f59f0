// kernels/sparse_conv.cpp — batch im2col/col2im and channel-major reorders for the CSR conv.
#include "kernels/sparse_conv.h"
#include "kernels/parallel.h"

#include <cstdint>
#include <cstring>
#include <vector>

namespace st::kernels {
namespace {
constexpr int64_t kParallelMinElems = 1 << 15;
}  // namespace

void im2col_batch(const Conv2dShape& s, const float* x, float* cols) {
  const int64_t P = int64_t(s.OH()) * s.OW(), K = int64_t(s.C) * s.KH * s.KW, NP = P * s.N;
  const int64_t in_sz = int64_t(s.C) * s.H * s.W;
  parallel_for(s.N, worth_parallel(K * NP, kParallelMinElems), [=](int64_t n) {
    im2col(s, x + n * in_sz, cols + n * P, static_cast<size_t>(NP));
  });
}

void col2im_batch(const Conv2dShape& s, const float* cols, float* dx) {
  const int64_t P = int64_t(s.OH()) * s.OW(), K = int64_t(s.C) * s.KH * s.KW, NP = P * s.N;
  const int64_t in_sz = int64_t(s.C) * s.H * s.W;
  parallel_for(s.N, worth_parallel(K * NP, kParallelMinElems), [=](int64_t n) {
    col2im(s, cols + n * P, dx + n * in_sz, static_cast<size_t>(NP));
  });
}

void cnp_to_nchw(int C, int N, int P, const float* a, const float* bias, float* y) {
  parallel_for(int64_t(N) * C, worth_parallel(int64_t(N) * C * P, kParallelMinElems), [=](int64_t nc) {
    const int64_t n = nc / C, c = nc % C;
    const float* src = a + (int64_t(c) * N + n) * P;
    float* dst = y + (int64_t(n) * C + c) * P;
    const float b = bias ? bias[c] : 0.f;
    if (bias)
      for (int p = 0; p < P; ++p) dst[p] = src[p] + b;
    else
      std::memcpy(dst, src, sizeof(float) * P);
  });
}

void nchw_to_cnp(int C, int N, int P, const float* y, float* a) {
  parallel_for(int64_t(C) * N, worth_parallel(int64_t(N) * C * P, kParallelMinElems), [=](int64_t cn) {
    const int64_t c = cn / N, n = cn % N;
    std::memcpy(a + (c * N + n) * P, y + (n * C + c) * P, sizeof(float) * P);
  });
}

}  // namespace st::kernels
