// kernels/reference.h — plain, obviously-correct kernels that every fast kernel is tested against.
// Accumulate in double; single-threaded; no blocking. Never used on the training path.
#pragma once
#include <cstdint>
#include "kernels/conv.h"
#include "kernels/pool.h"

namespace st::kernels::ref {

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc);
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y);
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx);
void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                             float* db);  // overwrite
void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax);
void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx);
void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y);
void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx);
double softmax_xent_forward(int B, int C, const float* logits, const int32_t* labels, float* probs);
// Optimizer steps with the semantics of kernels/optim.h, computed in double per element.
void sgd_update(int64_t n, float* w, const float* g, float* momentum_buf, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool first_step,
                const uint8_t* mask);
void adam_update(int64_t n, float* w, const float* g, float* m, float* v, float lr, float beta1,
                 float beta2, float eps, float weight_decay, bool decoupled, int64_t step,
                 const uint8_t* mask);

}  // namespace st::kernels::ref

// ---- CSR sparse references (kernels/sparse_cpu.h), written from the dense definitions ----------
#include "kernels/csr.h"

namespace st::kernels::ref {

// C (M, N) = A (M, K) · B (K, N) + beta·C   (beta == 0: C is not read)
void csr_spmm(const CsrMatrix& A, const float* B, int N, float* C, float beta);
// C (K, N) = Aᵀ (K, M) · B (M, N) + beta·C
void csr_spmm_t(const CsrMatrix& A, const float* B, int N, float* C, float beta);
// out[k] (+)= Σ_n X[row(k), n] · Y[col(k), n]
void csr_sddmm(const CsrMatrix& pattern, const float* X, const float* Y, int N, float* out_values,
               bool accumulate);

}  // namespace st::kernels::ref
