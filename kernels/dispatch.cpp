// kernels/dispatch.cpp — the instruction set in use (kernels/isa.h) and the public kernel functions,
// each a call through the active set's table (kernels/isa_table.h). Compiled once, for plain x86-64.
#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "kernels/isa.h"
#include "kernels/isa_table.h"
#include "kernels/onednn.h"

namespace st::kernels {
namespace {

const KernelTable& table_of(Isa isa) {
  switch (isa) {
    case Isa::avx512: return avx512::kTable;
    case Isa::avx2: return avx2::kTable;
    default: return generic::kTable;
  }
}

// The active set's table; null until the first kernel call or set_isa.
std::atomic<const KernelTable*> active_table{nullptr};

void activate(Isa isa) {
  if (!isa_supported(isa))
    throw std::invalid_argument(std::string("this CPU cannot run the ") + isa_name(isa) +
                                " kernels (it supports: " + isa_summary() + ")");
  active_table.store(&table_of(isa));
  if (isa != best_isa()) limit_onednn_isa(isa);
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

Isa parse_isa(const std::string& text, const std::string& what) {
  for (Isa isa : {Isa::avx512, Isa::avx2, Isa::generic})
    if (text == isa_name(isa)) return isa;
  throw std::invalid_argument(what + ": \"" + text + "\" is not an instruction set (expected avx512, avx2 or generic)");
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::avx512:  // x86-64-v4 (what the avx512 copy is compiled for)
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512cd") && isa_supported(Isa::avx2);
    case Isa::avx2:  // x86-64-v3 (its F16C, LZCNT and MOVBE come with AVX2 on every such CPU)
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
    default: return true;
  }
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::avx512, Isa::avx2, Isa::generic})
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

Isa best_isa() { return supported_isas().front(); }

Isa isa_from_environment() {
  const char* env = std::getenv("SPARSETRAIN_ISA");
  if (!env || !*env) return best_isa();
  const Isa isa = parse_isa(env, "SPARSETRAIN_ISA");
  if (!isa_supported(isa))
    throw std::invalid_argument(std::string("SPARSETRAIN_ISA=") + env + ": this CPU cannot run the " +
                                env + " kernels (it supports: " + isa_summary() + ")");
  return isa;
}

std::string isa_summary() {
  std::string s;
  for (Isa isa : supported_isas()) s += (s.empty() ? "" : ", ") + std::string(isa_name(isa));
  return s;
}

Isa active_isa() {
  const KernelTable* t = &active_kernels();
  for (Isa isa : {Isa::avx512, Isa::avx2})
    if (t == &table_of(isa)) return isa;
  return Isa::generic;
}

void set_isa(Isa isa) { activate(isa); }

const KernelTable& active_kernels() {
  const KernelTable* t = active_table.load(std::memory_order_acquire);
  if (t) return *t;
  static const bool once = (activate(isa_from_environment()), true);
  (void)once;
  return *active_table.load();
}

// ---- the public kernels: one call through the table each ----
#define ST_CALL(name, ...) return active_kernels().name(__VA_ARGS__)

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc) {
  ST_CALL(sgemm, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void csr_spmm(const CsrMatrix& A, const float* B, int N, float* C, float beta) {
  ST_CALL(csr_spmm, A, B, N, C, beta);
}
void csr_spmm_t(const CsrMatrix& A, const float* B, int N, float* C, float beta) {
  ST_CALL(csr_spmm_t, A, B, N, C, beta);
}
void csr_sddmm(const CsrMatrix& pattern, const float* X, const float* Y, int N, float* out_values,
               bool accumulate) {
  ST_CALL(csr_sddmm, pattern, X, Y, N, out_values, accumulate);
}
void csr_spmm_xwt(const CsrMatrix& W, const float* x, int batch, float* y, float beta,
                  float* x_tiles, const float* bias, bool relu) {
  ST_CALL(csr_spmm_xwt, W, x, batch, y, beta, x_tiles, bias, relu);
}
void csr_spmm_dyw(const CsrMatrix& Wt, const float* dy, int batch, float* dx, float beta) {
  ST_CALL(csr_spmm_dyw, Wt, dy, batch, dx, beta);
}
void csr_sddmm_dyx(const CsrMatrix& W, const float* dy, const float* x, int batch, float* dw_values,
                   bool accumulate, const float* x_tiles) {
  ST_CALL(csr_sddmm_dyx, W, dy, x, batch, dw_values, accumulate, x_tiles);
}
void transpose_dense(int rows, int cols, const float* a, float* at) {
  ST_CALL(transpose_dense, rows, cols, a, at);
}

void csr_conv_forward(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off, const float* xp,
                      float* y) {
  ST_CALL(csr_conv_forward, s, W, off, xp, y);
}
void csr_conv_backward_data(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                            const float* dy, float* dxp) {
  ST_CALL(csr_conv_backward_data, s, W, off, dy, dxp);
}
void csr_conv_backward_weights(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                               const float* dy, const float* xp, float* dw_values, bool accumulate) {
  ST_CALL(csr_conv_backward_weights, s, W, off, dy, xp, dw_values, accumulate);
}
void nchw_to_pn_padded(const Conv2dShape& s, const float* x, float* xp) {
  ST_CALL(nchw_to_pn_padded, s, x, xp);
}
void pn_padded_to_nchw(const Conv2dShape& s, const float* xp, float* x) {
  ST_CALL(pn_padded_to_nchw, s, xp, x);
}
void pn_to_nchw(int C, int N, int P, const float* a, const float* bias, float* y) {
  ST_CALL(pn_to_nchw, C, N, P, a, bias, y);
}
void nchw_to_pn(int C, int N, int P, const float* y, float* a) { ST_CALL(nchw_to_pn, C, N, P, y, a); }
void csr_conv_pool_forward(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                           const float* xp, const float* bias, bool relu, const PoolPnShape& ps,
                           float* y, int32_t* code) {
  ST_CALL(csr_conv_pool_forward, s, W, off, xp, bias, relu, ps, y, code);
}
void csr_conv_pool_backward_data(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                                 const PoolPnShape& ps, const float* g, const int32_t* code,
                                 float* dxp) {
  ST_CALL(csr_conv_pool_backward_data, s, W, off, ps, g, code, dxp);
}
void csr_conv_pool_backward_weights(const Conv2dShape& s, const CsrMatrix& W, const int32_t* off,
                                    const PoolPnShape& ps, const float* g, const int32_t* code,
                                    const float* xp, float* dw_values, bool accumulate) {
  ST_CALL(csr_conv_pool_backward_weights, s, W, off, ps, g, code, xp, dw_values, accumulate);
}
void pool_pn_bias_grad(const PoolPnShape& s, const float* g, const int32_t* code, float* db,
                       bool accumulate) {
  ST_CALL(pool_pn_bias_grad, s, g, code, db, accumulate);
}
void im2col_batch(const Conv2dShape& s, const float* x, float* cols) { ST_CALL(im2col_batch, s, x, cols); }
void col2im_batch(const Conv2dShape& s, const float* cols, float* dx) { ST_CALL(col2im_batch, s, cols, dx); }
void cnp_to_nchw(int C, int N, int P, const float* a, const float* bias, float* y) {
  ST_CALL(cnp_to_nchw, C, N, P, a, bias, y);
}
void nchw_to_cnp(int C, int N, int P, const float* y, float* a) { ST_CALL(nchw_to_cnp, C, N, P, y, a); }

void im2col(const Conv2dShape& s, const float* in, float* cols, size_t ld) { ST_CALL(im2col, s, in, cols, ld); }
void col2im(const Conv2dShape& s, const float* cols, float* in, size_t ld) { ST_CALL(col2im, s, cols, in, ld); }
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y,
                    float* workspace) {
  ST_CALL(conv2d_forward, s, x, w, b, y, workspace);
}
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          float* workspace) {
  ST_CALL(conv2d_backward_data, s, dy, w, dx, workspace);
}
void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                             float* db, bool accumulate, float* workspace) {
  ST_CALL(conv2d_backward_weights, s, x, dy, dw, db, accumulate, workspace);
}
bool conv2d_direct_weight_grad(const Conv2dShape& s) { ST_CALL(conv2d_direct_weight_grad, s); }

