// core/sparse_ops.cpp — the CSR twins of linear and conv2d (declared in core/ops.h).
//   sparse_linear: x (B, IN), W_csr (OUT, IN), b (OUT) -> y (B, OUT)
//   sparse_conv2d: x (N, C, H, W), W_csr (OC, C·KH·KW), b (OC) -> y (N, OC, OH, OW)
//   sparse_conv2d_pool: the same, then [relu and] a non-overlapping max pool, in one node (cpu);
//                       input and output NCHW or batch innermost (C, H, W, N) between two such nodes
//   sparse_linear_fm: xt (IN, B), W_csr (OUT, IN), b (OUT) -> yt (OUT, B), feature-major (cpu)
// Backward does no dense weight-sized work (docs/architecture.md invariant 3): dx through the transposed
// copy Wt, dW only at the nonzeros (SDDMM) into W's `values` grad, db dense.
// The CPU conv is a direct sparse convolution in the batch-innermost layout (kernels/sparse_conv.h:
// no im2col matrix; its dx scatters through W itself); the CUDA conv is batch im2col + SpMM.
// On cuda the same products run on the CsrWeight's device mirror (dw, dwt) with our kernels
// (cuda/sparse.h) or cuSPARSE (cuda/cusparse.h), chosen by sparse_impl(); the layout helpers and
// the bias come from cuda/conv.h and cuda/dense.h.
#include <cstring>

#include "core/ops.h"
#include "cuda/conv.h"
#include "cuda/cusparse.h"
#include "cuda/dense.h"
#include "cuda/sparse.h"
#include "kernels/elementwise.h"
#include "kernels/parallel.h"
#include "kernels/sparse_conv.h"
#include "kernels/sparse_cpu.h"

