// kernels/sparse_conv.cpp — batch im2col/col2im and channel-major reorders for the CSR conv.
#include "kernels/sparse_conv.h"

#include <cstdint>
#include <cstring>
#include <vector>

namespace st::kernels {

void im2col_batch(const Conv2dShape& s, const float* x, float* cols) {
  const int64_t P = int64_t(s.OH()) * s.OW(), K = int64_t(s.C) * s.KH * s.KW, NP = P * s.N;
  const int64_t in_sz = int64_t(s.C) * s.H * s.W;
#pragma omp parallel
  {
    std::vector<float> tmp(static_cast<size_t>(K * P));
#pragma omp for schedule(static)
    for (int n = 0; n < s.N; ++n) {
      im2col(s, x + n * in_sz, tmp.data());
      for (int64_t r = 0; r < K; ++r)
        std::memcpy(cols + r * NP + n * P, tmp.data() + r * P, sizeof(float) * P);
    }
  }
}

void col2im_batch(const Conv2dShape& s, const float* cols, float* dx) {
  const int64_t P = int64_t(s.OH()) * s.OW(), K = int64_t(s.C) * s.KH * s.KW, NP = P * s.N;
  const int64_t in_sz = int64_t(s.C) * s.H * s.W;
#pragma omp parallel
  {
    std::vector<float> tmp(static_cast<size_t>(K * P));
#pragma omp for schedule(static)
    for (int n = 0; n < s.N; ++n) {
      for (int64_t r = 0; r < K; ++r)
        std::memcpy(tmp.data() + r * P, cols + r * NP + n * P, sizeof(float) * P);
      col2im(s, tmp.data(), dx + n * in_sz);
    }
  }
}

void cnp_to_nchw(int C, int N, int P, const float* a, const float* bias, float* y) {
#pragma omp parallel for schedule(static) collapse(2)
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const float* src = a + (int64_t(c) * N + n) * P;
      float* dst = y + (int64_t(n) * C + c) * P;
      const float b = bias ? bias[c] : 0.f;
      if (bias)
        for (int p = 0; p < P; ++p) dst[p] = src[p] + b;
      else
        std::memcpy(dst, src, sizeof(float) * P);
    }
}

void nchw_to_cnp(int C, int N, int P, const float* y, float* a) {
#pragma omp parallel for schedule(static) collapse(2)
  for (int c = 0; c < C; ++c)
    for (int n = 0; n < N; ++n)
      std::memcpy(a + (int64_t(c) * N + n) * P, y + (int64_t(n) * C + c) * P, sizeof(float) * P);
}

}  // namespace st::kernels
