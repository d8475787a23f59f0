// kernels/optim_rule.h — the per-element SGD and Adam/AdamW rules (math in kernels/optim.h), written
// once for every update kernel: on the CPU (kernels/optim.cpp: dense, masked, and the compact values
// of CSR weights) and in CUDA (cuda/optim.cu, cuda/sparse.cu, compiled by nvcc or by g++ for the
// emulator). The kernels differ in how they find elements (all, masked, at CSR nonzeros) and where
// results go; the arithmetic, and so its rounding, is this file's. Pass the rules by value into hot
// loops.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/host_device.h"


namespace st::kernels {

struct SgdRule {
  float lr, momentum, damp, weight_decay;  // damp = 1 − dampening
  bool nesterov, first_step;
  // momentum == 0: the new weight.
  ST_HD float plain(float w, float g) const { return w - lr * (g + weight_decay * w); }
  // momentum != 0: the new weight; buf (the momentum buffer) is read unless first_step, and set.
  ST_HD float with_momentum(float w, float g, float& buf) const {
    const float gd = g + weight_decay * w;
    buf = first_step ? gd : momentum * buf + damp * gd;
    return w - lr * (nesterov ? gd + momentum * buf : buf);
  }
};

// The per-step constants of an Adam/AdamW update (kernels/optim.h adam_constants).
struct AdamConstants {
  float step_size, inv_sqrt_bias2, decay, l2, one_minus_beta1, one_minus_beta2;
};

struct AdamRule {
  AdamConstants c;
  float beta1, beta2, eps;
  // The new weight; m and v (the moment estimates) are read and set.
  ST_HD float step(float w, float g, float& m, float& v) const {
    const float gi = g + c.l2 * w;
    m = beta1 * m + c.one_minus_beta1 * gi;
    v = beta2 * v + c.one_minus_beta2 * gi * gi;
    return w * c.decay - c.step_size * m / (sqrtf(v) * c.inv_sqrt_bias2 + eps);
  }
};

}  // namespace st::kernels