namespace st {

namespace {

void check_device(const char* op, const Tensor& x, const CsrWeight& w, const Variable& b) {
  ST_CHECK(x.device() == w.device, op, ": input ", x.str(), " is on ", device_name(x.device()),
           ", the CSR weight on ", device_name(w.device));
  if (b.defined())
    ST_CHECK(b.value().device() == x.device(), op, ": bias ", b.value().str(), " and input ",
             x.str(), " are on different devices");
}

// The device CSR products, by sparse_impl(): our kernels or cuSPARSE (same signatures).
bool use_cusparse() { return sparse_impl() == SparseImpl::cusparse; }
void dev_spmm(const cuda::DeviceCsr& A, const float* B, int N, float* C, float beta) {
  if (use_cusparse())
    cuda::cusparse::csr_spmm(A, B, N, C, beta);
  else
    cuda::csr_spmm(A, B, N, C, beta);
}
void dev_sddmm(const cuda::DeviceCsr& A, const float* X, const float* Y, int N, float* out,
               bool accumulate) {
  if (use_cusparse())
    cuda::cusparse::csr_sddmm(A, X, Y, N, out, accumulate);
  else
    cuda::csr_sddmm(A, X, Y, N, out, accumulate);
}
void dev_spmm_xwt(const cuda::DeviceCsr& W, const float* x, int batch, float* y, float beta) {
  if (use_cusparse())
    cuda::cusparse::csr_spmm_xwt(W, x, batch, y, beta);
  else
    cuda::csr_spmm_xwt(W, x, batch, y, beta);
}
void dev_spmm_dyw(const cuda::DeviceCsr& Wt, const float* dy, int batch, float* dx, float beta) {
  if (use_cusparse())
    cuda::cusparse::csr_spmm_dyw(Wt, dy, batch, dx, beta);
  else
    cuda::csr_spmm_dyw(Wt, dy, batch, dx, beta);
}
void dev_sddmm_dyx(const cuda::DeviceCsr& W, const float* dy, const float* x, int batch,
                   float* dw, bool accumulate) {
  if (use_cusparse())
    cuda::cusparse::csr_sddmm_dyx(W, dy, x, batch, dw, accumulate);
  else
    cuda::csr_sddmm_dyx(W, dy, x, batch, dw, accumulate);
}

struct SparseLinearNode : Node {
  const char* name() const override { return relu ? "sparse_linear_relu" : "sparse_linear"; }
  std::shared_ptr<CsrWeight> w;
  int B = 0;
  Tensor x_tiles;  // cpu: the forward's packed batch tiles of x, reused by the weight gradient
  bool relu = false;
  Tensor y;        // with relu: the output, whose sign masks the incoming gradient
  void backward(const Tensor& dy_out) override {
    if (dy_out.is_cuda()) return backward_cuda(dy_out);
    const bool has_bias = inputs.size() > 2;
    bool acc = false;
    Tensor dy = dy_out;
    if (relu) {  // the gradient at the relu's input
      dy = Tensor(dy_out.shape());
      kernels::relu_backward(dy.numel(), dy_out.f32(), y.f32(), dy.f32());
    }
    if (has_bias && needs_grad(2)) {
      Tensor& db = grad_slot(2, acc);
      kernels::bias_grad_rows(B, w->rows, dy.f32(), db.f32(), acc);
    }
    if (needs_grad(0)) {
      Tensor& dx = grad_slot(0, acc);
      kernels::csr_spmm_dyw(transposed(*w), dy.f32(), B, dx.f32(), acc ? 1.f : 0.f);
    }
    if (needs_grad(1)) {
      Tensor& dv = grad_slot(1, acc);
      kernels::csr_sddmm_dyx(w->w, dy.f32(), inputs[0].value().f32(), B, dv.f32(), acc,
                             x_tiles.defined() ? x_tiles.f32() : nullptr);
    }
    if (w->factors.capture) {
      CsrWeight::GradientFactors& f = w->factors;
      const float* x = inputs[0].value().f32();
      f.x.insert(f.x.end(), x, x + static_cast<size_t>(B) * w->cols);
      f.dy.insert(f.dy.end(), dy.f32(), dy.f32() + static_cast<size_t>(B) * w->rows);
      f.rows += B;
    }
  }
  void backward_cuda(const Tensor& dy_out) {
    bool acc = false;
    Tensor dy = dy_out;
    if (relu) {
      dy = Tensor(dy_out.shape(), DType::f32, dy_out.device());
      cuda::relu_backward(dy.numel(), dy_out.cuda_f32(), y.cuda_f32(), dy.cuda_f32());
    }
    if (needs_grad(0)) {
      Tensor& dx = grad_slot(0, acc);
      dev_spmm_dyw(w->dwt, dy.cuda_f32(), B, dx.cuda_f32(), acc ? 1.f : 0.f);
    }
    if (needs_grad(1)) {
      Tensor& dv = grad_slot(1, acc);
      dev_sddmm_dyx(w->dw, dy.cuda_f32(), inputs[0].value().cuda_f32(), B, dv.cuda_f32(), acc);
    }
    if (inputs.size() > 2 && needs_grad(2)) {
      Tensor& db = grad_slot(2, acc);
      cuda::bias_grad_rows(B, w->rows, dy.cuda_f32(), db.cuda_f32(), acc);
    }
  }
};

// rows × B batch-major copies of a feature-major (n, B) tensor appended to v (RigL's factors).
void append_batch_major(std::vector<float>& v, int n, int B, const float* t) {
  const size_t at = v.size();
  v.resize(at + static_cast<size_t>(n) * B);
  kernels::transpose_dense(n, B, t, v.data() + at);
}

struct SparseLinearFmNode : Node {
  const char* name() const override { return "sparse_linear_fm"; }
  std::shared_ptr<CsrWeight> w;
  int B = 0;
  void backward(const Tensor& dyt) override {
    const bool has_bias = inputs.size() > 2;
    bool acc = false;
    if (needs_grad(0)) {  // dxt (IN, B) = Wᵀ·dyt, as W's transposed copy times dyt
      Tensor& dxt = grad_slot(0, acc);
      kernels::csr_spmm(transposed(*w), dyt.f32(), B, dxt.f32(), acc ? 1.f : 0.f);
    }
    if (needs_grad(1)) {  // dW at the nonzeros = dyt[o]·xt[k]
      Tensor& dv = grad_slot(1, acc);
      kernels::csr_sddmm(w->w, dyt.f32(), inputs[0].value().f32(), B, dv.f32(), acc);
    }
    if (has_bias && needs_grad(2)) {
      Tensor& db = grad_slot(2, acc);
      kernels::bias_grad_channels(1, w->rows, B, dyt.f32(), db.f32(), acc);
    }
    if (w->factors.capture) {
      CsrWeight::GradientFactors& f = w->factors;
      append_batch_major(f.x, w->cols, B, inputs[0].value().f32());
      append_batch_major(f.dy, w->rows, B, dyt.f32());
      f.rows += B;
    }
  }
};

// The direct conv's offsets for s's padded input size, cached on the weight (O(nnz) on a miss).
std::shared_ptr<const std::vector<int32_t>> conv_offsets_for(CsrWeight& w,
                                                             const kernels::Conv2dShape& s) {
  auto& c = w.conv_offsets;
  const int Hp = kernels::padded_h(s), Wp = kernels::padded_w(s);
  if (!c.off || c.Hp != Hp || c.Wp != Wp) {
    auto off = std::make_shared<std::vector<int32_t>>();
    kernels::conv_offsets(s, w.w, *off);
    c.Hp = Hp;
    c.Wp = Wp;
    c.off = std::move(off);
  }
  return c.off;
}

struct SparseConv2dNode : Node {
  const char* name() const override { return "sparse_conv2d"; }
  std::shared_ptr<CsrWeight> w;
  kernels::Conv2dShape s;
  Tensor cols;  // cuda: (C·KH·KW, N·P) from the forward (batch im2col)
  Tensor xp;    // cpu: the padded input (C, Hp, Wp, N) from the forward (direct conv)
  bool in_pn = false;  // cpu: the input (and so its gradient) is xp itself, not NCHW
  std::shared_ptr<const std::vector<int32_t>> off;  // cpu: its position offsets
  void backward(const Tensor& dy) override {
    if (dy.is_cuda()) return backward_cuda(dy);
    const int P = s.OH() * s.OW();
    Tensor dy_pn({s.OC, int64_t(s.N) * P});  // (OC, P, N)
    kernels::nchw_to_pn(s.OC, s.N, P, dy.f32(), dy_pn.f32());
    backward_pn(dy_pn);
  }
  // The cpu backward from the output gradient in the batch-innermost layout (OC, P, N).
  void backward_pn(const Tensor& dy_pn) {
    const int NP = s.N * s.OH() * s.OW();
    backward_cpu(
        [&](float* dxp) { kernels::csr_conv_backward_data(s, w->w, off->data(), dy_pn.f32(), dxp); },
        [&](float* dv, bool acc) {
          kernels::csr_conv_backward_weights(s, w->w, off->data(), dy_pn.f32(), xp.f32(), dv, acc);
        },
        [&](float* db, bool acc) { kernels::bias_grad_channels(1, s.OC, NP, dy_pn.f32(), db, acc); });
  }
  // The three gradients from kernels that take the output gradient their own way: dx(dxp) writes
  // the padded input's gradient, dw(dv, acc) and db(db, acc) (+)= the weight and bias gradients.
  template <class Dx, class Dw, class Db>
  void backward_cpu(Dx&& dx, Dw&& dw, Db&& db) {
    bool acc = false;
    if (needs_grad(0)) {
      auto input_grad = [&](float* out) {  // the input's gradient into out
        if (in_pn) {  // the input is the padded input itself: its gradient, border and all
          dx(out);
          return;
        }
        Tensor dxp(xp.shape());
        dx(dxp.f32());
        kernels::pn_padded_to_nchw(s, dxp.f32(), out);
      };
      if (inputs[0].has_grad()) {
        Tensor tmp(inputs[0].shape());
        input_grad(tmp.f32());
        accumulate_grad(0, tmp);
      } else {
        input_grad(grad_slot(0, acc).f32());
      }
    }
    if (needs_grad(1)) {
      Tensor& dv = grad_slot(1, acc);
      dw(dv.f32(), acc);
    }
    if (inputs.size() > 2 && needs_grad(2)) {  // channel c's (P, N) block is contiguous
      Tensor& dbias = grad_slot(2, acc);
      db(dbias.f32(), acc);
    }
  }
  // dcols = Wᵀ · dy on the transposed copy (the row-gather SpMM: no atomics), then col2im.
  void backward_cuda(const Tensor& dy) {
    const int P = s.OH() * s.OW();
    const int64_t NP = int64_t(s.N) * P;
    Tensor dy_cnp({s.OC, NP}, DType::f32, Device::cuda);
    cuda::nchw_to_cnp(s.OC, s.N, P, dy.cuda_f32(), dy_cnp.cuda_f32());
    bool acc = false;
    if (needs_grad(0)) {
      Tensor dcols({int64_t(w->cols), NP}, DType::f32, Device::cuda);
      dev_spmm(w->dwt, dy_cnp.cuda_f32(), static_cast<int>(NP), dcols.cuda_f32(), 0.f);
      if (inputs[0].has_grad()) {
        Tensor tmp(inputs[0].shape(), DType::f32, Device::cuda);
        cuda::col2im_batch(s, dcols.cuda_f32(), tmp.cuda_f32());
        accumulate_grad(0, tmp);
      } else {
        Tensor& dx = grad_slot(0, acc);
        cuda::col2im_batch(s, dcols.cuda_f32(), dx.cuda_f32());
      }
    }
    if (needs_grad(1)) {
      Tensor& dv = grad_slot(1, acc);
      dev_sddmm(w->dw, dy_cnp.cuda_f32(), cols.cuda_f32(), static_cast<int>(NP), dv.cuda_f32(),
                acc);
    }
    if (inputs.size() > 2 && needs_grad(2)) {
      Tensor& db = grad_slot(2, acc);
      cuda::bias_grad_channels(s.N, s.OC, P, dy.cuda_f32(), db.cuda_f32(), acc);
    }
  }
};

// sparse_conv2d -> [relu] -> max_pool2d (non-overlapping windows) on the cpu, kept in the
// batch-innermost layout: each window's conv rows are pooled as they are computed
// (kernels::csr_conv_pool_forward; the conv output is never stored) and only the pooled output is
// transposed to NCHW; the backward reads the conv output's gradient through the pool's winners
// where the conv's gradient kernels use it (kernels::csr_conv_pool_backward_*), never storing it.
// Values, winners and the input and weight gradients are those of the three separate ops, bit for
// bit; the bias gradient sums the same values in double in another order (kernels::pool_pn_bias_grad).
struct SparseConvPoolNode : SparseConv2dNode {
  const char* name() const override { return "sparse_conv2d_pool"; }
  kernels::PoolPnShape ps;
  Tensor code;  // (OC, PH, PW, N): each window's winner, -1 where no gradient passes
  bool out_pn = false;  // the output (and so dy) is (OC, PH + 2·pad_h, PW + 2·pad_w, N) (ps), not NCHW
  void backward(const Tensor& dy) override {
    const int PP = ps.PH() * ps.PW();
    Tensor dy_pool;
    if (!out_pn) {
      dy_pool = Tensor({int64_t(ps.C) * PP * ps.N});
      kernels::nchw_to_pn(ps.C, ps.N, PP, dy.f32(), dy_pool.f32());
    }
    const float* g = out_pn ? dy.f32() : dy_pool.f32();
    const int32_t* winners = code.i32();
    backward_cpu(
        [&](float* dxp) {
          kernels::csr_conv_pool_backward_data(s, w->w, off->data(), ps, g, winners, dxp);
        },
        [&](float* dv, bool acc) {
          kernels::csr_conv_pool_backward_weights(s, w->w, off->data(), ps, g, winners, xp.f32(),
                                                  dv, acc);
        },
        [&](float* db, bool acc) { kernels::pool_pn_bias_grad(ps, g, winners, db, acc); });
  }
};

}  // namespace

Variable sparse_linear(const Variable& x, const std::shared_ptr<CsrWeight>& w, const Variable& b,
                       bool relu) {
  ST_CHECK(w != nullptr && w->shape.size() == 2, "sparse_linear: expected a (OUT, IN) CSR weight");
  check_device("sparse_linear", x.value(), *w, b);
  ST_CHECK(x.value().ndim() == 2 && x.shape()[1] == w->cols, "sparse_linear: input ", x.value().str(),
           " does not match weight ", shape_str(w->shape));
  const int B = static_cast<int>(x.shape()[0]), OUT = w->rows;
  if (b.defined())
    ST_CHECK(b.value().numel() == OUT, "sparse_linear: bias ", b.value().str(), " for ", OUT, " outputs");
  Tensor y({B, OUT}, DType::f32, x.value().device());
  auto node = std::make_shared<SparseLinearNode>();
  if (y.is_cuda()) {
    dev_spmm_xwt(w->dw, x.value().cuda_f32(), B, y.cuda_f32(), 0.f);
    if (b.defined()) cuda::bias_add_rows(B, OUT, b.value().cuda_f32(), y.cuda_f32());
    if (relu) cuda::relu_forward(y.numel(), y.cuda_f32(), y.cuda_f32());
  } else {
    // A weight gradient to come can read the forward's packed copy of x instead of packing x
    // again (packing was 14% of a CSR LeNet-300 step at 95%); it costs one copy of x while the
    // graph lives.
    if (grad_enabled() && w->values.requires_grad() && B > 0 && w->cols > 0)
      node->x_tiles = Tensor({static_cast<int64_t>(kernels::csr_x_tiles_size(B, w->cols))});
    kernels::csr_spmm_xwt(w->w, x.value().f32(), B, y.f32(), 0.f,
                          node->x_tiles.defined() ? node->x_tiles.f32() : nullptr,
                          b.defined() ? b.value().f32() : nullptr, relu);
  }
  node->w = w;
  node->B = B;
  node->relu = relu;
  if (relu) node->y = y;
  node->inputs = {x, w->values};
  if (b.defined()) node->inputs.push_back(b);
  return make_result(std::move(y), std::move(node));
}

Variable sparse_linear_fm(const Variable& xt, const std::shared_ptr<CsrWeight>& w, const Variable& b) {
  ST_CHECK(w != nullptr && w->shape.size() == 2, "sparse_linear_fm: expected a (OUT, IN) CSR weight");
  check_device("sparse_linear_fm", xt.value(), *w, b);
  ST_CHECK(!xt.value().is_cuda(), "sparse_linear_fm: runs on the cpu only");
  ST_CHECK(xt.value().ndim() == 2 && xt.shape()[0] == w->cols, "sparse_linear_fm: input ", xt.value().str(),
           " does not match weight ", shape_str(w->shape), " (expected (IN, B))");
  const int B = static_cast<int>(xt.shape()[1]), OUT = w->rows;
  if (b.defined())
    ST_CHECK(b.value().numel() == OUT, "sparse_linear_fm: bias ", b.value().str(), " for ", OUT, " outputs");
  Tensor yt({OUT, B});
  kernels::csr_spmm(w->w, xt.value().f32(), B, yt.f32(), 0.f);
  if (b.defined()) kernels::bias_add_channels(1, OUT, B, b.value().f32(), yt.f32());
  auto node = std::make_shared<SparseLinearFmNode>();
  node->w = w;
  node->B = B;
  node->inputs = {xt, w->values};
  if (b.defined()) node->inputs.push_back(b);
  return make_result(std::move(yt), std::move(node));
}

namespace {

// x is (N, C, H, W), or when in_pn (C, H + 2·pad_h, W + 2·pad_w, N): already padded.
kernels::Conv2dShape sparse_conv_shape(const char* op, const Variable& x,
                                       const std::shared_ptr<CsrWeight>& w, const Variable& b,
                                       const Conv2dOptions& opt, bool in_pn = false) {
  ST_CHECK(w != nullptr && w->shape.size() == 4, op, ": expected a (OC, C, KH, KW) CSR weight");
  check_device(op, x.value(), *w, b);
  const int cdim = in_pn ? 0 : 1;
  ST_CHECK(x.value().ndim() == 4 && x.shape()[cdim] == w->shape[1], op, ": input ", x.value().str(),
           in_pn ? " (C, H + 2·pad_h, W + 2·pad_w, N)" : "", " does not match weight ",
           shape_str(w->shape));
  const int border_h = in_pn ? 2 * opt.pad_h : 0, border_w = in_pn ? 2 * opt.pad_w : 0;
  ST_CHECK(!in_pn || (x.shape()[1] > border_h && x.shape()[2] > border_w), op, ": padded input ",
           x.value().str(), " is no larger than its padding ", opt.pad_h, "x", opt.pad_w);
  kernels::Conv2dShape s;
  s.N = static_cast<int>(x.shape()[in_pn ? 3 : 0]);
  s.C = static_cast<int>(x.shape()[cdim]);
  s.H = static_cast<int>(x.shape()[cdim + 1]) - border_h;
  s.W = static_cast<int>(x.shape()[cdim + 2]) - border_w;
  s.OC = static_cast<int>(w->shape[0]);
  s.KH = static_cast<int>(w->shape[2]);
  s.KW = static_cast<int>(w->shape[3]);
  s.stride_h = opt.stride_h;
  s.stride_w = opt.stride_w;
  s.pad_h = opt.pad_h;
  s.pad_w = opt.pad_w;
  ST_CHECK(s.OH() > 0 && s.OW() > 0, op, ": kernel ", s.KH, "x", s.KW, " does not fit input ",
           x.value().str());
  if (b.defined())
    ST_CHECK(b.value().numel() == s.OC, op, ": bias ", b.value().str(), " for ", s.OC, " channels");
  return s;
}

// The cpu direct conv's input: x padded in the batch-innermost layout (x itself when in_pn), and
// the weight's offsets, kept on the node for the backward.
void direct_conv_input(SparseConv2dNode& node, const Variable& x, CsrWeight& w) {
  const kernels::Conv2dShape& s = node.s;
  node.off = conv_offsets_for(w, s);
  if (node.in_pn) {
    node.xp = x.value();
    return;
  }
  node.xp = Tensor({int64_t(s.C) * kernels::padded_h(s) * kernels::padded_w(s) * s.N});
  kernels::nchw_to_pn_padded(s, x.value().f32(), node.xp.f32());
}

}  // namespace

Variable sparse_conv2d(const Variable& x, const std::shared_ptr<CsrWeight>& w, const Variable& b,
                       const Conv2dOptions& opt) {
  const kernels::Conv2dShape s = sparse_conv_shape("sparse_conv2d", x, w, b, opt);
  const int P = s.OH() * s.OW();
  const int64_t NP = int64_t(s.N) * P;
  auto node = std::make_shared<SparseConv2dNode>();
  node->w = w;
  node->s = s;
  const Device d = x.value().device();
  Tensor out({s.OC, NP}, DType::f32, d);
  Tensor y({s.N, s.OC, s.OH(), s.OW()}, DType::f32, d);
  if (d == Device::cuda) {
    node->cols = Tensor({int64_t(w->cols), NP}, DType::f32, d);
    cuda::im2col_batch(s, x.value().cuda_f32(), node->cols.cuda_f32());
    dev_spmm(w->dw, node->cols.cuda_f32(), static_cast<int>(NP), out.cuda_f32(), 0.f);
    cuda::cnp_to_nchw(s.OC, s.N, P, out.cuda_f32(), b.defined() ? b.value().cuda_f32() : nullptr,
                      y.cuda_f32());
  } else {  // direct sparse conv in the batch-innermost layout; out is (OC, P, N)
    direct_conv_input(*node, x, *w);
    kernels::csr_conv_forward(s, w->w, node->off->data(), node->xp.f32(), out.f32());
    kernels::pn_to_nchw(s.OC, s.N, P, out.f32(), b.defined() ? b.value().f32() : nullptr, y.f32());
  }
  node->inputs = {x, w->values};
  if (b.defined()) node->inputs.push_back(b);
  return make_result(std::move(y), std::move(node));
}

bool sparse_conv2d_pool_fits(const Pool2dOptions& pool) {
  return pool.stride_h == pool.kernel_h && pool.stride_w == pool.kernel_w && pool.pad_h == 0 &&
         pool.pad_w == 0 && pool.kernel_h > 0 && pool.kernel_w > 0;
}

Variable sparse_conv2d_pool(const Variable& x, const std::shared_ptr<CsrWeight>& w,
                            const Variable& b, const Conv2dOptions& opt, bool relu,
                            const Pool2dOptions& pool, bool in_pn, bool out_pn, int out_pad_h,
                            int out_pad_w) {
  const kernels::Conv2dShape s = sparse_conv_shape("sparse_conv2d_pool", x, w, b, opt, in_pn);
  ST_CHECK(out_pad_h >= 0 && out_pad_w >= 0 && (out_pn || (out_pad_h == 0 && out_pad_w == 0)),
           "sparse_conv2d_pool: an output border (", out_pad_h, "x", out_pad_w,
           ") needs a batch-innermost output (out_pn) and is not negative");
  ST_CHECK(!x.value().is_cuda(), "sparse_conv2d_pool: cpu only (on cuda: sparse_conv2d, relu, max_pool2d)");
  ST_CHECK(sparse_conv2d_pool_fits(pool), "sparse_conv2d_pool: needs non-overlapping windows without "
           "padding, gets window ", pool.kernel_h, "x", pool.kernel_w, " stride ", pool.stride_h, "x",
           pool.stride_w, " pad ", pool.pad_h, "x", pool.pad_w);
  kernels::PoolPnShape ps;
  ps.C = s.OC;
  ps.OH = s.OH();
  ps.OW = s.OW();
  ps.N = s.N;
  ps.KH = pool.kernel_h;
  ps.KW = pool.kernel_w;
  ps.pad_h = out_pad_h;
  ps.pad_w = out_pad_w;
  ST_CHECK(ps.PH() > 0 && ps.PW() > 0, "sparse_conv2d_pool: window ", ps.KH, "x", ps.KW,
           " does not fit the conv output ", ps.OH, "x", ps.OW);
  auto node = std::make_shared<SparseConvPoolNode>();
  node->w = w;
  node->s = s;
  node->ps = ps;
  node->in_pn = in_pn;
  node->out_pn = out_pn;
  const int PP = ps.PH() * ps.PW();
  direct_conv_input(*node, x, *w);
  Tensor pooled({s.OC, ps.YH(), ps.YW(), s.N});
  node->code = Tensor({int64_t(s.OC) * PP * s.N}, DType::i32);
  kernels::csr_conv_pool_forward(s, w->w, node->off->data(), node->xp.f32(),
                                 b.defined() ? b.value().f32() : nullptr, relu, ps, pooled.f32(),
                                 node->code.i32());
  node->inputs = {x, w->values};
  if (b.defined()) node->inputs.push_back(b);
  if (out_pn) return make_result(std::move(pooled), std::move(node));
  Tensor y({s.N, s.OC, ps.PH(), ps.PW()});
  kernels::pn_to_nchw(s.OC, s.N, PP, pooled.f32(), nullptr, y.f32());
  return make_result(std::move(y), std::move(node));
}

}  // namespace st
