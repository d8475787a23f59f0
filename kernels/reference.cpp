// kernels/reference.cpp — the plain kernels of kernels/reference.h: direct loops, double
// accumulation, one thread. They define what "correct" means for every fast kernel's test.
#include "kernels/reference.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <vector>

namespace st::kernels::ref {

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc) {
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int k = 0; k < K; ++k) {
        const double a = trans_a ? A[static_cast<size_t>(k) * lda + i] : A[static_cast<size_t>(i) * lda + k];
        const double b = trans_b ? B[static_cast<size_t>(j) * ldb + k] : B[static_cast<size_t>(k) * ldb + j];
        acc += a * b;
      }
      float& c = C[static_cast<size_t>(i) * ldc + j];
      const double prior = beta == 0.0f ? 0.0 : static_cast<double>(beta) * c;  // beta 0: never read
      c = static_cast<float>(alpha * acc + prior);
    }
  }
}

// Index helpers for NCHW / OIHW.
namespace {
size_t idx4(int a, int b, int c, int d, int B, int C, int D) {
  return ((static_cast<size_t>(a) * B + b) * C + c) * D + d;
}
}  // namespace

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  const int OH = s.OH(), OW = s.OW();
  for (int n = 0; n < s.N; ++n)
    for (int oc = 0; oc < s.OC; ++oc)
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          double acc = b ? b[oc] : 0.0;
          for (int c = 0; c < s.C; ++c)
            for (int kh = 0; kh < s.KH; ++kh)
              for (int kw = 0; kw < s.KW; ++kw) {
                const int ih = oh * s.stride_h - s.pad_h + kh;
                const int iw = ow * s.stride_w - s.pad_w + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                acc += static_cast<double>(x[idx4(n, c, ih, iw, s.C, s.H, s.W)]) *
                       w[idx4(oc, c, kh, kw, s.C, s.KH, s.KW)];
              }
          y[idx4(n, oc, oh, ow, s.OC, OH, OW)] = static_cast<float>(acc);
        }
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const int OH = s.OH(), OW = s.OW();
  std::vector<double> acc(static_cast<size_t>(s.N) * s.C * s.H * s.W, 0.0);
  for (int n = 0; n < s.N; ++n)
    for (int oc = 0; oc < s.OC; ++oc)
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          const double g = dy[idx4(n, oc, oh, ow, s.OC, OH, OW)];
          for (int c = 0; c < s.C; ++c)
            for (int kh = 0; kh < s.KH; ++kh)
              for (int kw = 0; kw < s.KW; ++kw) {
                const int ih = oh * s.stride_h - s.pad_h + kh;
                const int iw = ow * s.stride_w - s.pad_w + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                acc[idx4(n, c, ih, iw, s.C, s.H, s.W)] += g * w[idx4(oc, c, kh, kw, s.C, s.KH, s.KW)];
              }
        }
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = static_cast<float>(acc[i]);
}

void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                             float* db) {
  const int OH = s.OH(), OW = s.OW();
  for (int oc = 0; oc < s.OC; ++oc) {
    for (int c = 0; c < s.C; ++c)
      for (int kh = 0; kh < s.KH; ++kh)
        for (int kw = 0; kw < s.KW; ++kw) {
          double acc = 0.0;
          for (int n = 0; n < s.N; ++n)
            for (int oh = 0; oh < OH; ++oh)
              for (int ow = 0; ow < OW; ++ow) {
                const int ih = oh * s.stride_h - s.pad_h + kh;
                const int iw = ow * s.stride_w - s.pad_w + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                acc += static_cast<double>(dy[idx4(n, oc, oh, ow, s.OC, OH, OW)]) *
                       x[idx4(n, c, ih, iw, s.C, s.H, s.W)];
              }
          dw[idx4(oc, c, kh, kw, s.C, s.KH, s.KW)] = static_cast<float>(acc);
        }
    if (db) {
      double acc = 0.0;
      for (int n = 0; n < s.N; ++n)
        for (int p = 0; p < OH * OW; ++p) acc += dy[(static_cast<size_t>(n) * s.OC + oc) * OH * OW + p];
      db[oc] = static_cast<float>(acc);
    }
  }
}

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int OH = s.OH(), OW = s.OW();
  for (int p = 0; p < s.N * s.C; ++p) {
    const float* in = x + static_cast<size_t>(p) * s.H * s.W;
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow) {
        float best = -std::numeric_limits<float>::infinity();
        int32_t best_idx = -1;
        for (int kh = 0; kh < s.KH; ++kh)
          for (int kw = 0; kw < s.KW; ++kw) {
            const int ih = oh * s.stride_h - s.pad_h + kh;
            const int iw = ow * s.stride_w - s.pad_w + kw;
            if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;  // padding never wins
            const float v = in[ih * s.W + iw];
            if (best_idx < 0 || v > best) {  // strict: the first maximum wins ties
              best = v;
              best_idx = ih * s.W + iw;
            }
          }
        assert(best_idx >= 0 && "pooling window lies entirely in the padding");
        const size_t o = (static_cast<size_t>(p) * OH + oh) * OW + ow;
        y[o] = best;
        argmax[o] = best_idx;
      }
  }
}

