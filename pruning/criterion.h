// pruning/criterion.h — scores: how much each weight (or output unit) matters. Higher = keep.
//   magnitude      |w|                                  l1_norm  |w|, summed per group
//   l2_norm        w², root of the per-group sum        random   U[0, 1) from the pruner's Rng
//   gradient       |ḡ|, ḡ the mean gradient over `batches` batches
//   taylor         |w · ḡ| (SNIP's saliency when taken at initialization)
//   fisher         ½ · F · w², F = mean over batches of g² (diagonal empirical Fisher, OBD-style)
//   activation     per output unit: mean |a| over `batches` batches (a = the unit's output after its
//                  ReLU when one follows); an element scores its unit's value
//   neighbourhood  per output unit: Σ|w| of its incoming weights + Σ|w| of the weights it feeds in
//                  the next weight layer
// Data-dependent criteria read batches from a BatchSource (the trainer implements it with its data
// loader), run the model in eval mode, and leave the parameters' gradients as they found them.
// Tests: tests/pruning/test_criterion.cpp
#pragma once
#include <vector>

#include "core/rng.h"
#include "models/model.h"
#include "pruning/config.h"
#include "pruning/granularity.h"
#include "pruning/layers.h"

namespace st::pruning {

// Batches for data-dependent criteria. begin(pass) starts a deterministic sequence for that pass.
struct BatchSource {
  virtual ~BatchSource() = default;
  virtual void begin(int64_t pass) = 0;
  // Fills x (N, C, H, W) and y (N, i32); false when the data is exhausted.
  virtual bool next(Tensor& x, Tensor& y) = 0;
};

struct LayerScores {
  std::vector<float> elem;  // rows·cols element scores
  std::vector<float> unit;  // rows unit scores (activation, neighbourhood), else empty
  Reduction reduction = Reduction::Sum;
};

bool needs_data(CriterionType t);

// One LayerScores per layer. `pass` selects the batches (deterministic).
std::vector<LayerScores> compute_scores(const CriterionConfig& c, models::Model& model,
                                        const std::vector<PrunableLayer>& layers, BatchSource* batches,
                                        Rng& rng, int64_t pass);

}  // namespace st::pruning
