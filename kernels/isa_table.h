// kernels/isa_table.h — the table of kernels compiled once per instruction set (kernels/isa.h).
// Internal to kernels/. ST_ISA_KERNELS lists every public function whose body is compiled per
// set; a field's type is the public declaration's, so a copy whose signature drifts does not build.
#pragma once
#include "kernels/conv.h"
#include "kernels/conv_pn.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/optim.h"
#include "kernels/pool.h"
#include "kernels/sparse_conv.h"
#include "kernels/sparse_cpu.h"

#define ST_ISA_KERNELS(X)                                                                          \
  X(sgemm)                                                                                         \
  X(csr_spmm) X(csr_spmm_t) X(csr_sddmm) X(csr_spmm_xwt) X(csr_spmm_dyw) X(csr_sddmm_dyx)          \
  X(transpose_dense)                                                                               \
  X(csr_conv_forward) X(csr_conv_backward_data) X(csr_conv_backward_weights)                       \
  X(nchw_to_pn_padded) X(pn_padded_to_nchw) X(pn_to_nchw) X(nchw_to_pn) X(im2col_batch)           \
  X(csr_conv_pool_forward) X(csr_conv_pool_backward_data) X(csr_conv_pool_backward_weights)       \
  X(pool_pn_bias_grad)                                                                             \
  X(col2im_batch) X(cnp_to_nchw) X(nchw_to_cnp)                                                    \
  X(im2col) X(col2im) X(conv2d_forward) X(conv2d_backward_data) X(conv2d_backward_weights)         \
  X(conv2d_direct_weight_grad)                                                                     \
  X(pn_conv_fits) X(pn_conv_forward) X(pn_conv_backward_data) X(pn_conv_backward_weights)           \
  X(max_pool2d_forward) X(max_pool2d_backward) X(avg_pool2d_forward) X(avg_pool2d_backward)        \
  X(relu_forward) X(relu_backward) X(add) X(axpy) X(scale) X(fill) X(bias_add_rows)                \
  X(bias_grad_rows) X(bias_add_channels) X(bias_grad_channels) X(dropout_apply)                    \
  X(softmax_xent_forward) X(softmax_xent_backward) X(sum) X(first_non_finite) X(argmax_rows)      \
  X(sgd_update) X(adam_update)

namespace st::kernels {

struct KernelTable {
#define ST_ISA_FIELD(name) decltype(&::st::kernels::name) name;
  ST_ISA_KERNELS(ST_ISA_FIELD)
#undef ST_ISA_FIELD
};

// The table of the active set (kernels/dispatch.cpp).
const KernelTable& active_kernels();

namespace generic { extern const KernelTable kTable; }
namespace avx2 { extern const KernelTable kTable; }
namespace avx512 { extern const KernelTable kTable; }

}  // namespace st::kernels

// In a per-set file: declares that set's copies, so calls between kernels stay inside the set.
#if defined(ST_ISA_NS)
namespace st::kernels::ST_ISA_NS {
#define ST_ISA_DECLARE(name) decltype(::st::kernels::name) name;
ST_ISA_KERNELS(ST_ISA_DECLARE)
#undef ST_ISA_DECLARE
}  // namespace st::kernels::ST_ISA_NS
#endif