void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx) {
  const int OH = s.OH(), OW = s.OW();
  std::vector<double> acc(static_cast<size_t>(s.H) * s.W);
  for (int p = 0; p < s.N * s.C; ++p) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int o = 0; o < OH * OW; ++o) {
      const size_t oi = static_cast<size_t>(p) * OH * OW + o;
      acc[argmax[oi]] += dy[oi];
    }
    for (int i = 0; i < s.H * s.W; ++i) dx[static_cast<size_t>(p) * s.H * s.W + i] = static_cast<float>(acc[i]);
  }
}

void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y) {
  const int OH = s.OH(), OW = s.OW();
  for (int p = 0; p < s.N * s.C; ++p) {
    const float* in = x + static_cast<size_t>(p) * s.H * s.W;
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow) {
        double acc = 0.0;
        for (int kh = 0; kh < s.KH; ++kh)
          for (int kw = 0; kw < s.KW; ++kw) {
            const int ih = oh * s.stride_h - s.pad_h + kh;
            const int iw = ow * s.stride_w - s.pad_w + kw;
            if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;  // padding reads as 0
            acc += in[ih * s.W + iw];
          }
        y[(static_cast<size_t>(p) * OH + oh) * OW + ow] = static_cast<float>(acc / (s.KH * s.KW));
      }
  }
}

void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx) {
  const int OH = s.OH(), OW = s.OW();
  std::vector<double> acc(static_cast<size_t>(s.H) * s.W);
  for (int p = 0; p < s.N * s.C; ++p) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow) {
        const double g = dy[(static_cast<size_t>(p) * OH + oh) * OW + ow] / double(s.KH * s.KW);
        for (int kh = 0; kh < s.KH; ++kh)
          for (int kw = 0; kw < s.KW; ++kw) {
            const int ih = oh * s.stride_h - s.pad_h + kh;
            const int iw = ow * s.stride_w - s.pad_w + kw;
            if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
            acc[ih * s.W + iw] += g;
          }
      }
    for (int i = 0; i < s.H * s.W; ++i) dx[static_cast<size_t>(p) * s.H * s.W + i] = static_cast<float>(acc[i]);
  }
}

double softmax_xent_forward(int B, int C, const float* logits, const int32_t* labels, float* probs) {
  double loss = 0.0;
  for (int b = 0; b < B; ++b) {
    const float* z = logits + static_cast<size_t>(b) * C;
    double zmax = z[0];
    for (int c = 1; c < C; ++c) zmax = std::max(zmax, static_cast<double>(z[c]));
    double denom = 0.0;
    for (int c = 0; c < C; ++c) denom += std::exp(z[c] - zmax);
    for (int c = 0; c < C; ++c) probs[static_cast<size_t>(b) * C + c] = static_cast<float>(std::exp(z[c] - zmax) / denom);
    loss += std::log(denom) - (z[labels[b]] - zmax);  // −log softmax at the label
  }
  return loss / B;
}

