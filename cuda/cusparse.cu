// cuda/cusparse.cu — cuSPARSE SpMM / SDDMM behind the cuda/sparse.h signatures (see cuda/cusparse.h).
// Layouts (all our dense operands are row-major; cuSPARSE takes either order per operand):
//   csr_spmm      A (M, K) CSR · B (K, N) row-major -> C (M, N) row-major        CSR_ALG2 (row-major)
//   csr_spmm_xwt  W (OUT, IN) CSR · xᵀ -> yᵀ: x (B, IN) row-major *is* xᵀ (IN, B) column-major with
//                 ld = IN, and y (B, OUT) row-major is yᵀ (OUT, B) column-major:    CSR_ALG1
//   csr_sddmm     X (M, N) row-major · (Y (K, N) row-major)ᵀ      opB = transpose
//   csr_sddmm_dyx (dy (B, OUT) row-major)ᵀ · x (B, IN) row-major   opA = transpose
// Both SpMM algorithms are deterministic for a non-transposed A (cuSPARSE's documented
// property); the input-gradient product therefore runs on the transposed copy Wt, like the native
// kernels, rather than with opA = transpose.
// Plans: one per (product, row_ptr, col_idx, shape, N), holding the descriptors and the external
// buffer (from the caching allocator). The descriptors only remember pointers, so a plan stays
// valid even if its pattern arrays are freed and the addresses reused by a same-sized pattern
// (no cusparse*_preprocess, whose analysis would go stale). Every call re-points the descriptors
// at the call's arrays. The cache is bounded (least recently used plans are destroyed).
// beta == 0 / accumulate == false: the output is zeroed first, so NaN left in it never leaks
// through cuSPARSE's beta·C.
// libcusparse is not linked: it is opened on first use (cuda/dynlib.h), and every call below goes
// through the table of entry points resolved then. Compiled against the toolkit's <cusparse.h>,
// so the table's types are the header's own.
#include "cuda/compat.h"

#include <cusparse.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>

#include "cuda/cusparse.h"
#include "cuda/dynlib.h"
#include "cuda/launch.h"
#include "cuda/runtime.h"
#include "cuda/sparse.h"

