#include "pruning/distribution.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace st::pruning {

std::vector<double> erk_densities(const std::vector<Shape>& shapes, const std::vector<bool>& dense_in,
                                  double target_sparsity, double power, bool with_kernel) {
  const size_t L = shapes.size();
  std::vector<bool> dense = dense_in;
  std::vector<double> raw(L, 0.0), out(L, 1.0);
  double eps = 0;
  for (;;) {
    double divisor = 0, rhs = 0;
    for (size_t l = 0; l < L; ++l) {
      const Shape& s = shapes[l];
      const double n = static_cast<double>(shape_numel(s));
      if (dense[l]) {
        rhs -= n * target_sparsity;
        continue;
      }
      rhs += n * (1.0 - target_sparsity);
      double sum = static_cast<double>(s[0] + s[1]), prod = static_cast<double>(s[0] * s[1]);
      if (with_kernel)
        for (size_t d = 2; d < s.size(); ++d) sum += static_cast<double>(s[d]), prod *= static_cast<double>(s[d]);
      raw[l] = std::pow(sum / prod, power);
      divisor += raw[l] * n;
    }
    if (divisor <= 0) break;  // every layer dense
    eps = rhs / divisor;
    double max_raw = 0;
    for (size_t l = 0; l < L; ++l)
      if (!dense[l]) max_raw = std::max(max_raw, raw[l]);
    if (max_raw * eps <= 1.0) break;
    for (size_t l = 0; l < L; ++l)
      if (!dense[l] && raw[l] == max_raw) dense[l] = true;
  }
  for (size_t l = 0; l < L; ++l) out[l] = dense[l] ? 1.0 : std::max(0.0, eps * raw[l]);
  return out;
}

std::vector<double> layer_sparsities(DistributionType type, const std::vector<PrunableLayer>& layers,
                                     const std::vector<bool>& eligible, double target, double erk_power) {
  std::vector<double> s(layers.size(), 0.0);
  if (type == DistributionType::Erk || type == DistributionType::Er) {
    std::vector<Shape> shapes;
    std::vector<bool> dense;
    for (size_t l = 0; l < layers.size(); ++l) {
      shapes.push_back(layers[l].weight->shape);
      dense.push_back(!eligible[l]);
    }
    const auto d = erk_densities(shapes, dense, target, erk_power, type == DistributionType::Erk);
    for (size_t l = 0; l < layers.size(); ++l) s[l] = 1.0 - d[l];
    return s;
  }
  for (size_t l = 0; l < layers.size(); ++l) s[l] = eligible[l] ? target : 0.0;
  return s;
}

}  // namespace st::pruning
