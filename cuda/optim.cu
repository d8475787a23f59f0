// cuda/optim.cu — fused masked SGD and Adam/AdamW steps (math in kernels/optim.h, contracts in
// cuda/optim.h). One thread per element over a grid-stride loop: each element is independent, so
// the update is one coalesced pass over w, g and the state, with the mask applied in the same
// pass as a select (a pruned entry stays exactly 0 even when its gradient is NaN).
// Reference: kernels/optim.cpp, kernels/reference.cpp. Tests: tests/cuda/test_optim.cpp.
#include "cuda/compat.h"

#include <cstdint>

#include "cuda/launch.h"
#include "cuda/optim.h"
#include "cuda/runtime.h"
#include "kernels/optim.h"

namespace st::cuda {
namespace {

using launch::blocks_for;
using launch::current_stream;
using launch::kThreads;

// The per-element rules are the CPU's (kernels/optim_rule.h).
// momentum == 0: the buffer (if any) is only zeroed where masked.
__global__ void sgd_plain_kernel(int64_t n, float* __restrict__ w, const float* __restrict__ g,
                                 float* __restrict__ momentum_buf, kernels::SgdRule r,
                                 const uint8_t* __restrict__ mask) {
  ST_GRID_STRIDE(i, n) {
    if (mask && !mask[i]) {
      w[i] = 0.f;
      if (momentum_buf) momentum_buf[i] = 0.f;
      continue;
    }
    w[i] = r.plain(w[i], g[i]);
  }
}

__global__ void sgd_momentum_kernel(int64_t n, float* __restrict__ w, const float* __restrict__ g,
                                    float* __restrict__ momentum_buf, kernels::SgdRule r,
                                    const uint8_t* __restrict__ mask) {
  ST_GRID_STRIDE(i, n) {
    const bool keep = mask == nullptr || mask[i] != 0;
    float buf = momentum_buf[i];
    const float wn = r.with_momentum(w[i], g[i], buf);
    momentum_buf[i] = keep ? buf : 0.f;
    w[i] = keep ? wn : 0.f;
  }
}

__global__ void adam_kernel(int64_t n, float* __restrict__ w, const float* __restrict__ g,
                            float* __restrict__ m, float* __restrict__ v, kernels::AdamRule r,
                            const uint8_t* __restrict__ mask) {
  ST_GRID_STRIDE(i, n) {
    const bool keep = mask == nullptr || mask[i] != 0;
    float mi = m[i], vi = v[i];
    const float wn = r.step(w[i], g[i], mi, vi);
    m[i] = keep ? mi : 0.f;
    v[i] = keep ? vi : 0.f;
    w[i] = keep ? wn : 0.f;
  }
}

}  // namespace

void sgd_update(int64_t n, float* w, const float* g, float* momentum_buf, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool first_step,
                const uint8_t* mask) {
  if (n <= 0) return;
  const kernels::SgdRule r{lr, momentum, 1.0f - dampening, weight_decay, nesterov, first_step};
  if (momentum == 0.0f) {
    ST_LAUNCH(blocks_for(n), kThreads, 0, current_stream(), sgd_plain_kernel)(n, w, g, momentum_buf,
                                                                              r, mask);
  } else {
    ST_LAUNCH(blocks_for(n), kThreads, 0, current_stream(), sgd_momentum_kernel)(
        n, w, g, momentum_buf, r, mask);
  }
  ST_CUDA_CHECK_LAUNCH();
}

void adam_update(int64_t n, float* w, const float* g, float* m, float* v, float lr, float beta1,
                 float beta2, float eps, float weight_decay, bool decoupled, int64_t step,
                 const uint8_t* mask) {
  if (n <= 0) return;
  const kernels::AdamRule r{kernels::adam_constants(lr, beta1, beta2, weight_decay, decoupled, step),
                            beta1, beta2, eps};
  ST_LAUNCH(blocks_for(n), kThreads, 0, current_stream(), adam_kernel)(n, w, g, m, v, r, mask);
  ST_CUDA_CHECK_LAUNCH();
}

}  // namespace st::cuda