void sgd_update(int64_t n, float* w, const float* g, float* momentum_buf, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool first_step,
                const uint8_t* mask) {
  for (int64_t i = 0; i < n; ++i) {
    if (mask && !mask[i]) {
      w[i] = 0.0f;
      if (momentum_buf) momentum_buf[i] = 0.0f;
      continue;
    }
    const double gd = static_cast<double>(g[i]) + static_cast<double>(weight_decay) * w[i];
    double step = gd;
    if (momentum != 0.0f) {
      const double buf = first_step ? gd : static_cast<double>(momentum) * momentum_buf[i] + (1.0 - dampening) * gd;
      momentum_buf[i] = static_cast<float>(buf);
      step = nesterov ? gd + static_cast<double>(momentum) * buf : buf;
    }
    w[i] = static_cast<float>(w[i] - static_cast<double>(lr) * step);
  }
}

void adam_update(int64_t n, float* w, const float* g, float* m, float* v, float lr, float beta1,
                 float beta2, float eps, float weight_decay, bool decoupled, int64_t step,
                 const uint8_t* mask) {
  const double bias1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double bias2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  for (int64_t i = 0; i < n; ++i) {
    if (mask && !mask[i]) {
      w[i] = m[i] = v[i] = 0.0f;
      continue;
    }
    double wi = w[i];
    double gi = g[i];
    if (decoupled) {
      wi *= 1.0 - static_cast<double>(lr) * weight_decay;  // AdamW: decay the weight, not the gradient
    } else {
      gi += static_cast<double>(weight_decay) * wi;
    }
    const double mi = static_cast<double>(beta1) * m[i] + (1.0 - beta1) * gi;
    const double vi = static_cast<double>(beta2) * v[i] + (1.0 - beta2) * gi * gi;
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
    const double mhat = mi / bias1;
    const double denom = std::sqrt(vi) / std::sqrt(bias2) + eps;
    w[i] = static_cast<float>(wi - static_cast<double>(lr) * mhat / denom);
  }
}

}  // namespace st::kernels::ref

// ---- CSR sparse references (kernels/sparse_cpu.h): expand A to dense, then the plain sums ------
#include <vector>

namespace st::kernels::ref {

namespace {
std::vector<double> csr_dense_double(const CsrMatrix& A) {
  std::vector<double> d(static_cast<size_t>(A.rows) * A.cols, 0.0);
  for (int r = 0; r < A.rows; ++r)
    for (int32_t k = A.row_ptr[r]; k < A.row_ptr[r + 1]; ++k)
      d[static_cast<size_t>(r) * A.cols + A.col_idx[k]] = A.values[k];
  return d;
}
}  // namespace

void csr_spmm(const CsrMatrix& A, const float* B, int N, float* C, float beta) {
  const std::vector<double> a = csr_dense_double(A);
  for (int m = 0; m < A.rows; ++m)
    for (int n = 0; n < N; ++n) {
      double s = 0.0;
      for (int k = 0; k < A.cols; ++k) s += a[static_cast<size_t>(m) * A.cols + k] * B[static_cast<size_t>(k) * N + n];
      float& c = C[static_cast<size_t>(m) * N + n];
      c = static_cast<float>(beta == 0.0f ? s : s + static_cast<double>(beta) * c);
    }
}

void csr_spmm_t(const CsrMatrix& A, const float* B, int N, float* C, float beta) {
  const std::vector<double> a = csr_dense_double(A);
  for (int k = 0; k < A.cols; ++k)
    for (int n = 0; n < N; ++n) {
      double s = 0.0;
      for (int m = 0; m < A.rows; ++m) s += a[static_cast<size_t>(m) * A.cols + k] * B[static_cast<size_t>(m) * N + n];
      float& c = C[static_cast<size_t>(k) * N + n];
      c = static_cast<float>(beta == 0.0f ? s : s + static_cast<double>(beta) * c);
    }
}

void csr_sddmm(const CsrMatrix& pattern, const float* X, const float* Y, int N, float* out_values,
               bool accumulate) {
  for (int r = 0; r < pattern.rows; ++r)
    for (int32_t k = pattern.row_ptr[r]; k < pattern.row_ptr[r + 1]; ++k) {
      double s = 0.0;
      for (int n = 0; n < N; ++n)
        s += static_cast<double>(X[static_cast<size_t>(r) * N + n]) * Y[static_cast<size_t>(pattern.col_idx[k]) * N + n];
      out_values[k] = static_cast<float>(accumulate ? out_values[k] + s : s);
    }
}

}  // namespace st::kernels::ref
