#include "core/ops.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "cuda/conv.h"
#include "cuda/dense.h"
#include "kernels/conv.h"
#include "kernels/conv_pn.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/onednn.h"
#include "kernels/pool.h"
#include "kernels/sparse_conv.h"
#include "kernels/sparse_cpu.h"

namespace st {

namespace {

DenseBackend g_backend = DenseBackend::onednn;
SparseImpl g_sparse_impl = SparseImpl::native;

bool on_cuda(const Tensor& t) { return t.device() == Device::cuda; }

// Every input of an op on one device: the op runs there.
void check_device(const char* op, const Tensor& x, const Variable& other) {
  if (!other.defined()) return;
  ST_CHECK(other.value().device() == x.device(), op, ": input ", x.str(), " and ",
           other.value().str(), " are on different devices");
}

// A float pointer on the tensor's own device (for code shared by both devices' kernels).
float* data_f32(const Tensor& t) { return on_cuda(t) ? t.cuda_f32() : t.f32(); }

// y += x on the tensors' device.
void add_into(const Tensor& x, Tensor& y) {
  if (on_cuda(y))
    cuda::axpy(x.numel(), 1.f, x.cuda_f32(), y.cuda_f32());
  else
    kernels::axpy(x.numel(), 1.f, x.f32(), y.f32());
}

// oneDNN primitives are created once per shape and reused every step (a per-shape cache: layers of
// identical shape share their primitives, which is safe on one stream). A linear layer splits its
// work by the thread count it was built for, so that is part of its key.
kernels::OnednnLinear& onednn_linear(int batch, int in, int out, bool bias) {
  static std::map<std::tuple<int, int, int, bool, int>, std::unique_ptr<kernels::OnednnLinear>> cache;
  auto& p = cache[{batch, in, out, bias, omp_get_max_threads()}];
  if (!p) p = std::make_unique<kernels::OnednnLinear>(batch, in, out, bias);
  return *p;
}

// oneDNN sizes a convolution's work split for the threads present when it is built.
using ConvKey = std::tuple<int, int, int, int, int, int, int, int, int, int, int, bool, int>;
kernels::OnednnConv2d& onednn_conv(const kernels::Conv2dShape& s, bool bias) {
  static std::map<ConvKey, std::unique_ptr<kernels::OnednnConv2d>> cache;
  auto& p = cache[{s.N, s.C, s.H, s.W, s.OC, s.KH, s.KW, s.stride_h, s.stride_w, s.pad_h, s.pad_w,
                   bias, omp_get_max_threads()}];
  if (!p) p = std::make_unique<kernels::OnednnConv2d>(s, bias);
  return *p;
}

const float* data_or_null(const Variable& v) { return v.defined() ? data_f32(v.value()) : nullptr; }

// ---------------------------------------------------------------------------------------------
struct LinearNode : Node {
  const char* name() const override { return "linear"; }
  int B, IN, OUT;
  DenseBackend backend;
  void backward(const Tensor& dy) override {
    if (on_cuda(dy)) return backward_cuda(dy);
    const float* x = inputs[0].value().f32();
    const float* w = inputs[1].value().f32();
    const bool has_bias = inputs.size() > 2;
    bool acc = false;
    if (needs_grad(0)) {
      if (backend == DenseBackend::onednn) {
        if (inputs[0].has_grad()) {
          Tensor tmp(inputs[0].shape());
          onednn_linear(B, IN, OUT, has_bias).backward_data(dy.f32(), w, tmp.f32());
          accumulate_grad(0, tmp);
        } else {
          Tensor& dx = grad_slot(0, acc);
          onednn_linear(B, IN, OUT, has_bias).backward_data(dy.f32(), w, dx.f32());
        }
      } else {
        Tensor& dx = grad_slot(0, acc);
        kernels::sgemm(false, false, B, IN, OUT, 1.f, dy.f32(), OUT, w, IN, acc ? 1.f : 0.f,
                       dx.f32(), IN);
      }
    }
    const bool need_w = needs_grad(1), need_b = has_bias && needs_grad(2);
    if (!need_w && !need_b) return;
    if (backend == DenseBackend::onednn && need_w && (need_b || !has_bias)) {
      bool acc_w = false, acc_b = false;
      Tensor& dw = grad_slot(1, acc_w);
      float* db = nullptr;
      if (has_bias) db = grad_slot(2, acc_b).f32();
      if (acc_w == acc_b || !has_bias) {
        onednn_linear(B, IN, OUT, has_bias).backward_weights(x, dy.f32(), dw.f32(), db, acc_w);
        return;
      }
      // Mixed state (only one of them accumulated before): do them separately.
      kernels::sgemm(true, false, OUT, IN, B, 1.f, dy.f32(), OUT, x, IN, acc_w ? 1.f : 0.f,
                     dw.f32(), IN);
      kernels::bias_grad_rows(B, OUT, dy.f32(), db, acc_b);
      return;
    }
    if (need_w) {
      Tensor& dw = grad_slot(1, acc);
      kernels::sgemm(true, false, OUT, IN, B, 1.f, dy.f32(), OUT, x, IN, acc ? 1.f : 0.f, dw.f32(),
                     IN);
    }
    if (need_b) {
      Tensor& db = grad_slot(2, acc);
      kernels::bias_grad_rows(B, OUT, dy.f32(), db.f32(), acc);
    }
  }
  // dx (B, IN) = dy · W, dW (OUT, IN) (+)= dyᵀ · x, db (OUT) (+)= Σ_rows dy: SGEMMs whose beta says
  // whether they accumulate.
  void backward_cuda(const Tensor& dy) {
    const float* x = inputs[0].value().cuda_f32();
    const float* w = inputs[1].value().cuda_f32();
    bool acc = false;
    if (needs_grad(0)) {
      Tensor& dx = grad_slot(0, acc);
      cuda::sgemm(false, false, B, IN, OUT, 1.f, dy.cuda_f32(), OUT, w, IN, acc ? 1.f : 0.f,
                  dx.cuda_f32(), IN);
    }
    if (needs_grad(1)) {
      Tensor& dw = grad_slot(1, acc);
      cuda::sgemm(true, false, OUT, IN, B, 1.f, dy.cuda_f32(), OUT, x, IN, acc ? 1.f : 0.f,
                  dw.cuda_f32(), IN);
    }
    if (inputs.size() > 2 && needs_grad(2)) {
      Tensor& db = grad_slot(2, acc);
      cuda::bias_grad_rows(B, OUT, dy.cuda_f32(), db.cuda_f32(), acc);
    }
  }
};

kernels::Conv2dShape conv_shape(const Shape& x, const Shape& w, const Conv2dOptions& o) {
  kernels::Conv2dShape s;
  s.N = static_cast<int>(x[0]);
  s.C = static_cast<int>(x[1]);
  s.H = static_cast<int>(x[2]);
  s.W = static_cast<int>(x[3]);
  s.OC = static_cast<int>(w[0]);
  s.KH = static_cast<int>(w[2]);
  s.KW = static_cast<int>(w[3]);
  s.stride_h = o.stride_h;
  s.stride_w = o.stride_w;
  s.pad_h = o.pad_h;
  s.pad_w = o.pad_w;
  return s;
}

struct Conv2dNode : Node {
  const char* name() const override { return "conv2d"; }
  kernels::Conv2dShape s;
  DenseBackend backend;
  Tensor xp;  // cpu, direct batch-innermost conv (kernels/conv_pn.h): the padded input (C, Hp, Wp, N)
  void backward(const Tensor& dy) override {
    if (on_cuda(dy)) return backward_cuda(dy);
    if (xp.defined()) return backward_pn(dy);
    const float* x = inputs[0].value().f32();
    const float* w = inputs[1].value().f32();
    const bool has_bias = inputs.size() > 2;
    Tensor workspace;
    auto ws = [&]() -> float* {
      if (!workspace.defined())
        workspace = Tensor({static_cast<int64_t>(kernels::conv2d_workspace_floats(s))});
      return workspace.f32();
    };
    // The input gradient goes to dx_out: the grad slot, or a fresh tensor added to it afterwards.
    const bool need_x = needs_grad(0), had_x = need_x && inputs[0].has_grad();
    Tensor dx;
    float* dx_out = nullptr;
    if (need_x) {
      bool acc = false;
      if (had_x) dx = Tensor(inputs[0].shape());
      dx_out = had_x ? dx.f32() : grad_slot(0, acc).f32();
    }
    const bool need_w = needs_grad(1), need_b = has_bias && needs_grad(2);
    // Weight and bias grads are produced together; a grad that is not wanted goes to scratch.
    bool acc_w = false, acc_b = false;
    Tensor scratch_w, scratch_b;
    float* dw = nullptr;
    float* db = nullptr;
    if (need_w || need_b) {
      if (need_w) {
        dw = grad_slot(1, acc_w).f32();
      } else {
        scratch_w = Tensor(inputs[1].shape());
        dw = scratch_w.f32();
      }
      if (has_bias) {
        if (need_b) {
          db = grad_slot(2, acc_b).f32();
        } else {
          scratch_b = Tensor(inputs[2].shape());
          db = scratch_b.f32();
        }
      }
      // Both must share one accumulate flag: when they differ, zero the fresh one and accumulate.
      if (has_bias && acc_w != acc_b) {
        if (!acc_w) kernels::fill(inputs[1].value().numel(), 0.f, dw);
        if (!acc_b) kernels::fill(inputs[2].value().numel(), 0.f, db);
        acc_w = true;
      }
    }
    // Few input channels (a first layer): the direct kernel beats oneDNN's on every shape measured.
    const bool onednn_w = backend == DenseBackend::onednn && !kernels::conv2d_direct_weight_grad(s);
    if (dw && need_x && onednn_w) {  // both passes in one call: dy is reordered once
      onednn_conv(s, has_bias).backward(dy.f32(), w, dx_out, x, dw, db, acc_w);
    } else {
      if (need_x) {
        if (backend == DenseBackend::onednn)
          onednn_conv(s, has_bias).backward_data(dy.f32(), w, dx_out);
        else
          kernels::conv2d_backward_data(s, dy.f32(), w, dx_out, ws());
      }
      if (dw) {
        if (onednn_w)
          onednn_conv(s, has_bias).backward_weights(x, dy.f32(), dw, db, acc_w);
        else
          kernels::conv2d_backward_weights(s, x, dy.f32(), dw, db, acc_w, ws());
      }
    }
    if (had_x) accumulate_grad(0, dx);
  }
  // The direct conv in the batch-innermost layout: dy is made (OC, P, N) once for both passes.
  void backward_pn(const Tensor& dy) {
    const bool has_bias = inputs.size() > 2;
    const int P = s.OH() * s.OW();
    const bool need_x = needs_grad(0), need_w = needs_grad(1), need_b = has_bias && needs_grad(2);
    Tensor dyp;
    if (need_x || need_w) {
      dyp = Tensor({int64_t(s.OC) * P * s.N});
      kernels::nchw_to_pn(s.OC, s.N, P, dy.f32(), dyp.f32());
    }
    if (need_x) {
      Tensor dxp({int64_t(s.C) * kernels::padded_h(s) * kernels::padded_w(s) * s.N});
      kernels::pn_conv_backward_data(s, inputs[1].value().f32(), dyp.f32(), dxp.f32());
      const bool had = inputs[0].has_grad();
      Tensor dx = had ? Tensor(inputs[0].shape()) : Tensor();
      bool acc = false;
      kernels::pn_padded_to_nchw(s, dxp.f32(), had ? dx.f32() : grad_slot(0, acc).f32());
      if (had) accumulate_grad(0, dx);
    }
    if (need_w) {
      bool acc = false;
      float* dw = grad_slot(1, acc).f32();
      kernels::pn_conv_backward_weights(s, dyp.f32(), xp.f32(), dw, acc);
    }
    if (need_b) {
      bool acc = false;
      float* db = grad_slot(2, acc).f32();
      kernels::bias_grad_channels(s.N, s.OC, P, dy.f32(), db, acc);
    }
  }
  // The same contracts as the cpu path, with cuda::conv2d_* (im2col + SGEMM over the batch).
  void backward_cuda(const Tensor& dy) {
    const float* x = inputs[0].value().cuda_f32();
    const float* w = inputs[1].value().cuda_f32();
    const bool has_bias = inputs.size() > 2;
    Tensor workspace({static_cast<int64_t>(cuda::conv2d_workspace_floats(s))}, DType::f32,
                     Device::cuda);
    if (needs_grad(0)) {
      const bool had = inputs[0].has_grad();
      Tensor dx = had ? Tensor(inputs[0].shape(), DType::f32, Device::cuda) : Tensor();
      bool acc = false;
      float* out = had ? dx.cuda_f32() : grad_slot(0, acc).cuda_f32();
      cuda::conv2d_backward_data(s, dy.cuda_f32(), w, out, workspace.cuda_f32());
      if (had) accumulate_grad(0, dx);
    }
    const bool need_w = needs_grad(1), need_b = has_bias && needs_grad(2);
    if (!need_w && !need_b) return;
    bool acc_w = false, acc_b = false;
    Tensor scratch_w, scratch_b;
    float* dw;
    if (need_w) {
      dw = grad_slot(1, acc_w).cuda_f32();
    } else {
      scratch_w = Tensor(inputs[1].shape(), DType::f32, Device::cuda);
      dw = scratch_w.cuda_f32();
    }
    float* db = nullptr;
    if (has_bias) {
      if (need_b) {
        db = grad_slot(2, acc_b).cuda_f32();
      } else {
        scratch_b = Tensor(inputs[2].shape(), DType::f32, Device::cuda);
        db = scratch_b.cuda_f32();
      }
    }
    if (has_bias && acc_w != acc_b) {
      if (!acc_w) cuda::fill(inputs[1].value().numel(), 0.f, dw);
      if (!acc_b) cuda::fill(inputs[2].value().numel(), 0.f, db);
      acc_w = true;
    }
    cuda::conv2d_backward_weights(s, x, dy.cuda_f32(), dw, db, acc_w, workspace.cuda_f32());
  }
};

kernels::Pool2dShape pool_shape(const Shape& x, const Pool2dOptions& o) {
  kernels::Pool2dShape s;
  s.N = static_cast<int>(x[0]);
  s.C = static_cast<int>(x[1]);
  s.H = static_cast<int>(x[2]);
  s.W = static_cast<int>(x[3]);
  s.KH = o.kernel_h;
  s.KW = o.kernel_w;
  s.stride_h = o.stride_h;
  s.stride_w = o.stride_w;
  s.pad_h = o.pad_h;
  s.pad_w = o.pad_w;
  return s;
}

// Activation-gradient kernels overwrite; when the input already has a grad, go through a temporary.
// The kernel gets a pointer on the input's device.
template <class F>
void write_or_accumulate(Node& node, Variable& in, F&& kernel) {
  const Device d = in.value().device();
  if (in.has_grad()) {
    Tensor tmp(in.shape(), DType::f32, d);
    kernel(data_f32(tmp));
    add_into(tmp, in.grad());
  } else {
    in.grad() = Tensor(in.shape(), DType::f32, d);
    kernel(data_f32(in.grad()));
  }
}

struct MaxPoolNode : Node {
  const char* name() const override { return "max_pool2d"; }
  kernels::Pool2dShape s;
  Tensor argmax;
  void backward(const Tensor& dy) override {
    write_or_accumulate(*this, inputs[0], [&](float* dx) {
      if (on_cuda(dy))
        cuda::max_pool2d_backward(s, dy.cuda_f32(), argmax.cuda_i32(), dx);
      else
        kernels::max_pool2d_backward(s, dy.f32(), argmax.i32(), dx);
    });
  }
};

struct AvgPoolNode : Node {
  const char* name() const override { return "avg_pool2d"; }
  kernels::Pool2dShape s;
  void backward(const Tensor& dy) override {
    write_or_accumulate(*this, inputs[0], [&](float* dx) {
      if (on_cuda(dy))
        cuda::avg_pool2d_backward(s, dy.cuda_f32(), dx);
      else
        kernels::avg_pool2d_backward(s, dy.f32(), dx);
    });
  }
};

struct ReluNode : Node {
  const char* name() const override { return "relu"; }
  Tensor y;
  void backward(const Tensor& dy) override {
    write_or_accumulate(*this, inputs[0], [&](float* dx) {
      if (on_cuda(dy))
        cuda::relu_backward(dy.numel(), dy.cuda_f32(), y.cuda_f32(), dx);
      else
        kernels::relu_backward(dy.numel(), dy.f32(), y.f32(), dx);
    });
  }
};

struct DropoutNode : Node {
  const char* name() const override { return "dropout"; }
  Tensor keep;
  float scale = 1.f;
  void backward(const Tensor& dy) override {
    write_or_accumulate(*this, inputs[0], [&](float* dx) {
      if (on_cuda(dy))
        cuda::dropout_apply(dy.numel(), dy.cuda_f32(), keep.cuda_u8(), scale, dx);
      else
        kernels::dropout_apply(dy.numel(), dy.f32(), keep.u8(), scale, dx);
    });
  }
};

struct ReshapeNode : Node {
  const char* name() const override { return "flatten"; }
  void backward(const Tensor& dy) override { accumulate_grad(0, dy.reshape(inputs[0].shape())); }
};

struct Transpose2dNode : Node {
  const char* name() const override { return "transpose2d"; }
  void backward(const Tensor& dy) override {
    if (!needs_grad(0)) return;
    Tensor dx(inputs[0].shape());
    kernels::transpose_dense(static_cast<int>(dy.shape()[0]), static_cast<int>(dy.shape()[1]), dy.f32(), dx.f32());
    accumulate_grad(0, std::move(dx));
  }
};

struct AddNode : Node {
  const char* name() const override { return "add"; }
  void backward(const Tensor& dy) override {
    for (size_t i = 0; i < 2; ++i)
      if (needs_grad(i)) {
        if (inputs[i].has_grad())
          add_into(dy, inputs[i].grad());
        else
          inputs[i].grad() = dy.clone();
      }
  }
};

struct SoftmaxXentNode : Node {
  const char* name() const override { return "softmax_cross_entropy"; }
  Tensor probs, labels;
  void backward(const Tensor& dloss) override {
    const int B = static_cast<int>(probs.dim(0)), C = static_cast<int>(probs.dim(1));
    const float g = dloss.item();  // on cuda one float comes back (the seed of backward)
    write_or_accumulate(*this, inputs[0], [&](float* dx) {
      if (on_cuda(probs))
        cuda::softmax_xent_backward(B, C, probs.cuda_f32(), labels.cuda_i32(), g, dx);
      else
        kernels::softmax_xent_backward(B, C, probs.f32(), labels.i32(), g, dx);
    });
  }
};

struct DistillNode : Node {
  const char* name() const override { return "distillation_loss"; }
  Tensor grad;  // d loss / d logits for a unit output gradient, (B, C), on the logits' device
  void backward(const Tensor& dloss) override {
    const float g = dloss.item();
    write_or_accumulate(*this, inputs[0], [&](float* dx) {
      if (on_cuda(grad)) {
        cuda::scale(grad.numel(), g, grad.cuda_f32(), dx);
        return;
      }
      const float* d = grad.f32();
      for (int64_t i = 0; i < grad.numel(); ++i) dx[i] = g * d[i];
    });
  }
};

}  // namespace

void set_dense_backend(DenseBackend b) { g_backend = b; }
DenseBackend dense_backend() { return g_backend; }

const char* dense_backend_name(DenseBackend b) {
  return b == DenseBackend::native ? "native" : "onednn";
}

void set_sparse_impl(SparseImpl impl) { g_sparse_impl = impl; }
SparseImpl sparse_impl() { return g_sparse_impl; }

Variable linear(const Variable& x, const Variable& w, const Variable& b) {
  check_device("linear", x.value(), w);
  check_device("linear", x.value(), b);
  ST_CHECK(x.value().ndim() == 2 && w.value().ndim() == 2 && x.shape()[1] == w.shape()[1],
           "linear: input ", x.value().str(), " does not match weight ", w.value().str());
  const int B = static_cast<int>(x.shape()[0]), IN = static_cast<int>(x.shape()[1]),
            OUT = static_cast<int>(w.shape()[0]);
  if (b.defined())
    ST_CHECK(b.value().numel() == OUT, "linear: bias ", b.value().str(), " for ", OUT, " outputs");
  Tensor y({B, OUT}, DType::f32, x.value().device());
  if (on_cuda(y)) {
    cuda::sgemm(false, true, B, OUT, IN, 1.f, x.value().cuda_f32(), IN, w.value().cuda_f32(), IN,
                0.f, y.cuda_f32(), OUT);
    if (b.defined()) cuda::bias_add_rows(B, OUT, b.value().cuda_f32(), y.cuda_f32());
  } else if (g_backend == DenseBackend::onednn) {
    onednn_linear(B, IN, OUT, b.defined())
        .forward(x.value().f32(), w.value().f32(), data_or_null(b), y.f32());
  } else {
    kernels::sgemm(false, true, B, OUT, IN, 1.f, x.value().f32(), IN, w.value().f32(), IN, 0.f,
                   y.f32(), OUT);
    if (b.defined()) kernels::bias_add_rows(B, OUT, b.value().f32(), y.f32());
  }
  auto node = std::make_shared<LinearNode>();
  node->B = B;
  node->IN = IN;
  node->OUT = OUT;
  node->backend = g_backend;
  node->inputs = {x, w};
  if (b.defined()) node->inputs.push_back(b);
  return make_result(std::move(y), std::move(node));
}

Variable conv2d(const Variable& x, const Variable& w, const Variable& b, const Conv2dOptions& opt) {
  check_device("conv2d", x.value(), w);
  check_device("conv2d", x.value(), b);
  ST_CHECK(x.value().ndim() == 4 && w.value().ndim() == 4 && x.shape()[1] == w.shape()[1],
           "conv2d: input ", x.value().str(), " does not match weight ", w.value().str());
  kernels::Conv2dShape s = conv_shape(x.shape(), w.shape(), opt);
  ST_CHECK(s.OH() > 0 && s.OW() > 0, "conv2d: kernel ", s.KH, "x", s.KW, " does not fit input ",
           x.value().str(), " with padding ", s.pad_h, "x", s.pad_w);
  if (b.defined())
    ST_CHECK(b.value().numel() == s.OC, "conv2d: bias ", b.value().str(), " for ", s.OC,
             " channels");
  Tensor y({s.N, s.OC, s.OH(), s.OW()}, DType::f32, x.value().device());
  Tensor xp;
  if (on_cuda(y)) {
    Tensor ws({static_cast<int64_t>(cuda::conv2d_workspace_floats(s))}, DType::f32, Device::cuda);
    cuda::conv2d_forward(s, x.value().cuda_f32(), w.value().cuda_f32(), data_or_null(b),
                         y.cuda_f32(), ws.cuda_f32());
  } else if (g_backend == DenseBackend::onednn && kernels::pn_conv_fits(s)) {
    // Shapes that oneDNN runs as im2col + GEMM: our direct conv, batch innermost.
    xp = Tensor({int64_t(s.C) * kernels::padded_h(s) * kernels::padded_w(s) * s.N});
    kernels::nchw_to_pn_padded(s, x.value().f32(), xp.f32());
    Tensor yp({int64_t(s.OC) * s.OH() * s.OW() * s.N});
    kernels::pn_conv_forward(s, w.value().f32(), xp.f32(), yp.f32());
    kernels::pn_to_nchw(s.OC, s.N, s.OH() * s.OW(), yp.f32(), data_or_null(b), y.f32());
  } else if (g_backend == DenseBackend::onednn) {
    onednn_conv(s, b.defined()).forward(x.value().f32(), w.value().f32(), data_or_null(b), y.f32());
  } else {
    Tensor ws({static_cast<int64_t>(kernels::conv2d_workspace_floats(s))});
    kernels::conv2d_forward(s, x.value().f32(), w.value().f32(), data_or_null(b), y.f32(), ws.f32());
  }
  auto node = std::make_shared<Conv2dNode>();
  node->s = s;
  node->backend = g_backend;
  node->xp = std::move(xp);
  node->inputs = {x, w};
  if (b.defined()) node->inputs.push_back(b);
  return make_result(std::move(y), std::move(node));
}

Variable max_pool2d(const Variable& x, const Pool2dOptions& opt) {
  ST_CHECK(x.value().ndim() == 4, "max_pool2d: expected (N, C, H, W), got ", x.value().str());
  kernels::Pool2dShape s = pool_shape(x.shape(), opt);
  ST_CHECK(s.OH() > 0 && s.OW() > 0, "max_pool2d: window does not fit ", x.value().str());
  const Device d = x.value().device();
  Tensor y({s.N, s.C, s.OH(), s.OW()}, DType::f32, d);
  auto node = std::make_shared<MaxPoolNode>();
  node->s = s;
  node->argmax = Tensor(y.shape(), DType::i32, d);
  if (on_cuda(y))
    cuda::max_pool2d_forward(s, x.value().cuda_f32(), y.cuda_f32(), node->argmax.cuda_i32());
  else
    kernels::max_pool2d_forward(s, x.value().f32(), y.f32(), node->argmax.i32());
  node->inputs = {x};
  return make_result(std::move(y), std::move(node));
}

Variable avg_pool2d(const Variable& x, const Pool2dOptions& opt) {
  ST_CHECK(x.value().ndim() == 4, "avg_pool2d: expected (N, C, H, W), got ", x.value().str());
  kernels::Pool2dShape s = pool_shape(x.shape(), opt);
  ST_CHECK(s.OH() > 0 && s.OW() > 0, "avg_pool2d: window does not fit ", x.value().str());
  Tensor y({s.N, s.C, s.OH(), s.OW()}, DType::f32, x.value().device());
  if (on_cuda(y))
    cuda::avg_pool2d_forward(s, x.value().cuda_f32(), y.cuda_f32());
  else
    kernels::avg_pool2d_forward(s, x.value().f32(), y.f32());
  auto node = std::make_shared<AvgPoolNode>();
  node->s = s;
  node->inputs = {x};
  return make_result(std::move(y), std::move(node));
}

Variable relu(const Variable& x) {
  Tensor y(x.shape(), DType::f32, x.value().device());
  if (on_cuda(y))
    cuda::relu_forward(y.numel(), x.value().cuda_f32(), y.cuda_f32());
  else
    kernels::relu_forward(y.numel(), x.value().f32(), y.f32());
  auto node = std::make_shared<ReluNode>();
  node->y = y;
  node->inputs = {x};
  return make_result(std::move(y), std::move(node));
}

Variable dropout(const Variable& x, float p, bool training, Rng& rng) {
  ST_CHECK(p >= 0.f && p < 1.f, "dropout: p must be in [0, 1), got ", p);
  if (!training || p == 0.f) return x;
  auto node = std::make_shared<DropoutNode>();
  const int64_t n = x.value().numel();
  node->scale = 1.f / (1.f - p);
  if (on_cuda(x.value())) {
    // One draw from the model's stream seeds this call's counter-based mask: the stream (and so a
    // checkpoint's rng state) advances by one per dropout call, whatever the tensor size.
    const uint64_t seed = rng.next_u64();
    node->keep = Tensor(x.shape(), DType::u8, Device::cuda);
    cuda::dropout_mask(n, p, seed, 0, node->keep.cuda_u8());
    Tensor y(x.shape(), DType::f32, Device::cuda);
    cuda::dropout_apply(n, x.value().cuda_f32(), node->keep.cuda_u8(), node->scale, y.cuda_f32());
    node->inputs = {x};
    return make_result(std::move(y), std::move(node));
  }
  node->keep = Tensor(x.shape(), DType::u8);
  uint8_t* keep = node->keep.u8();
  for (int64_t i = 0; i < n; ++i) keep[i] = rng.uniform() >= p ? 1 : 0;
  Tensor y(x.shape());
  kernels::dropout_apply(n, x.value().f32(), keep, node->scale, y.f32());
  node->inputs = {x};
  return make_result(std::move(y), std::move(node));
}

Variable flatten(const Variable& x) {
  ST_CHECK(x.value().ndim() >= 1, "flatten: needs a batch dimension");
  const int64_t n = x.shape()[0];
  Tensor y = x.value().reshape({n, n ? x.value().numel() / n : 0});
  auto node = std::make_shared<ReshapeNode>();
  node->inputs = {x};
  return make_result(std::move(y), std::move(node));
}

Variable transpose2d(const Variable& x) {
  ST_CHECK(x.value().ndim() == 2, "transpose2d: expected a 2-d tensor, got ", x.value().str());
  ST_CHECK(!x.value().is_cuda(), "transpose2d: runs on the cpu only");
  const int R = static_cast<int>(x.shape()[0]), C = static_cast<int>(x.shape()[1]);
  Tensor y({C, R});
  kernels::transpose_dense(R, C, x.value().f32(), y.f32());
  auto node = std::make_shared<Transpose2dNode>();
  node->inputs = {x};
  return make_result(std::move(y), std::move(node));
}

Variable add(const Variable& a, const Variable& b) {
  ST_CHECK(a.shape() == b.shape(), "add: shapes ", a.value().str(), " and ", b.value().str(),
           " differ");
  check_device("add", a.value(), b);
  Tensor y(a.shape(), DType::f32, a.value().device());
  if (on_cuda(y))
    cuda::add(y.numel(), a.value().cuda_f32(), b.value().cuda_f32(), y.cuda_f32());
  else
    kernels::add(y.numel(), a.value().f32(), b.value().f32(), y.f32());
  auto node = std::make_shared<AddNode>();
  node->inputs = {a, b};
  return make_result(std::move(y), std::move(node));
}

Variable softmax_cross_entropy(const Variable& logits, const Tensor& labels) {
  ST_CHECK(logits.value().ndim() == 2, "softmax_cross_entropy: expected logits (B, C), got ",
           logits.value().str());
  const int B = static_cast<int>(logits.shape()[0]), C = static_cast<int>(logits.shape()[1]);
  ST_CHECK(labels.dtype() == DType::i32 && labels.numel() == B,
           "softmax_cross_entropy: expected ", B, " i32 labels, got ", labels.str());
  if (on_cuda(logits.value())) {
    // Labels are checked where they are made (the dataset); out of range, the device loss is NaN
    // and the trainer stops with "training diverged".
    auto node = std::make_shared<SoftmaxXentNode>();
    node->probs = Tensor(logits.shape(), DType::f32, Device::cuda);
    node->labels = labels.to(Device::cuda);
    const double loss = cuda::softmax_xent_forward(B, C, logits.value().cuda_f32(),
                                                   node->labels.cuda_i32(), node->probs.cuda_f32());
    Tensor out = Tensor::full({1}, static_cast<float>(loss), Device::cuda);
    node->inputs = {logits};
    return make_result(std::move(out), std::move(node));
  }
  const int32_t* lab = labels.i32();
  for (int i = 0; i < B; ++i)
    ST_CHECK(lab[i] >= 0 && lab[i] < C, "softmax_cross_entropy: label ", lab[i],
             " outside [0, ", C, ")");
  auto node = std::make_shared<SoftmaxXentNode>();
  node->probs = Tensor(logits.shape());
  node->labels = labels;
  const double loss =
      kernels::softmax_xent_forward(B, C, logits.value().f32(), lab, node->probs.f32());
  Tensor out = Tensor::full({1}, static_cast<float>(loss));
  node->inputs = {logits};
  return make_result(std::move(out), std::move(node));
}

Variable distillation_loss(const Variable& logits, const Tensor& labels, const Tensor& teacher_logits,
                           float temperature, float alpha) {
  ST_CHECK(logits.value().ndim() == 2, "distillation_loss: expected logits (B, C), got ", logits.value().str());
  const int B = static_cast<int>(logits.shape()[0]), C = static_cast<int>(logits.shape()[1]);
  ST_CHECK(teacher_logits.shape() == logits.shape(), "distillation_loss: teacher logits ",
           teacher_logits.str(), " do not match ", logits.value().str());
  ST_CHECK(labels.dtype() == DType::i32 && labels.numel() == B, "distillation_loss: expected ", B,
           " i32 labels, got ", labels.str());
  ST_CHECK(temperature > 0.f, "distillation_loss: temperature must be > 0");
  const Device device = logits.value().device();
  // On cuda the (B, C) logits come to the host: the loss is a few B·C exps, not worth a kernel.
  const Tensor student_host = logits.value().to(Device::cpu);
  const Tensor teacher_host = teacher_logits.to(Device::cpu);
  const Tensor labels_host = labels.to(Device::cpu);
  const float* s = student_host.f32();
  const float* t = teacher_host.f32();
  const int32_t* lab = labels_host.i32();
  auto node = std::make_shared<DistillNode>();
  node->grad = Tensor({B, C});
  float* d = node->grad.f32();
  const double T = temperature;
  std::vector<double> ps(C), pt(C), p1(C);
  double loss = 0;
  // Softmax in double with the max subtracted: z/T, then plain z for the hard term.
  auto softmax = [&](const float* z, double scale, std::vector<double>& p) {
    double mx = z[0] * scale;
    for (int c = 1; c < C; ++c) mx = std::max(mx, z[c] * scale);
    double sum = 0;
    for (int c = 0; c < C; ++c) sum += (p[c] = std::exp(z[c] * scale - mx));
    for (int c = 0; c < C; ++c) p[c] /= sum;
  };
  for (int b = 0; b < B; ++b) {
    const float* sb = s + int64_t(b) * C;
    const float* tb = t + int64_t(b) * C;
    ST_CHECK(lab[b] >= 0 && lab[b] < C, "distillation_loss: label ", lab[b], " outside [0, ", C, ")");
    softmax(sb, 1.0 / T, ps);
    softmax(tb, 1.0 / T, pt);
    softmax(sb, 1.0, p1);
    double kl = 0;
    for (int c = 0; c < C; ++c)
      if (pt[c] > 0) kl += pt[c] * (std::log(pt[c]) - std::log(std::max(ps[c], 1e-300)));
    loss += alpha * T * T * kl - (1.0 - alpha) * std::log(std::max(p1[lab[b]], 1e-300));
    for (int c = 0; c < C; ++c) {
      const double hard = p1[c] - (c == lab[b] ? 1.0 : 0.0);
      d[int64_t(b) * C + c] = static_cast<float>((alpha * T * (ps[c] - pt[c]) + (1.0 - alpha) * hard) / B);
    }
  }
  node->grad = node->grad.to(device);
  Tensor out = Tensor::full({1}, static_cast<float>(loss / B), device);
  node->inputs = {logits};
  return make_result(std::move(out), std::move(node));
}

int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  const int B = static_cast<int>(logits.dim(0)), C = static_cast<int>(logits.dim(1));
  ST_ASSERT(labels.dtype() == DType::i32 && labels.numel() == B, "count_correct: labels ",
            labels.str(), " for logits ", logits.str());
  std::vector<int32_t> pred(B);
  if (on_cuda(logits)) {
    Tensor dpred({B}, DType::i32, Device::cuda);
    cuda::argmax_rows(B, C, logits.cuda_f32(), dpred.cuda_i32());
    Tensor host = dpred.to(Device::cpu);
    std::copy_n(host.i32(), B, pred.data());
  } else {
    kernels::argmax_rows(B, C, logits.f32(), pred.data());
  }
  const Tensor labels_host = labels.to(Device::cpu);
  int64_t correct = 0;
  for (int i = 0; i < B; ++i) correct += pred[i] == labels_host.i32()[i];
  return correct;
}

}  // namespace st