bool pn_conv_fits(const Conv2dShape& s) { ST_CALL(pn_conv_fits, s); }
void pn_conv_forward(const Conv2dShape& s, const float* w, const float* xp, float* y) {
  ST_CALL(pn_conv_forward, s, w, xp, y);
}
void pn_conv_backward_data(const Conv2dShape& s, const float* w, const float* dy, float* dxp) {
  ST_CALL(pn_conv_backward_data, s, w, dy, dxp);
}
void pn_conv_backward_weights(const Conv2dShape& s, const float* dy, const float* xp, float* dw,
                              bool accumulate) {
  ST_CALL(pn_conv_backward_weights, s, dy, xp, dw, accumulate);
}

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  ST_CALL(max_pool2d_forward, s, x, y, argmax);
}
void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx) {
  ST_CALL(max_pool2d_backward, s, dy, argmax, dx);
}
void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y) { ST_CALL(avg_pool2d_forward, s, x, y); }
void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx) {
  ST_CALL(avg_pool2d_backward, s, dy, dx);
}

void relu_forward(int64_t n, const float* x, float* y) { ST_CALL(relu_forward, n, x, y); }
void relu_backward(int64_t n, const float* dy, const float* y, float* dx) { ST_CALL(relu_backward, n, dy, y, dx); }
void add(int64_t n, const float* a, const float* b, float* out) { ST_CALL(add, n, a, b, out); }
void axpy(int64_t n, float alpha, const float* x, float* y) { ST_CALL(axpy, n, alpha, x, y); }
void scale(int64_t n, float alpha, const float* x, float* y) { ST_CALL(scale, n, alpha, x, y); }
void fill(int64_t n, float value, float* y) { ST_CALL(fill, n, value, y); }
void bias_add_rows(int rows, int cols, const float* bias, float* y) { ST_CALL(bias_add_rows, rows, cols, bias, y); }
void bias_grad_rows(int rows, int cols, const float* dy, float* db, bool accumulate) {
  ST_CALL(bias_grad_rows, rows, cols, dy, db, accumulate);
}
void bias_add_channels(int N, int C, int HW, const float* bias, float* y) {
  ST_CALL(bias_add_channels, N, C, HW, bias, y);
}
void bias_grad_channels(int N, int C, int HW, const float* dy, float* db, bool accumulate) {
  ST_CALL(bias_grad_channels, N, C, HW, dy, db, accumulate);
}
void dropout_apply(int64_t n, const float* x, const uint8_t* keep, float scale, float* y) {
  ST_CALL(dropout_apply, n, x, keep, scale, y);
}
double softmax_xent_forward(int B, int C, const float* logits, const int32_t* labels, float* probs) {
  ST_CALL(softmax_xent_forward, B, C, logits, labels, probs);
}
void softmax_xent_backward(int B, int C, const float* probs, const int32_t* labels, float dloss,
                           float* dlogits) {
  ST_CALL(softmax_xent_backward, B, C, probs, labels, dloss, dlogits);
}
double sum(int64_t n, const float* x) { ST_CALL(sum, n, x); }
int64_t first_non_finite(int64_t n, const float* x) { ST_CALL(first_non_finite, n, x); }
void argmax_rows(int rows, int cols, const float* x, int32_t* out) { ST_CALL(argmax_rows, rows, cols, x, out); }

void sgd_update(int64_t n, float* w, const float* g, float* momentum_buf, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool first_step, const uint8_t* mask) {
  ST_CALL(sgd_update, n, w, g, momentum_buf, lr, momentum, dampening, weight_decay, nesterov, first_step, mask);
}
void adam_update(int64_t n, float* w, const float* g, float* m, float* v, float lr, float beta1,
                 float beta2, float eps, float weight_decay, bool decoupled, int64_t step,
                 const uint8_t* mask) {
  ST_CALL(adam_update, n, w, g, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, step, mask);
}

#undef ST_CALL

}  // namespace st::kernels