namespace st::cuda::cusparse {
namespace {

// The cuSPARSE entry points this file calls, resolved once from the shared library.
struct Api {
  decltype(&cusparseCreate) create = nullptr;
  decltype(&cusparseDestroy) destroy = nullptr;
  decltype(&cusparseSetStream) set_stream = nullptr;
  decltype(&cusparseGetErrorString) error_string = nullptr;
  decltype(&cusparseCreateCsr) create_csr = nullptr;
  decltype(&cusparseCsrSetPointers) csr_set_pointers = nullptr;
  decltype(&cusparseDestroySpMat) destroy_sp_mat = nullptr;
  decltype(&cusparseCreateDnMat) create_dn_mat = nullptr;
  decltype(&cusparseDnMatSetValues) dn_mat_set_values = nullptr;
  decltype(&cusparseDestroyDnMat) destroy_dn_mat = nullptr;
  decltype(&cusparseSpMM_bufferSize) spmm_buffer_size = nullptr;
  decltype(&cusparseSpMM) spmm = nullptr;
  decltype(&cusparseSDDMM_bufferSize) sddmm_buffer_size = nullptr;
  decltype(&cusparseSDDMM) sddmm = nullptr;
  std::string error;  // why the library could not be used; empty once every entry point resolved
};

#if !defined(ST_CUDA_LIB_DIR)
#define ST_CUDA_LIB_DIR nullptr
#endif

// Loaded on the first call (thread-safe static initialisation), never unloaded.
const Api& api() {
  static const Api table = [] {
    Api a;
    const std::string soname = "libcusparse.so." + std::to_string(CUSPARSE_VER_MAJOR);
    void* lib = dynlib::open(soname, ST_CUDA_LIB_DIR, &a.error);
    if (lib == nullptr) return a;
    bool ok = true;
    auto find = [&](auto& fn, const char* name) {
      if (!ok || dynlib::resolve(lib, fn, name)) return;
      a.error = soname + " has no " + name + " (built against cuSPARSE " +
                std::to_string(CUSPARSE_VER_MAJOR) + "." + std::to_string(CUSPARSE_VER_MINOR) + ")";
      ok = false;
    };
    find(a.create, "cusparseCreate");
    find(a.destroy, "cusparseDestroy");
    find(a.set_stream, "cusparseSetStream");
    find(a.error_string, "cusparseGetErrorString");
    find(a.create_csr, "cusparseCreateCsr");
    find(a.csr_set_pointers, "cusparseCsrSetPointers");
    find(a.destroy_sp_mat, "cusparseDestroySpMat");
    find(a.create_dn_mat, "cusparseCreateDnMat");
    find(a.dn_mat_set_values, "cusparseDnMatSetValues");
    find(a.destroy_dn_mat, "cusparseDestroyDnMat");
    find(a.spmm_buffer_size, "cusparseSpMM_bufferSize");
    find(a.spmm, "cusparseSpMM");
    find(a.sddmm_buffer_size, "cusparseSDDMM_bufferSize");
    find(a.sddmm, "cusparseSDDMM");
    return a;
  }();
  return table;
}

// The loaded table, or a clear error naming the library (setup refuses sparse.impl "cusparse"
// before a run starts when available() is false, so this fires only for direct callers).
const Api& lib() {
  const Api& a = api();
  if (!a.error.empty()) throw std::runtime_error("cuSPARSE: " + a.error);
  return a;
}

void check(cusparseStatus_t status, const char* expr, int line) {
  if (status != CUSPARSE_STATUS_SUCCESS)
    ::st::cuda_detail::throw_call_error("cuSPARSE", expr, __FILE__, line,
                                        lib().error_string(status));
}
#define ST_CUSPARSE_CHECK(expr) check((expr), #expr, __LINE__)

constexpr size_t kMaxPlans = 256;

enum class Product : int { spmm_rows, spmm_xwt, sddmm_rows, sddmm_dyx };

struct PlanKey {
  Product product;
  const void* row_ptr;
  const void* col_idx;
  int rows, cols;
  int64_t nnz;
  int n;
  bool operator<(const PlanKey& o) const {
    return std::tie(product, row_ptr, col_idx, rows, cols, nnz, n) <
           std::tie(o.product, o.row_ptr, o.col_idx, o.rows, o.cols, o.nnz, o.n);
  }
};

struct Plan {
  cusparseSpMatDescr_t sparse = nullptr;
  cusparseDnMatDescr_t dense_in = nullptr;   // SpMM: matB (read); SDDMM: matA (read)
  cusparseDnMatDescr_t dense_out = nullptr;  // SpMM: matC (written); SDDMM: matB (read)
  void* buffer = nullptr;
  size_t buffer_bytes = 0;
  uint64_t last_use = 0;
};

struct State {
  std::mutex mu;
  cusparseHandle_t handle = nullptr;
  std::map<PlanKey, Plan> plans;
  uint64_t clock = 0;
  CacheStats stats;
};

// Never destroyed: cuSPARSE and the CUDA runtime may already be torn down at static destruction.
State& state() {
  static State* s = new State;
  return *s;
}

using launch::current_stream;

void destroy(Plan& p) {
  if (p.sparse) ST_CUSPARSE_CHECK(lib().destroy_sp_mat(p.sparse));
  if (p.dense_in) ST_CUSPARSE_CHECK(lib().destroy_dn_mat(p.dense_in));
  if (p.dense_out) ST_CUSPARSE_CHECK(lib().destroy_dn_mat(p.dense_out));
  if (p.buffer) device_free(p.buffer, p.buffer_bytes);
  p = Plan{};
}

void evict_oldest(State& s) {
  auto oldest = s.plans.begin();
  for (auto it = s.plans.begin(); it != s.plans.end(); ++it)
    if (it->second.last_use < oldest->second.last_use) oldest = it;
  destroy(oldest->second);
  s.plans.erase(oldest);
  ++s.stats.evicted;
}

cusparseSpMatDescr_t make_csr(const DeviceCsr& a, float* values) {
  cusparseSpMatDescr_t d = nullptr;
  ST_CUSPARSE_CHECK(lib().create_csr(&d, a.rows, a.cols, a.nnz, a.row_ptr, a.col_idx, values,
                                     CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I,
                                     CUSPARSE_INDEX_BASE_ZERO, CUDA_R_32F));
  return d;
}

cusparseDnMatDescr_t make_dense(int64_t rows, int64_t cols, int64_t ld, const float* values,
                                cusparseOrder_t order) {
  cusparseDnMatDescr_t d = nullptr;
  ST_CUSPARSE_CHECK(lib().create_dn_mat(&d, rows, cols, ld, const_cast<float*>(values), CUDA_R_32F,
                                        order));
  return d;
}

// What one call multiplies: the sparse operand and the two dense ones, with their shapes.
struct DenseView {
  int64_t rows, cols, ld;
  cusparseOrder_t order;
  cusparseOperation_t op;
};

struct Call {
  Product product;
  const DeviceCsr* sparse;
  float* sparse_values;  // A's values (SpMM) or the output values (SDDMM)
  const float* in;       // SpMM: B; SDDMM: A
  DenseView in_view;
  float* out;            // SpMM: C (written); SDDMM: B (read)
  DenseView out_view;
  int n;
  float beta;
};

bool is_spmm(Product p) { return p == Product::spmm_rows || p == Product::spmm_xwt; }

cusparseSpMMAlg_t spmm_alg(Product p) {
  return p == Product::spmm_rows ? CUSPARSE_SPMM_CSR_ALG2 : CUSPARSE_SPMM_CSR_ALG1;
}

size_t buffer_size(cusparseHandle_t h, const Call& c, const Plan& p, float beta) {
  const float alpha = 1.0f;
  size_t bytes = 0;
  if (is_spmm(c.product))
    ST_CUSPARSE_CHECK(lib().spmm_buffer_size(h, CUSPARSE_OPERATION_NON_TRANSPOSE, c.in_view.op,
                                             &alpha, p.sparse, p.dense_in, &beta, p.dense_out,
                                             CUDA_R_32F, spmm_alg(c.product), &bytes));
  else
    ST_CUSPARSE_CHECK(lib().sddmm_buffer_size(h, c.in_view.op, c.out_view.op, &alpha, p.dense_in,
                                              p.dense_out, &beta, p.sparse, CUDA_R_32F,
                                              CUSPARSE_SDDMM_ALG_DEFAULT, &bytes));
  return bytes;
}

void run(const Call& c) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.handle) ST_CUSPARSE_CHECK(lib().create(&s.handle));
  ST_CUSPARSE_CHECK(lib().set_stream(s.handle, current_stream()));

