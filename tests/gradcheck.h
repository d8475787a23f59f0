// tests/gradcheck.h — finite-difference gradient check for any differentiable op (one line per op):
//   CHECK(gradcheck([&](auto& in) { return relu(in[0]); }, {x}));
// The scalar probed is L = Σ f(inputs) ⊙ R for a fixed random R, in double; each input element is
// moved by ±eps and the central difference is compared with the analytic gradient.
// Also the core suites' random inputs: random_tensor, random_mask; and pattern_positions (a CSR
// pattern's dense positions, to compare compact arrays with dense ones).
#pragma once
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include <doctest/doctest.h>

#include "core/rng.h"
#include "kernels/csr.h"
#include "core/variable.h"

namespace st::test {

inline Tensor random_tensor(const Shape& shape, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor t(shape);
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = dist(gen);
  return t;
}

// A u8 keep-mask of `shape` with about `sparsity` of its entries 0 (uniform draws in [0, 1), so
// sparsity 0 keeps everything and 1 prunes everything).
inline Tensor random_mask(const Shape& shape, double sparsity, uint64_t seed) {
  Tensor m(shape, DType::u8);
  Rng rng(seed);
  for (int64_t i = 0; i < m.numel(); ++i) m.u8()[i] = rng.uniform() >= sparsity ? 1 : 0;
  return m;
}

// The dense (row-major) position of each nonzero of w, in CSR order.
inline std::vector<int64_t> pattern_positions(const kernels::CsrMatrix& w) {
  std::vector<int64_t> pos;
  pos.reserve(static_cast<size_t>(w.nnz()));
  for (int r = 0; r < w.rows; ++r)
    for (int32_t k = w.row_ptr[r]; k < w.row_ptr[r + 1]; ++k)
      pos.push_back(static_cast<int64_t>(r) * w.cols + w.col_idx[k]);
  return pos;
}

using OpFn = std::function<Variable(std::vector<Variable>&)>;

// Returns the worst |analytic − numeric| / max(1, |numeric|) over all inputs that require grad.
inline double gradcheck_error(const OpFn& f, const std::vector<Tensor>& values,
                              const std::vector<bool>& needs_grad = {}, float eps = 1e-2f) {
  std::vector<Variable> in;
  for (size_t i = 0; i < values.size(); ++i)
    in.emplace_back(values[i].clone(), needs_grad.empty() ? true : bool(needs_grad[i]));
  Variable out = f(in);
  Tensor r = random_tensor(out.shape(), 1234);
  auto loss = [&]() {
    std::vector<Variable> probe;
    for (auto& v : in) probe.emplace_back(v.value(), false);
    NoGradGuard ng;
    Variable o = f(probe);
    double s = 0;
    for (int64_t i = 0; i < o.value().numel(); ++i) s += double(o.value().f32()[i]) * r.f32()[i];
    return s;
  };
  out.backward(r);
  double worst = 0;
  for (auto& v : in) {
    if (!v.requires_grad()) continue;
    REQUIRE(v.has_grad());
    float* x = v.value().f32();
    for (int64_t i = 0; i < v.value().numel(); ++i) {
      const float saved = x[i];
      x[i] = saved + eps;
      const double lp = loss();
      x[i] = saved - eps;
      const double lm = loss();
      x[i] = saved;
      const double numeric = (lp - lm) / (2.0 * eps);
      const double analytic = v.grad().f32()[i];
      worst = std::max(worst, std::abs(analytic - numeric) / std::max(1.0, std::abs(numeric)));
    }
  }
  return worst;
}

}  // namespace st::test
