// kernels/onednn.h — oneDNN (2.x) fast path for the dense CPU ops: inner product / matmul and
// convolution, forward, backward-data and backward-weights, on plain layouts (ab, nchw, oihw) so masks
// and our own kernels see the same memory. Each object is created once per shape (memory desc →
// primitive desc → primitive) and executed many times on raw pointers; no allocation per call except
// oneDNN's own scratchpad, which each object owns.
//   OnednnLinear:  y (B, OUT) = x (B, IN) · w (OUT, IN)ᵀ + b (OUT)
//                  dx (B, IN) = dy · w                                   (overwrites)
//                  dw (OUT, IN) (+)= dyᵀ · x ; db (OUT) (+)= Σ_B dy     (accumulate flag)
//   OnednnConv2d:  same contract as kernels/conv.h.
// Reference: kernels/reference.h. Tests: tests/kernels/test_onednn.cpp.
#pragma once
#include <memory>
#include <string>

#include "kernels/conv.h"
#include "kernels/isa.h"

namespace st::kernels {

// Caps oneDNN's own instruction set at `isa`'s level (sse41 for generic) unless DNNL_MAX_CPU_ISA is
// set. oneDNN accepts this only before its first primitive, so only the first call can take effect.
void limit_onednn_isa(Isa isa);
// oneDNN's effective instruction set, e.g. "avx512_core" or "avx2".
std::string onednn_isa_name();

class OnednnLinear {
 public:
  OnednnLinear(int batch, int in_features, int out_features, bool has_bias);
  ~OnednnLinear();
  void forward(const float* x, const float* w, const float* b, float* y);
  void backward_data(const float* dy, const float* w, float* dx);
  void backward_weights(const float* x, const float* dy, float* dw, float* db, bool accumulate);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class OnednnConv2d {
 public:
  OnednnConv2d(const Conv2dShape& shape, bool has_bias);
  ~OnednnConv2d();
  void forward(const float* x, const float* w, const float* b, float* y);
  void backward_data(const float* dy, const float* w, float* dx);
  void backward_weights(const float* x, const float* dy, float* dw, float* db, bool accumulate);
  // backward_data then backward_weights, with dy reordered once when both passes want it blocked.
  void backward(const float* dy, const float* w, float* dx, const float* x, float* dw, float* db,
                bool accumulate);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace st::kernels