  const DeviceCsr& a = *c.sparse;
  const PlanKey key{c.product, a.row_ptr, a.col_idx, a.rows, a.cols, a.nnz, c.n};
  auto it = s.plans.find(key);
  if (it == s.plans.end()) {
    if (s.plans.size() >= kMaxPlans) evict_oldest(s);
    Plan p;
    p.sparse = make_csr(a, c.sparse_values);
    p.dense_in = make_dense(c.in_view.rows, c.in_view.cols, c.in_view.ld, c.in, c.in_view.order);
    p.dense_out =
        make_dense(c.out_view.rows, c.out_view.cols, c.out_view.ld, c.out, c.out_view.order);
    // Sized once for both betas the callers use, so a later accumulate call fits too.
    p.buffer_bytes = std::max(buffer_size(s.handle, c, p, 0.0f), buffer_size(s.handle, c, p, 1.0f));
    if (p.buffer_bytes) p.buffer = device_alloc(p.buffer_bytes);
    it = s.plans.emplace(key, p).first;
    ++s.stats.created;
  } else {
    ST_CUSPARSE_CHECK(
        lib().csr_set_pointers(it->second.sparse, a.row_ptr, a.col_idx, c.sparse_values));
    ST_CUSPARSE_CHECK(lib().dn_mat_set_values(it->second.dense_in, const_cast<float*>(c.in)));
    ST_CUSPARSE_CHECK(lib().dn_mat_set_values(it->second.dense_out, c.out));
  }
  Plan& p = it->second;
  p.last_use = ++s.clock;

  const float alpha = 1.0f;
  if (is_spmm(c.product)) {
    if (c.beta == 0.0f)
      memset_zero(c.out, sizeof(float) * static_cast<size_t>(c.out_view.rows * c.out_view.cols));
    ST_CUSPARSE_CHECK(lib().spmm(s.handle, CUSPARSE_OPERATION_NON_TRANSPOSE, c.in_view.op, &alpha,
                                 p.sparse, p.dense_in, &c.beta, p.dense_out, CUDA_R_32F,
                                 spmm_alg(c.product), p.buffer));
  } else {
    if (c.beta == 0.0f) memset_zero(c.sparse_values, sizeof(float) * static_cast<size_t>(a.nnz));
    ST_CUSPARSE_CHECK(lib().sddmm(s.handle, c.in_view.op, c.out_view.op, &alpha, p.dense_in,
                                  p.dense_out, &c.beta, p.sparse, CUDA_R_32F,
                                  CUSPARSE_SDDMM_ALG_DEFAULT, p.buffer));
  }
}

