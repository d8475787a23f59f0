// cuda/optim.h — fused, mask-aware optimizer updates on device arrays: the device twins of
// kernels/optim.h, same arguments and semantics (torch.optim.SGD / Adam / AdamW), every array a
// device pointer.
//   sgd_update:  w (n), g (n), momentum_buf (n; may be null when momentum == 0)
//   adam_update: w (n), g (n), m (n), v (n)
// mask (n) is nullptr for a dense parameter; where mask[i] == 0 the weight and all its optimizer
// state are set to exactly 0 (design invariant 1), whatever the gradient says (NaN included).
// Adam's per-step constants come from kernels::adam_constants, so CPU, GPU and the CSR updates do
// the same float arithmetic (up to the GPU's fused multiply-adds).
// Asynchronous on st::cuda::stream(). Kernels: cuda/optim.cu. Tests: tests/cuda/test_optim.cpp.
#pragma once
#include <cstdint>

namespace st::cuda {

void sgd_update(int64_t n, float* w, const float* g, float* momentum_buf, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool first_step,
                const uint8_t* mask);

void adam_update(int64_t n, float* w, const float* g, float* m, float* v, float lr, float beta1,
                 float beta2, float eps, float weight_decay, bool decoupled, int64_t step,
                 const uint8_t* mask);

}  // namespace st::cuda
