#include "pruning/l1.h"

namespace st::pruning {

Action l1_term(const L1Config& l1, const std::vector<PrunableLayer>& layers, int epoch) {
  if (!l1.enabled || epoch < l1.start_epoch || epoch >= l1.end_epoch) return {};
  const float lambda = static_cast<float>(l1.lambda);
  return [lambda, &layers] {
    for (const auto& L : layers) {
      Variable& w = L.weight->var;
      if (!w.has_grad()) continue;
      const float* wp = w.value().f32();
      float* g = w.grad().f32();
      for (int64_t i = 0, n = L.numel(); i < n; ++i) g[i] += lambda * static_cast<float>((wp[i] > 0) - (wp[i] < 0));
    }
  };
}

}  // namespace st::pruning