constexpr cusparseOperation_t kN = CUSPARSE_OPERATION_NON_TRANSPOSE;
constexpr cusparseOperation_t kT = CUSPARSE_OPERATION_TRANSPOSE;

}  // namespace

bool available() { return api().error.empty(); }

std::string load_error() { return api().error; }

void csr_spmm(const DeviceCsr& A, const float* B, int N, float* C, float beta) {
  if (A.rows == 0 || N <= 0 || A.nnz == 0) return st::cuda::csr_spmm(A, B, N, C, beta);
  run(Call{Product::spmm_rows, &A, A.values,
           B, DenseView{A.cols, N, N, CUSPARSE_ORDER_ROW, kN},
           C, DenseView{A.rows, N, N, CUSPARSE_ORDER_ROW, kN}, N, beta});
}

void csr_spmm_t(const DeviceCsr& A, const DeviceCsr& At, const float* B, int N, float* C,
                float beta) {
  if (At.rows != A.cols || At.cols != A.rows || At.nnz != A.nnz)
    throw std::invalid_argument("cusparse::csr_spmm_t: At is not the transpose of A");
  cusparse::csr_spmm(At, B, N, C, beta);
}

void csr_sddmm(const DeviceCsr& P, const float* X, const float* Y, int N, float* out_values,
               bool accumulate) {
  if (P.nnz == 0 || N <= 0) return st::cuda::csr_sddmm(P, X, Y, N, out_values, accumulate);
  // op(A) = X (M, N); op(B) = Yᵀ (N, K) from Y (K, N) row-major.
  run(Call{Product::sddmm_rows, &P, out_values,
           X, DenseView{P.rows, N, N, CUSPARSE_ORDER_ROW, kN},
           const_cast<float*>(Y), DenseView{P.cols, N, N, CUSPARSE_ORDER_ROW, kT}, N,
           accumulate ? 1.0f : 0.0f});
}

void csr_spmm_xwt(const DeviceCsr& W, const float* x, int batch, float* y, float beta) {
  if (W.rows == 0 || batch <= 0 || W.nnz == 0) return st::cuda::csr_spmm_xwt(W, x, batch, y, beta);
  // yᵀ (OUT, B) = W (OUT, IN) · xᵀ (IN, B): column-major views of the row-major x and y.
  run(Call{Product::spmm_xwt, &W, W.values,
           x, DenseView{W.cols, batch, W.cols, CUSPARSE_ORDER_COL, kN},
           y, DenseView{W.rows, batch, W.rows, CUSPARSE_ORDER_COL, kN}, batch, beta});
}

void csr_spmm_dyw(const DeviceCsr& Wt, const float* dy, int batch, float* dx, float beta) {
  cusparse::csr_spmm_xwt(Wt, dy, batch, dx, beta);
}

void csr_sddmm_dyx(const DeviceCsr& W, const float* dy, const float* x, int batch,
                   float* dw_values, bool accumulate) {
  if (W.nnz == 0 || batch <= 0)
    return st::cuda::csr_sddmm_dyx(W, dy, x, batch, dw_values, accumulate);
  // op(A) = dyᵀ (OUT, B) from dy (B, OUT) row-major; op(B) = x (B, IN) row-major.
  run(Call{Product::sddmm_dyx, &W, dw_values,
           dy, DenseView{batch, W.rows, W.rows, CUSPARSE_ORDER_ROW, kT},
           const_cast<float*>(x), DenseView{batch, W.cols, W.cols, CUSPARSE_ORDER_ROW, kN}, batch,
           accumulate ? 1.0f : 0.0f});
}

CacheStats cache_stats() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  CacheStats out = s.stats;
  out.plans = static_cast<int64_t>(s.plans.size());
  return out;
}

void release_cache() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  for (auto& kv : s.plans) destroy(kv.second);
  s.plans.clear();
  if (s.handle) ST_CUSPARSE_CHECK(lib().destroy(s.handle));
  s.handle = nullptr;
}

}  // namespace st::cuda::cusparse
