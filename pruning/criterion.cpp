#include "pruning/criterion.h"

#include <cmath>

#include "core/ops.h"

namespace st::pruning {

bool needs_data(CriterionType t) {
  return t == CriterionType::Gradient || t == CriterionType::Taylor || t == CriterionType::Fisher ||
         t == CriterionType::Activation;
}

namespace {

// Mean gradient and mean squared gradient of each layer's weight over the batches.
void gradient_moments(models::Model& model, const std::vector<PrunableLayer>& layers, BatchSource& src,
                      int batches, int64_t pass, std::vector<std::vector<double>>& g1,
                      std::vector<std::vector<double>>& g2) {
  // Keep the gradients the trainer may hold (a step-time prune) and give them back afterwards.
  std::vector<Tensor> saved;
  for (Parameter* p : model.parameters()) {
    saved.push_back(p->var.grad());
    p->var.zero_grad();
  }
  model.set_training(false);
  g1.assign(layers.size(), {});
  g2.assign(layers.size(), {});
  for (size_t l = 0; l < layers.size(); ++l) {
    g1[l].assign(layers[l].numel(), 0.0);
    g2[l].assign(layers[l].numel(), 0.0);
  }
  src.begin(pass);
  Tensor x, y;
  int seen = 0;
  while (seen < batches && src.next(x, y)) {
    for (Parameter* p : model.parameters()) p->var.zero_grad();
    Variable loss = softmax_cross_entropy(model.forward(Variable(x)), y);
    loss.backward();
    for (size_t l = 0; l < layers.size(); ++l) {
      const Variable& w = layers[l].weight->var;
      if (!w.has_grad()) continue;
      const float* g = w.grad().f32();
      for (int64_t i = 0; i < layers[l].numel(); ++i) {
        g1[l][i] += g[i];
        g2[l][i] += double(g[i]) * g[i];
      }
    }
    ++seen;
  }
  ST_CHECK(seen > 0, "pruning.criterion: the training data gave no batches to score with");
  for (size_t l = 0; l < layers.size(); ++l)
    for (int64_t i = 0; i < layers[l].numel(); ++i) g1[l][i] /= seen, g2[l][i] /= seen;
  model.set_training(true);
  const auto& params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i) params[i]->var.grad() = saved[i];
}

// Mean |activation| per output unit over the batches.
std::vector<std::vector<double>> activation_means(models::Model& model, const std::vector<PrunableLayer>& layers,
                                                  BatchSource& src, int batches, int64_t pass) {
  NoGradGuard no_grad;
  model.set_training(false);
  std::vector<std::vector<double>> acc(layers.size());
  std::vector<int64_t> count(layers.size(), 0);
  for (size_t l = 0; l < layers.size(); ++l) acc[l].assign(layers[l].rows, 0.0);
  src.begin(pass);
  Tensor x, y;
  std::vector<Tensor> outs;
  int seen = 0;
  while (seen < batches && src.next(x, y)) {
    model.forward_collect(Variable(x), outs);
    for (size_t l = 0; l < layers.size(); ++l) {
      int idx = layers[l].layer_index;
      if (idx + 1 < static_cast<int>(outs.size()) &&
          std::string(model.layers()[idx + 1]->type()) == "relu")
        ++idx;
      const Tensor& a = outs[idx];
      const int64_t N = a.dim(0), U = a.dim(1), S = a.numel() / (N * U);
      const float* p = a.f32();
      for (int64_t n = 0; n < N; ++n)
        for (int64_t u = 0; u < U; ++u)
          for (int64_t s = 0; s < S; ++s) acc[l][u] += std::abs(p[(n * U + u) * S + s]);
      count[l] += N * S;
    }
    ++seen;
  }
  ST_CHECK(seen > 0, "pruning.criterion: the training data gave no batches to score with");
  model.set_training(true);
  for (size_t l = 0; l < layers.size(); ++l)
    for (auto& v : acc[l]) v /= static_cast<double>(count[l]);
  return acc;
}

}  // namespace

std::vector<LayerScores> compute_scores(const CriterionConfig& c, models::Model& model,
                                        const std::vector<PrunableLayer>& layers, BatchSource* batches,
                                        Rng& rng, int64_t pass) {
  std::vector<LayerScores> out(layers.size());
  if (needs_data(c.type))
    ST_CHECK(batches != nullptr, "pruning.criterion.type = \"", to_string(c.type),
             "\" needs training batches, and none were given");
  std::vector<std::vector<double>> g1, g2, act;
  if (c.type == CriterionType::Gradient || c.type == CriterionType::Taylor || c.type == CriterionType::Fisher)
    gradient_moments(model, layers, *batches, c.batches, pass, g1, g2);
  if (c.type == CriterionType::Activation) act = activation_means(model, layers, *batches, c.batches, pass);

  for (size_t l = 0; l < layers.size(); ++l) {
    const PrunableLayer& L = layers[l];
    const float* w = L.weight->var.value().f32();
    const int64_t n = L.numel();
    LayerScores& s = out[l];
    s.elem.resize(n);
    switch (c.type) {
      case CriterionType::Magnitude:
      case CriterionType::L1Norm:
        for (int64_t i = 0; i < n; ++i) s.elem[i] = std::abs(w[i]);
        break;
      case CriterionType::L2Norm:
        for (int64_t i = 0; i < n; ++i) s.elem[i] = w[i] * w[i];
        s.reduction = Reduction::RootSum;
        break;
      case CriterionType::Random:
        for (int64_t i = 0; i < n; ++i) s.elem[i] = rng.uniform();
        break;
      case CriterionType::Gradient:
        for (int64_t i = 0; i < n; ++i) s.elem[i] = static_cast<float>(std::abs(g1[l][i]));
        break;
      case CriterionType::Taylor:
        for (int64_t i = 0; i < n; ++i) s.elem[i] = static_cast<float>(std::abs(w[i] * g1[l][i]));
        break;
      case CriterionType::Fisher:
        for (int64_t i = 0; i < n; ++i) s.elem[i] = static_cast<float>(0.5 * g2[l][i] * w[i] * w[i]);
        break;
      case CriterionType::Activation:
        s.unit.assign(act[l].begin(), act[l].end());
        s.reduction = Reduction::Mean;
        for (int64_t i = 0; i < n; ++i) s.elem[i] = s.unit[i / L.cols];
        break;
      case CriterionType::Neighbourhood: {
        s.unit.assign(L.rows, 0.f);
        for (int64_t r = 0; r < L.rows; ++r) {
          double sum = 0;
          for (int64_t k = 0; k < L.cols; ++k) sum += std::abs(w[r * L.cols + k]);
          if (L.next >= 0) {
            const PrunableLayer& N = layers[L.next];
            const float* wn = N.weight->var.value().f32();
            const int64_t c0 = r * L.span * N.area, c1 = (r + 1) * L.span * N.area;
            for (int64_t q = 0; q < N.rows; ++q)
              for (int64_t k = c0; k < c1; ++k) sum += std::abs(wn[q * N.cols + k]);
          }
          s.unit[r] = static_cast<float>(sum);
        }
        for (int64_t i = 0; i < n; ++i) s.elem[i] = s.unit[i / L.cols];
        s.reduction = Reduction::Mean;
        break;
      }
    }
  }
  return out;
}

}  // namespace st::pruning
